//! Syntax checks from the RFC 3261 §25 grammar that the SIP stack's parser
//! does not make: character classes, URIs, name-addr and addr-spec, Via,
//! header parameters and numbers. Each check returns a 400 reason phrase on
//! failure.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The reason phrase of a 400 response, naming the syntax problem as RFC 3261
/// §21.4.1 recommends.
pub(super) type Invalid = &'static str;

/// Facts the address check extracts from one name-addr or addr-spec.
#[derive(Debug, Clone, Default)]
pub(super) struct AddressFacts {
    pub has_tag: bool,
}

/// Facts the URI check extracts from a URI.
#[derive(Debug, Clone)]
pub(super) struct UriFacts {
    /// Whether a `?` header part is present (sip and sips only).
    pub has_headers: bool,
}

pub(super) fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&byte)
}

pub(super) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_char)
}

fn is_word_char(byte: u8) -> bool {
    is_token_char(byte) || b"()<>:\\\"/[]?{}".contains(&byte)
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte)
}

fn is_reserved(byte: u8) -> bool {
    b";/?:@&=+$,".contains(&byte)
}

fn is_lws(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Checks that every byte is allowed or part of a `%` HEXDIG HEXDIG escape.
fn all_escaped(text: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if allowed(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Checks a Call-ID: `word [ "@" word ]`.
pub(super) fn check_call_id(value: &str) -> Result<(), Invalid> {
    let mut parts = value.splitn(2, '@');
    let local = parts.next().unwrap_or_default();
    let host = parts.next();
    let valid = |word: &str| !word.is_empty() && word.bytes().all(is_word_char);
    if valid(local) && host.is_none_or(valid) { Ok(()) } else { Err("Invalid Call-ID header field") }
}

/// Parses a decimal number of at most `max`; leading zeros are allowed.
pub(super) fn parse_bounded(text: &str, max: u64) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 20 {
        return None;
    }
    let number = if digits.is_empty() { 0 } else { digits.parse::<u64>().ok()? };
    (number <= max).then_some(number)
}

/// Splits a CSeq value into its number text and method (`1*DIGIT LWS Method`).
pub(super) fn split_cseq(value: &str) -> Option<(&str, &str)> {
    let (number, method) = value.split_once([' ', '\t'])?;
    let method = method.trim_start_matches([' ', '\t']);
    if number.is_empty() || !is_token(method) {
        return None;
    }
    Some((number, method))
}

/// Checks a host: hostname, IPv4 address or bracketed IPv6 reference.
pub(super) fn check_host(host: &str) -> Result<(), Invalid> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("Invalid IPv6 reference")?;
        return inner.parse::<Ipv6Addr>().map(|_| ()).map_err(|_| "Invalid IPv6 reference");
    }

    if !host.is_empty() && host.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
        return host.parse::<Ipv4Addr>().map(|_| ()).map_err(|_| "Invalid IPv4 address");
    }

    // hostname = *( domainlabel "." ) toplabel [ "." ]
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let top_ok = labels.last().is_some_and(|top| top.starts_with(|c: char| c.is_ascii_alphabetic()));
    if labels.iter().all(|label| label_ok(label)) && top_ok { Ok(()) } else { Err("Invalid host") }
}

fn check_port(port: &str) -> Result<(), Invalid> {
    parse_bounded(port, u64::from(u16::MAX)).map(|_| ()).ok_or("Invalid port")
}

/// Checks a URI: a SIP or SIPS URI against the RFC 3261 grammar, any other
/// scheme against the generic `absoluteURI` characters.
pub(super) fn check_uri(uri: &str) -> Result<UriFacts, Invalid> {
    let (scheme, rest) = uri.split_once(':').ok_or("URI without scheme")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte));
    if !scheme_ok {
        return Err("Invalid URI scheme");
    }

    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let has_headers = check_sip_uri(rest)?;
        return Ok(UriFacts { has_headers });
    }

    if rest.is_empty() || !all_escaped(rest, |byte| is_reserved(byte) || is_unreserved(byte)) {
        return Err("Invalid URI");
    }
    Ok(UriFacts { has_headers: false })
}

