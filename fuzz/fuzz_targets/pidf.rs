//! Feeds arbitrary bytes to the PIDF parser (RFC 3863 with RPID, RFC 4480)
//! with the default limits. Each input is parsed as sent, and again after a
//! lossy UTF-8 conversion so that mutations reach the XML layer instead of
//! stopping at the UTF-8 check.

#![no_main]

use floorwatch::sip::body::{BodyError, Limits, Presence, parse_pidf};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let text = String::from_utf8_lossy(data);
    for body in [data, text.as_bytes()] {
        let result = parse_pidf(body, &limits);
        check(body, &result, &limits);
    }
});

fn check(body: &[u8], result: &Result<Presence, BodyError>, limits: &Limits) {
    match result {
        Ok(doc) => {
            assert!(body.len() <= limits.max_body_bytes, "accepted a body over the size limit");
            assert!(doc.tuples.len() <= limits.max_items, "accepted {} tuples", doc.tuples.len());
            assert!(doc.persons.len() <= limits.max_items, "accepted {} persons", doc.persons.len());
            assert!(doc.devices.len() <= limits.max_items, "accepted {} devices", doc.devices.len());

            // The RPID time checks must accept any instant the parser returned.
            let activities = doc.tuples.iter().flat_map(|tuple| &tuple.activities);
            let activities = activities.chain(doc.persons.iter().flat_map(|person| &person.activities));
            for set in activities.chain(doc.devices.iter().flat_map(|device| &device.activities)) {
                for now in [Timestamp::MIN, Timestamp::UNIX_EPOCH, Timestamp::MAX] {
                    let _ = set.applies_at(now);
                }
                for item in &set.items {
                    let _ = (item.as_str(), item.is_unknown());
                }
            }
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            if body.len() <= limits.max_body_bytes && std::str::from_utf8(body).is_err() {
                assert!(matches!(error, BodyError::NotUtf8 { .. }), "invalid UTF-8 gave {error:?}");
            }
        }
    }
}
