//! Feeds arbitrary bytes to the SIP receive path: `inspect` as one UDP
//! datagram and as one TCP frame, and `frame_stream` over the same bytes as
//! a TCP stream. Each runs with the default limits and again with small
//! limits, which make the size checks reachable at libFuzzer's input sizes.
//!
//! Besides "no panic", it asserts the contracts the callers rely on:
//! framing always makes progress and stays within the limit, an accepted
//! message's frame and trailing bytes add up to the input, a TCP frame is
//! accepted without trailing bytes, and an error response is one message
//! with a 4xx-6xx status.

#![no_main]

use floorwatch::sip::wire::{Framing, Transport, Verdict, WireLimits, frame_stream, inspect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let small = WireLimits { max_message_bytes: 600, max_body_bytes: 200 };
    for limits in [WireLimits::default(), small] {
        check_datagram(data, &limits);
        check_stream(data, &limits);
    }
});

/// Inspects `data` as one UDP datagram and as one (unframed) TCP message.
fn check_datagram(data: &[u8], limits: &WireLimits) {
    for transport in [Transport::Udp, Transport::Tcp] {
        let verdict = inspect(data, transport, limits);
        check_verdict(&verdict, data, limits);
    }
}

/// Frames `data` as a TCP stream, inspecting every whole message, until the
/// framer requests more bytes or gives up on the stream.
fn check_stream(data: &[u8], limits: &WireLimits) {
    let mut rest = data;
    loop {
        match frame_stream(rest, limits) {
            Framing::Skip(count) => {
                assert!(count > 0, "Skip(0) would never advance the stream");
                assert!(count <= rest.len(), "Skip({count}) beyond the {} buffered bytes", rest.len());
                rest = &rest[count..];
            }
            Framing::Frame(length) => {
                assert!(length > 0, "Frame(0) would never advance the stream");
                assert!(length <= rest.len(), "Frame({length}) beyond the {} buffered bytes", rest.len());
                assert!(length <= limits.max_message_bytes, "Frame({length}) over the message limit");

                let frame = &rest[..length];
                let verdict = inspect(frame, Transport::Tcp, limits);
                check_verdict(&verdict, frame, limits);
                if let Verdict::Process(accepted) = &verdict {
                    assert_eq!(
                        accepted.trailing_bytes, 0,
                        "inspect and frame_stream disagree on where a TCP message ends"
                    );
                }
                rest = &rest[length..];
            }
            Framing::NeedMore => {
                assert!(
                    rest.len() < limits.max_message_bytes,
                    "NeedMore with {} bytes buffered: the caller's buffer is capped at the limit, so the stream stalls",
                    rest.len()
                );
                return;
            }
            Framing::Invalid { log_reason } => {
                assert!(!log_reason.is_empty());
                return;
            }
        }
    }
}

fn check_verdict(verdict: &Verdict, data: &[u8], limits: &WireLimits) {
    match verdict {
        Verdict::Process(accepted) => {
            assert_eq!(
                accepted.frame_len + accepted.trailing_bytes,
                data.len(),
                "frame_len and trailing_bytes do not add up to the input"
            );
            assert!(accepted.frame_len <= limits.max_message_bytes, "accepted a message over the limit");
        }
        Verdict::Respond(rejection) => {
            assert!((400..700).contains(&rejection.status), "error response with status {}", rejection.status);
            assert!(verdict.status() == Some(rejection.status));

            // Unbounded limits: only the response's own framing is checked here.
            let unbounded = WireLimits { max_message_bytes: usize::MAX, max_body_bytes: usize::MAX };
            let response = rejection.to_response_bytes("fuzz-tag");
            let framing = frame_stream(&response, &unbounded);
            assert_eq!(
                framing,
                Framing::Frame(response.len()),
                "the error response is not exactly one message: {:?}",
                String::from_utf8_lossy(&response)
            );
        }
        Verdict::Drop { log_reason } => {
            assert!(!log_reason.is_empty(), "Drop without a log reason");
        }
    }
}