/// Checks the part of a SIP URI after `sip:`; returns whether it has headers.
fn check_sip_uri(rest: &str) -> Result<bool, Invalid> {
    // Neither user, password, host, parameters nor headers may contain an
    // unescaped '@', so the first one ends the userinfo.
    let host_part = match rest.split_once('@') {
        Some((userinfo, host_part)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            let user_ok =
                !user.is_empty() && all_escaped(user, |byte| is_unreserved(byte) || b"&=+$,;?/".contains(&byte));
            let password_ok = password
                .is_none_or(|password| all_escaped(password, |byte| is_unreserved(byte) || b"&=+$,".contains(&byte)));
            if !user_ok || !password_ok {
                return Err("Invalid user part in SIP URI");
            }
            host_part
        }
        None => rest,
    };

    // host [ ":" port ]
    let (host, after_host) = if host_part.starts_with('[') {
        let close = host_part.find(']').ok_or("Invalid IPv6 reference")?;
        host_part.split_at(close + 1)
    } else {
        let end = host_part.find([':', ';', '?']).unwrap_or(host_part.len());
        host_part.split_at(end)
    };
    check_host(host)?;

    let after_port = match after_host.strip_prefix(':') {
        Some(port_and_more) => {
            let end = port_and_more.find([';', '?']).unwrap_or(port_and_more.len());
            check_port(&port_and_more[..end])?;
            &port_and_more[end..]
        }
        None => after_host,
    };

    let (params, headers) = match after_port.split_once('?') {
        Some((params, headers)) => (params, Some(headers)),
        None => (after_port, None),
    };

    if !params.is_empty() {
        let params = params.strip_prefix(';').ok_or("Invalid SIP URI")?;
        let paramchar = |byte: u8| is_unreserved(byte) || b"[]/:&+$".contains(&byte);
        for param in params.split(';') {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (param, None),
            };
            let name_ok = !name.is_empty() && all_escaped(name, paramchar);
            let value_ok = value.is_none_or(|value| !value.is_empty() && all_escaped(value, paramchar));
            if !name_ok || !value_ok {
                return Err("Invalid SIP URI parameter");
            }
        }
    }

    if let Some(headers) = headers {
        let hchar = |byte: u8| is_unreserved(byte) || b"[]/?:+$".contains(&byte);
        for header in headers.split('&') {
            let (name, value) = header.split_once('=').ok_or("Invalid SIP URI header")?;
            if name.is_empty() || !all_escaped(name, hchar) || !all_escaped(value, hchar) {
                return Err("Invalid SIP URI header");
            }
        }
    }

    Ok(headers.is_some())
}

/// A byte cursor over one header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

// === impl Cursor ===

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { bytes: text.as_bytes(), text, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn skip_lws(&mut self) -> bool {
        let before = self.at;
        while self.peek().is_some_and(is_lws) {
            self.at += 1;
        }
        self.at > before
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    /// Takes a quoted-string; the cursor is on the opening quote.
    fn quoted(&mut self) -> Result<(), Invalid> {
        self.at += 1;
        loop {
            match self.peek() {
                None => return Err("Unterminated quoted string"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    // quoted-pair excludes LF and CR as the escaped octet.
                    match self.bytes.get(self.at + 1) {
                        Some(b'\r' | b'\n') | None => return Err("Unterminated quoted string"),
                        Some(_) => self.at += 2,
                    }
                }
                Some(_) => self.at += 1,
            }
        }
    }

    /// Takes `*( SEMI generic-param )`; returns whether a `tag` was among them.
    fn params(&mut self) -> Result<bool, Invalid> {
        let mut has_tag = false;
        loop {
            let before = self.at;
            self.skip_lws();
            if !self.eat(b';') {
                self.at = before;
                return Ok(has_tag);
            }
            self.skip_lws();
            let name = self.take_while(is_token_char);
            if name.is_empty() {
                return Err("Empty or invalid header parameter");
            }
            has_tag |= name.eq_ignore_ascii_case("tag");

            let before_equal = self.at;
            self.skip_lws();
            if !self.eat(b'=') {
                self.at = before_equal;
                continue;
            }
            self.skip_lws();
            self.param_value()?;
        }
    }

    /// Takes a gen-value: token, host, quoted-string, or (as RFC 5118 §4.5
    /// allows for `received`) an IPv6 address without brackets.
    fn param_value(&mut self) -> Result<(), Invalid> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'[') => {
                let reference = self.take_while(|byte| byte != b']');
                if !self.eat(b']') {
                    return Err("Invalid IPv6 reference");
                }
                check_host(&format!("{reference}]"))
            }
            _ => {
                let value = self.take_while(|byte| is_token_char(byte) || byte == b':');
                if value.is_empty() {
                    return Err("Header parameter without value");
                }
                if value.contains(':') && value.parse::<Ipv6Addr>().is_err() {
                    return Err("Invalid header parameter value");
                }
                Ok(())
            }
        }
    }

    /// Takes one name-addr or addr-spec followed by its parameters.
    fn address(&mut self) -> Result<AddressFacts, Invalid> {
        self.skip_lws();
        let start = self.at;

        // name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, where the
        // display name is a quoted-string or tokens separated by LWS.
        let is_name_addr = if self.peek() == Some(b'"') {
            self.quoted()?;
            self.skip_lws();
            if self.peek() != Some(b'<') {
                return Err("Display name not followed by <URI>");
            }
            true
        } else {
            loop {
                self.take_while(is_token_char);
                let had_lws = self.skip_lws();
                if !had_lws || !self.peek().is_some_and(is_token_char) {
                    break;
                }
            }
            self.peek() == Some(b'<')
        };

        if is_name_addr {
            self.at += 1;
            let uri = self.take_while(|byte| byte != b'>');
            if !self.eat(b'>') {
                return Err("Unterminated <URI>");
            }
            if uri.bytes().any(is_lws) {
                return Err("Whitespace inside <URI>");
            }
            check_uri(uri)?;
        } else {
            // addr-spec: the URI ends at LWS, ';' or ','. RFC 3261 §20.10
            // requires <> when the URI contains ',', ';' or '?'.
            self.at = start;
            let uri = self.take_while(|byte| !is_lws(byte) && byte != b';' && byte != b',');
            if uri.contains('?') {
                return Err("URI with headers must be enclosed in <>");
            }
            check_uri(uri)?;
        }

        let has_tag = self.params()?;
        Ok(AddressFacts { has_tag })
    }
}

