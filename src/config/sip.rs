//! The `[sip]` section: listeners, the outbound proxy, our identity, digest
//! credentials, allowed source networks, event packages and limits of the
//! SIP ingest adapter.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use super::parse::Checker;

/// Transport of a SIP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipTransport {
    Udp,
    Tcp,
}

/// One SIP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipListener {
    pub transport: SipTransport,
    pub addr: SocketAddr,
}

/// The typed `[sip]` section, present only when `enabled = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    pub listeners: Vec<SipListener>,
    /// Host and port every SUBSCRIBE is sent to, and its transport.
    pub outbound_proxy: SipListener,
    /// The `sip:` URI we subscribe as (From); its user part is the Contact user.
    pub identity: String,
    /// Event package names: `dialog`, `presence`, `reg`.
    pub packages: Vec<String>,
    pub expires_seconds: u32,
    /// CIDR networks allowed to send requests.
    pub allowed_networks: Vec<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub max_message_bytes: usize,
    pub max_body_bytes: usize,
    pub max_xml_depth: usize,
    /// Most dialogs, and most contacts, tracked per AOR and per document.
    pub max_items: usize,
    pub max_tcp_connections: usize,
    pub max_subscriptions_per_agent: usize,
    pub start_spread_seconds: u64,
    pub health_grace_seconds: u64,
    pub expired_is_logout: bool,
    /// Normalized presence code (`rpid:away`, `presence:open`, …) →
    /// platform state code in `[state_codes]`.
    pub presence_codes: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSip {
    pub enabled: bool,
    pub listen: Vec<String>,
    pub outbound_proxy: String,
    pub identity: String,
    pub packages: Vec<String>,
    pub expires_seconds: u32,
    pub allowed_networks: Vec<String>,
    pub auth_username: String,
    pub auth_password: String,
    pub max_message_bytes: usize,
    pub max_body_bytes: usize,
    pub max_xml_depth: usize,
    pub max_items: usize,
    pub max_tcp_connections: usize,
    pub max_subscriptions_per_agent: usize,
    pub start_spread_seconds: u64,
    pub health_grace_seconds: u64,
    pub expired_is_logout: bool,
    pub presence_codes: BTreeMap<String, String>,
}

impl Default for RawSip {
    fn default() -> Self {
        RawSip {
            enabled: false,
            listen: vec!["udp:127.0.0.1:5070".into()],
            outbound_proxy: String::new(),
            identity: "sip:floorwatch@localhost".into(),
            packages: vec!["dialog".into(), "presence".into(), "reg".into()],
            expires_seconds: 3600,
            allowed_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            auth_username: String::new(),
            auth_password: String::new(),
            max_message_bytes: 65_535,
            max_body_bytes: 32_768,
            max_xml_depth: 32,
            max_items: 64,
            max_tcp_connections: 64,
            max_subscriptions_per_agent: 12,
            start_spread_seconds: 30,
            health_grace_seconds: 60,
            expired_is_logout: false,
            presence_codes: BTreeMap::new(),
        }
    }
}

const PACKAGES: [&str; 3] = ["dialog", "presence", "reg"];

/// Parses `udp:IP:PORT` or `tcp:IP:PORT`.
pub fn parse_listener(text: &str) -> Result<SipListener, String> {
    let text = text.trim();
    let (transport, addr) = match text.split_once(':') {
        Some(("udp", rest)) => (SipTransport::Udp, rest),
        Some(("tcp", rest)) => (SipTransport::Tcp, rest),
        _ => return Err(format!("\"{text}\" does not start with udp: or tcp:")),
    };
    let addr: SocketAddr = addr.parse().map_err(|_| format!("\"{addr}\" is not an IP address and port"))?;
    Ok(SipListener { transport, addr })
}

/// Parses `sip:HOST:PORT[;transport=tcp]`, where HOST must be an IP address.
pub fn parse_proxy(text: &str) -> Result<SipListener, String> {
    let text = text.trim();
    let rest = text.strip_prefix("sip:").ok_or_else(|| format!("\"{text}\" does not start with sip:"))?;
    let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
    let mut transport = SipTransport::Udp;
    for param in params.split(';').filter(|p| !p.is_empty()) {
        match param.to_ascii_lowercase().as_str() {
            "transport=udp" => transport = SipTransport::Udp,
            "transport=tcp" => transport = SipTransport::Tcp,
            "lr" => {}
            other => return Err(format!("unsupported parameter \"{other}\"")),
        }
    }
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let addr: SocketAddr = hostport
        .parse()
        .or_else(|_| format!("{hostport}:5060").parse())
        .map_err(|_| format!("\"{hostport}\" is not an IP address with an optional port"))?;
    Ok(SipListener { transport, addr })
}

