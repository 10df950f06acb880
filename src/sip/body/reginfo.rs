//! Parser for registration documents (`application/reginfo+xml`, RFC 3680).
//!
//! Reads the root's version and state, each `<registration>` (AOR, id,
//! state) and each `<contact>` (id, state, event, expires, q, the `<uri>`
//! and the optional `<display-name>`). `<unknown-param>` and elements of
//! other namespaces (GRUU, for example) are skipped.

use super::xml::{self, Element};
use super::{
    BodyError, DocumentState, Limits, Package, check_count, expect_root, non_empty, parse_document_state,
    parse_version, required,
};

/// The reginfo namespace.
pub const REGINFO_NS: &str = "urn:ietf:params:xml:ns:reginfo";

const PACKAGE: Package = Package::RegInfo;

/// One reginfo document.
#[derive(Debug, Clone, PartialEq)]
pub struct RegInfo {
    /// Counts up by one per notification within one subscription.
    pub version: u64,
    pub state: DocumentState,
    pub registrations: Vec<Registration>,
}

/// One `<registration>`: the bindings of one AOR.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub aor: String,
    /// The key partial documents merge by.
    pub id: String,
    pub state: RegistrationState,
    pub contacts: Vec<Contact>,
}

/// The registration state machine of RFC 3680 §5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationState {
    /// No contact was ever bound.
    Init,
    /// At least one contact is bound.
    Active,
    /// The last contact went away.
    Terminated,
}

/// One `<contact>`: a binding of the AOR to a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// The key partial documents merge by; taken as sent after unescaping
    /// (for example `<urn:uuid:…>` from `&lt;urn:uuid:…&gt;`).
    pub id: String,
    pub state: ContactState,
    /// The transition that put the contact in its state.
    pub event: ContactEvent,
    pub uri: String,
    pub display_name: Option<String>,
    /// Seconds until the binding expires.
    pub expires: Option<u64>,
    pub q: Option<f32>,
}

/// The contact state machine of RFC 3680 §5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactState {
    Active,
    Terminated,
}

/// The `event` attribute of a contact: the transition it last made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactEvent {
    Registered,
    Created,
    Refreshed,
    Shortened,
    Expired,
    Deactivated,
    Probation,
    Unregistered,
    Rejected,
}

/// Parses a reginfo body.
pub fn parse_reginfo(body: &[u8], limits: &Limits) -> Result<RegInfo, BodyError> {
    let root = xml::parse_tree(body, PACKAGE, limits)?;
    expect_root(PACKAGE, &root, REGINFO_NS, "reginfo")?;

    let version = parse_version(PACKAGE, &root, "reginfo")?;
    let state = parse_document_state(PACKAGE, &root, "reginfo")?;

    let mut registrations = Vec::new();
    let mut contact_count = 0;
    for element in root.children_named(REGINFO_NS, "registration") {
        check_count(PACKAGE, "registration", registrations.len() + 1, limits)?;
        let registration = parse_registration(element, limits)?;
        contact_count += registration.contacts.len();
        check_count(PACKAGE, "contact", contact_count, limits)?;
        registrations.push(registration);
    }
    Ok(RegInfo { version, state, registrations })
}

fn parse_registration(element: &Element, limits: &Limits) -> Result<Registration, BodyError> {
    let aor = required(PACKAGE, element, "registration", "aor")?.trim().to_string();
    let id = required(PACKAGE, element, "registration", "id")?.trim().to_string();
    let state_value = required(PACKAGE, element, "registration", "state")?;
    let state = match state_value.trim() {
        "init" => RegistrationState::Init,
        "active" => RegistrationState::Active,
        "terminated" => RegistrationState::Terminated,
        other => {
            return Err(BodyError::InvalidAttribute {
                package: PACKAGE,
                element: "registration",
                attribute: "state",
                value: other.to_string(),
                expected: "init, active or terminated",
            });
        }
    };

    let mut contacts = Vec::new();
    for child in element.children_named(REGINFO_NS, "contact") {
        check_count(PACKAGE, "contact", contacts.len() + 1, limits)?;
        contacts.push(parse_contact(child)?);
    }
    Ok(Registration { aor, id, state, contacts })
}

