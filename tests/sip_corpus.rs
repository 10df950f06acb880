//! Runs every SIP torture message of RFC 4475 and RFC 5118 and the SIP
//! syntax cases of the shared corpus through the receive-path checks, and
//! mutates each one a thousand times to show that no input panics.
//!
//! The corpus is read from `../shared/corpus/` relative to the crate root,
//! where CI clones it beside this repository.

use std::path::{Path, PathBuf};

use floorwatch::sip::wire::{Framing, Transport, Verdict, WireLimits, frame_stream, inspect};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsipstack::sip::{HeadersExt, SipMessage};

/// The verdict a corpus file must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Process,
    Respond(u16),
    Drop,
}

use Expected::{Drop, Process, Respond};

/// Every RFC 4475 and RFC 5118 file with its verdict over UDP. A watcher
/// processes only NOTIFY and OPTIONS, so a well-formed INVITE, REGISTER,
/// BYE or MESSAGE gets 405 where the RFC describes what a registrar or
/// phone would do; a malformed one gets 400 before the method is examined.
const TORTURE: &[(&str, Expected)] = &[
    ("rfc4475/badaspec.dat", Respond(400)),
    ("rfc4475/badbranch.dat", Process),
    ("rfc4475/baddate.dat", Respond(405)),
    ("rfc4475/baddn.dat", Respond(400)),
    ("rfc4475/badinv01.dat", Respond(400)),
    ("rfc4475/badvers.dat", Respond(505)),
    ("rfc4475/bcast.dat", Process),
    ("rfc4475/bext01.dat", Respond(420)),
    ("rfc4475/bigcode.dat", Drop),
    ("rfc4475/clerr.dat", Respond(400)),
    ("rfc4475/cparam01.dat", Respond(405)),
    ("rfc4475/cparam02.dat", Respond(405)),
    ("rfc4475/dblreq.dat", Respond(405)),
    ("rfc4475/esc01.dat", Respond(405)),
    ("rfc4475/esc02.dat", Respond(501)),
    ("rfc4475/escnull.dat", Respond(405)),
    ("rfc4475/escruri.dat", Respond(400)),
    ("rfc4475/insuf.dat", Respond(400)),
    ("rfc4475/intmeth.dat", Respond(501)),
    ("rfc4475/inv2543.dat", Respond(405)),
    ("rfc4475/invut.dat", Respond(405)),
    ("rfc4475/longreq.dat", Respond(405)),
    ("rfc4475/ltgtruri.dat", Respond(400)),
    ("rfc4475/lwsdisp.dat", Process),
    ("rfc4475/lwsruri.dat", Respond(400)),
    ("rfc4475/lwsstart.dat", Respond(400)),
    ("rfc4475/mcl01.dat", Respond(400)),
    ("rfc4475/mismatch01.dat", Respond(400)),
    ("rfc4475/mismatch02.dat", Respond(400)),
    ("rfc4475/mpart01.dat", Respond(405)),
    ("rfc4475/multi01.dat", Respond(400)),
    ("rfc4475/ncl.dat", Respond(400)),
    ("rfc4475/noreason.dat", Process),
    ("rfc4475/novelsc.dat", Respond(416)),
    ("rfc4475/quotbal.dat", Respond(400)),
    ("rfc4475/regaut01.dat", Respond(405)),
    ("rfc4475/regbadct.dat", Respond(400)),
    ("rfc4475/regescrt.dat", Respond(405)),
    ("rfc4475/scalar02.dat", Respond(400)),
    ("rfc4475/scalarlg.dat", Drop),
    ("rfc4475/sdp01.dat", Respond(405)),
    ("rfc4475/semiuri.dat", Process),
    ("rfc4475/transports.dat", Process),
    ("rfc4475/trws.dat", Respond(400)),
    ("rfc4475/unkscm.dat", Respond(416)),
    ("rfc4475/unksm2.dat", Respond(405)),
    ("rfc4475/unreason.dat", Process),
    ("rfc4475/wsinv.dat", Respond(405)),
    ("rfc4475/zeromf.dat", Process),
    ("rfc5118/ipv4-mapped-ipv6.dat", Respond(405)),
    ("rfc5118/ipv6-bad.dat", Respond(400)),
    ("rfc5118/ipv6-bug-abnf-3-colons.dat", Respond(400)),
    ("rfc5118/ipv6-correct-abnf-2-colons.dat", Process),
    ("rfc5118/ipv6-good.dat", Respond(405)),
    ("rfc5118/ipv6-in-sdp.dat", Respond(405)),
    ("rfc5118/mult-ip-in-header.dat", Respond(405)),
    ("rfc5118/mult-ip-in-sdp.dat", Respond(405)),
    ("rfc5118/port-ambiguous.dat", Respond(405)),
    ("rfc5118/port-unambiguous.dat", Respond(405)),
    ("rfc5118/via-received-param-no-delim.dat", Process),
    ("rfc5118/via-received-param-with-delim.dat", Respond(405)),
];