/// Checks a From or To value: one address with parameters.
pub(super) fn check_from_to(value: &str) -> Result<AddressFacts, Invalid> {
    let mut cursor = Cursor::new(value);
    let facts = cursor.address()?;
    cursor.skip_lws();
    if !cursor.at_end() {
        return Err("Unexpected text after address");
    }
    Ok(facts)
}

/// Checks a Contact value: `*` or a comma-separated list of addresses.
pub(super) fn check_contact(value: &str) -> Result<(), Invalid> {
    if value == "*" {
        return Ok(());
    }
    let mut cursor = Cursor::new(value);
    loop {
        cursor.address()?;
        cursor.skip_lws();
        if cursor.at_end() {
            return Ok(());
        }
        if !cursor.eat(b',') {
            return Err("Unexpected text after Contact address");
        }
    }
}

/// Takes `sent-protocol LWS sent-by`: the part of a via-parm needed to route
/// a response.
fn via_sent_by(cursor: &mut Cursor<'_>) -> Result<(), Invalid> {
    cursor.skip_lws();
    for part in 0..3 {
        if part > 0 {
            cursor.skip_lws();
            if !cursor.eat(b'/') {
                return Err("Invalid Via sent-protocol");
            }
            cursor.skip_lws();
        }
        if cursor.take_while(is_token_char).is_empty() {
            return Err("Invalid Via sent-protocol");
        }
    }
    if !cursor.skip_lws() {
        return Err("Invalid Via sent-by");
    }

    let host = if cursor.peek() == Some(b'[') {
        let reference = cursor.take_while(|byte| byte != b']');
        if !cursor.eat(b']') {
            return Err("Invalid IPv6 reference");
        }
        format!("{reference}]")
    } else {
        cursor.take_while(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.').to_string()
    };
    check_host(&host)?;

    let before_colon = cursor.at;
    cursor.skip_lws();
    if cursor.eat(b':') {
        cursor.skip_lws();
        check_port(cursor.take_while(|byte| byte.is_ascii_digit()))?;
    } else {
        cursor.at = before_colon;
    }
    Ok(())
}

/// Checks that the first via-parm of a Via value has a usable sent-by.
pub(super) fn check_top_via(value: &str) -> Result<(), Invalid> {
    via_sent_by(&mut Cursor::new(value))
}

/// Checks a whole Via value: one or more comma-separated via-parms.
pub(super) fn check_via(value: &str) -> Result<(), Invalid> {
    let mut cursor = Cursor::new(value);
    loop {
        via_sent_by(&mut cursor)?;
        cursor.params()?;
        cursor.skip_lws();
        if cursor.at_end() {
            return Ok(());
        }
        if !cursor.eat(b',') {
            return Err("Unexpected text in Via");
        }
    }
}

/// Splits a comma-separated list of tokens (Require, Supported), rejecting
/// anything that is not a token.
pub(super) fn option_tags(value: &str) -> Result<Vec<&str>, Invalid> {
    value
        .split(',')
        .map(|tag| tag.trim_matches([' ', '\t']))
        .map(|tag| if is_token(tag) { Ok(tag) } else { Err("Invalid option tag") })
        .collect()
}

/// Returns the lower-case `type/subtype` of a Content-Type value.
pub(super) fn media_type(value: &str) -> Result<String, Invalid> {
    let essence = value.split(';').next().unwrap_or_default();
    let (kind, subtype) = essence.split_once('/').ok_or("Invalid Content-Type")?;
    let kind = kind.trim_matches([' ', '\t']);
    let subtype = subtype.trim_matches([' ', '\t']);
    if !is_token(kind) || !is_token(subtype) {
        return Err("Invalid Content-Type");
    }
    Ok(format!("{kind}/{subtype}").to_ascii_lowercase())
}
