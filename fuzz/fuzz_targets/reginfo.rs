//! Feeds arbitrary bytes to the reginfo parser (RFC 3680) with the default
//! limits: once as sent, and once after a lossy UTF-8 conversion so that
//! mutations reach the XML layer instead of stopping at the UTF-8 check.

#![no_main]

use floorwatch::sip::body::{BodyError, Limits, RegInfo, parse_reginfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let text = String::from_utf8_lossy(data);
    for body in [data, text.as_bytes()] {
        let result = parse_reginfo(body, &limits);
        check(body, &result, &limits);
    }
});

fn check(body: &[u8], result: &Result<RegInfo, BodyError>, limits: &Limits) {
    match result {
        Ok(doc) => {
            assert!(body.len() <= limits.max_body_bytes, "accepted a body over the size limit");
            assert!(doc.registrations.len() <= limits.max_items, "accepted {} registrations", doc.registrations.len());
            let contacts: usize = doc.registrations.iter().map(|registration| registration.contacts.len()).sum();
            assert!(contacts <= limits.max_items, "accepted {contacts} contacts");
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            if body.len() <= limits.max_body_bytes && std::str::from_utf8(body).is_err() {
                assert!(matches!(error, BodyError::NotUtf8 { .. }), "invalid UTF-8 gave {error:?}");
            }
        }
    }
}