/// The SIP syntax and subscription cases; their later handling (481, 500,
/// resubscribe) belongs to the subscription layer, not to these checks.
const CASES: &[(&str, Expected)] = &[
    ("cases/B07-notify-cseq-backwards.1.sip", Process),
    ("cases/B07-notify-cseq-backwards.2.sip", Process),
    ("cases/B40-notify-all-compact-headers.sip", Process),
    ("cases/B41-401-folded-www-authenticate.sip", Process),
    ("cases/B42-407-folded-tab-after-digest.sip", Process),
    ("cases/B43-notify-folded-headers.sip", Process),
    ("cases/B45-register-broken-newline-in-uri.sip", Respond(400)),
    ("cases/B48-notify-active-without-expires.sip", Process),
    ("cases/B49-notify-terminated-timeout.sip", Process),
    ("cases/B50-notify-after-subscription-ended.sip", Process),
    ("cases/B51-401-without-www-authenticate.sip", Process),
    ("cases/B51-notify-terminated-noresource.sip", Process),
    ("cases/B52-481-to-refresh-subscribe.sip", Process),
];

/// Statuses `inspect` may respond with.
const KNOWN_STATUSES: &[u16] = &[400, 405, 415, 416, 420, 481, 501, 505, 513];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn read(file: &str) -> Vec<u8> {
    let path = corpus_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|error| panic!("corpus file {} must be readable: {error}", path.display()))
}

fn udp(data: &[u8]) -> Verdict {
    inspect(data, Transport::Udp, &WireLimits::default())
}

fn kind(verdict: &Verdict) -> Expected {
    match verdict {
        Verdict::Process(_) => Process,
        Verdict::Respond(rejection) => Respond(rejection.status),
        Verdict::Drop { .. } => Drop,
    }
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Process(accepted) => format!("Process ({} bytes)", accepted.frame_len),
        Verdict::Respond(rejection) => {
            format!("Respond {} {} ({})", rejection.status, rejection.reason, rejection.log_reason)
        }
        Verdict::Drop { log_reason } => format!("Drop ({log_reason})"),
    }
}

fn processed(data: &[u8]) -> SipMessage {
    match udp(data) {
        Verdict::Process(accepted) => accepted.message,
        other => panic!("expected Process, got {}", describe(&other)),
    }
}

fn header_value(message: &SipMessage, name: &str) -> Option<String> {
    let headers = match message {
        SipMessage::Request(request) => &request.headers,
        SipMessage::Response(response) => &response.headers,
    };
    headers.iter().find(|header| header.name().eq_ignore_ascii_case(name)).map(|header| header.value().to_string())
}

#[test]
fn corpus_files_are_all_listed() {
    for dir in ["rfc4475", "rfc5118"] {
        let entries = std::fs::read_dir(corpus_dir().join(dir)).expect("corpus directory must be readable");
        for entry in entries {
            let name = format!("{dir}/{}", entry.expect("directory entry").file_name().to_string_lossy());
            assert!(TORTURE.iter().any(|(file, _)| *file == name), "{name} has no expected verdict in TORTURE");
        }
    }
}

#[test]
fn torture_messages_get_expected_verdicts() {
    let mut wrong = Vec::new();
    for (file, expected) in TORTURE.iter().chain(CASES) {
        let verdict = udp(&read(file));
        if kind(&verdict) != *expected {
            wrong.push(format!("{file}: expected {expected:?}, got {}", describe(&verdict)));
        }
    }
    assert!(wrong.is_empty(), "verdicts differ:\n{}", wrong.join("\n"));
}

#[test]
fn clerr_over_tcp_waits_then_drops() {
    let data = read("rfc4475/clerr.dat");
    let limits = WireLimits::default();
    assert_eq!(frame_stream(&data, &limits), Framing::NeedMore);
    assert_eq!(kind(&inspect(&data, Transport::Tcp, &limits)), Drop);
}

