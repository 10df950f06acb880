//! Parser for dialog-info documents (`application/dialog-info+xml`, RFC 4235).
//!
//! Reads the root's version, state and entity, and per `<dialog>` its
//! identifiers, direction, `<state>` (with the optional event and code),
//! duration and the local and remote identities and targets, including the
//! `+sip.rendering` hint that marks a held call. Route sets, session
//! descriptions, `<replaces>`, `<referred-by>` and every element in another
//! namespace are skipped.

use super::xml::{self, Element};
use super::{
    BodyError, DocumentState, Limits, Package, check_count, expect_root, non_empty, parse_document_state,
    parse_version, required,
};

/// The dialog-info namespace.
pub const DIALOG_INFO_NS: &str = "urn:ietf:params:xml:ns:dialog-info";

const PACKAGE: Package = Package::DialogInfo;

/// One dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    /// Counts up by one per notification within one subscription.
    pub version: u64,
    pub state: DocumentState,
    /// The AOR the document describes; required by RFC 4235 but missing in
    /// some PBXs' documents, so optional here.
    pub entity: Option<String>,
    pub dialogs: Vec<Dialog>,
}

/// One `<dialog>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Unique within the subscription; the key partial documents merge by.
    pub id: String,
    /// SIP Call-ID; missing in documents from PBXs that send only `id`.
    pub call_id: Option<String>,
    pub local_tag: Option<String>,
    pub remote_tag: Option<String>,
    pub direction: Option<DialogDirection>,
    /// `None` when the element has no `<state>` child, which RFC 4235
    /// requires but some PBXs leave out: the dialog's phase is unknown.
    pub status: Option<DialogStatus>,
    /// Seconds since the dialog was created.
    pub duration: Option<u64>,
    pub local: Option<Participant>,
    pub remote: Option<Participant>,
}

/// Whether the watched AOR sent (`initiator`) or received (`recipient`)
/// the INVITE that created the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogDirection {
    Initiator,
    Recipient,
}

/// The content of `<state>`: the phase and, for `terminated`, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogStatus {
    pub phase: DialogPhase,
    /// The `event` attribute: `cancelled`, `rejected`, `replaced`,
    /// `local-bye`, `remote-bye`, `error` or `timeout` (kept as sent).
    pub event: Option<String>,
    /// The `code` attribute: the SIP response code that ended the dialog.
    pub code: Option<u16>,
}

/// The dialog state machine of RFC 4235 §3.7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DialogPhase {
    Trying,
    Proceeding,
    Early,
    Confirmed,
    Terminated,
}

/// One side of a dialog (`<local>` or `<remote>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    /// The `<identity>` URI.
    pub identity: Option<String>,
    /// The `display` attribute of `<identity>`, with escapes resolved.
    pub display: Option<String>,
    /// The `uri` attribute of `<target>`.
    pub target: Option<String>,
    /// The `+sip.rendering` feature of the target, if the body gives it.
    pub rendering: Option<Rendering>,
}

/// Whether a participant's device is rendering the session's media
/// (RFC 4235 §4.1.6): `No` on a confirmed dialog means the call is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rendering {
    Yes,
    No,
    Unknown,
}

/// Parses a dialog-info body.
pub fn parse_dialog_info(body: &[u8], limits: &Limits) -> Result<DialogInfo, BodyError> {
    let root = xml::parse_tree(body, PACKAGE, limits)?;
    expect_root(PACKAGE, &root, DIALOG_INFO_NS, "dialog-info")?;

    let version = parse_version(PACKAGE, &root, "dialog-info")?;
    let state = parse_document_state(PACKAGE, &root, "dialog-info")?;
    let entity = non_empty(root.attribute("entity"));

    let mut dialogs = Vec::new();
    for element in root.children_named(DIALOG_INFO_NS, "dialog") {
        check_count(PACKAGE, "dialog", dialogs.len() + 1, limits)?;
        dialogs.push(parse_dialog(element)?);
    }
    Ok(DialogInfo { version, state, entity, dialogs })
}

