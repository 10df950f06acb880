//! Parser for presence documents (`application/pidf+xml`, RFC 3863) with
//! the rich presence extensions (RPID, RFC 4480) and the data model
//! (RFC 4479).
//!
//! Reads the tuples (basic status, contact, notes), the `<dm:person>` and
//! `<dm:device>` elements, and every `<rpid:activities>` found on a person,
//! a device or a tuple (directly or inside `<status>`, where pre-RFC RPID
//! put it), with its `from` and `until` window. Mood, place, privacy, user
//! input and every element of another namespace are skipped. PIDF has no
//! version: each document is the whole presence state. Partial PIDF
//! (RFC 5263) is not read.

use jiff::Timestamp;

use super::xml::{self, Element, XML_NS};
use super::{BodyError, Limits, Package, check_count, expect_root, non_empty, required};

/// The PIDF namespace.
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The RPID namespace.
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The presence data model namespace (`dm:person`, `dm:device`).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";

const PACKAGE: Package = Package::Pidf;

/// Activity names defined by RFC 4480 §3.2, in its order.
pub const RFC4480_ACTIVITIES: [&str; 25] = [
    "appointment",
    "away",
    "breakfast",
    "busy",
    "dinner",
    "holiday",
    "in-transit",
    "looking-for-work",
    "meal",
    "meeting",
    "on-the-phone",
    "performance",
    "permanent-absence",
    "playing",
    "presentation",
    "shopping",
    "sleeping",
    "spectator",
    "steering",
    "travel",
    "tv",
    "unknown",
    "vacation",
    "working",
    "worship",
];

/// Maximum length, in characters, of the text kept from `<rpid:other>` or
/// an unknown activity name. It becomes part of a state code, so it stays
/// short.
const MAX_OTHER_CHARS: usize = 64;

/// One presence document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    /// The presentity URI; required by RFC 3863, optional here.
    pub entity: Option<String>,
    pub tuples: Vec<Tuple>,
    pub persons: Vec<Person>,
    pub devices: Vec<Device>,
    /// Notes directly under `<presence>`.
    pub notes: Vec<Note>,
}

/// One `<tuple>`: a service of the presentity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tuple {
    /// Taken as sent, even where it is not a valid xs:ID (some servers start
    /// it with a digit).
    pub id: String,
    /// `None` when `<status>` has no `<basic>`.
    pub basic: Option<BasicStatus>,
    pub contact: Option<String>,
    pub notes: Vec<Note>,
    pub activities: Vec<Activities>,
}

/// The `<basic>` status of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BasicStatus {
    Open,
    Closed,
}

/// One `<dm:person>`: what the human is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub id: Option<String>,
    pub activities: Vec<Activities>,
    pub notes: Vec<Note>,
}

/// One `<dm:device>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub id: Option<String>,
    pub device_id: Option<String>,
    pub activities: Vec<Activities>,
    pub notes: Vec<Note>,
}

/// One `<rpid:activities>` element: what is going on, and when it applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activities {
    /// Start of the period the activities hold for; `None` when absent or
    /// not a valid date-time with an offset.
    pub from: Option<Timestamp>,
    /// End of that period, with the same rule.
    pub until: Option<Timestamp>,
    pub items: Vec<Activity>,
    pub notes: Vec<Note>,
}

/// One activity: an RFC 4480 name such as `away` or `on-the-phone`, or
/// `other:<text>` for `<rpid:other>` and for names RFC 4480 does not define.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Activity(String);

/// A `<note>` with its `xml:lang`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub lang: Option<String>,
    pub text: String,
}

/// Parses a PIDF body.
pub fn parse_pidf(body: &[u8], limits: &Limits) -> Result<Presence, BodyError> {
    let root = xml::parse_tree(body, PACKAGE, limits)?;
    expect_root(PACKAGE, &root, PIDF_NS, "presence")?;

    let mut presence = Presence {
        entity: non_empty(root.attribute("entity")),
        notes: notes_of(&root, PIDF_NS),
        ..Presence::default()
    };

    for child in &root.children {
        if child.is(PIDF_NS, "tuple") {
            check_count(PACKAGE, "tuple", presence.tuples.len() + 1, limits)?;
            presence.tuples.push(parse_tuple(child)?);
        } else if child.is(DATA_MODEL_NS, "person") {
            check_count(PACKAGE, "person", presence.persons.len() + 1, limits)?;
            presence.persons.push(Person {
                id: non_empty(child.attribute("id")),
                activities: activities_of(child),
                notes: notes_of(child, DATA_MODEL_NS),
            });
        } else if child.is(DATA_MODEL_NS, "device") {
            check_count(PACKAGE, "device", presence.devices.len() + 1, limits)?;
            presence.devices.push(Device {
                id: non_empty(child.attribute("id")),
                device_id: child.child(DATA_MODEL_NS, "deviceID").and_then(|d| non_empty(Some(d.trimmed_text()))),
                activities: activities_of(child),
                notes: notes_of(child, DATA_MODEL_NS),
            });
        }
    }
    Ok(presence)
}

