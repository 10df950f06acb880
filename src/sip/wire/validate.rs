//! The checks behind [`super::inspect`], in the order RFC 3261 §8.2 gives
//! them: syntax (400) first, then method (405/501), Request-URI scheme
//! (416), extensions (420) and content (415).

use std::net::IpAddr;

use super::grammar::{self, Invalid};
use super::scan::{self, Scanned, clip};
use super::{
    ACCEPTED_BODY_TYPES, ALLOWED_METHODS, Accepted, Echo, Rejection, SUPPORTED_OPTION_TAGS, Transport, Verdict,
    WireLimits,
};

/// Methods defined by RFC 3261 or a SIP extension. A request with one of
/// these that the watcher does not process gets 405, any other method 501
/// (RFC 3261 §8.2.1 and §21.5.2).
const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Header fields that may appear at most once (RFC 3261 §7.3.1 and §20,
/// RFC 6665 for Event and Subscription-State).
const SINGLE_FIELDS: &[&str] =
    &["call-id", "cseq", "from", "to", "max-forwards", "content-type", "expires", "event", "subscription-state"];

/// Header fields every request and response must carry (RFC 3261 §8.1.1).
const MANDATORY_FIELDS: &[(&str, &str)] = &[
    ("via", "Missing Via header field"),
    ("call-id", "Missing Call-ID header field"),
    ("from", "Missing From header field"),
    ("to", "Missing To header field"),
    ("cseq", "Missing CSeq header field"),
];

/// The largest CSeq number outside a dialog: RFC 3261 §8.1.1.5 keeps the
/// first number of a call below 2**31.
const MAX_INITIAL_CSEQ: u64 = (1 << 31) - 1;

/// The largest CSeq number inside a dialog and in responses: RFC 3261
/// erratum 3102 lets a dialog count on to 2**32 - 1 without wrapping.
const MAX_DIALOG_CSEQ: u64 = u32::MAX as u64;

/// The largest Expires value, 2**32 - 1 (RFC 3261 §20.19).
const MAX_EXPIRES: u64 = u32::MAX as u64;

/// The largest Max-Forwards value (RFC 3261 §20.22).
const MAX_MAX_FORWARDS: u64 = 255;

/// The status of a [`Failure`] that gets no response because a stream
/// ended mid-message.
const INCOMPLETE: u16 = 0;

/// Why a message failed a check: the status to respond to a request with, the
/// reason phrase, extra header fields and a log detail.
struct Failure {
    status: u16,
    reason: &'static str,
    extra_headers: Vec<(&'static str, String)>,
    log_reason: String,
}

/// The start line of a request, split on single spaces.
struct RequestLine<'a> {
    method: &'a str,
    uri: &'a str,
    version: &'a str,
}

/// The body located by Content-Length.
struct Body {
    start: usize,
    len: usize,
}

pub(super) fn inspect(data: &[u8], transport: Transport, limits: &WireLimits) -> Verdict {
    // Scanning is bounded by the limit; an oversized request is still
    // gets a 513 response if its first bytes carry a Via and a CSeq.
    let oversized = data.len() > limits.max_message_bytes;
    let window = &data[..data.len().min(limits.max_message_bytes)];
    let scanned = scan::scan(window);

    if scanned.start_line.is_empty() {
        return Verdict::Drop { log_reason: "empty message".to_string() };
    }

    if scanned.is_response() {
        return match check_response(&scanned, data, transport, limits, oversized) {
            Ok(body) => accept(&scanned, data, &body),
            Err(log_reason) => Verdict::Drop { log_reason: format!("invalid response: {log_reason}") },
        };
    }

    let echo = match answer_fields(&scanned) {
        Ok(echo) => echo,
        Err(log_reason) => {
            return Verdict::Drop { log_reason: format!("unanswerable request: {log_reason}") };
        }
    };

    let outcome = if oversized {
        Err(Failure::new(
            513,
            "Message Too Large",
            format!("message of {} bytes exceeds the {}-byte limit", data.len(), limits.max_message_bytes),
        ))
    } else {
        check_request(&scanned, data, transport, limits)
    };

    match outcome {
        Ok(body) => accept(&scanned, data, &body),
        // An ACK never gets a response (RFC 3261 §17).
        Err(failure) if echo.method == "ACK" => {
            Verdict::Drop { log_reason: format!("ACK not processed: {}", failure.log_reason) }
        }
        // A stream that ended mid-body cannot carry a response.
        Err(failure) if failure.status == INCOMPLETE => Verdict::Drop { log_reason: failure.log_reason },
        Err(failure) => Verdict::Respond(Box::new(Rejection {
            status: failure.status,
            reason: failure.reason,
            extra_headers: failure.extra_headers,
            log_reason: failure.log_reason,
            echo,
        })),
    }
}

/// Responds 403 to a request from a source that is not allowed, without
/// checking it further; drops anything that cannot get a response.
pub(super) fn forbid(source: IpAddr, data: &[u8], limits: &WireLimits) -> Verdict {
    let window = &data[..data.len().min(limits.max_message_bytes)];
    let scanned = scan::scan(window);
    let log_reason = format!("source {source} is not in the allowed networks");

    if scanned.start_line.is_empty() || scanned.is_response() {
        return Verdict::Drop { log_reason };
    }
    match answer_fields(&scanned) {
        Ok(echo) if echo.method != "ACK" => Verdict::Respond(Box::new(Rejection {
            status: 403,
            reason: "Forbidden",
            extra_headers: Vec::new(),
            log_reason,
            echo,
        })),
        Ok(_) | Err(_) => Verdict::Drop { log_reason },
    }
}

/// Collects the fields a response copies; fails without a usable top Via or CSeq.
/// A value holding a bare CR or LF is never copied, because it would split
/// the response's header section.
fn answer_fields(scanned: &Scanned) -> Result<Echo, String> {
    let method = scanned.start_line.split([' ', '\t']).next().unwrap_or_default().to_string();
    let copyable = |value: &&str| !value.contains(['\r', '\n']);

    let top_via = scanned.first("via").ok_or("no Via header field")?;
    grammar::check_top_via(top_via).map_err(|problem| format!("top Via {:?}: {problem}", clip(top_via)))?;
    let vias: Vec<String> = scanned.values("via").map(str::to_string).collect();
    if !vias.iter().all(|via| copyable(&via.as_str())) {
        return Err("a Via header field contains a bare CR or LF".to_string());
    }

    let cseq = scanned.first("cseq").ok_or("no CSeq header field")?;
    grammar::split_cseq(cseq).ok_or_else(|| format!("CSeq {:?} has no method", clip(cseq)))?;
    if !copyable(&cseq) {
        return Err("the CSeq header field contains a bare CR or LF".to_string());
    }

    let to = scanned.first("to").filter(copyable).map(str::to_string);
    let to_needs_tag = to.as_deref().and_then(|to| grammar::check_from_to(to).ok()).is_some_and(|facts| !facts.has_tag);

    Ok(Echo {
        vias,
        from: scanned.first("from").filter(copyable).map(str::to_string),
        to,
        to_needs_tag,
        call_id: scanned.first("call-id").filter(copyable).map(str::to_string),
        cseq: cseq.to_string(),
        method,
    })
}

fn check_request(scanned: &Scanned, data: &[u8], transport: Transport, limits: &WireLimits) -> Result<Body, Failure> {
    let line = split_request_line(&scanned.start_line)?;
    check_version(line.version)?;

    if let Some((summary, detail)) = &scanned.problem {
        return Err(Failure::bad(summary, detail.clone()));
    }

    let body = locate_body(scanned, data, transport)?;
    if body.len > limits.max_body_bytes {
        return Err(Failure::new(
            513,
            "Message Too Large",
            format!("body of {} bytes exceeds the {}-byte limit", body.len, limits.max_body_bytes),
        ));
    }

    check_common_fields(scanned).map_err(|(summary, detail)| Failure::bad(summary, detail))?;
    check_request_fields(scanned, &line, body.len)?;

    check_method(line.method)?;
    check_uri_scheme(line.uri)?;
    check_require(scanned)?;
    if line.method == "NOTIFY" {
        check_content(scanned, body.len)?;
    }
    Ok(body)
}

/// Splits `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1); extra,
/// missing or tab separators are a 400.
fn split_request_line(line: &str) -> Result<RequestLine<'_>, Failure> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Err(Failure::bad(
            "Malformed Request-Line",
            format!("Request-Line {:?} is not three parts separated by single spaces", clip(line)),
        ));
    };
    if !grammar::is_token(method) {
        return Err(Failure::bad("Malformed Request-Line", format!("method {:?} is not a token", clip(method))));
    }
    Ok(RequestLine { method, uri, version })
}

