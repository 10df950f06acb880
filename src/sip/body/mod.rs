//! Parsers for the NOTIFY bodies of the three event packages floorwatch
//! watches: `dialog` (dialog-info, RFC 4235), `presence` (PIDF, RFC 3863,
//! with RPID, RFC 4480, and the data model, RFC 4479) and `reg` (reginfo,
//! RFC 3680).
//!
//! Each parser takes the raw body bytes and [`Limits`] and returns a typed
//! document or a [`BodyError`] that names what is wrong. Parsing is
//! namespace-aware: names are compared by namespace URI, so any prefix (or
//! none) works, and elements or attributes from unknown namespaces are
//! ignored. The parsers never panic on any input. They do not keep state:
//! merging versions and partial documents is [`crate::sip::agent_state`]'s job.

mod dialog_info;
mod pidf;
mod reginfo;
mod xml;

use std::fmt;

use thiserror::Error;

pub use dialog_info::{
    Dialog, DialogDirection, DialogInfo, DialogPhase, DialogStatus, Participant, Rendering, parse_dialog_info,
};
pub use pidf::{Activities, Activity, BasicStatus, Device, Note, Person, Presence, Tuple, parse_pidf};
pub use reginfo::{Contact, ContactEvent, ContactState, RegInfo, Registration, RegistrationState, parse_reginfo};

/// The body format a document or an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Package {
    /// `application/dialog-info+xml` of the `dialog` event package.
    DialogInfo,
    /// `application/pidf+xml` of the `presence` event package.
    Pidf,
    /// `application/reginfo+xml` of the `reg` event package.
    RegInfo,
}

/// Bounds on what one body may contain; a body beyond any of them is
/// rejected whole with [`BodyError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deepest element nesting accepted; the root element is depth 1.
    pub max_depth: usize,
    /// Most `<dialog>`, `<tuple>` (and person and device), or `<contact>`
    /// (and `<registration>`) elements in one body.
    pub max_items: usize,
}

/// Whether a versioned document carries the whole state or only changes
/// (`state="full"` or `state="partial"` on the root element).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentState {
    Full,
    Partial,
}

/// Reason a body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error(
        "{package}: body is {size} bytes, more than the limit of {limit} bytes; raise the body size limit or fix the sender"
    )]
    TooLarge { package: Package, size: usize, limit: usize },

    #[error("{package}: elements nest deeper than the limit of {limit} levels")]
    TooDeep { package: Package, limit: usize },

    #[error("{package}: more than the limit of {limit} <{element}> elements in one body")]
    TooManyItems { package: Package, element: &'static str, limit: usize },

    #[error("{package}: body is not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 { package: Package, offset: usize },

    #[error("{package}: malformed XML near byte {position}: {message}")]
    Malformed { package: Package, position: u64, message: String },

    #[error("{package}: body contains no root element")]
    Empty { package: Package },

    #[error(
        "{package}: root element is <{found}> in namespace {found_ns:?}, expected <{expected}> in namespace {expected_ns}"
    )]
    WrongRoot {
        package: Package,
        found: String,
        found_ns: Option<String>,
        expected: &'static str,
        expected_ns: &'static str,
    },

    #[error("{package}: <{element}> without {attribute} attribute")]
    MissingAttribute { package: Package, element: &'static str, attribute: &'static str },

    #[error("{package}: <{element}> has invalid {attribute} {value:?}; expected {expected}")]
    InvalidAttribute {
        package: Package,
        element: &'static str,
        attribute: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("{package}: <{element}> without a <{child}> child")]
    MissingElement { package: Package, element: &'static str, child: &'static str },

    #[error("{package}: <{element}> has invalid content {value:?}; expected {expected}")]
    InvalidText { package: Package, element: &'static str, value: String, expected: &'static str },
}

// === impl Package ===

impl Package {
    pub fn as_str(self) -> &'static str {
        match self {
            Package::DialogInfo => "dialog-info",
            Package::Pidf => "pidf",
            Package::RegInfo => "reginfo",
        }
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Limits ===

impl Default for Limits {
    /// 64 KiB, 32 levels and 256 items: far above what a PBX sends for one
    /// agent (a few hundred bytes, depth 6, a handful of dialogs), and small
    /// enough that a hostile body costs little to reject.
    fn default() -> Self {
        Limits { max_body_bytes: 64 * 1024, max_depth: 32, max_items: 256 }
    }
}

// === shared attribute helpers ===

/// Returns the required unprefixed attribute `attribute` of `element`.
fn required<'a>(
    package: Package,
    element: &'a xml::Element,
    tag: &'static str,
    attribute: &'static str,
) -> Result<&'a str, BodyError> {
    element.attribute(attribute).ok_or(BodyError::MissingAttribute { package, element: tag, attribute })
}

/// Parses the `version` attribute of a root element (xs:nonNegativeInteger).
fn parse_version(package: Package, root: &xml::Element, tag: &'static str) -> Result<u64, BodyError> {
    let value = required(package, root, tag, "version")?;
    value.trim().parse().map_err(|_| BodyError::InvalidAttribute {
        package,
        element: tag,
        attribute: "version",
        value: value.to_string(),
        expected: "a non-negative integer",
    })
}

/// Parses the `state` attribute of a root element (`full` or `partial`).
fn parse_document_state(package: Package, root: &xml::Element, tag: &'static str) -> Result<DocumentState, BodyError> {
    let value = required(package, root, tag, "state")?;
    match value.trim() {
        "full" => Ok(DocumentState::Full),
        "partial" => Ok(DocumentState::Partial),
        _ => Err(BodyError::InvalidAttribute {
            package,
            element: tag,
            attribute: "state",
            value: value.to_string(),
            expected: "full or partial",
        }),
    }
}

/// Checks the root element's name and namespace.
fn expect_root(
    package: Package,
    root: &xml::Element,
    expected_ns: &'static str,
    expected: &'static str,
) -> Result<(), BodyError> {
    if root.is(expected_ns, expected) {
        return Ok(());
    }
    Err(BodyError::WrongRoot {
        package,
        found: root.name.clone(),
        found_ns: root.ns.as_deref().map(str::to_owned),
        expected,
        expected_ns,
    })
}

/// Fails when `count` exceeds the item limit.
fn check_count(package: Package, element: &'static str, count: usize, limits: &Limits) -> Result<(), BodyError> {
    if count > limits.max_items {
        return Err(BodyError::TooManyItems { package, element, limit: limits.max_items });
    }
    Ok(())
}

/// Returns `Some(text)` for an attribute or element text that is present
/// and not blank.
fn non_empty(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}