#[test]
fn dblreq_trailing_request_is_ignored() {
    // Turn the first request into an OPTIONS so that it is processed.
    let data = String::from_utf8(read("rfc4475/dblreq.dat")).expect("dblreq is text");
    let options = data.replacen("REGISTER", "OPTIONS", 2);
    let Verdict::Process(accepted) = udp(options.as_bytes()) else {
        panic!("the first request must be processed");
    };
    assert!(accepted.trailing_bytes > 0, "the INVITE after it must be left over");
    assert_eq!(accepted.frame_len + accepted.trailing_bytes, options.len());
    let SipMessage::Request(request) = accepted.message else {
        panic!("expected a request");
    };
    assert!(request.body.is_empty(), "the trailing INVITE must not become the body");
}

#[test]
fn intmeth_answer_copies_via_and_cseq() {
    let Verdict::Respond(rejection) = udp(&read("rfc4475/intmeth.dat")) else {
        panic!("intmeth must be answered");
    };
    assert_eq!(rejection.echo.cseq, "139122385 !interesting-Method0123456789_*+`.%indeed'~");
    assert_eq!(rejection.echo.vias.len(), 1);
}

#[test]
fn bext01_lists_unsupported_tags() {
    let Verdict::Respond(rejection) = udp(&read("rfc4475/bext01.dat")) else {
        panic!("bext01 must be answered");
    };
    assert_eq!(
        rejection.extra_headers,
        vec![("Unsupported", "nothingSupportsThis, nothingSupportsThisEither".to_string())]
    );
}

#[test]
fn wsinv_answer_allows_notify_and_options() {
    let Verdict::Respond(rejection) = udp(&read("rfc4475/wsinv.dat")) else {
        panic!("wsinv must be answered");
    };
    assert_eq!(rejection.extra_headers, vec![("Allow", "NOTIFY, OPTIONS".to_string())]);
}

#[test]
fn invut_body_in_notify_gets_415() {
    // invut's INVITE gets 405 first; the same unknown body in a NOTIFY, the
    // one request whose body is read, must get 415 with Accept.
    let data = String::from_utf8(read("rfc4475/invut.dat")).expect("invut is text");
    let notify = data.replace("INVITE", "NOTIFY");
    let Verdict::Respond(rejection) = udp(notify.as_bytes()) else {
        panic!("the NOTIFY must be answered");
    };
    assert_eq!(rejection.status, 415);
    assert_eq!(rejection.extra_headers[0].0, "Accept");
    assert!(rejection.extra_headers[0].1.contains("application/dialog-info+xml"));
}

#[test]
fn b40_compact_names_are_expanded() {
    let message = processed(&read("cases/B40-notify-all-compact-headers.sip"));
    assert_eq!(header_value(&message, "Event").as_deref(), Some("dialog"));
    assert_eq!(header_value(&message, "Allow-Events").as_deref(), Some("dialog, presence"));
    assert_eq!(header_value(&message, "Supported").as_deref(), Some("eventlist"));
    assert_eq!(header_value(&message, "Content-Type").as_deref(), Some("application/dialog-info+xml"));
    assert_eq!(header_value(&message, "Call-ID").as_deref(), Some("blf-compact-40@192.0.2.50"));
}

#[test]
fn b43_folded_lines_are_joined() {
    let message = processed(&read("cases/B43-notify-folded-headers.sip"));
    assert_eq!(header_value(&message, "Event").as_deref(), Some("dialog"));
    assert_eq!(header_value(&message, "Subscription-State").as_deref(), Some("active; expires=3599"));
    assert_eq!(header_value(&message, "From").as_deref(), Some("<sip:1001@pbx.example.com> ;tag=n1"));
    let SipMessage::Request(request) = message else {
        panic!("expected a request");
    };
    assert_eq!(request.body.len(), 304);
}

#[test]
fn b41_folded_challenge_is_joined() {
    let message = processed(&read("cases/B41-401-folded-www-authenticate.sip"));
    let challenge = header_value(&message, "WWW-Authenticate").expect("challenge must be kept");
    assert!(challenge.starts_with("Digest realm=\"ims.example.net\", nonce="));
    assert!(challenge.ends_with("qop=\"auth\""));
}