fn parse_tuple(element: &Element) -> Result<Tuple, BodyError> {
    let id = required(PACKAGE, element, "tuple", "id")?.trim().to_string();
    let status = element.child(PIDF_NS, "status");

    let basic = match status.and_then(|s| s.child(PIDF_NS, "basic")) {
        None => None,
        Some(basic) => {
            let text = basic.trimmed_text();
            if text.eq_ignore_ascii_case("open") {
                Some(BasicStatus::Open)
            } else if text.eq_ignore_ascii_case("closed") {
                Some(BasicStatus::Closed)
            } else {
                return Err(BodyError::InvalidText {
                    package: PACKAGE,
                    element: "basic",
                    value: text.to_string(),
                    expected: "open or closed",
                });
            }
        }
    };

    let mut activities = activities_of(element);
    if let Some(status) = status {
        activities.extend(activities_of(status));
    }

    Ok(Tuple {
        id,
        basic,
        contact: element.child(PIDF_NS, "contact").and_then(|c| non_empty(Some(c.trimmed_text()))),
        notes: notes_of(element, PIDF_NS),
        activities,
    })
}

fn activities_of(element: &Element) -> Vec<Activities> {
    element.children_named(RPID_NS, "activities").map(parse_activities).collect()
}

fn parse_activities(element: &Element) -> Activities {
    let mut activities = Activities {
        from: element.attribute("from").and_then(parse_time),
        until: element.attribute("until").and_then(parse_time),
        ..Activities::default()
    };

    for child in &element.children {
        if child.is(RPID_NS, "note") {
            activities.notes.push(note(child));
        } else if child.is(RPID_NS, "other") {
            activities.items.push(Activity::other(child.trimmed_text()));
        } else if child.ns.as_deref() == Some(RPID_NS) && RFC4480_ACTIVITIES.contains(&child.name.as_str()) {
            activities.items.push(Activity(child.name.clone()));
        } else {
            // An activity RFC 4480 does not define, in the RPID namespace
            // or an extension one, is kept by name so a site can map it.
            activities.items.push(Activity::other(&child.name));
        }
    }
    activities
}

/// Parses an xs:dateTime with an offset. Any other value is treated as
/// absent, so a bad date format in the body never hides the activity.
fn parse_time(value: &str) -> Option<Timestamp> {
    value.trim().parse().ok()
}

fn notes_of(element: &Element, ns: &str) -> Vec<Note> {
    element.children_named(ns, "note").map(note).collect()
}

fn note(element: &Element) -> Note {
    Note { lang: non_empty(element.attribute_ns(XML_NS, "lang")), text: element.trimmed_text().to_string() }
}

// === impl Activity ===

impl Activity {
    /// Creates an activity from an RFC 4480 name, or `other:<name>` for
    /// any other name.
    pub fn new(name: &str) -> Activity {
        if RFC4480_ACTIVITIES.contains(&name) { Activity(name.to_string()) } else { Activity::other(name) }
    }

    /// Creates `other:<text>`, with the text trimmed, inner whitespace
    /// collapsed to `-` and cut to 64 characters. Empty text gives `other`.
    pub fn other(text: &str) -> Activity {
        let words: Vec<&str> = text.split_whitespace().collect();
        let joined: String = words.join("-").chars().take(MAX_OTHER_CHARS).collect();
        if joined.is_empty() { Activity("other".to_string()) } else { Activity(format!("other:{joined}")) }
    }

    /// Returns the name: `away`, `on-the-phone`, `other:lunch`, ….
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns true for RFC 4480's `unknown`, which carries no information.
    pub fn is_unknown(&self) -> bool {
        self.0 == "unknown"
    }
}

// === impl Activities ===

impl Activities {
    /// Returns true when `now` lies in `[from, until)`; a missing bound is
    /// open.
    pub fn applies_at(&self, now: Timestamp) -> bool {
        self.from.is_none_or(|from| from <= now) && self.until.is_none_or(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Presence, BodyError> {
        parse_pidf(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn tuple_without_id_is_rejected() {
        let err = parse(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple/></presence>"#).unwrap_err();
        assert_eq!(err.to_string(), "pidf: <tuple> without id attribute");
    }

    #[test]
    fn unknown_activity_becomes_other() {
        let body = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"
            xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model">
            <dm:person id="p"><r:activities><r:lunch/><r:other> coffee  break </r:other></r:activities></dm:person>
            </presence>"#;
        let presence = parse(body).unwrap();
        let names: Vec<&str> = presence.persons[0].activities[0].items.iter().map(Activity::as_str).collect();
        assert_eq!(names, ["other:lunch", "other:coffee-break"]);
    }

    #[test]
    fn activities_inside_status_are_read() {
        let body = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid">
            <tuple id="t"><status><basic>open</basic><r:activities><r:meal/></r:activities></status></tuple>
            </presence>"#;
        let presence = parse(body).unwrap();
        assert_eq!(presence.tuples[0].activities[0].items[0].as_str(), "meal");
    }

    #[test]
    fn invalid_basic_is_rejected() {
        let body = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"><status><basic>maybe</basic></status></tuple></presence>"#;
        assert!(matches!(parse(body).unwrap_err(), BodyError::InvalidText { element: "basic", .. }));
    }

    #[test]
    fn wrong_root_namespace_is_rejected() {
        let err = parse(r#"<presence xmlns="urn:example:other"/>"#).unwrap_err();
        assert!(matches!(err, BodyError::WrongRoot { .. }), "{err}");
    }
}
