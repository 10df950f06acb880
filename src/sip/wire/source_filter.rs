//! The networks allowed to send requests, as a list of CIDR prefixes.

use std::net::IpAddr;

use thiserror::Error;

/// A set of allowed source networks. An empty filter allows no source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFilter {
    networks: Vec<Network>,
}

/// One CIDR prefix. Host bits below the prefix are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix_len: u8,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SourceFilterError {
    #[error("source network {0:?} is not an IP address or CIDR prefix; write it like 192.0.2.0/24 or 2001:db8::/32")]
    Syntax(String),
    #[error("source network {value:?} has a prefix length above {max}; use 0 to {max}")]
    PrefixTooLong { value: String, max: u8 },
    #[error("source network {value:?} has host bits set below the prefix; write {suggestion}")]
    HostBits { value: String, suggestion: String },
}

// === impl SourceFilter ===

impl SourceFilter {
    /// Parses networks such as `192.0.2.0/24`, `2001:db8::/32` or a bare
    /// address (one host).
    pub fn new<S: AsRef<str>>(networks: &[S]) -> Result<Self, SourceFilterError> {
        let networks =
            networks.iter().map(|network| Network::parse(network.as_ref())).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { networks })
    }

    /// Returns whether `source` lies in one of the networks. An IPv4-mapped
    /// IPv6 address (`::ffff:192.0.2.1`) is matched as the IPv4 address.
    pub fn allows(&self, source: IpAddr) -> bool {
        let source = source.to_canonical();
        self.networks.iter().any(|network| network.contains(source))
    }
}

// === impl Network ===

impl Network {
    fn parse(value: &str) -> Result<Self, SourceFilterError> {
        let syntax = || SourceFilterError::Syntax(value.to_string());
        let (address, prefix_len) = match value.trim().split_once('/') {
            Some((address, prefix)) => {
                let address: IpAddr = address.parse().map_err(|_| syntax())?;
                let prefix_ok = !prefix.is_empty() && prefix.bytes().all(|byte| byte.is_ascii_digit());
                let prefix_len: u8 =
                    if prefix_ok { prefix.parse().map_err(|_| syntax())? } else { return Err(syntax()) };
                (address, prefix_len)
            }
            None => {
                let address: IpAddr = value.trim().parse().map_err(|_| syntax())?;
                (address, max_prefix(address))
            }
        };

        let max = max_prefix(address);
        if prefix_len > max {
            return Err(SourceFilterError::PrefixTooLong { value: value.to_string(), max });
        }

        let network = Self { address: mask(address, prefix_len), prefix_len };
        if network.address != address {
            return Err(SourceFilterError::HostBits {
                value: value.to_string(),
                suggestion: format!("{}/{}", network.address, prefix_len),
            });
        }
        Ok(network)
    }

    fn contains(&self, source: IpAddr) -> bool {
        let same_family = source.is_ipv4() == self.address.is_ipv4();
        same_family && mask(source, self.prefix_len) == self.address
    }
}

fn max_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Clears the bits of `address` below the first `prefix_len`.
fn mask(address: IpAddr, prefix_len: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix_len)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(networks: &[&str]) -> SourceFilter {
        SourceFilter::new(networks).expect("test networks must parse")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address must parse")
    }

    #[test]
    fn filter_allows_address_in_ipv4_prefix() {
        assert!(filter(&["192.0.2.0/24"]).allows(ip("192.0.2.77")));
    }

    #[test]
    fn filter_rejects_address_outside_ipv4_prefix() {
        assert!(!filter(&["192.0.2.0/24"]).allows(ip("198.51.100.7")));
    }

    #[test]
    fn filter_allows_address_in_ipv6_prefix() {
        assert!(filter(&["2001:db8::/32"]).allows(ip("2001:db8:1::5")));
    }

    #[test]
    fn filter_rejects_address_outside_ipv6_prefix() {
        assert!(!filter(&["2001:db8::/32"]).allows(ip("2001:db9::5")));
    }

    #[test]
    fn filter_single_host_prefix() {
        let loopback = filter(&["127.0.0.1/32"]);
        assert!(loopback.allows(ip("127.0.0.1")));
        assert!(!loopback.allows(ip("127.0.0.2")));
    }

    #[test]
    fn filter_bare_address_is_one_host() {
        let host = filter(&["192.0.2.10"]);
        assert!(host.allows(ip("192.0.2.10")));
        assert!(!host.allows(ip("192.0.2.11")));
    }

    #[test]
    fn filter_matches_ipv4_mapped_source() {
        assert!(filter(&["192.0.2.0/24"]).allows(ip("::ffff:192.0.2.9")));
    }

    #[test]
    fn filter_keeps_families_apart() {
        assert!(!filter(&["0.0.0.0/0"]).allows(ip("2001:db8::1")));
        assert!(!filter(&["::/0"]).allows(ip("192.0.2.1")));
    }

    #[test]
    fn filter_zero_prefix_allows_family() {
        assert!(filter(&["0.0.0.0/0"]).allows(ip("203.0.113.1")));
        assert!(filter(&["::/0"]).allows(ip("2001:db8::1")));
    }

    #[test]
    fn filter_empty_allows_nothing() {
        assert!(!filter(&[]).allows(ip("127.0.0.1")));
    }

    #[test]
    fn filter_any_network_matches() {
        let two = filter(&["192.0.2.0/24", "2001:db8::/32"]);
        assert!(two.allows(ip("192.0.2.1")));
        assert!(two.allows(ip("2001:db8::1")));
    }

    #[test]
    fn filter_rejects_host_bits() {
        let error = SourceFilter::new(&["192.0.2.1/24"]).unwrap_err();
        assert_eq!(
            error,
            SourceFilterError::HostBits { value: "192.0.2.1/24".to_string(), suggestion: "192.0.2.0/24".to_string() }
        );
    }

    #[test]
    fn filter_rejects_long_prefix() {
        assert!(matches!(SourceFilter::new(&["192.0.2.0/33"]), Err(SourceFilterError::PrefixTooLong { max: 32, .. })));
        assert!(matches!(
            SourceFilter::new(&["2001:db8::/129"]),
            Err(SourceFilterError::PrefixTooLong { max: 128, .. })
        ));
    }

    #[test]
    fn filter_rejects_malformed_networks() {
        for bad in
            ["", "example.com/24", "192.0.2.0/", "192.0.2.0/-1", "192.0.2.0/+8", "192.0.2.0/24/8", "300.0.2.0/24"]
        {
            assert!(
                matches!(SourceFilter::new(&[bad]), Err(SourceFilterError::Syntax(_))),
                "{bad:?} must be rejected as a syntax error"
            );
        }
    }
}
