//! Unit tests for the wire checks on small hand-written messages.

use std::net::IpAddr;

use rsipstack::sip::SipMessage;
use rsipstack::sip::prelude::*;

use super::*;

/// Builds a request from its start line, extra header lines and body, with
/// the mandatory fields filled in.
fn request(start_line: &str, cseq: &str, extra: &[&str], body: &str) -> String {
    let mut text = format!(
        "{start_line}\r\nVia: SIP/2.0/UDP 192.0.2.60:5060;branch=z9hG4bKunit\r\n\
         From: <sip:1001@pbx.example.com>;tag=n1\r\nTo: <sip:monitor@example.com>\r\n\
         Call-ID: unit-1@192.0.2.50\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n"
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

fn notify(extra: &[&str], body: &str) -> String {
    let mut fields = vec!["Event: dialog", "Subscription-State: active;expires=600"];
    fields.extend_from_slice(extra);
    request("NOTIFY sip:monitor@192.0.2.50:5060 SIP/2.0", "7 NOTIFY", &fields, body)
}

fn options(extra: &[&str]) -> String {
    request("OPTIONS sip:monitor@192.0.2.50 SIP/2.0", "1 OPTIONS", extra, "")
}

fn udp(text: &str) -> Verdict {
    inspect(text.as_bytes(), Transport::Udp, &WireLimits::default())
}

fn rejection(verdict: Verdict) -> Rejection {
    match verdict {
        Verdict::Respond(rejection) => *rejection,
        other => panic!("expected Respond, got {other:?}"),
    }
}

fn accepted(verdict: Verdict) -> Accepted {
    match verdict {
        Verdict::Process(accepted) => *accepted,
        other => panic!("expected Process, got {other:?}"),
    }
}

fn is_drop(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Drop { .. })
}

const DIALOG_BODY: &str = "<?xml version=\"1.0\"?>\r\n<dialog-info/>\r\n";

// === accepted messages ===

#[test]
fn notify_with_dialog_info_is_processed() {
    let accepted = accepted(udp(&notify(&["Content-Type: application/dialog-info+xml"], DIALOG_BODY)));
    let SipMessage::Request(request) = accepted.message else {
        panic!("expected a request");
    };
    assert_eq!(request.body, DIALOG_BODY.as_bytes());
}

#[test]
fn content_type_parameters_are_ignored() {
    let text = notify(&["Content-Type: Application/PIDF+XML ; charset=UTF-8"], DIALOG_BODY);
    assert!(matches!(udp(&text), Verdict::Process(_)));
}

#[test]
fn lower_case_version_is_accepted() {
    let text = options(&[]).replacen("SIP/2.0\r\n", "sip/2.0\r\n", 1);
    assert!(matches!(udp(&text), Verdict::Process(_)));
}

#[test]
fn leading_crlf_is_ignored() {
    let text = format!("\r\n\r\n{}", options(&[]));
    assert!(matches!(udp(&text), Verdict::Process(_)));
}

#[test]
fn folded_from_keeps_tag_for_stack() {
    let text = options(&[]).replace(";tag=n1", "\r\n ;tag=n1");
    let accepted = accepted(udp(&text));
    let SipMessage::Request(request) = accepted.message else {
        panic!("expected a request");
    };
    let from = request.from_header().expect("From must be present").typed().expect("From must parse");
    assert_eq!(from.tag().map(|tag| tag.value().to_string()).as_deref(), Some("n1"));
}

#[test]
fn stack_sees_expanded_compact_names() {
    let text = options(&[]).replace("Call-ID:", "i:").replace("Content-Length:", "l:");
    let accepted = accepted(udp(&text));
    let call_id = accepted.message.call_id_header().expect("Call-ID must be present");
    assert_eq!(call_id.value(), "unit-1@192.0.2.50");
}

// === size limits ===

#[test]
fn oversized_request_gets_513() {
    // The limit cuts into the body, so Via and CSeq are still inside it.
    let limits = WireLimits { max_message_bytes: 300, max_body_bytes: 100 };
    let text = notify(&["Content-Type: application/dialog-info+xml"], DIALOG_BODY);
    assert!(text.len() > 300);
    assert_eq!(inspect(text.as_bytes(), Transport::Udp, &limits).status(), Some(513));
}

#[test]
fn oversized_request_cut_before_cseq_is_dropped() {
    let limits = WireLimits { max_message_bytes: 150, max_body_bytes: 100 };
    let text = notify(&["Content-Type: application/dialog-info+xml"], DIALOG_BODY);
    assert!(is_drop(&inspect(text.as_bytes(), Transport::Udp, &limits)));
}

#[test]
fn oversized_body_gets_513() {
    let limits = WireLimits { max_message_bytes: 65_535, max_body_bytes: 10 };
    let text = notify(&["Content-Type: application/dialog-info+xml"], DIALOG_BODY);
    assert_eq!(inspect(text.as_bytes(), Transport::Udp, &limits).status(), Some(513));
}

#[test]
fn oversized_response_is_dropped() {
    let limits = WireLimits { max_message_bytes: 100, max_body_bytes: 100 };
    let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKx\r\nFrom: <sip:a@example.com>;tag=1\r\n\
                To: <sip:b@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n";
    assert!(is_drop(&inspect(text.as_bytes(), Transport::Udp, &limits)));
}

// === scalars ===

#[test]
fn initial_cseq_limit_is_2_pow_31() {
    let largest = request("OPTIONS sip:monitor@192.0.2.50 SIP/2.0", "2147483647 OPTIONS", &[], "");
    assert!(matches!(udp(&largest), Verdict::Process(_)));
    let over = request("OPTIONS sip:monitor@192.0.2.50 SIP/2.0", "2147483648 OPTIONS", &[], "");
    assert_eq!(udp(&over).status(), Some(400));
}

#[test]
fn dialog_cseq_limit_is_2_pow_32() {
    let in_dialog = |cseq: &str| {
        request("NOTIFY sip:monitor@192.0.2.50 SIP/2.0", cseq, &["Event: dialog"], "")
            .replace("To: <sip:monitor@example.com>", "To: <sip:monitor@example.com>;tag=s1")
    };
    assert!(matches!(udp(&in_dialog("4294967295 NOTIFY")), Verdict::Process(_)));
    assert_eq!(udp(&in_dialog("4294967296 NOTIFY")).status(), Some(400));
}

#[test]
fn max_forwards_over_255_gets_400() {
    let text = options(&[]).replace("Max-Forwards: 70", "Max-Forwards: 256");
    assert_eq!(udp(&text).status(), Some(400));
}

#[test]
fn expires_over_u32_gets_400() {
    assert!(matches!(udp(&options(&["Expires: 4294967295"])), Verdict::Process(_)));
    assert_eq!(udp(&options(&["Expires: 4294967296"])).status(), Some(400));
}

#[test]
fn non_numeric_content_length_gets_400() {
    let text = options(&[]).replace("Content-Length: 0", "Content-Length: 0x10");
    assert_eq!(udp(&text).status(), Some(400));
}

#[test]
fn body_without_content_type_gets_400() {
    let text = request("OPTIONS sip:monitor@192.0.2.50 SIP/2.0", "1 OPTIONS", &[], "hello");
    assert_eq!(udp(&text).status(), Some(400));
}

#[test]
fn non_utf8_header_gets_400() {
    let mut bytes = options(&["Subject: caf\u{e9}"]).into_bytes();
    let at = bytes.iter().position(|&byte| byte == 0xc3).expect("the é must be present");
    bytes[at] = 0xff;
    let verdict = inspect(&bytes, Transport::Udp, &WireLimits::default());
    assert_eq!(verdict.status(), Some(400));
}

// === method, scheme, extensions, content ===

#[test]
fn subscribe_gets_405_with_allow() {
    let text = request("SUBSCRIBE sip:monitor@192.0.2.50 SIP/2.0", "1 SUBSCRIBE", &["Event: dialog"], "");
    let rejection = rejection(udp(&text));
    assert_eq!(rejection.status, 405);
    assert_eq!(rejection.extra_headers, vec![("Allow", "NOTIFY, OPTIONS".to_string())]);
}

#[test]
fn lower_case_notify_is_unknown_method() {
    // Methods are case-sensitive, so "notify" is an extension method.
    let text = request("notify sip:monitor@192.0.2.50 SIP/2.0", "1 notify", &[], "");
    assert_eq!(udp(&text).status(), Some(501));
}

#[test]
fn cancel_gets_481() {
    let text = request("CANCEL sip:monitor@192.0.2.50 SIP/2.0", "1 CANCEL", &[], "");
    assert_eq!(udp(&text).status(), Some(481));
}

#[test]
fn ack_is_never_answered() {
    let valid = request("ACK sip:monitor@192.0.2.50 SIP/2.0", "1 ACK", &[], "");
    assert!(matches!(udp(&valid), Verdict::Process(_)));
    let broken = request("ACK sip:monitor@192.0.2.50 SIP/2.0", "1 INVITE", &[], "");
    assert!(is_drop(&udp(&broken)));
}

#[test]
fn tel_request_uri_gets_416() {
    let text = request("OPTIONS tel:+31201234567 SIP/2.0", "1 OPTIONS", &[], "");
    assert_eq!(udp(&text).status(), Some(416));
}

#[test]
fn require_lists_each_unknown_tag_once() {
    let text = options(&["Require: foo, bar", "Require: foo"]);
    let rejection = rejection(udp(&text));
    assert_eq!(rejection.status, 420);
    assert_eq!(rejection.extra_headers, vec![("Unsupported", "foo, bar".to_string())]);
}

#[test]
fn proxy_require_is_ignored() {
    assert!(matches!(udp(&options(&["Proxy-Require: foo"])), Verdict::Process(_)));
}

#[test]
fn notify_with_unknown_type_gets_415() {
    let rejection = rejection(udp(&notify(&["Content-Type: text/plain"], "hello")));
    assert_eq!(rejection.status, 415);
    assert_eq!(rejection.extra_headers, vec![("Accept", ACCEPTED_BODY_TYPES.join(", "))]);
}

#[test]
fn notify_with_gzip_gets_415() {
    let text = notify(&["Content-Type: application/pidf+xml", "Content-Encoding: gzip"], "x");
    let rejection = rejection(udp(&text));
    assert_eq!(rejection.status, 415);
    assert_eq!(rejection.extra_headers, vec![("Accept-Encoding", "identity".to_string())]);
}

#[test]
fn notify_without_body_needs_no_type() {
    assert!(matches!(udp(&notify(&[], "")), Verdict::Process(_)));
}

#[test]
fn options_body_type_is_not_checked() {
    let text = request("OPTIONS sip:monitor@192.0.2.50 SIP/2.0", "1 OPTIONS", &["Content-Type: text/plain"], "x");
    assert!(matches!(udp(&text), Verdict::Process(_)));
}

// === unanswerable input ===

#[test]
fn garbage_is_dropped() {
    for garbage in ["", "\r\n\r\n", "hello", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "\u{0}\u{1}\u{2}"] {
        assert!(is_drop(&udp(garbage)), "{garbage:?} must be dropped");
    }
}

#[test]
fn request_without_via_is_dropped() {
    let text = options(&[]).replace("Via: SIP/2.0/UDP 192.0.2.60:5060;branch=z9hG4bKunit\r\n", "");
    assert!(is_drop(&udp(&text)));
}

#[test]
fn request_without_cseq_is_dropped() {
    let text = options(&[]).replace("CSeq: 1 OPTIONS\r\n", "");
    assert!(is_drop(&udp(&text)));
}

// === responses to send ===

#[test]
fn response_copies_fields_and_adds_to_tag() {
    let text = request(
        "INVITE sip:monitor@192.0.2.50 SIP/2.0",
        "5 INVITE",
        &["Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKsecond"],
        "",
    );
    let bytes = rejection(udp(&text)).to_response_bytes("w1");
    let response = match SipMessage::try_from(bytes.as_slice()).expect("the response must parse") {
        SipMessage::Response(response) => response,
        SipMessage::Request(_) => panic!("expected a response"),
    };
    assert_eq!(response.status_code.code(), 405);
    let vias: Vec<String> = response
        .headers
        .iter()
        .filter(|header| header.name() == "Via")
        .map(|header| header.value().to_string())
        .collect();
    assert_eq!(vias, ["SIP/2.0/UDP 192.0.2.60:5060;branch=z9hG4bKunit", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKsecond"]);
    assert_eq!(response.to_header().expect("To").value(), "<sip:monitor@example.com>;tag=w1");
    assert_eq!(response.cseq_header().expect("CSeq").value(), "5 INVITE");
    assert_eq!(response.call_id_header().expect("Call-ID").value(), "unit-1@192.0.2.50");
}

#[test]
fn response_keeps_existing_to_tag() {
    let text = request("INVITE sip:monitor@192.0.2.50 SIP/2.0", "5 INVITE", &[], "")
        .replace("To: <sip:monitor@example.com>", "To: <sip:monitor@example.com>;tag=s1");
    let bytes = rejection(udp(&text)).to_response_bytes("w1");
    let text = String::from_utf8(bytes).expect("the response is text");
    assert!(text.contains("\r\nTo: <sip:monitor@example.com>;tag=s1\r\n"));
}

// === source filter ===

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address must parse")
}

#[test]
fn foreign_request_gets_403() {
    let filter = SourceFilter::new(&["192.0.2.0/24"]).expect("network must parse");
    let verdict =
        inspect_from(ip("203.0.113.9"), &filter, options(&[]).as_bytes(), Transport::Udp, &WireLimits::default());
    assert_eq!(verdict.status(), Some(403));
}

#[test]
fn foreign_response_is_dropped() {
    let filter = SourceFilter::new(&["192.0.2.0/24"]).expect("network must parse");
    let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKx\r\nFrom: <sip:a@example.com>;tag=1\r\n\
                To: <sip:b@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n";
    let verdict = inspect_from(ip("203.0.113.9"), &filter, text.as_bytes(), Transport::Udp, &WireLimits::default());
    assert!(is_drop(&verdict));
}

#[test]
fn allowed_source_is_inspected() {
    let filter = SourceFilter::new(&["192.0.2.0/24"]).expect("network must parse");
    let verdict =
        inspect_from(ip("192.0.2.60"), &filter, options(&[]).as_bytes(), Transport::Udp, &WireLimits::default());
    assert!(matches!(verdict, Verdict::Process(_)));
}

// === stream framing ===

#[test]
fn framing_waits_for_header_end() {
    let text = options(&[]);
    let cut = text.find("\r\n\r\n").expect("header end");
    assert_eq!(frame_stream(&text.as_bytes()[..cut], &WireLimits::default()), Framing::NeedMore);
}

#[test]
fn framing_waits_for_body() {
    let text = notify(&["Content-Type: application/dialog-info+xml"], DIALOG_BODY);
    let short = &text.as_bytes()[..text.len() - 1];
    assert_eq!(frame_stream(short, &WireLimits::default()), Framing::NeedMore);
}

#[test]
fn framing_splits_back_to_back_messages() {
    let first = notify(&["Content-Type: application/dialog-info+xml"], DIALOG_BODY);
    let both = format!("{first}{}", options(&[]));
    assert_eq!(frame_stream(both.as_bytes(), &WireLimits::default()), Framing::Frame(first.len()));
}

#[test]
fn framing_skips_keepalive() {
    assert_eq!(frame_stream(b"\r\n\r\nOPTIONS", &WireLimits::default()), Framing::Skip(4));
}

#[test]
fn framing_rejects_bad_content_length() {
    let limits = WireLimits::default();
    let negative = options(&[]).replace("Content-Length: 0", "Content-Length: -1");
    assert!(matches!(frame_stream(negative.as_bytes(), &limits), Framing::Invalid { .. }));
    let twice = options(&["l: 0"]);
    assert!(matches!(frame_stream(twice.as_bytes(), &limits), Framing::Invalid { .. }));
}

#[test]
fn framing_rejects_endless_header() {
    let limits = WireLimits { max_message_bytes: 64, max_body_bytes: 64 };
    let endless = format!("OPTIONS sip:a@example.com SIP/2.0\r\nSubject: {}", "x".repeat(100));
    assert!(matches!(frame_stream(endless.as_bytes(), &limits), Framing::Invalid { .. }));
}

#[test]
fn framing_rejects_body_past_limit() {
    let limits = WireLimits { max_message_bytes: 400, max_body_bytes: 400 };
    let text = options(&[]).replace("Content-Length: 0", "Content-Length: 10000");
    assert!(matches!(frame_stream(text.as_bytes(), &limits), Framing::Invalid { .. }));
}

#[test]
fn framing_without_content_length_has_no_body() {
    let text = options(&[]).replace("Content-Length: 0\r\n", "");
    assert_eq!(frame_stream(text.as_bytes(), &WireLimits::default()), Framing::Frame(text.len()));
}