/// Responds 505 to a well-formed version other than SIP/2.0 and 400 to a
/// malformed one. The version is case-insensitive (RFC 3261 §7.1).
fn check_version(version: &str) -> Result<(), Failure> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = version.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
        && version[4..].split_once('.').is_some_and(|(major, minor)| {
            grammar::parse_bounded(major, u64::MAX).is_some() && grammar::parse_bounded(minor, u64::MAX).is_some()
        });
    if well_formed {
        Err(Failure::new(505, "Version Not Supported", format!("SIP version {:?} is not SIP/2.0", clip(version))))
    } else {
        Err(Failure::bad("Malformed SIP-Version", format!("SIP version {:?} is malformed", clip(version))))
    }
}

/// Finds the body by Content-Length (RFC 3261 §18.3 and §20.14). A failure
/// with status 0 means the message is incomplete and must be dropped.
fn locate_body(scanned: &Scanned, data: &[u8], transport: Transport) -> Result<Body, Failure> {
    let start = scanned.body_start.unwrap_or(data.len()).min(data.len());
    let available = data.len() - start;

    let mut lengths = scanned.values("content-length");
    let Some(first) = lengths.next() else {
        // Without Content-Length a datagram's body runs to its end.
        return Ok(Body { start, len: available });
    };
    if lengths.next().is_some() {
        return Err(Failure::bad(
            "Multiple Content-Length header fields",
            "more than one Content-Length header field".to_string(),
        ));
    }

    let Some(declared) = grammar::parse_bounded(first, usize::MAX as u64) else {
        return Err(Failure::bad(
            "Invalid Content-Length",
            format!("Content-Length {:?} is not a non-negative integer", clip(first)),
        ));
    };
    let declared = usize::try_from(declared).unwrap_or(usize::MAX);

    if declared > available {
        let log_reason = format!("Content-Length {declared} exceeds the {available} bytes after the header section");
        return match transport {
            Transport::Udp => Err(Failure::bad("Content-Length larger than message", log_reason)),
            Transport::Tcp => Err(Failure::new(INCOMPLETE, "", format!("incomplete stream message: {log_reason}"))),
        };
    }
    Ok(Body { start, len: declared })
}

