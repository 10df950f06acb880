//! A small namespace-resolved element tree built with quick-xml's
//! `NsReader`, shared by the three body parsers.
//!
//! Every element and attribute carries the namespace URI its prefix (or the
//! default namespace) resolves to, so the parsers compare names by URI and
//! never by prefix. The builder enforces the body size and element depth
//! limits, rejects document type declarations (no SIP event body needs one,
//! and they are the way in for entity-expansion attacks) and resolves the
//! five predefined entities and character references. It does not validate
//! against any schema: that is the parsers' job.

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use std::rc::Rc;

use super::{BodyError, Limits, Package};

/// The namespace the `xml:` prefix is bound to (`xml:lang`).
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// One element with its resolved name, attributes, children and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    /// Namespace URI; `None` when the name is in no namespace or its prefix
    /// was never declared. Shared by every name in that namespace.
    pub ns: Option<Rc<str>>,
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub children: Vec<Element>,
    /// Character data directly inside this element (CDATA included), with
    /// references resolved; text of children is not included.
    pub text: String,
}

/// One attribute with its resolved name and its normalized, unescaped value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    /// Namespace URI; unprefixed attributes are in no namespace (XML
    /// Namespaces §6.2), whatever the default namespace is.
    pub ns: Option<Rc<str>>,
    pub name: String,
    pub value: String,
}

/// Parses `body` into its root element, enforcing `limits`.
pub(crate) fn parse_tree(body: &[u8], package: Package, limits: &Limits) -> Result<Element, BodyError> {
    if body.len() > limits.max_body_bytes {
        return Err(BodyError::TooLarge { package, size: body.len(), limit: limits.max_body_bytes });
    }
    let text = std::str::from_utf8(body).map_err(|e| BodyError::NotUtf8 { package, offset: e.valid_up_to() })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut reader = NsReader::from_str(text);
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut namespaces = Namespaces::default();

    loop {
        let position = reader.buffer_position();
        let malformed = |message: String| BodyError::Malformed { package, position, message };
        let (resolved, event) = reader.read_resolved_event().map_err(|e| malformed(e.to_string()))?;
        let ns = namespaces.of(&resolved);

        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed("element after the end of the root element".to_string()));
            }
            Event::Start(start) => {
                if open.len() >= limits.max_depth {
                    return Err(BodyError::TooDeep { package, limit: limits.max_depth });
                }
                let element = start_element(&reader, &start, ns, &mut namespaces).map_err(malformed)?;
                open.push(element);
            }
            Event::Empty(start) => {
                if open.len() >= limits.max_depth {
                    return Err(BodyError::TooDeep { package, limit: limits.max_depth });
                }
                let element = start_element(&reader, &start, ns, &mut namespaces).map_err(malformed)?;
                close(element, &mut open, &mut root);
            }
            Event::End(_) => {
                // The reader has checked that the end tag matches the start tag.
                let Some(element) = open.pop() else {
                    return Err(malformed("end tag without a start tag".to_string()));
                };
                close(element, &mut open, &mut root);
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match open.last_mut() {
                    Some(element) => element.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(malformed("text outside the root element".to_string())),
                }
            }
            Event::CData(data) => match open.last_mut() {
                Some(element) => element.text.push_str(&data.xml10_content()),
                None => return Err(malformed("CDATA outside the root element".to_string())),
            },
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference).map_err(malformed)?;
                match open.last_mut() {
                    Some(element) => element.text.push_str(&resolved),
                    None => {
                        return Err(malformed("reference outside the root element".to_string()));
                    }
                }
            }
            Event::DocType(_) => {
                return Err(malformed("document type declarations are not accepted in event bodies".to_string()));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }

    if let Some(unclosed) = open.last() {
        return Err(BodyError::Malformed {
            package,
            position: reader.buffer_position(),
            message: format!("document ends inside <{}>", unclosed.name),
        });
    }
    root.ok_or(BodyError::Empty { package })
}