fn parse_dialog(element: &Element) -> Result<Dialog, BodyError> {
    let id = required(PACKAGE, element, "dialog", "id")?.trim().to_string();
    if id.is_empty() {
        return Err(BodyError::InvalidAttribute {
            package: PACKAGE,
            element: "dialog",
            attribute: "id",
            value: id,
            expected: "a non-empty identifier",
        });
    }

    let direction = match element.attribute("direction").map(str::trim) {
        None | Some("") => None,
        Some("initiator") => Some(DialogDirection::Initiator),
        Some("recipient") => Some(DialogDirection::Recipient),
        Some(other) => {
            return Err(BodyError::InvalidAttribute {
                package: PACKAGE,
                element: "dialog",
                attribute: "direction",
                value: other.to_string(),
                expected: "initiator or recipient",
            });
        }
    };

    let status = element.child(DIALOG_INFO_NS, "state").map(parse_status).transpose()?;
    // Duration is informational; a bad value is dropped, not fatal.
    let duration = element.child(DIALOG_INFO_NS, "duration").and_then(|d| d.trimmed_text().parse().ok());

    Ok(Dialog {
        id,
        call_id: non_empty(element.attribute("call-id")),
        local_tag: non_empty(element.attribute("local-tag")),
        remote_tag: non_empty(element.attribute("remote-tag")),
        direction,
        status,
        duration,
        local: element.child(DIALOG_INFO_NS, "local").map(parse_participant),
        remote: element.child(DIALOG_INFO_NS, "remote").map(parse_participant),
    })
}

fn parse_status(element: &Element) -> Result<DialogStatus, BodyError> {
    let text = element.trimmed_text();
    // RFC 4235 writes the states in lower case; Kamailio 5.6 sends
    // "Trying", so the comparison ignores case.
    let phase = match text.to_ascii_lowercase().as_str() {
        "trying" => DialogPhase::Trying,
        "proceeding" => DialogPhase::Proceeding,
        "early" => DialogPhase::Early,
        "confirmed" => DialogPhase::Confirmed,
        "terminated" => DialogPhase::Terminated,
        _ => {
            return Err(BodyError::InvalidText {
                package: PACKAGE,
                element: "state",
                value: text.to_string(),
                expected: "trying, proceeding, early, confirmed or terminated",
            });
        }
    };

    let code = match element.attribute("code").map(str::trim) {
        None | Some("") => None,
        Some(value) => match value.parse::<u16>() {
            Ok(code) if (100..=699).contains(&code) => Some(code),
            _ => {
                return Err(BodyError::InvalidAttribute {
                    package: PACKAGE,
                    element: "state",
                    attribute: "code",
                    value: value.to_string(),
                    expected: "a SIP response code from 100 to 699",
                });
            }
        },
    };

    Ok(DialogStatus { phase, event: non_empty(element.attribute("event")), code })
}

fn parse_participant(element: &Element) -> Participant {
    let identity = element.child(DIALOG_INFO_NS, "identity");
    let target = element.child(DIALOG_INFO_NS, "target");
    Participant {
        identity: identity.and_then(|i| non_empty(Some(i.trimmed_text()))),
        display: identity.and_then(|i| non_empty(i.attribute("display"))),
        target: target.and_then(|t| non_empty(t.attribute("uri"))),
        rendering: target.and_then(rendering_of),
    }
}

/// Finds the `+sip.rendering` feature of a `<target>` in the forms PBXs
/// send: a `<param pname="+sip.rendering" pval="no"/>` child (RFC 4235
/// §4.1.6), an attribute named `sip.rendering` (a `+` cannot start an XML
/// name), or a `;+sip.rendering=no` parameter on the target URI.
fn rendering_of(target: &Element) -> Option<Rendering> {
    for param in target.children_named(DIALOG_INFO_NS, "param") {
        if param.attribute("pname").is_some_and(is_rendering_name) {
            return param.attribute("pval").map(rendering_value);
        }
    }

    if let Some(attribute) = target.attributes.iter().find(|a| a.ns.is_none() && is_rendering_name(&a.name)) {
        return Some(rendering_value(&attribute.value));
    }

    let uri = target.attribute("uri")?;
    uri.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        is_rendering_name(name).then(|| rendering_value(value))
    })
}

