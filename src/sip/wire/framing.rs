//! Message framing for stream transports (RFC 3261 §18.3): a message ends
//! Content-Length bytes after the empty line that ends its header section.

use super::WireLimits;
use super::grammar;
use super::scan::{self, clip};

/// The content at the start of a stream buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// Not a whole message yet; read more, up to the message limit.
    NeedMore,
    /// CR and LF bytes before a start line, to discard. A double CRLF is an
    /// RFC 5626 §3.5.1 keep-alive ping, to which the caller replies with CRLF.
    Skip(usize),
    /// One whole message of this many bytes; pass them to
    /// [`super::inspect`] with [`super::Transport::Tcp`].
    Frame(usize),
    /// The stream cannot be framed (bad or multiple Content-Length, or a
    /// message over the limit); close the connection.
    Invalid { log_reason: String },
}

/// Frames the next message in `buffer`. It never requests more than
/// `limits.max_message_bytes` bytes, so the caller can cap its buffer there.
///
/// A message without Content-Length is taken to have no body, as rsipstack's
/// stream codec does, although RFC 3261 §18.3 requires the field on streams.
pub fn frame_stream(buffer: &[u8], limits: &WireLimits) -> Framing {
    let padding = scan::leading_crlf(buffer);
    if padding > 0 {
        return Framing::Skip(padding);
    }

    let window = &buffer[..buffer.len().min(limits.max_message_bytes)];
    let Some(header_end) = scan::find_header_end(window) else {
        if buffer.len() >= limits.max_message_bytes {
            return Framing::Invalid {
                log_reason: format!("no end of header section within {} bytes", limits.max_message_bytes),
            };
        }
        return Framing::NeedMore;
    };

    let body_len = match content_length(&window[..header_end + 2]) {
        Ok(length) => length.unwrap_or(0),
        Err(log_reason) => return Framing::Invalid { log_reason },
    };

    let total = (header_end + 4).saturating_add(body_len);
    if total > limits.max_message_bytes {
        return Framing::Invalid {
            log_reason: format!("message of {total} bytes exceeds the {}-byte limit", limits.max_message_bytes),
        };
    }
    if buffer.len() < total {
        return Framing::NeedMore;
    }
    Framing::Frame(total)
}

/// Reads the one Content-Length of a header section, if present.
fn content_length(head: &[u8]) -> Result<Option<usize>, String> {
    let scanned = scan::scan(head);
    let mut values = scanned.values("content-length");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Content-Length header field".to_string());
    }
    grammar::parse_bounded(value, usize::MAX as u64)
        .and_then(|length| usize::try_from(length).ok())
        .map(Some)
        .ok_or_else(|| format!("Content-Length {:?} is not a non-negative integer", clip(value)))
}