/// The namespace URIs seen in one document, so that every name in a
/// namespace shares one string instead of allocating its own.
#[derive(Default)]
struct Namespaces(Vec<Rc<str>>);

impl Namespaces {
    /// Returns the namespace URI of a resolved name; unknown prefixes count
    /// as no namespace, so elements under them are ignored like any
    /// extension.
    fn of(&mut self, resolved: &ResolveResult<'_>) -> Option<Rc<str>> {
        let ResolveResult::Bound(ns) = resolved else {
            return None;
        };
        let uri: &str = ns.0;
        if let Some(known) = self.0.iter().find(|known| known.as_ref() == uri) {
            return Some(known.clone());
        }
        let shared: Rc<str> = Rc::from(uri);
        self.0.push(shared.clone());
        Some(shared)
    }
}

fn start_element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: Option<Rc<str>>,
    namespaces: &mut Namespaces,
) -> Result<Element, String> {
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = attribute.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (resolved, local) = reader.resolver().resolve_attribute(key);
        let value = attribute.normalized_value(XmlVersion::Implicit1_0).map_err(|e| e.to_string())?;
        attributes.push(Attribute {
            ns: namespaces.of(&resolved),
            name: local.as_ref().to_string(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        ns,
        name: start.local_name().as_ref().to_string(),
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn close(element: Element, open: &mut [Element], root: &mut Option<Element>) {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<String, String> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => return Ok(c.to_string()),
        Ok(None) => {}
        Err(e) => return Err(e.to_string()),
    }
    let name: &str = reference;
    resolve_predefined_entity(name).map(str::to_string).ok_or_else(|| format!("unknown entity reference &{name};"))
}

// === impl Element ===

impl Element {
    /// Returns true when this element is `name` in namespace `ns`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    /// Returns the children named `name` in namespace `ns`, in document order.
    pub fn children_named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Returns the first child named `name` in namespace `ns`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Returns the value of the unprefixed attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.ns.is_none() && a.name == name).map(|a| a.value.as_str())
    }

    /// Returns the value of the attribute `name` in namespace `ns`.
    pub fn attribute_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.ns.as_deref() == Some(ns) && a.name == name).map(|a| a.value.as_str())
    }

    /// Returns the text content with surrounding whitespace removed.
    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Element, BodyError> {
        parse_tree(text.as_bytes(), Package::Pidf, &Limits::default())
    }

    #[test]
    fn tree_resolves_prefix_and_default_namespace() {
        let root = parse(r#"<a:r xmlns:a="urn:x"><c xmlns="urn:y" k="v"/></a:r>"#).unwrap();
        assert!(root.is("urn:x", "r"));
        assert!(root.children[0].is("urn:y", "c"));
        assert_eq!(root.children[0].attribute("k"), Some("v"));
    }

    #[test]
    fn tree_unescapes_text_and_attributes() {
        let root = parse(r#"<r a="&quot;x&quot; &amp; y">1 &lt; 2 &#x41;</r>"#).unwrap();
        assert_eq!(root.attribute("a"), Some(r#""x" & y"#));
        assert_eq!(root.text, "1 < 2 A");
    }

    #[test]
    fn tree_rejects_doctype() {
        let err = parse(r#"<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>"#).unwrap_err();
        assert!(matches!(err, BodyError::Malformed { .. }), "{err}");
    }

    #[test]
    fn tree_rejects_unclosed_root() {
        assert!(matches!(parse("<r><c>").unwrap_err(), BodyError::Malformed { .. }));
    }

    #[test]
    fn tree_enforces_depth() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        let err = parse(&deep).unwrap_err();
        assert_eq!(err, BodyError::TooDeep { package: Package::Pidf, limit: 32 });
    }

    #[test]
    fn tree_keeps_xml_lang() {
        let root = parse(r#"<r xml:lang="nl"/>"#).unwrap();
        assert_eq!(root.attribute_ns(XML_NS, "lang"), Some("nl"));
    }
}
