//! Splits raw bytes into a start line, unfolded header fields and a body
//! offset. Records the first syntax problem instead of stopping, so that a
//! broken request still yields the Via and CSeq needed to respond to it.

use std::borrow::Cow;

/// One header field after unfolding, with its compact name expanded.
#[derive(Debug, Clone)]
pub(super) struct Field {
    /// The long-form name (`Call-ID` for `i`), otherwise as written.
    pub name: String,
    /// `name` in lower case, for lookups.
    pub key: String,
    /// The value with folded lines joined by one space and outer LWS trimmed.
    pub value: String,
}

/// The header section of one message and where its body starts.
#[derive(Debug)]
pub(super) struct Scanned {
    pub start_line: String,
    pub fields: Vec<Field>,
    /// Offset of the first body byte, or `None` when the empty line that ends
    /// the header section is missing.
    pub body_start: Option<usize>,
    /// The first problem found in the header section, as a 400 reason phrase
    /// and a log detail.
    pub problem: Option<(&'static str, String)>,
}

/// Long names of the compact header forms of RFC 3261 §7.3.3 and the
/// extensions that define one (RFC 3515, 3892, 3903, 4028, 4474, 6665, 3841).
const COMPACT_NAMES: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Returns the offset of the CRLFCRLF that ends the header section.
pub(super) fn find_header_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|window| window == b"\r\n\r\n")
}

/// Returns the number of CR and LF bytes before the start line. RFC 3261
/// §7.5 lets a receiver ignore them.
pub(super) fn leading_crlf(data: &[u8]) -> usize {
    data.iter().take_while(|&&byte| byte == b'\r' || byte == b'\n').count()
}

/// Scans `data`, which contains one message and possibly trailing bytes.
pub(super) fn scan(data: &[u8]) -> Scanned {
    let start = leading_crlf(data);
    let rest = &data[start..];

    let mut scanned = Scanned { start_line: String::new(), fields: Vec::new(), body_start: None, problem: None };

    // The header section runs up to the empty line. Without one, the whole
    // input is scanned as headers so the response can still copy Via and CSeq.
    let (head, body_start) = match find_header_end(rest) {
        Some(end) => (&rest[..end], Some(start + end + 4)),
        None => (rest, None),
    };
    scanned.body_start = body_start;
    if body_start.is_none() {
        scanned.note("Header section not terminated", "no empty line (CRLF CRLF) ends the header section".to_string());
    }

    // RFC 3261 §7.3.1 header values are UTF-8 text. The lossy form keeps
    // scanning possible so that the 400 can still be addressed.
    let text: Cow<'_, str> = match std::str::from_utf8(head) {
        Ok(text) => Cow::Borrowed(text),
        Err(error) => {
            scanned
                .note("Header section is not UTF-8", format!("invalid UTF-8 at byte {}", start + error.valid_up_to()));
            String::from_utf8_lossy(head)
        }
    };

    let mut lines = text.split("\r\n");
    scanned.start_line = lines.next().unwrap_or_default().to_string();
    if has_bare_line_break(&scanned.start_line) {
        scanned.note(
            "Bare CR or LF in start line",
            "the start line contains a CR or LF that is not part of a CRLF".to_string(),
        );
    }

    for line in lines {
        scanned.add_line(line);
    }
    scanned
}

fn has_bare_line_break(line: &str) -> bool {
    line.bytes().any(|byte| byte == b'\r' || byte == b'\n')
}

/// Returns the long name for a compact form, or the name as written.
fn long_name(name: &str) -> &str {
    COMPACT_NAMES.iter().find(|(short, _)| short.eq_ignore_ascii_case(name)).map_or(name, |(_, long)| long)
}

// === impl Scanned ===

impl Scanned {
    fn note(&mut self, summary: &'static str, detail: String) {
        if self.problem.is_none() {
            self.problem = Some((summary, detail));
        }
    }

    fn add_line(&mut self, line: &str) {
        if has_bare_line_break(line) {
            self.note("Bare CR or LF in header", format!("header line {:?} contains a lone CR or LF", clip(line)));
        }

        // A line starting with SP or HT continues the previous field
        // (RFC 3261 §7.3.1); the fold becomes one space.
        if line.starts_with([' ', '\t']) {
            match self.fields.last_mut() {
                Some(field) => {
                    let more = line.trim_matches([' ', '\t']);
                    if !more.is_empty() {
                        if !field.value.is_empty() {
                            field.value.push(' ');
                        }
                        field.value.push_str(more);
                    }
                }
                None => self.note(
                    "Continuation line before first header",
                    format!("line {:?} continues no header", clip(line)),
                ),
            }
            return;
        }

        let Some((raw_name, value)) = line.split_once(':') else {
            self.note("Header line without colon", format!("header line {:?} has no colon", clip(line)));
            return;
        };

        // HCOLON allows SP and HT between the name and the colon.
        let name = raw_name.trim_end_matches([' ', '\t']);
        if !super::grammar::is_token(name) {
            self.note("Invalid header name", format!("header name {:?} is not a token", clip(name)));
            return;
        }

        let name = long_name(name).to_string();
        self.fields.push(Field {
            key: name.to_ascii_lowercase(),
            name,
            value: value.trim_matches([' ', '\t']).to_string(),
        });
    }

    /// Returns the values of all fields named `key` (lower-case long name).
    pub fn values<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        let key = key.to_string();
        self.fields.iter().filter(move |field| field.key == key).map(|field| field.value.as_str())
    }

    /// Returns the first value of `key`.
    pub fn first(&self, key: &str) -> Option<&str> {
        self.values(key).next()
    }

    pub fn count(&self, key: &str) -> usize {
        self.values(key).count()
    }

    pub fn is_response(&self) -> bool {
        self.start_line.starts_with("SIP/")
    }
}

/// Shortens untrusted text for a log line.
pub(super) fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    if text.chars().count() <= MAX_CHARS {
        return text.to_string();
    }
    let mut short: String = text.chars().take(MAX_CHARS).collect();
    short.push('…');
    short
}