/// Checks the fields requests and responses share: presence, uniqueness,
/// CSeq, Via, From, To and Call-ID. Returns a 400 reason phrase and detail.
fn check_common_fields(scanned: &Scanned) -> Result<(), (&'static str, String)> {
    for (key, summary) in MANDATORY_FIELDS {
        if scanned.count(key) == 0 {
            return Err((summary, summary.to_lowercase()));
        }
    }
    for key in SINGLE_FIELDS {
        if scanned.count(key) > 1 {
            return Err(("Duplicate header field", format!("more than one {key} header field")));
        }
    }

    let with_value = |problem: Invalid, value: &str| (problem, format!("{problem}: {:?}", clip(value)));
    for via in scanned.values("via") {
        grammar::check_via(via).map_err(|problem| with_value(problem, via))?;
    }
    let from = scanned.first("from").unwrap_or_default();
    grammar::check_from_to(from).map_err(|problem| with_value(problem, from))?;
    let to = scanned.first("to").unwrap_or_default();
    let to_facts = grammar::check_from_to(to).map_err(|problem| with_value(problem, to))?;

    let cseq = scanned.first("cseq").unwrap_or_default();
    let (number, _) =
        grammar::split_cseq(cseq).ok_or(("Invalid CSeq", format!("CSeq {:?} is malformed", clip(cseq))))?;
    let in_dialog = scanned.is_response() || to_facts.has_tag;
    let max = if in_dialog { MAX_DIALOG_CSEQ } else { MAX_INITIAL_CSEQ };
    if grammar::parse_bounded(number, max).is_none() {
        return Err(("Invalid CSeq", format!("CSeq number {:?} is not an integer up to {max}", clip(number))));
    }

    let call_id = scanned.first("call-id").unwrap_or_default();
    grammar::check_call_id(call_id).map_err(|problem| with_value(problem, call_id))?;
    Ok(())
}

