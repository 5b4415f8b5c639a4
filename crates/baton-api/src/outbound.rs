//! Where a function's outgoing requests may go: the per-function allow-list (as Spin's
//! `allowed_outbound_hosts`) and the addresses no function reaches unless an operator says so.
//!
//! Pure decisions only; the runtime resolves names and connects, then asks these functions
//! about the address it is about to use (resolve, then check), so DNS cannot smuggle an
//! address past the policy.

use std::net::{IpAddr, SocketAddr};

/// The label listing the hosts a function may call, comma-separated.
pub const LABEL_ALLOWED_HOSTS: &str = "baton.allowed-hosts";

/// Nested calls (a function calling a function through the platform) deeper than this are
/// refused: it stops unbounded recursion while leaving room for real call graphs (the
/// social network nests six deep).
pub const MAX_CALL_DEPTH: u32 = 16;

/// The header carrying how deep in a chain of nested calls a request is; set by the
/// platform, never trusted lower than what the platform knows.
pub const CALL_DEPTH_HEADER: &str = "x-baton-call-depth";

/// One entry of an allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    /// `None`: http and https.
    scheme: Option<String>,
    host: HostMatch,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: strict subdomains of the suffix.
    Suffix(String),
}

/// The hosts one function may call. Empty (the default) denies every host outside the
/// platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    patterns: Vec<HostPattern>,
}

impl AllowedHosts {
    /// Parses the label's value: `*`, or entries `[scheme://]host[:port]` where `host` may be
    /// `*` or `*.suffix` and `port` may be `*`; a scheme without a port means its default
    /// port. The error names the entry at fault.
    pub fn parse(text: &str) -> Result<AllowedHosts, String> {
        let mut patterns = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            patterns.push(parse_entry(entry).map_err(|why| {
                format!("{LABEL_ALLOWED_HOSTS}: entry {entry:?} {why} (expected `*` or [http[s]://]host[:port])")
            })?);
        }
        Ok(AllowedHosts { patterns })
    }

    /// Whether a request to `scheme://host:port` is allowed by the list (before the address
    /// check).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        self.patterns.iter().any(|p| {
            p.scheme.as_deref().is_none_or(|s| s == scheme)
                && p.port.is_none_or(|allowed| allowed == port)
                && match &p.host {
                    HostMatch::Any => true,
                    HostMatch::Exact(h) => *h == host,
                    HostMatch::Suffix(s) => {
                        host.len() > s.len() + 1
                            && host.ends_with(s.as_str())
                            && host.as_bytes()[host.len() - s.len() - 1] == b'.'
                    }
                }
        })
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

fn parse_entry(entry: &str) -> Result<HostPattern, &'static str> {
    if entry == "*" {
        return Ok(HostPattern {
            scheme: None,
            host: HostMatch::Any,
            port: None,
        });
    }
    let (scheme, rest) = match entry.split_once("://") {
        Some((s, rest)) => match s.to_ascii_lowercase().as_str() {
            "http" | "https" => (Some(s.to_ascii_lowercase()), rest),
            "*" => (None, rest),
            _ => return Err("has a scheme other than http or https"),
        },
        None => (None, entry),
    };
    if rest.contains('/') || rest.contains('@') || rest.is_empty() {
        return Err("is not a host");
    }
    let (host, port) = split_host_port(rest)?;
    let port = match port {
        Some("*") => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| "has a bad port")?),
        None => match scheme.as_deref() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => None,
        },
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostMatch::Any
    } else if let Some(suffix) = host.strip_prefix("*.") {
        if !valid_host(suffix) {
            return Err("has a bad host");
        }
        HostMatch::Suffix(suffix.to_string())
    } else {
        if !valid_host(&host) {
            return Err("has a bad host");
        }
        HostMatch::Exact(host)
    };
    Ok(HostPattern { scheme, host, port })
}

fn split_host_port(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or("has a bad IPv6 address")?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err("has a bad IPv6 address"),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, Some(port))),
        Some(_) => Ok((text, None)),
        None => Ok((text, None)),
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && (host.parse::<IpAddr>().is_ok()
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
}

/// Why an address may not be used by a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// One of the node's own listeners (admin, state, peers, metrics).
    OwnListener,
    /// Loopback, link-local, unspecified, multicast or broadcast, not listed by the operator.
    Private,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::OwnListener => "one of the node's own listeners",
            Refusal::Private => {
                "a loopback or link-local address (an operator may allow it with outbound.allow_private)"
            }
        })
    }
}

/// A network an operator opens to functions although it is loopback or link-local
/// (`outbound.allow_private`), as `address/prefix` or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    address: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or address/prefix"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(IpNet { address, prefix })
    }
}

impl IpNet {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they reach.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn is_private(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                // 0.0.0.0/8 reaches this host on Linux.
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// What the node knows of itself when it checks an address.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// The node's listeners; an unspecified IP (`0.0.0.0:p`) stands for every local address
    /// on port `p`.
    pub own_listeners: Vec<SocketAddr>,
    /// The machine's own interface addresses, for listeners bound to every address.
    pub local_addresses: Vec<IpAddr>,
    /// Loopback and link-local networks the operator opens to functions.
    pub allow_private: Vec<IpNet>,
}

impl AddressPolicy {
    /// Whether a connection to `target` would reach `listener` (one bound to every address is
    /// reached through loopback and the machine's own addresses).
    pub fn reaches(&self, listener: SocketAddr, target: SocketAddr) -> bool {
        let ip = canonical(target.ip());
        listener.port() == target.port()
            && (canonical(listener.ip()) == ip
                || (listener.ip().is_unspecified()
                    && (is_private(ip)
                        || self.local_addresses.iter().any(|l| canonical(*l) == ip))))
    }

