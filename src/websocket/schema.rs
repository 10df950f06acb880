//! Schema v1 of the WebSocket event feed: parsing inbound frames and
//! building outbound ones.
//!
//! Everything here is pure: text in, typed values or a [`SchemaError`] out,
//! with no I/O, no clock and no panics on any input. The nesting depth, the
//! text size, the batch length and every string field are bounded, so a
//! hostile frame costs at most one bounded parse. Connection handling, source
//! names and acknowledgement timing live in the sibling modules; the wire
//! format is described for platform engineers in `docs/ingest-websocket.md`.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::domain::{CallDirection, EventKind};

/// The only schema version this adapter speaks.
pub const SCHEMA_VERSION: u64 = 1;

/// Maximum nesting of JSON arrays and objects in one frame. A batch needs 3
/// (frame object, events array, event object); the rest is room for
/// extension fields that v1 ignores.
pub const MAX_NESTING_DEPTH: usize = 8;

/// Maximum number of events in one batch frame.
pub const MAX_BATCH_EVENTS: usize = 1_000;

/// Maximum length in bytes of `id`, `agent`, `call_id`, `code` and `source`.
pub const MAX_FIELD_BYTES: usize = 256;

/// Maximum length in bytes of a source name (`hello.source`, `?source=`).
pub const MAX_SOURCE_BYTES: usize = 64;

/// Maximum part of an offending value that is echoed back in a message.
const MAX_ECHO_CHARS: usize = 64;

/// Machine-readable reason in an error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The text is not JSON, or not a JSON object.
    InvalidJson,
    /// A field is missing, has the wrong type or an invalid value.
    InvalidField,
    /// `v` is not a version this adapter speaks.
    UnsupportedVersion,
    /// The frame, a batch or the nesting is over a limit.
    TooLarge,
    /// `type` names no inbound message type.
    UnknownType,
    /// The pipeline did not accept a well-formed event (for example an
    /// unknown agent).
    Rejected,
    /// A binary frame arrived; the schema uses text frames only.
    UnsupportedFrame,
}

/// Reason a frame or one event in it was not accepted. `Display` gives the
/// message that is sent to the platform.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct SchemaError {
    pub code: ErrorCode,
    /// Name of the offending field, when one field is to blame.
    pub field: Option<String>,
    /// Text naming the wrong value and how to fix it.
    pub message: String,
    /// Source event id, when the frame got far enough to show one.
    pub id: Option<String>,
}

/// One agent event as the platform sent it, validated but not yet tied to
/// a source or a receive time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireEvent {
    /// Source event id, unique per source: the dedupe and resume key.
    pub id: String,
    /// Optional per-feed sequence number for gap and duplicate detection.
    pub seq: Option<u64>,
    pub time: Timestamp,
    /// Agent id or platform id (for example `u-1017`).
    pub agent: String,
    pub kind: EventKind,
}

/// One unit of work found in an inbound frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Event(WireEvent),
    /// An element of a batch that failed validation; the other elements of
    /// the batch are still processed.
    InvalidEvent(SchemaError),
    /// Keep-alive that marks the source healthy. `time` is optional.
    Heartbeat {
        time: Option<Timestamp>,
    },
    /// Names the source a server-mode connection feeds.
    Hello {
        source: String,
    },
}

/// Status in an acknowledgement frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    Accepted,
    Duplicate,
}

#[derive(Serialize)]
struct AckFrame<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: &'a str,
}

#[derive(Serialize)]
struct ResumeFrame<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<&'a str>,
}

