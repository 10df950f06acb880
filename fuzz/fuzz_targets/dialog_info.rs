//! Feeds arbitrary bytes to the dialog-info parser (RFC 4235) with the
//! default limits: once as sent, and once after a lossy UTF-8 conversion so
//! that mutations reach the XML layer instead of stopping at the UTF-8 check.

#![no_main]

use floorwatch::sip::body::{BodyError, DialogInfo, Limits, parse_dialog_info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let text = String::from_utf8_lossy(data);
    for body in [data, text.as_bytes()] {
        let result = parse_dialog_info(body, &limits);
        check(body, &result, &limits);
    }
});

fn check(body: &[u8], result: &Result<DialogInfo, BodyError>, limits: &Limits) {
    match result {
        Ok(doc) => {
            assert!(body.len() <= limits.max_body_bytes, "accepted a body over the size limit");
            assert!(doc.dialogs.len() <= limits.max_items, "accepted {} dialogs", doc.dialogs.len());
            for dialog in &doc.dialogs {
                assert!(!dialog.id.trim().is_empty(), "accepted a dialog with a blank id");
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