/// Checks the request-only fields and the Request-URI syntax.
fn check_request_fields(scanned: &Scanned, line: &RequestLine<'_>, body_len: usize) -> Result<(), Failure> {
    let cseq = scanned.first("cseq").unwrap_or_default();
    let cseq_method = grammar::split_cseq(cseq).map(|(_, method)| method).unwrap_or_default();
    // Methods are case-sensitive (RFC 3261 §7.1).
    if cseq_method != line.method {
        return Err(Failure::bad(
            "CSeq method does not match Request-Line",
            format!("CSeq method {:?} differs from request method {:?}", clip(cseq_method), clip(line.method)),
        ));
    }

    let uri = grammar::check_uri(line.uri)
        .map_err(|problem| Failure::bad(problem, format!("Request-URI {:?}: {problem}", clip(line.uri))))?;
    // RFC 3261 §19.1.1: headers are not allowed in a Request-URI.
    if uri.has_headers {
        return Err(Failure::bad(
            "Headers in Request-URI",
            format!("Request-URI {:?} carries headers", clip(line.uri)),
        ));
    }

    for contact in scanned.values("contact") {
        grammar::check_contact(contact)
            .map_err(|problem| Failure::bad(problem, format!("Contact {:?}: {problem}", clip(contact))))?;
    }

    let numbers =
        [("max-forwards", MAX_MAX_FORWARDS, "Invalid Max-Forwards"), ("expires", MAX_EXPIRES, "Invalid Expires")];
    for (key, max, summary) in numbers {
        if let Some(value) = scanned.first(key)
            && grammar::parse_bounded(value, max).is_none()
        {
            return Err(Failure::bad(summary, format!("{key} {:?} is not an integer up to {max}", clip(value))));
        }
    }

    match scanned.first("content-type") {
        Some(value) => {
            grammar::media_type(value)
                .map_err(|problem| Failure::bad(problem, format!("Content-Type {:?}: {problem}", clip(value))))?;
        }
        // RFC 3261 §7.4.1: a non-empty body needs a Content-Type.
        None if body_len > 0 => {
            return Err(Failure::bad(
                "Missing Content-Type header field",
                format!("body of {body_len} bytes without Content-Type"),
            ));
        }
        None => {}
    }

    for value in scanned.values("require") {
        grammar::option_tags(value)
            .map_err(|problem| Failure::bad(problem, format!("Require {:?}: {problem}", clip(value))))?;
    }
    Ok(())
}

/// Responds 501 to an unknown method and 405 to a known one this watcher
/// does not process; a CANCEL gets 481 because no INVITE is ever pending.
fn check_method(method: &str) -> Result<(), Failure> {
    if ALLOWED_METHODS.contains(&method) || method == "ACK" {
        return Ok(());
    }
    if method == "CANCEL" {
        return Err(Failure::new(
            481,
            "Call/Transaction Does Not Exist",
            "CANCEL matches no transaction: the watcher keeps no INVITE transactions".to_string(),
        ));
    }
    if KNOWN_METHODS.contains(&method) {
        return Err(Failure::new(405, "Method Not Allowed", format!("method {method} is not processed"))
            .with_header("Allow", ALLOWED_METHODS.join(", ")));
    }
    Err(Failure::new(501, "Not Implemented", format!("unknown method {:?}", clip(method))))
}

/// Responds 416 to a Request-URI scheme other than sip or sips (RFC 3261
/// §8.2.2.1). tel URIs are included: the watcher has no number directory.
fn check_uri_scheme(uri: &str) -> Result<(), Failure> {
    let scheme = uri.split_once(':').map(|(scheme, _)| scheme).unwrap_or_default();
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        return Ok(());
    }
    Err(Failure::new(
        416,
        "Unsupported URI Scheme",
        format!("Request-URI scheme {:?} is not sip or sips", clip(scheme)),
    ))
}

/// Responds 420 listing the required option tags that are not supported
/// (RFC 3261 §8.2.2.3). Proxy-Require is for proxies and is ignored.
fn check_require(scanned: &Scanned) -> Result<(), Failure> {
    let mut unsupported: Vec<&str> = Vec::new();
    for value in scanned.values("require") {
        for tag in grammar::option_tags(value).unwrap_or_default() {
            let supported = SUPPORTED_OPTION_TAGS.iter().any(|known| known.eq_ignore_ascii_case(tag));
            if !supported && !unsupported.contains(&tag) {
                unsupported.push(tag);
            }
        }
    }
    if unsupported.is_empty() {
        return Ok(());
    }
    let list = unsupported.join(", ");
    Err(Failure::new(420, "Bad Extension", format!("unsupported required option tags {:?}", clip(&list)))
        .with_header("Unsupported", list))
}