fn is_rendering_name(name: &str) -> bool {
    name.trim().trim_start_matches('+').eq_ignore_ascii_case("sip.rendering")
}

fn rendering_value(value: &str) -> Rendering {
    let value = value.trim().trim_matches('"').trim();
    if value.eq_ignore_ascii_case("yes") {
        Rendering::Yes
    } else if value.eq_ignore_ascii_case("no") {
        Rendering::No
    } else {
        Rendering::Unknown
    }
}

// === impl Dialog ===

impl Dialog {
    /// Returns true when either side's target reports that it is not rendering
    /// media, which is how RFC 4235 §4.1.6 marks a held dialog.
    pub fn is_held(&self) -> bool {
        [&self.local, &self.remote].into_iter().flatten().any(|p| p.rendering == Some(Rendering::No))
    }

    /// Returns the phase, or `None` when the document gave no `<state>`.
    pub fn phase(&self) -> Option<DialogPhase> {
        self.status.as_ref().map(|s| s.phase)
    }
}

// === impl DialogPhase ===

impl DialogPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            DialogPhase::Trying => "trying",
            DialogPhase::Proceeding => "proceeding",
            DialogPhase::Early => "early",
            DialogPhase::Confirmed => "confirmed",
            DialogPhase::Terminated => "terminated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DialogInfo, BodyError> {
        parse_dialog_info(text.as_bytes(), &Limits::default())
    }

    const HEAD: &str = r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@example.com">"#;

    #[test]
    fn dialog_without_id_is_rejected() {
        let err = parse(&format!("{HEAD}<dialog><state>early</state></dialog></dialog-info>")).unwrap_err();
        assert_eq!(err.to_string(), "dialog-info: <dialog> without id attribute");
    }

    #[test]
    fn unknown_phase_is_rejected() {
        let err = parse(&format!("{HEAD}<dialog id=\"d\"><state>ringing</state></dialog></dialog-info>")).unwrap_err();
        assert!(matches!(err, BodyError::InvalidText { element: "state", .. }), "{err}");
    }

    #[test]
    fn rendering_param_marks_hold() {
        let body = format!(
            "{HEAD}<dialog id=\"d\"><state>confirmed</state><local><target uri=\"sip:a@192.0.2.1\">\
             <param pname=\"+sip.rendering\" pval=\"no\"/></target></local></dialog></dialog-info>"
        );
        assert!(parse(&body).unwrap().dialogs[0].is_held());
    }

    #[test]
    fn rendering_uri_parameter_marks_hold() {
        let body = format!(
            "{HEAD}<dialog id=\"d\"><state>confirmed</state><local>\
             <target uri=\"sip:a@192.0.2.1;+sip.rendering=no\"/></local></dialog></dialog-info>"
        );
        assert!(parse(&body).unwrap().dialogs[0].is_held());
    }

    #[test]
    fn rendering_attribute_marks_hold() {
        let body = format!(
            "{HEAD}<dialog id=\"d\"><state>confirmed</state><remote>\
             <target uri=\"sip:b@192.0.2.2\" sip.rendering=\"no\"/></remote></dialog></dialog-info>"
        );
        assert!(parse(&body).unwrap().dialogs[0].is_held());
    }

    #[test]
    fn foreign_dialog_element_is_ignored() {
        let body = format!("{HEAD}<x:dialog xmlns:x=\"urn:example:other\"/></dialog-info>");
        assert!(parse(&body).unwrap().dialogs.is_empty());
    }

    #[test]
    fn too_many_dialogs_name_the_limit() {
        let dialogs: String = (0..3).map(|i| format!("<dialog id=\"{i}\"/>")).collect();
        let limits = Limits { max_items: 2, ..Limits::default() };
        let err = parse_dialog_info(format!("{HEAD}{dialogs}</dialog-info>").as_bytes(), &limits).unwrap_err();
        assert_eq!(err.to_string(), "dialog-info: more than the limit of 2 <dialog> elements in one body");
    }
}