/// Parses one text frame into the events, heartbeats and hellos it holds.
///
/// Returns `Err` when the frame as a whole is unusable: over `max_bytes`,
/// nested too deeply, not a JSON object, a wrong `v`, an unknown `type`, or
/// a single-event frame whose event is invalid. An invalid element of a
/// batch becomes [`Inbound::InvalidEvent`] instead, so its neighbours are
/// still processed. Unknown fields are ignored, so that v1 producers may add
/// fields without breaking older consumers.
pub fn parse_frame(text: &str, max_bytes: usize) -> Result<Vec<Inbound>, SchemaError> {
    if text.len() > max_bytes {
        return Err(SchemaError::frame(
            ErrorCode::TooLarge,
            None,
            format!(
                "frame is {} bytes, more than the maximum of {max_bytes}; split it into smaller batches",
                text.len()
            ),
        ));
    }
    check_nesting(text)?;

    let value: Value = serde_json::from_str(text).map_err(|err| {
        SchemaError::frame(
            ErrorCode::InvalidJson,
            None,
            format!("invalid JSON: {err}; send one JSON object per text frame"),
        )
    })?;
    let Value::Object(frame) = value else {
        return Err(SchemaError::frame(
            ErrorCode::InvalidJson,
            None,
            format!("expected a JSON object, got {}; send one JSON object per text frame", json_type(&value)),
        ));
    };

    let id = frame.get("id").and_then(Value::as_str).map(|id| truncate(id, MAX_FIELD_BYTES));
    check_version(&frame, true).map_err(|err| err.with_id(id.clone()))?;

    let kind = match frame.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(other) => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "type",
                format!("type: expected a string, got {}; use one of event, batch, heartbeat, hello", json_type(other)),
            )
            .with_id(id));
        }
        None => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "type",
                "type: missing; use one of event, batch, heartbeat, hello".to_string(),
            )
            .with_id(id));
        }
    };

    match kind {
        "event" => parse_event(&frame).map(|event| vec![Inbound::Event(event)]),
        "batch" => parse_batch(&frame),
        "heartbeat" => parse_heartbeat(&frame),
        "hello" => parse_hello(&frame),
        other => Err(SchemaError::field(
            ErrorCode::UnknownType,
            "type",
            format!("type: unknown message type \"{}\"; use one of event, batch, heartbeat, hello", echo(other)),
        )
        .with_id(id)),
    }
}

/// Checks a source name from `hello` or `?source=`: 1 to 64 ASCII letters,
/// digits, `.`, `_` or `-`. Returns the message for the platform on failure.
pub fn validate_source_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("source: empty; name the feed, for example platform-main".to_string());
    }
    if name.len() > MAX_SOURCE_BYTES {
        return Err(format!("source: {} bytes long, more than the maximum of {MAX_SOURCE_BYTES}", name.len()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!(
            "source: \"{}\" contains {bad:?}; use only ASCII letters, digits, '.', '_' and '-'",
            echo(name)
        ));
    }
    Ok(())
}

/// Builds an acknowledgement frame.
pub fn ack_frame(id: &str, status: AckStatus) -> String {
    let status = match status {
        AckStatus::Accepted => "accepted",
        AckStatus::Duplicate => "duplicate",
    };
    let frame = AckFrame { v: SCHEMA_VERSION, kind: "ack", id, status };
    to_json(&frame)
}

/// Builds an error frame from a schema error.
pub fn error_frame(error: &SchemaError) -> String {
    let frame = ErrorFrame {
        v: SCHEMA_VERSION,
        kind: "error",
        id: error.id.as_deref(),
        code: error.code.as_str(),
        field: error.field.as_deref(),
        message: &error.message,
    };
    to_json(&frame)
}

/// Builds the resume frame a client sends after connecting. `after` is the
/// last acknowledged event id, or `None` on a first connect.
pub fn resume_frame(after: Option<&str>) -> String {
    let frame = ResumeFrame { v: SCHEMA_VERSION, kind: "resume", after };
    to_json(&frame)
}

fn to_json<T: Serialize>(frame: &T) -> String {
    // Serializing these structs of strings and integers cannot fail; the
    // fallback keeps the no-panic promise anyway.
    serde_json::to_string(frame).unwrap_or_else(|_| String::from("{\"v\":1,\"type\":\"error\"}"))
}