fn parse_contact(element: &Element) -> Result<Contact, BodyError> {
    let id = required(PACKAGE, element, "contact", "id")?.trim().to_string();

    let state_value = required(PACKAGE, element, "contact", "state")?;
    let state = match state_value.trim() {
        "active" => ContactState::Active,
        "terminated" => ContactState::Terminated,
        other => {
            return Err(invalid("state", other, "active or terminated"));
        }
    };

    let event_value = required(PACKAGE, element, "contact", "event")?;
    let event = ContactEvent::parse(event_value.trim()).ok_or_else(|| {
        invalid(
            "event",
            event_value,
            "registered, created, refreshed, shortened, expired, deactivated, probation, unregistered or rejected",
        )
    })?;

    let uri = element
        .child(REGINFO_NS, "uri")
        .and_then(|u| non_empty(Some(u.trimmed_text())))
        .ok_or(BodyError::MissingElement { package: PACKAGE, element: "contact", child: "uri" })?;

    let expires = match element.attribute("expires").map(str::trim) {
        None | Some("") => None,
        Some(value) => Some(value.parse().map_err(|_| invalid("expires", value, "a number of seconds"))?),
    };
    let q = match element.attribute("q").map(str::trim) {
        None | Some("") => None,
        Some(value) => match value.parse::<f32>() {
            Ok(q) if (0.0..=1.0).contains(&q) => Some(q),
            _ => return Err(invalid("q", value, "a number from 0 to 1")),
        },
    };

    Ok(Contact {
        id,
        state,
        event,
        uri,
        display_name: element.child(REGINFO_NS, "display-name").and_then(|d| non_empty(Some(d.trimmed_text()))),
        expires,
        q,
    })
}

fn invalid(attribute: &'static str, value: &str, expected: &'static str) -> BodyError {
    BodyError::InvalidAttribute { package: PACKAGE, element: "contact", attribute, value: value.to_string(), expected }
}

// === impl ContactEvent ===

impl ContactEvent {
    /// Parses an RFC 3680 event name.
    pub fn parse(name: &str) -> Option<ContactEvent> {
        Some(match name {
            "registered" => ContactEvent::Registered,
            "created" => ContactEvent::Created,
            "refreshed" => ContactEvent::Refreshed,
            "shortened" => ContactEvent::Shortened,
            "expired" => ContactEvent::Expired,
            "deactivated" => ContactEvent::Deactivated,
            "probation" => ContactEvent::Probation,
            "unregistered" => ContactEvent::Unregistered,
            "rejected" => ContactEvent::Rejected,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContactEvent::Registered => "registered",
            ContactEvent::Created => "created",
            ContactEvent::Refreshed => "refreshed",
            ContactEvent::Shortened => "shortened",
            ContactEvent::Expired => "expired",
            ContactEvent::Deactivated => "deactivated",
            ContactEvent::Probation => "probation",
            ContactEvent::Unregistered => "unregistered",
            ContactEvent::Rejected => "rejected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">"#;

    fn parse(text: &str) -> Result<RegInfo, BodyError> {
        parse_reginfo(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn contact_without_event_is_rejected() {
        let body = format!(
            "{HEAD}<registration aor=\"sip:a@example.com\" id=\"r\" state=\"active\">\
             <contact id=\"c\" state=\"active\"><uri>sip:a@192.0.2.1</uri></contact></registration></reginfo>"
        );
        assert_eq!(parse(&body).unwrap_err().to_string(), "reginfo: <contact> without event attribute");
    }

    #[test]
    fn unknown_contact_event_is_rejected() {
        let body = format!(
            "{HEAD}<registration aor=\"sip:a@example.com\" id=\"r\" state=\"active\">\
             <contact id=\"c\" state=\"active\" event=\"vanished\"><uri>sip:a@192.0.2.1</uri></contact>\
             </registration></reginfo>"
        );
        assert!(matches!(parse(&body).unwrap_err(), BodyError::InvalidAttribute { attribute: "event", .. }));
    }

    #[test]
    fn registration_without_aor_is_rejected() {
        let body = format!("{HEAD}<registration id=\"r\" state=\"init\"/></reginfo>");
        assert_eq!(parse(&body).unwrap_err().to_string(), "reginfo: <registration> without aor attribute");
    }
}