pub(crate) fn build_sip(raw: RawSip, checker: &mut Checker) -> Option<SipConfig> {
    if !raw.enabled {
        return None;
    }
    let mut listeners = Vec::new();
    for (i, text) in raw.listen.iter().enumerate() {
        match parse_listener(text) {
            Ok(listener) if listener.transport == SipTransport::Tcp && listener.addr.port() == 0 => checker.problem(
                &format!("sip.listen[{i}]"),
                format!("TCP listener \"{text}\" has port 0"),
                "give TCP listeners a concrete port; the port is advertised in Contact and Via",
            ),
            Ok(listener) if listener.addr.ip().is_unspecified() => checker.problem(
                &format!("sip.listen[{i}]"),
                format!("listener \"{text}\" has the unspecified address {}", listener.addr.ip()),
                "use the address the presence server reaches floorwatch at; it is advertised in Contact and Via",
            ),
            Ok(listener) => listeners.push(listener),
            Err(message) => checker.problem(
                &format!("sip.listen[{i}]"),
                message,
                "write \"udp:127.0.0.1:5070\" or \"tcp:127.0.0.1:5070\"",
            ),
        }
    }
    if raw.listen.is_empty() {
        checker.problem("sip.listen", "no listener", "add at least one, such as \"udp:127.0.0.1:5070\"");
    }
    let proxy = match parse_proxy(&raw.outbound_proxy) {
        Ok(proxy) => Some(proxy),
        Err(message) => {
            checker.problem(
                "sip.outbound_proxy",
                message,
                "write the presence server as \"sip:192.0.2.10:5060\", with \";transport=tcp\" for TCP",
            );
            None
        }
    };
    if let Some(proxy) = proxy
        && !listeners.iter().any(|l| l.transport == proxy.transport)
    {
        checker.problem(
            "sip.outbound_proxy",
            format!("the proxy uses {:?} but no sip.listen entry does", proxy.transport),
            "add a listener of the proxy's transport",
        );
    }
    let identity = raw.identity.trim().to_owned();
    let user_ok = identity
        .strip_prefix("sip:")
        .and_then(|rest| rest.split_once('@'))
        .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty() && !identity.contains(['<', '>', ' ']));
    if !user_ok {
        checker.problem(
            "sip.identity",
            format!("\"{identity}\" is not a sip:user@host URI"),
            "write the watcher's address, such as \"sip:floorwatch@pbx.example.com\"",
        );
    }
    for package in &raw.packages {
        if !PACKAGES.contains(&package.as_str()) {
            checker.problem(
                "sip.packages",
                format!("unknown event package \"{package}\""),
                format!("use {}", PACKAGES.join(", ")),
            );
        }
    }
    if raw.packages.is_empty() {
        checker.problem("sip.packages", "no event package", "list at least one of dialog, presence, reg");
    }
    if raw.expires_seconds < 60 {
        checker.problem(
            "sip.expires_seconds",
            format!("{} is less than the minimum 60", raw.expires_seconds),
            "use 60 or more; 3600 is common",
        );
    }
    if let Err(error) = crate::sip::wire::SourceFilter::new(&raw.allowed_networks) {
        checker.problem("sip.allowed_networks", error.to_string(), "write CIDR networks such as \"192.0.2.0/24\"");
    }
    let limits = [
        ("sip.max_message_bytes", raw.max_message_bytes, 1024),
        ("sip.max_body_bytes", raw.max_body_bytes, 256),
        ("sip.max_xml_depth", raw.max_xml_depth, 4),
        ("sip.max_items", raw.max_items, 1),
        ("sip.max_tcp_connections", raw.max_tcp_connections, 1),
        ("sip.max_subscriptions_per_agent", raw.max_subscriptions_per_agent, 1),
    ];
    for (key, value, min) in limits {
        if value < min {
            checker.problem(key, format!("{value} is less than the minimum {min}"), format!("use {min} or more"));
        }
    }
    if raw.max_message_bytes > 65_535 {
        checker.problem(
            "sip.max_message_bytes",
            format!("{} is more than 65535", raw.max_message_bytes),
            "use 65535 or less, the largest UDP payload",
        );
    }
    if raw.auth_password.is_empty() != raw.auth_username.is_empty() {
        checker.problem(
            "sip.auth_username",
            "only one of auth_username and auth_password is set",
            "set both for digest authentication, or neither",
        );
    }
    let non_empty = |s: String| (!s.trim().is_empty()).then_some(s);
    Some(SipConfig {
        listeners,
        outbound_proxy: proxy
            .unwrap_or(SipListener { transport: SipTransport::Udp, addr: SocketAddr::from(([127, 0, 0, 1], 5060)) }),
        identity,
        packages: raw.packages,
        expires_seconds: raw.expires_seconds,
        allowed_networks: raw.allowed_networks,
        auth_username: non_empty(raw.auth_username),
        auth_password: non_empty(raw.auth_password),
        max_message_bytes: raw.max_message_bytes,
        max_body_bytes: raw.max_body_bytes,
        max_xml_depth: raw.max_xml_depth,
        max_items: raw.max_items,
        max_tcp_connections: raw.max_tcp_connections,
        max_subscriptions_per_agent: raw.max_subscriptions_per_agent,
        start_spread_seconds: raw.start_spread_seconds,
        health_grace_seconds: raw.health_grace_seconds,
        expired_is_logout: raw.expired_is_logout,
        presence_codes: raw.presence_codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_parses_udp_and_tcp() {
        assert_eq!(parse_listener("tcp:127.0.0.1:5070").map(|l| l.transport), Ok(SipTransport::Tcp));
        assert_eq!(parse_listener("udp:[::1]:5070").map(|l| l.addr.port()), Ok(5070));
    }

    #[test]
    fn listener_rejects_missing_transport() {
        assert!(parse_listener("127.0.0.1:5070").is_err());
    }

    #[test]
    fn proxy_defaults_port_and_reads_transport() {
        let proxy = parse_proxy("sip:192.0.2.10;transport=tcp").unwrap();
        assert_eq!((proxy.transport, proxy.addr.port()), (SipTransport::Tcp, 5060));
    }

    #[test]
    fn proxy_rejects_host_name() {
        assert!(parse_proxy("sip:presence.example.com").is_err());
    }
}