/// Rejects text whose arrays and objects nest deeper than
/// [`MAX_NESTING_DEPTH`], before serde_json spends its recursion on it.
fn check_nesting(text: &str) -> Result<(), SchemaError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;

    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING_DEPTH {
                    return Err(SchemaError::frame(
                        ErrorCode::TooLarge,
                        None,
                        format!(
                            "JSON nests deeper than the maximum of {MAX_NESTING_DEPTH} levels; flatten the message"
                        ),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Checks `v`. A batch element may leave it out (`required = false`).
fn check_version(object: &Map<String, Value>, required: bool) -> Result<(), SchemaError> {
    match object.get("v") {
        None if !required => Ok(()),
        None => {
            Err(SchemaError::field(ErrorCode::InvalidField, "v", format!("v: missing; set \"v\":{SCHEMA_VERSION}")))
        }
        Some(Value::Number(n)) if n.as_u64() == Some(SCHEMA_VERSION) => Ok(()),
        Some(Value::Number(n)) => Err(SchemaError::field(
            ErrorCode::UnsupportedVersion,
            "v",
            format!("v: schema version {n} is not supported; this server speaks version {SCHEMA_VERSION}"),
        )),
        Some(other) => Err(SchemaError::field(
            ErrorCode::InvalidField,
            "v",
            format!("v: expected an integer, got {}; set \"v\":{SCHEMA_VERSION}", json_type(other)),
        )),
    }
}

fn parse_batch(frame: &Map<String, Value>) -> Result<Vec<Inbound>, SchemaError> {
    let events = match frame.get("events") {
        Some(Value::Array(events)) => events,
        Some(other) => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "events",
                format!("events: expected an array of event objects, got {}", json_type(other)),
            ));
        }
        None => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "events",
                "events: missing; a batch carries its events in an array".to_string(),
            ));
        }
    };
    if events.len() > MAX_BATCH_EVENTS {
        return Err(SchemaError::field(
            ErrorCode::TooLarge,
            "events",
            format!(
                "events: batch holds {} events, more than the maximum of {MAX_BATCH_EVENTS}; split it",
                events.len()
            ),
        ));
    }

    let parsed = events
        .iter()
        .enumerate()
        .map(|(index, element)| match element {
            Value::Object(event) => match parse_batch_element(event) {
                Ok(event) => Inbound::Event(event),
                Err(err) => Inbound::InvalidEvent(err),
            },
            other => Inbound::InvalidEvent(SchemaError::field(
                ErrorCode::InvalidField,
                "events",
                format!("events[{index}]: expected an event object, got {}", json_type(other)),
            )),
        })
        .collect();
    Ok(parsed)
}

fn parse_batch_element(event: &Map<String, Value>) -> Result<WireEvent, SchemaError> {
    let id = event.get("id").and_then(Value::as_str).map(|id| truncate(id, MAX_FIELD_BYTES));
    check_version(event, false).map_err(|err| err.with_id(id.clone()))?;

    match event.get("type") {
        None => {}
        Some(Value::String(kind)) if kind == "event" => {}
        Some(other) => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "type",
                format!("type: a batch element must be of type \"event\" or leave type out, got {}", echo_value(other)),
            )
            .with_id(id));
        }
    }
    parse_event(event)
}

fn parse_event(event: &Map<String, Value>) -> Result<WireEvent, SchemaError> {
    let id = required_text(event, "id", "the source's unique event id, for example evt-000123")?;
    let with_id = |err: SchemaError| err.with_id(Some(id.clone()));

    let seq = match event.get("seq") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            return Err(with_id(SchemaError::field(
                ErrorCode::InvalidField,
                "seq",
                format!("seq: expected a non-negative integer, got {}", echo_value(other)),
            )));
        }
    };
    let time = required_time(event, "time").map_err(with_id)?;
    let agent = required_text(event, "agent", "the agent id or platform id, for example u-1017").map_err(with_id)?;
    let kind = parse_kind(event).map_err(with_id)?;

    Ok(WireEvent { id, seq, time, agent, kind })
}