#[test]
fn b42_tab_fold_after_digest_is_joined() {
    let message = processed(&read("cases/B42-407-folded-tab-after-digest.sip"));
    let challenge = header_value(&message, "Proxy-Authenticate").expect("challenge must be kept");
    assert!(challenge.starts_with("Digest realm=\"example.com\",nonce="));
}

#[test]
fn b07_notify_keeps_cseq() {
    let message = processed(&read("cases/B07-notify-cseq-backwards.2.sip"));
    let cseq = message.cseq_header().expect("CSeq must be present");
    assert_eq!(cseq.value(), "3 NOTIFY");
}

#[test]
fn esc01_keeps_escapes() {
    // The R-URI must reach the stack unchanged; comparing escaped and
    // unescaped forms is the URI layer's job.
    let Verdict::Respond(rejection) = udp(&read("rfc4475/esc01.dat")) else {
        panic!("esc01 must be answered 405");
    };
    assert_eq!(rejection.echo.to.as_deref(), Some("sip:%75se%72@example.com"));
}

// === mutation ===

/// Applies one random mutation: a byte flip, a truncation or a duplicated line.
fn mutate(data: &mut Vec<u8>, rng: &mut StdRng) {
    if data.is_empty() {
        data.push(rng.random());
        return;
    }
    match rng.random_range(0..3) {
        0 => {
            let at = rng.random_range(0..data.len());
            data[at] = rng.random();
        }
        1 => {
            let at = rng.random_range(0..data.len());
            data.truncate(at);
        }
        _ => {
            let line_starts: Vec<usize> = std::iter::once(0)
                .chain(data.windows(2).enumerate().filter(|(_, pair)| pair == b"\r\n").map(|(i, _)| i + 2))
                .filter(|&start| start < data.len())
                .collect();
            let start = line_starts[rng.random_range(0..line_starts.len())];
            let end = data[start..]
                .windows(2)
                .position(|pair| pair == b"\r\n")
                .map_or(data.len(), |offset| start + offset + 2);
            let line = data[start..end].to_vec();
            data.splice(start..start, line);
        }
    }
}

/// Asserts that a verdict stays within what `inspect` may return.
fn assert_bounded(data: &[u8], verdict: &Verdict, origin: &str) {
    match verdict {
        Verdict::Process(accepted) => {
            assert_eq!(accepted.frame_len + accepted.trailing_bytes, data.len(), "{origin}: frame accounting");
        }
        Verdict::Respond(rejection) => {
            let start = data.iter().position(|&byte| byte != b'\r' && byte != b'\n').unwrap_or(0);
            assert!(!data[start..].starts_with(b"SIP/"), "{origin}: a response was answered");
            assert!(KNOWN_STATUSES.contains(&rejection.status), "{origin}: status {}", rejection.status);
            assert!(!rejection.reason.is_empty(), "{origin}: empty reason phrase");
            let response = rejection.to_response_bytes("t1");
            let bare_line_feed =
                response.iter().enumerate().any(|(i, &byte)| byte == b'\n' && (i == 0 || response[i - 1] != b'\r'));
            let bare_return =
                response.iter().enumerate().any(|(i, &byte)| byte == b'\r' && response.get(i + 1) != Some(&b'\n'));
            assert!(!bare_line_feed && !bare_return, "{origin}: response has a bare CR or LF");
            assert!(response.ends_with(b"\r\n\r\n"), "{origin}: response not terminated");
        }
        Verdict::Drop { log_reason } => {
            assert!(!log_reason.is_empty(), "{origin}: drop without a reason");
        }
    }
}

#[test]
fn mutated_corpus_never_panics() {
    let limits = WireLimits::default();
    for (index, (file, _)) in TORTURE.iter().chain(CASES).enumerate() {
        let original = read(file);
        let mut rng = StdRng::seed_from_u64(0x5EED_0000 + index as u64);
        for round in 0..1000 {
            let mut data = original.clone();
            for _ in 0..rng.random_range(1..=3) {
                mutate(&mut data, &mut rng);
            }
            let origin = format!("{file} round {round}");

            let verdict = inspect(&data, Transport::Udp, &limits);
            assert_bounded(&data, &verdict, &origin);

            if let Framing::Frame(len) = frame_stream(&data, &limits) {
                assert!(len <= data.len(), "{origin}: frame longer than buffer");
                let frame = &data[..len];
                assert_bounded(frame, &inspect(frame, Transport::Tcp, &limits), &origin);
            }
        }
    }
}