/// Responds 415 to a NOTIFY body this watcher cannot read (RFC 3261 §8.2.3).
fn check_content(scanned: &Scanned, body_len: usize) -> Result<(), Failure> {
    for value in scanned.values("content-encoding") {
        let encodings = value.split(',').map(|coding| coding.trim_matches([' ', '\t']));
        if let Some(coding) = encodings.into_iter().find(|coding| !coding.eq_ignore_ascii_case("identity")) {
            return Err(Failure::new(
                415,
                "Unsupported Media Type",
                format!("Content-Encoding {:?} is not supported", clip(coding)),
            )
            .with_header("Accept-Encoding", "identity".to_string()));
        }
    }

    let Some(value) = scanned.first("content-type") else {
        return Ok(());
    };
    if body_len == 0 {
        return Ok(());
    }
    let media_type = grammar::media_type(value).unwrap_or_default();
    if ACCEPTED_BODY_TYPES.contains(&media_type.as_str()) {
        return Ok(());
    }
    Err(Failure::new(415, "Unsupported Media Type", format!("Content-Type {:?} is not supported", clip(value)))
        .with_header("Accept", ACCEPTED_BODY_TYPES.join(", ")))
}

/// Checks a response; any problem means it is dropped.
fn check_response(
    scanned: &Scanned,
    data: &[u8],
    transport: Transport,
    limits: &WireLimits,
    oversized: bool,
) -> Result<Body, String> {
    if oversized {
        return Err(format!("message of {} bytes exceeds the {}-byte limit", data.len(), limits.max_message_bytes));
    }

    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; the
    // phrase may be empty (RFC 4475 §3.1.1.13).
    let line = &scanned.start_line;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let has_phrase_separator = parts.next().is_some();
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(format!("SIP version {:?} is not SIP/2.0", clip(version)));
    }
    let code_ok = code.len() == 3 && grammar::parse_bounded(code, 699).is_some_and(|code| code >= 100);
    if !code_ok || !has_phrase_separator {
        return Err(format!("Status-Line {:?} has no status code from 100 to 699", clip(line)));
    }

    if let Some((_, detail)) = &scanned.problem {
        return Err(detail.clone());
    }
    let body = locate_body(scanned, data, transport).map_err(|failure| failure.log_reason)?;
    if body.len > limits.max_body_bytes {
        return Err(format!("body of {} bytes exceeds the {}-byte limit", body.len, limits.max_body_bytes));
    }
    check_common_fields(scanned).map_err(|(_, detail)| detail)?;
    Ok(body)
}

/// Hands the message to the stack's parser through a normalized copy, so
/// the stack parses exactly the fields checked here: compact names expanded,
/// folds joined, Content-Length present and the version in upper case.
fn accept(scanned: &Scanned, data: &[u8], body: &Body) -> Verdict {
    use std::fmt::Write as _;

    // Writing into one preallocated buffer keeps this hot path to a single
    // allocation per message.
    let mut text = String::with_capacity(data.len() + 64);
    if scanned.is_response() {
        let (_, status) = scanned.start_line.split_once(' ').unwrap_or_default();
        let _ = write!(text, "SIP/2.0 {status}\r\n");
    } else {
        let (method_and_uri, _) = scanned.start_line.rsplit_once(' ').unwrap_or_default();
        let _ = write!(text, "{method_and_uri} SIP/2.0\r\n");
    }
    for field in &scanned.fields {
        if field.key != "content-length" {
            let _ = write!(text, "{}: {}\r\n", field.name, field.value);
        }
    }
    let _ = write!(text, "Content-Length: {}\r\n\r\n", body.len);

    let mut normalized = text.into_bytes();
    normalized.extend_from_slice(&data[body.start..body.start + body.len]);

    match rsipstack::sip::SipMessage::try_from(normalized.as_slice()) {
        Ok(message) => Verdict::Process(Box::new(Accepted {
            message,
            frame_len: body.start + body.len,
            trailing_bytes: data.len() - body.start - body.len,
        })),
        // NOTE: reached only where the stack's parser is stricter than the
        // checks above; such a request gets no response.
        Err(error) => Verdict::Drop { log_reason: format!("the SIP stack could not parse the message: {error}") },
    }
}

// === impl Failure ===

impl Failure {
    fn new(status: u16, reason: &'static str, log_reason: String) -> Self {
        Self { status, reason, extra_headers: Vec::new(), log_reason }
    }

    fn bad(reason: &'static str, log_reason: String) -> Self {
        Self::new(400, reason, log_reason)
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.extra_headers.push((name, value));
        self
    }
}