fn parse_kind(event: &Map<String, Value>) -> Result<EventKind, SchemaError> {
    const KINDS: &str = "login, logout, state, call_ringing, call_start, call_hold, call_resume, call_end, device";

    let name = match event.get("event") {
        Some(Value::String(name)) => name.as_str(),
        Some(other) => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "event",
                format!("event: expected a string, got {}; use one of {KINDS}", json_type(other)),
            ));
        }
        None => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "event",
                format!("event: missing; use one of {KINDS}"),
            ));
        }
    };

    let kind = match name {
        "login" => EventKind::Login,
        "logout" => EventKind::Logout,
        "state" => {
            EventKind::State { code: required_text(event, "code", "the platform state code, for example Pauze")? }
        }
        "call_ringing" => EventKind::CallRinging { call_id: call_id(event)?, direction: direction(event)? },
        "call_start" => EventKind::CallStart { call_id: call_id(event)?, direction: direction(event)? },
        "call_hold" => EventKind::CallHold { call_id: call_id(event)? },
        "call_resume" => EventKind::CallResume { call_id: call_id(event)? },
        "call_end" => EventKind::CallEnd { call_id: call_id(event)? },
        "device" => EventKind::Device { registered: required_bool(event, "registered")? },
        other => {
            return Err(SchemaError::field(
                ErrorCode::InvalidField,
                "event",
                format!("event: unknown event \"{}\"; use one of {KINDS}", echo(other)),
            ));
        }
    };
    Ok(kind)
}

fn parse_heartbeat(frame: &Map<String, Value>) -> Result<Vec<Inbound>, SchemaError> {
    let time = match frame.get("time") {
        None | Some(Value::Null) => None,
        Some(_) => Some(required_time(frame, "time")?),
    };
    Ok(vec![Inbound::Heartbeat { time }])
}

fn parse_hello(frame: &Map<String, Value>) -> Result<Vec<Inbound>, SchemaError> {
    let source = required_text(frame, "source", "the feed name, for example platform-main")?;
    validate_source_name(&source).map_err(|message| SchemaError::field(ErrorCode::InvalidField, "source", message))?;
    Ok(vec![Inbound::Hello { source }])
}

fn call_id(event: &Map<String, Value>) -> Result<String, SchemaError> {
    required_text(event, "call_id", "the platform's call id")
}

fn direction(event: &Map<String, Value>) -> Result<CallDirection, SchemaError> {
    match event.get("direction") {
        Some(Value::String(d)) if d == "inbound" => Ok(CallDirection::Inbound),
        Some(Value::String(d)) if d == "outbound" => Ok(CallDirection::Outbound),
        Some(other) => Err(SchemaError::field(
            ErrorCode::InvalidField,
            "direction",
            format!("direction: expected \"inbound\" or \"outbound\", got {}", echo_value(other)),
        )),
        None => Err(SchemaError::field(
            ErrorCode::InvalidField,
            "direction",
            "direction: missing; use \"inbound\" or \"outbound\"".to_string(),
        )),
    }
}

/// Reads a non-empty string field of at most [`MAX_FIELD_BYTES`]. `hint`
/// describes the expected value in the error message.
fn required_text(object: &Map<String, Value>, field: &str, hint: &str) -> Result<String, SchemaError> {
    match object.get(field) {
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(SchemaError::field(ErrorCode::InvalidField, field, format!("{field}: empty; expected {hint}")))
        }
        Some(Value::String(text)) if text.len() > MAX_FIELD_BYTES => Err(SchemaError::field(
            ErrorCode::InvalidField,
            field,
            format!("{field}: {} bytes long, more than the maximum of {MAX_FIELD_BYTES}", text.len()),
        )),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(SchemaError::field(
            ErrorCode::InvalidField,
            field,
            format!("{field}: expected a string, got {}; expected {hint}", json_type(other)),
        )),
        None => Err(SchemaError::field(ErrorCode::InvalidField, field, format!("{field}: missing; expected {hint}"))),
    }
}