    /// Checks the address a function's request is about to connect to.
    pub fn check(&self, target: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(target.ip());
        if self.own_listeners.iter().any(|l| self.reaches(*l, target)) {
            return Err(Refusal::OwnListener);
        }
        if is_private(ip) && !self.allow_private.iter().any(|net| net.contains(ip)) {
            return Err(Refusal::Private);
        }
        Ok(())
    }
}

/// The depth of a request in a chain of nested calls, from its header (0 when absent or
/// malformed).
pub fn call_depth(headers: &http::HeaderMap) -> u32 {
    headers
        .get(CALL_DEPTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_match_as_documented() {
        let cases: &[(&str, &str, &str, u16, bool)] = &[
            ("", "http", "example.com", 80, false),
            ("*", "https", "anything.org", 8443, true),
            ("example.com", "http", "example.com", 8080, true),
            ("example.com", "http", "EXAMPLE.com", 80, true),
            ("example.com", "http", "api.example.com", 80, false),
            ("https://example.com", "https", "example.com", 443, true),
            ("https://example.com", "http", "example.com", 80, false),
            ("https://example.com", "https", "example.com", 8443, false),
            ("http://example.com:*", "http", "example.com", 9, true),
            ("*.example.com", "https", "api.example.com", 443, true),
            ("*.example.com", "https", "example.com", 443, false),
            ("*.example.com", "https", "badexample.com", 443, false),
            ("10.0.0.5:6379", "http", "10.0.0.5", 6379, true),
            ("10.0.0.5:6379", "http", "10.0.0.5", 6380, false),
            ("[::1]:80", "http", "[::1]", 80, true),
            ("a.org, b.org", "http", "b.org", 80, true),
            ("*://*:8080", "http", "x.y", 8080, true),
        ];
        for (list, scheme, host, port, expected) in cases {
            let allowed = AllowedHosts::parse(list).unwrap();
            assert_eq!(
                allowed.allows(scheme, host, *port),
                *expected,
                "{list:?} with {scheme}://{host}:{port}"
            );
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "ftp://x.org",
            "x.org/path",
            "x.org:99999",
            "user@x.org",
            "x_y!.org",
        ] {
            let error = AllowedHosts::parse(bad).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_are_checked_after_resolution() {
        let policy = AddressPolicy {
            own_listeners: vec![addr("0.0.0.0:8080"), addr("127.0.0.1:7000")],
            local_addresses: vec!["192.168.1.10".parse().unwrap()],
            allow_private: vec!["127.0.0.1/32".parse().unwrap()],
        };
        let cases: &[(&str, Result<(), Refusal>)] = &[
            ("93.184.216.34:80", Ok(())),
            ("127.0.0.1:8080", Err(Refusal::OwnListener)),
            ("192.168.1.10:8080", Err(Refusal::OwnListener)),
            ("[::ffff:127.0.0.1]:7000", Err(Refusal::OwnListener)),
            ("127.0.0.1:7000", Err(Refusal::OwnListener)),
            ("127.0.0.1:6379", Ok(())),
            ("127.0.0.2:6379", Err(Refusal::Private)),
            ("[::1]:6379", Err(Refusal::Private)),
            ("169.254.169.254:80", Err(Refusal::Private)),
            ("0.0.0.0:6379", Err(Refusal::Private)),
            ("[fe80::1]:80", Err(Refusal::Private)),
            ("192.168.1.10:9000", Ok(())),
        ];
        for (target, expected) in cases {
            assert_eq!(policy.check(addr(target)), *expected, "{target}");
        }
    }

    #[test]
    fn networks_parse_and_contain() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let all: IpNet = "::/0".parse().unwrap();
        assert!(all.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a deployment's label holds, parsing answers (a list or an error naming the
        /// entry) and matching never panics.
        #[test]
        fn any_label_parses_or_is_refused_without_panicking(
            text in "[a-z0-9.*:/\\[\\],@_ -]{0,64}",
            host in "[a-z0-9.\\[\\]:-]{0,24}",
            port in any::<u16>(),
        ) {
            if let Ok(list) = AllowedHosts::parse(&text) {
                let _ = list.allows("http", &host, port);
                let _ = list.allows("https", &host, port);
            }
        }

        /// The same for operator networks, and every IPv4 address checks without panicking.
        #[test]
        fn any_network_parses_or_is_refused(text in "[0-9a-f.:/]{0,48}", ip in any::<u32>(), port in any::<u16>()) {
            let net = text.parse::<IpNet>();
            let address = SocketAddr::new(IpAddr::from(ip.to_be_bytes()), port);
            if let Ok(net) = net {
                let _ = net.contains(address.ip());
            }
            let policy = AddressPolicy {
                own_listeners: vec![SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 8080)],
                local_addresses: Vec::new(),
                allow_private: Vec::new(),
            };
            let checked = policy.check(address);
            if address.ip().is_loopback() {
                prop_assert!(checked.is_err(), "loopback {address} passed");
            }
        }
    }
}
