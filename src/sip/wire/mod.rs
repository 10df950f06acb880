//! Receive-path validation: decides, for each incoming SIP message, whether
//! to process it, to respond with an error status, or to drop it.
//!
//! [`inspect`] takes one UDP datagram or one message framed from a stream by
//! [`frame_stream`]. It checks size limits, framing, the start line, the
//! mandatory header fields and their syntax (RFC 3261 §8.2 and §25), then,
//! for requests, the method, Request-URI scheme, `Require` option tags and,
//! for NOTIFY, the body type. It hands messages that pass to the stack as an
//! `rsipstack` [`SipMessage`], parsed from a normalized copy (compact names
//! expanded, folded lines joined).
//!
//! A bad request gets an error response when it carries a usable top Via
//! and a CSeq, because the client matches a response to its transaction by
//! those two (RFC 3261 §17.1.3). Anything else is dropped: bad responses
//! (RFC 4475 §3.1.2.5 discards them), ACKs (which get no response) and
//! garbage.
//!
//! This module does no I/O and no logging: the caller sends the response,
//! logs `log_reason` rate-limited and counts the outcome. [`SourceFilter`]
//! decides which peers may send requests at all.

mod framing;
mod grammar;
mod scan;
mod source_filter;
mod validate;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use rsipstack::sip::SipMessage;

pub use framing::{Framing, frame_stream};
pub use source_filter::{SourceFilter, SourceFilterError};

/// Methods this watcher processes. Every other method RFC 3261 or an
/// extension defines gets a 405 response with this list in `Allow`.
pub const ALLOWED_METHODS: &[&str] = &["NOTIFY", "OPTIONS"];

/// NOTIFY body types the event-package parsers in [`crate::sip::body`]
/// read; any other type gets a 415 response with this list in `Accept`.
pub const ACCEPTED_BODY_TYPES: &[&str] =
    &["application/dialog-info+xml", "application/pidf+xml", "application/reginfo+xml"];

/// Option tags this watcher supports in `Require`. None so far: RFC 6665
/// notifications need no extension, so every required tag gets a 420.
pub const SUPPORTED_OPTION_TAGS: &[&str] = &[];

/// The transport a message arrived on; it decides how a short body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram: a Content-Length beyond the datagram is an
    /// error (400), bytes after the body are ignored (RFC 3261 §18.3).
    Udp,
    /// Messages framed by [`frame_stream`]: a short body means the stream
    /// ended mid-message, so the message is dropped.
    Tcp,
}

/// Size limits for received messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireLimits {
    /// Largest accepted message, start line to end of body, in bytes.
    pub max_message_bytes: usize,
    /// Largest accepted body in bytes.
    pub max_body_bytes: usize,
}

/// The outcome of inspecting one received message.
#[derive(Debug)]
pub enum Verdict {
    /// Hand the message to the SIP stack.
    Process(Box<Accepted>),
    /// Send this error response to the request and go no further.
    Respond(Box<Rejection>),
    /// Discard the message without a response.
    Drop { log_reason: String },
}

/// A message that passed every check.
#[derive(Debug)]
pub struct Accepted {
    /// The message as the stack parsed it from the normalized copy.
    pub message: SipMessage,
    /// Bytes from the start of the input to the end of the body.
    pub frame_len: usize,
    /// Bytes after the body that were ignored (UDP only).
    pub trailing_bytes: usize,
}

/// An error response to a request, with the fields it copies from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
    /// Header fields the status requires, such as `Allow` with 405,
    /// `Unsupported` with 420 or `Accept` with 415.
    pub extra_headers: Vec<(&'static str, String)>,
    /// Description of the problem for a log line; it may quote shortened input.
    pub log_reason: String,
    pub echo: Echo,
}

/// The request fields a response copies (RFC 3261 §8.2.6.2). Only the top
/// Via and CSeq are sure to be present; a missing field is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// Every Via value in order, unfolded.
    pub vias: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Whether `to` lacks a tag and parses well enough to append one.
    pub to_needs_tag: bool,
    pub call_id: Option<String>,
    pub cseq: String,
    /// The request method, as written in the start line.
    pub method: String,
}

// === impl WireLimits ===

impl Default for WireLimits {
    /// 65,535 bytes is the largest UDP payload and the largest message
    /// rsipstack's stream codec accepts. The 32 KiB body limit is an
    /// estimate with headroom: a full-state dialog-info or PIDF document for
    /// one agent is a few KiB.
    fn default() -> Self {
        Self { max_message_bytes: 65_535, max_body_bytes: 32_768 }
    }
}

// === impl Rejection ===

impl Rejection {
    /// Serializes the response, adding `to_tag` to a To without a tag
    /// (RFC 3261 §8.2.6.2). The caller sends it to the request's source.
    pub fn to_response_bytes(&self, to_tag: &str) -> Vec<u8> {
        let mut text = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        for via in &self.echo.vias {
            text.push_str(&format!("Via: {via}\r\n"));
        }
        if let Some(from) = &self.echo.from {
            text.push_str(&format!("From: {from}\r\n"));
        }
        if let Some(to) = &self.echo.to {
            if self.echo.to_needs_tag {
                text.push_str(&format!("To: {to};tag={to_tag}\r\n"));
            } else {
                text.push_str(&format!("To: {to}\r\n"));
            }
        }
        if let Some(call_id) = &self.echo.call_id {
            text.push_str(&format!("Call-ID: {call_id}\r\n"));
        }
        text.push_str(&format!("CSeq: {}\r\n", self.echo.cseq));
        for (name, value) in &self.extra_headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        text.into_bytes()
    }
}

// === impl Verdict ===

impl Verdict {
    /// Returns the response status, or `None` for Process and Drop.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Respond(rejection) => Some(rejection.status),
            Self::Process(_) | Self::Drop { .. } => None,
        }
    }
}

/// Inspects one message. `data` is one UDP datagram (trailing bytes after
/// the body are ignored) or one frame from [`frame_stream`].
pub fn inspect(data: &[u8], transport: Transport, limits: &WireLimits) -> Verdict {
    validate::inspect(data, transport, limits)
}

/// Inspects one message from `source`. A request from a source `filter`
/// does not allow gets a 403 response without further checks, and a response
/// from one is dropped; the caller logs both rate-limited.
pub fn inspect_from(
    source: IpAddr,
    filter: &SourceFilter,
    data: &[u8],
    transport: Transport,
    limits: &WireLimits,
) -> Verdict {
    if filter.allows(source) {
        return inspect(data, transport, limits);
    }
    validate::forbid(source, data, limits)
}