fn required_time(object: &Map<String, Value>, field: &str) -> Result<Timestamp, SchemaError> {
    const EXAMPLE: &str = "use e.g. 2026-12-04T09:00:00Z";

    match object.get(field) {
        Some(Value::String(text)) => text.parse::<Timestamp>().map_err(|_| {
            SchemaError::field(
                ErrorCode::InvalidField,
                field,
                format!("{field}: invalid RFC 3339 timestamp \"{}\"; {EXAMPLE}", echo(text)),
            )
        }),
        Some(other) => Err(SchemaError::field(
            ErrorCode::InvalidField,
            field,
            format!("{field}: expected an RFC 3339 timestamp string, got {}; {EXAMPLE}", json_type(other)),
        )),
        None => Err(SchemaError::field(ErrorCode::InvalidField, field, format!("{field}: missing; {EXAMPLE}"))),
    }
}

fn required_bool(object: &Map<String, Value>, field: &str) -> Result<bool, SchemaError> {
    match object.get(field) {
        Some(Value::Bool(value)) => Ok(*value),
        Some(other) => Err(SchemaError::field(
            ErrorCode::InvalidField,
            field,
            format!("{field}: expected true or false, got {}", echo_value(other)),
        )),
        None => {
            Err(SchemaError::field(ErrorCode::InvalidField, field, format!("{field}: missing; expected true or false")))
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Shows a scalar value in a message, or its JSON type for arrays and
/// objects.
fn echo_value(value: &Value) -> String {
    match value {
        Value::String(text) => format!("\"{}\"", echo(text)),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => json_type(other).to_string(),
    }
}

/// Cuts a value echoed in a message to [`MAX_ECHO_CHARS`] characters and
/// escapes quotes and control characters.
fn echo(text: &str) -> String {
    let mut shown: String = text.chars().take(MAX_ECHO_CHARS).flat_map(char::escape_default).collect();
    if text.chars().count() > MAX_ECHO_CHARS {
        shown.push('…');
    }
    shown
}

/// Cuts an id to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

// === impl ErrorCode ===

impl ErrorCode {
    /// Returns the name used in the `code` field of an error frame.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Rejected => "rejected",
            ErrorCode::UnsupportedFrame => "unsupported_frame",
        }
    }
}

// === impl SchemaError ===

impl SchemaError {
    /// Creates an error about the frame as a whole.
    pub fn frame(code: ErrorCode, field: Option<&str>, message: String) -> SchemaError {
        SchemaError { code, field: field.map(str::to_string), message, id: None }
    }

    /// Creates an error about one field.
    pub fn field(code: ErrorCode, field: &str, message: String) -> SchemaError {
        SchemaError { code, field: Some(field.to_string()), message, id: None }
    }

    /// Attaches the source event id, unless one is already set.
    pub fn with_id(mut self, id: Option<String>) -> SchemaError {
        if self.id.is_none() {
            self.id = id;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 * 1024;

    fn event_json(extra: &str) -> String {
        format!(
            r#"{{"v":1,"type":"event","id":"evt-000123","seq":123,"time":"2026-12-04T09:00:00.123Z","agent":"u-1017"{extra}}}"#
        )
    }

    fn parse_one(text: &str) -> Result<Inbound, SchemaError> {
        let mut items = parse_frame(text, MAX)?;
        assert_eq!(items.len(), 1, "one item per event frame");
        Ok(items.remove(0))
    }

    fn kind_of(extra: &str) -> Result<EventKind, SchemaError> {
        match parse_one(&event_json(extra))? {
            Inbound::Event(event) => Ok(event.kind),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn event_login_parses_every_field() {
        let Ok(Inbound::Event(event)) = parse_one(&event_json(r#","event":"login""#)) else {
            panic!("login must parse");
        };
        assert_eq!(event.id, "evt-000123");
        assert_eq!(event.seq, Some(123));
        assert_eq!(event.agent, "u-1017");
        assert_eq!(event.time, "2026-12-04T09:00:00.123Z".parse::<Timestamp>().unwrap());
        assert_eq!(event.kind, EventKind::Login);
    }

    #[test]
    fn event_kinds_map_to_domain() {
        let cases = [
            (r#","event":"logout""#, EventKind::Logout),
            (r#","event":"state","code":"Pauze""#, EventKind::State { code: "Pauze".into() }),
            (
                r#","event":"call_ringing","call_id":"c-1","direction":"inbound""#,
                EventKind::CallRinging { call_id: "c-1".into(), direction: CallDirection::Inbound },
            ),
            (
                r#","event":"call_start","call_id":"c-1","direction":"outbound""#,
                EventKind::CallStart { call_id: "c-1".into(), direction: CallDirection::Outbound },
            ),
            (r#","event":"call_hold","call_id":"c-1""#, EventKind::CallHold { call_id: "c-1".into() }),
            (r#","event":"call_resume","call_id":"c-1""#, EventKind::CallResume { call_id: "c-1".into() }),
            (r#","event":"call_end","call_id":"c-1""#, EventKind::CallEnd { call_id: "c-1".into() }),
            (r#","event":"device","registered":false"#, EventKind::Device { registered: false }),
        ];
        for (extra, expected) in cases {
            assert_eq!(kind_of(extra), Ok(expected), "{extra}");
        }
    }

    #[test]
    fn event_without_seq_parses() {
        let text = r#"{"v":1,"type":"event","id":"e1","time":"2026-12-04T09:00:00Z","agent":"a-1","event":"login"}"#;
        let Ok(Inbound::Event(event)) = parse_one(text) else { panic!("must parse") };
        assert_eq!(event.seq, None);
    }

    #[test]
    fn bad_time_names_field_and_value() {
        let text = r#"{"v":1,"type":"event","id":"e1","time":"yesterday","agent":"a-1","event":"login"}"#;
        let err = parse_one(text).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidField);
        assert_eq!(err.field.as_deref(), Some("time"));
        assert_eq!(err.id.as_deref(), Some("e1"));
        assert_eq!(err.message, "time: invalid RFC 3339 timestamp \"yesterday\"; use e.g. 2026-12-04T09:00:00Z");
    }

    #[test]
    fn missing_agent_is_invalid_field() {
        let text = r#"{"v":1,"type":"event","id":"e1","time":"2026-12-04T09:00:00Z","event":"login"}"#;
        let err = parse_one(text).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidField);
        assert_eq!(err.field.as_deref(), Some("agent"));
    }

    #[test]
    fn missing_id_has_no_id() {
        let text = r#"{"v":1,"type":"event","time":"2026-12-04T09:00:00Z","agent":"a-1","event":"login"}"#;
        let err = parse_one(text).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("id"));
        assert_eq!(err.id, None);
    }

    #[test]
    fn unknown_event_is_invalid_field() {
        let err = kind_of(r#","event":"teleport""#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidField);
        assert_eq!(err.field.as_deref(), Some("event"));
    }

    #[test]
    fn call_start_needs_direction() {
        let err = kind_of(r#","event":"call_start","call_id":"c-1""#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("direction"));
    }

    #[test]
    fn state_needs_code() {
        let err = kind_of(r#","event":"state","code":"""#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("code"));
    }

    #[test]
    fn device_needs_bool() {
        let err = kind_of(r#","event":"device","registered":"yes""#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("registered"));
    }

    #[test]
    fn negative_seq_is_invalid() {
        let text =
            r#"{"v":1,"type":"event","id":"e1","seq":-1,"time":"2026-12-04T09:00:00Z","agent":"a","event":"login"}"#;
        let err = parse_one(text).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("seq"));
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        let err = parse_frame("{\"v\":1,", MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn non_object_is_invalid_json() {
        let err = parse_frame("[1,2]", MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn version_two_is_unsupported() {
        let err = parse_frame(r#"{"v":2,"type":"heartbeat"}"#, MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedVersion);
    }

    #[test]
    fn missing_version_is_invalid_field() {
        let err = parse_frame(r#"{"type":"heartbeat"}"#, MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidField);
        assert_eq!(err.field.as_deref(), Some("v"));
    }

    #[test]
    fn unknown_type_keeps_id() {
        let err = parse_frame(r#"{"v":1,"type":"ack","id":"e9"}"#, MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownType);
        assert_eq!(err.id.as_deref(), Some("e9"));
    }

    #[test]
    fn oversized_text_is_too_large() {
        let err = parse_frame(&event_json(r#","event":"login""#), 16).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooLarge);
    }

    #[test]
    fn deep_nesting_is_too_large() {
        let text = format!(r#"{{"v":1,"type":"heartbeat","x":{}{}}}"#, "[".repeat(20), "]".repeat(20));
        let err = parse_frame(&text, MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooLarge);
    }

    #[test]
    fn brackets_inside_strings_do_not_nest() {
        let text = format!(r#"{{"v":1,"type":"heartbeat","x":"{}"}}"#, "[{".repeat(20));
        assert!(parse_frame(&text, MAX).is_ok());
    }

    #[test]
    fn batch_keeps_valid_neighbours() {
        let text = r#"{"v":1,"type":"batch","events":[
            {"id":"e1","time":"2026-12-04T09:00:00Z","agent":"a-1","event":"login"},
            {"id":"e2","time":"later","agent":"a-1","event":"logout"},
            7,
            {"v":1,"type":"event","id":"e3","time":"2026-12-04T09:00:02Z","agent":"a-1","event":"logout"}
        ]}"#;
        let items = parse_frame(text, MAX).unwrap();
        assert_eq!(items.len(), 4);
        assert!(matches!(&items[0], Inbound::Event(e) if e.id == "e1"));
        assert!(matches!(&items[1], Inbound::InvalidEvent(e) if e.id.as_deref() == Some("e2")));
        assert!(matches!(&items[2], Inbound::InvalidEvent(e) if e.id.is_none()));
        assert!(matches!(&items[3], Inbound::Event(e) if e.id == "e3"));
    }

    #[test]
    fn batch_over_limit_is_too_large() {
        let element = r#"{"id":"e","time":"2026-12-04T09:00:00Z","agent":"a","event":"login"}"#;
        let events = vec![element; MAX_BATCH_EVENTS + 1].join(",");
        let text = format!(r#"{{"v":1,"type":"batch","events":[{events}]}}"#);
        let err = parse_frame(&text, usize::MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooLarge);
    }

    #[test]
    fn heartbeat_time_is_optional() {
        let items = parse_frame(r#"{"v":1,"type":"heartbeat"}"#, MAX).unwrap();
        assert_eq!(items, vec![Inbound::Heartbeat { time: None }]);
    }

    #[test]
    fn hello_validates_source_name() {
        let err = parse_frame(r#"{"v":1,"type":"hello","source":"main feed"}"#, MAX).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("source"));
    }

    #[test]
    fn hello_names_source() {
        let items = parse_frame(r#"{"v":1,"type":"hello","source":"platform-main"}"#, MAX).unwrap();
        assert_eq!(items, vec![Inbound::Hello { source: "platform-main".into() }]);
    }

    #[test]
    fn ack_frame_has_status() {
        let ack = ack_frame("evt-1", AckStatus::Duplicate);
        assert_eq!(ack, r#"{"v":1,"type":"ack","id":"evt-1","status":"duplicate"}"#);
    }

    #[test]
    fn error_frame_omits_unknown_id() {
        let err = SchemaError::frame(ErrorCode::InvalidJson, None, "bad".into());
        assert_eq!(error_frame(&err), r#"{"v":1,"type":"error","code":"invalid_json","message":"bad"}"#);
    }

    #[test]
    fn resume_frame_omits_after_on_first_connect() {
        assert_eq!(resume_frame(None), r#"{"v":1,"type":"resume"}"#);
        assert_eq!(resume_frame(Some("e7")), r#"{"v":1,"type":"resume","after":"e7"}"#);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix of a valid batch plus
        // some mangled variants must return, not panic.
        let text = r#"{"v":1,"type":"batch","events":[{"id":"é\"1","time":"2026-12-04T09:00:00Z","agent":"a","event":"state","code":"x"}]}"#;
        for end in (0..=text.len()).filter(|&end| text.is_char_boundary(end)) {
            let _ = parse_frame(&text[..end], MAX);
        }
        for mangled in [text.replace('"', "'"), text.replace(':', ""), text.replace('}', "]"), "\u{0}".repeat(9)] {
            let _ = parse_frame(&mangled, MAX);
        }
    }
}
