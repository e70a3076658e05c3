//! The notification domain: what a notification may hold, which deliveries it gets, how a
//! webhook body is signed, and when a failed delivery is tried again. No gRPC, no SQL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::store::{Category, Priority};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

/// The header with the Unix time (seconds) a delivery was signed at.
pub const TIMESTAMP_HEADER: &str = "x-fastbreak-timestamp";
/// The header with the signature: `v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-fastbreak-signature";
/// The header with the delivery's id (the same on every attempt, for deduplication).
pub const DELIVERY_HEADER: &str = "x-fastbreak-delivery";

/// A link from a notification to what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A trade.
    Trade(uuid::Uuid),
    /// A moment.
    Moment(uuid::Uuid),
    /// A strategy.
    Strategy(uuid::Uuid),
    /// A risk alert.
    RiskAlert(uuid::Uuid),
    /// An agent's decision.
    Decision(uuid::Uuid),
}

impl Link {
    /// As stored: `{"kind": "trade", "id": "<uuid>"}`.
    pub fn to_json(self) -> serde_json::Value {
        let (kind, id) = match self {
            Link::Trade(id) => ("trade", id),
            Link::Moment(id) => ("moment", id),
            Link::Strategy(id) => ("strategy", id),
            Link::RiskAlert(id) => ("risk_alert", id),
            Link::Decision(id) => ("decision", id),
        };
        json!({"kind": kind, "id": id.to_string()})
    }

    /// Reads stored links back, skipping any this build does not know.
    pub fn from_json(value: &serde_json::Value) -> Vec<Link> {
        let Some(items) = value.as_array() else { return Vec::new() };
        items
            .iter()
            .filter_map(|item| {
                let id = uuid::Uuid::parse_str(item.get("id")?.as_str()?).ok()?;
                Some(match item.get("kind")?.as_str()? {
                    "trade" => Link::Trade(id),
                    "moment" => Link::Moment(id),
                    "strategy" => Link::Strategy(id),
                    "risk_alert" => Link::RiskAlert(id),
                    "decision" => Link::Decision(id),
                    _ => return None,
                })
            })
            .collect()
    }
}

/// The blocks of the IANA IPv4 special-purpose registry that `Ipv4Addr` has no stable method
/// for (the others: loopback, private, link-local, multicast, documentation).
const SPECIAL_IPV4: [(Ipv4Addr, u32); 6] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),      // "this network", with the unspecified address
    (Ipv4Addr::new(100, 64, 0, 0), 10),  // shared address space (carrier-grade NAT)
    (Ipv4Addr::new(192, 0, 0, 0), 24),   // IETF protocol assignments
    (Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast
    (Ipv4Addr::new(198, 18, 0, 0), 15),  // benchmarking
    (Ipv4Addr::new(240, 0, 0, 0), 4),    // reserved, with the broadcast address
];

/// The IPv6 blocks that are not public and that `Ipv6Addr` has no stable method for (the
/// others: unspecified, loopback, unique local, link-local, multicast).
const SPECIAL_IPV6: [(Ipv6Addr, u32); 7] = [
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use IPv4/IPv6 translation
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),     // discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),    // IETF protocol assignments, Teredo among them
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),    // documentation
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16),    // segment routing
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),    // site-local (deprecated)
];

/// Whether two addresses agree in their first `len` bits (an IPv4 address is given in the top
/// 32 bits).
fn same_prefix(address: u128, block: u128, len: u32) -> bool {
    (address ^ block) >> (128 - len) == 0
}

/// The IPv4 address an IPv6 address carries, for the forms that carry one: IPv4-compatible
/// (`::/96`), IPv4-mapped (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`), NAT64
/// (`64:ff9b::/96`), 6to4 (`2002::/16`, in bits 16..48) and Teredo (`2001::/32`, the client's
/// address inverted in the last 32 bits).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let last = Ipv4Addr::from_bits(ip.to_bits() as u32);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0 | 0xffff, _, _] => ip.to_ipv4(),
        [0, 0, 0, 0, 0xffff, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        [0x2002, ..] => Some(Ipv4Addr::from_bits((ip.to_bits() >> 80) as u32)),
        [0x2001, 0, ..] => Some(!last),
        _ => None,
    }
}

/// True for an address on the public internet: in none of the special-purpose blocks
/// (loopback, private, link-local, shared, documentation, multicast, reserved and the like),
/// and, for an IPv6 address that carries an IPv4 address, carrying a public one. Users'
/// webhooks may only reach these, so that nobody can make FastBreak POST into its own network.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let in_block = |&(block, len): &(Ipv4Addr, u32)| {
                same_prefix(u128::from(v4.to_bits()) << 96, u128::from(block.to_bits()) << 96, len)
            };
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_documentation()
                || SPECIAL_IPV4.iter().any(in_block))
        }
        IpAddr::V6(v6) => {
            let in_block = |&(block, len): &(Ipv6Addr, u32)| same_prefix(v6.to_bits(), block.to_bits(), len);
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.is_multicast()
                || SPECIAL_IPV6.iter().any(in_block))
                && embedded_ipv4(v6).is_none_or(|v4| is_public(v4.into()))
        }
    }
}

/// True when a URL's host is written as an address (or `localhost`) that is not public.
pub fn names_a_private_host(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else { return false };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => !is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => !is_public(ip.into()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// What users are told when their webhook's address is not public.
pub const NOT_PUBLIC: &str = "refused: the address is not public";

/// Why a user's webhook host is not connected to. The text names the host and the addresses,
/// for the log; users see [`ResolveError::reason`].
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The name resolves to at least one address that is not public.
    #[error("{host} resolves to {address}, which is not public; webhooks may not reach private networks")]
    NotPublic {
        /// The host name.
        host: String,
        /// The first address found that is not public.
        address: IpAddr,
    },
    /// The name does not resolve.
    #[error("cannot resolve {host}: {source}")]
    NotResolved {
        /// The host name.
        host: String,
        /// What the resolver said.
        source: std::io::Error,
    },
}

impl ResolveError {
    /// What users are shown: no host, address or resolver text.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::NotPublic { .. } => NOT_PUBLIC,
            ResolveError::NotResolved { .. } => "no answer: the host name does not resolve",
        }
    }
}

/// Resolves host names for users' webhooks, refusing a name when any of its addresses is not
/// public, so that a name pointing (or re-pointed later) into a private network is refused at
/// connect time.
#[derive(Debug, Default)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = match tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect) {
                Ok(found) => found,
                Err(source) => return Err(ResolveError::NotResolved { host, source }.into()),
            };
            let public = resolved_addresses(&host, found)?;
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses `host` resolved to, when there are some and all of them are public.
pub fn resolved_addresses(host: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Some(private) = found.iter().find(|a| !is_public(a.ip())) {
        return Err(ResolveError::NotPublic { host: host.to_owned(), address: private.ip() });
    }
    if found.is_empty() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses");
        return Err(ResolveError::NotResolved { host: host.to_owned(), source });
    }
    Ok(found)
}

/// What every webhook client shares: a timeout, no redirects, and a user agent.
fn webhook_client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("fastbreak-webhooks/1")
}

/// The client for users' webhooks. It ignores the proxy variables (`HTTP_PROXY` and the like):
/// a proxy would resolve and connect in our place, around the public-only resolver. With
/// `public_only`, it connects to public addresses only.
pub fn users_webhook_client(timeout: Duration, public_only: bool) -> reqwest::Result<reqwest::Client> {
    let builder = webhook_client_builder(timeout).no_proxy();
    if public_only { builder.dns_resolver(Arc::new(PublicOnlyResolver)) } else { builder }.build()
}

/// The client for the operator webhook, which operators configure: it may be internal, and it
/// goes through the proxy the environment names, if any.
pub fn operator_webhook_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    webhook_client_builder(timeout).build()
}

/// What a user is shown when a webhook POST got no answer: a fixed reason, never an address,
/// an operating system's error or a resolver's text (those belong in the log).
pub fn failure_reason(error: &reqwest::Error) -> &'static str {
    let refused = std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| e.source())
        .find_map(|e| e.downcast_ref::<ResolveError>());
    match refused {
        Some(refused) => refused.reason(),
        None if error.is_timeout() => "no answer: timed out",
        None if error.is_connect() => "no answer: could not connect",
        None => "no answer: the request failed",
    }
}

/// Why a webhook URL is refused.
pub fn webhook_url(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.len() > 2048 {
        return Err("must be at most 2048 characters");
    }
    let url = reqwest::Url::parse(text).map_err(|_| "must be an http(s) URL such as https://example.com/hook")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("must be an http(s) URL such as https://example.com/hook");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; deliveries are signed instead");
    }
    Ok(url.to_string())
}

/// Whether a notification goes out by webhook, given the user's preferences.
pub fn wants_webhook(priority: Priority, category: Category, min_priority: Priority, muted: &[String]) -> bool {
    priority >= min_priority && !muted.iter().any(|m| m == category.as_str())
}

/// A new random signing secret (shown once to the user).
pub fn new_signing_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("whsec_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// The signature of a body sent at `timestamp` (Unix seconds): what `x-fastbreak-signature`
/// carries.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("v1={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Checks a signature as a receiver should: the right secret, and a timestamp within
/// `tolerance` of `now` (older ones are replays).
pub fn verify(secret: &str, timestamp: i64, body: &[u8], signature: &str, now: i64, tolerance: Duration) -> bool {
    let fresh = now.abs_diff(timestamp) <= tolerance.as_secs();
    let Some(hex) = signature.strip_prefix("v1=") else { return false };
    let Some(expected) = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    fresh && mac.verify_slice(&expected).is_ok()
}

/// The pause before attempt `next_attempt` (2 for the first retry): exponential from `min`,
/// at most `max`, with jitter so that failed deliveries do not all come back at once.
pub fn retry_delay(next_attempt: i32, min: Duration, max: Duration) -> Duration {
    use backon::BackoffBuilder;
    let retries = usize::try_from(next_attempt - 1).unwrap_or(1).max(1);
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .with_max_times(retries)
        .build()
        .nth(retries - 1)
        .unwrap_or(max)
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_secret_and_timestamp_only() {
        let body = br#"{"title":"Bought"}"#;
        let signature = sign("whsec_test", 1_700_000_000, body);
        let five_minutes = Duration::from_secs(300);
        assert!(verify("whsec_test", 1_700_000_000, body, &signature, 1_700_000_060, five_minutes));
        assert!(!verify("whsec_other", 1_700_000_000, body, &signature, 1_700_000_060, five_minutes));
        assert!(
            !verify("whsec_test", 1_700_000_001, body, &signature, 1_700_000_060, five_minutes),
            "timestamp is signed"
        );
        assert!(!verify("whsec_test", 1_700_000_000, b"{}", &signature, 1_700_000_060, five_minutes));
        assert!(!verify("whsec_test", 1_700_000_000, body, &signature, 1_700_001_000, five_minutes), "a replay");
    }

    #[test]
    fn retries_back_off_exponentially_within_bounds() {
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(60));
        for attempt in 2..20 {
            let delay = retry_delay(attempt, min, max);
            assert!(delay >= min && delay <= max, "attempt {attempt}: {delay:?}");
        }
        assert!(retry_delay(8, min, max) >= Duration::from_secs(60) / 2, "later retries wait longer");
    }

    #[test]
    fn webhook_urls_are_http_or_https_without_credentials() {
        assert!(webhook_url("https://hooks.example.com/fb?x=1").is_ok());
        assert!(webhook_url("http://127.0.0.1:8080/hook").is_ok());
        for bad in ["ftp://example.com", "example.com/hook", "https://", "https://user:pw@example.com/"] {
            assert!(webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_public_addresses_count_as_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        assert!(names_a_private_host("http://127.0.0.1:8080/hook"));
        assert!(names_a_private_host("http://[::1]/hook"));
        assert!(names_a_private_host("http://LOCALHOST./hook"));
        assert!(!names_a_private_host("https://hooks.example.com/hook"));
    }

    fn assert_not_public(addresses: &[&str]) {
        for address in addresses {
            assert!(!is_public(address.parse().unwrap()), "{address} counts as public");
        }
    }

    #[test]
    fn the_special_purpose_ipv4_blocks_are_not_public() {
        assert_not_public(&[
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.254",
            "192.0.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.254",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.254",
            "255.255.255.255",
        ]);
    }

    #[test]
    fn the_special_purpose_ipv6_blocks_are_not_public() {
        assert_not_public(&[
            "::",
            "::1",
            "fc00::1",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "2001::1",
            "2001:1::1",
            "2001:1ff:ffff::1",
            "3fff::1",
            "3fff:fff:ffff::1",
            "5f00::1",
            "5f00:ffff::1",
        ]);
    }

    #[test]
    fn ipv6_addresses_that_carry_an_ipv4_address_are_judged_by_it() {
        assert_not_public(&[
            // IPv4-mapped, ::ffff:0:0/96
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:192.0.0.1",
            // IPv4-compatible, ::/96
            "::7f00:1",
            "::a9fe:a9fe",
            "::10.0.0.1",
            // IPv4-translated, ::ffff:0:0:0/96
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            // NAT64, 64:ff9b::/96 and the local-use 64:ff9b:1::/48
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::c000:1",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1::808:808",
            // 6to4, 2002::/16 with the IPv4 address in bits 16..48
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c058:6301::1",
            // Teredo, 2001::/32 with the client's IPv4 address inverted in the last 32 bits
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        ]);
        for public in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_ipv4_address_in_each_ipv6_form_is_found() {
        for (v6, v4) in [
            ("::ffff:7f00:1", Some("127.0.0.1")),
            ("::7f00:1", Some("127.0.0.1")),
            ("::ffff:0:7f00:1", Some("127.0.0.1")),
            ("64:ff9b::7f00:1", Some("127.0.0.1")),
            ("2002:7f00:1::", Some("127.0.0.1")),
            ("2002:c000:201:1::1", Some("192.0.2.1")),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some("127.0.0.1")),
            ("2606:4700::1111", None),
            ("2001:4860:4860::8888", None),
        ] {
            assert_eq!(embedded_ipv4(v6.parse().unwrap()), v4.map(|v4| v4.parse().unwrap()), "{v6}");
        }
    }

    #[test]
    fn public_addresses_next_to_special_blocks_are_public() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.254",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2001:200::1",
            "2a00:1450:4001::200e",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_naming_an_address_that_is_not_public_are_refused() {
        for url in [
            "http://[::7f00:1]/hook",
            "http://[::ffff:0:7f00:1]/hook",
            "http://[64:ff9b::7f00:1]/hook",
            "http://[64:ff9b:1::7f00:1]/hook",
            "http://[2002:7f00:1::]/hook",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
            "http://[fec0::1]/hook",
            "http://192.0.0.1/hook",
            "https://[::ffff:169.254.169.254]:8443/latest",
        ] {
            assert!(names_a_private_host(url), "{url}");
        }
        assert!(!names_a_private_host("https://[2606:4700::1111]/hook"));
        assert!(!names_a_private_host("https://8.8.8.8/hook"));
    }

    #[test]
    fn a_name_is_refused_when_any_address_it_resolves_to_is_not_public() {
        let at = |ip: &str| std::net::SocketAddr::new(ip.parse().unwrap(), 443);
        let public = vec![at("8.8.8.8"), at("2001:4860:4860::8888")];
        assert_eq!(resolved_addresses("hooks.example.com", public.clone()).unwrap(), public);
        for private in ["::7f00:1", "::ffff:0:7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::", "fec0::1", "192.0.0.1"] {
            assert!(resolved_addresses("hooks.example.com", vec![at(private)]).is_err(), "{private}");
            assert!(
                resolved_addresses("hooks.example.com", vec![at("8.8.8.8"), at(private)]).is_err(),
                "8.8.8.8 and {private}"
            );
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_not_connected_to() {
        use reqwest::dns::Resolve;
        let refused = PublicOnlyResolver.resolve("localhost".parse().unwrap()).await;
        let error = refused.err().expect("localhost resolves to loopback only");
        assert!(error.to_string().contains("which is not public"), "{error}");
        assert_eq!(error.downcast_ref::<ResolveError>().map(ResolveError::reason), Some(NOT_PUBLIC));
    }

    #[tokio::test]
    async fn users_see_why_a_post_failed_but_not_the_error_itself() {
        let timeout = Duration::from_millis(300);
        let public_only = users_webhook_client(timeout, true).unwrap();
        let error = public_only.post("http://localhost:9/hook").send().await.unwrap_err();
        assert_eq!(failure_reason(&error), NOT_PUBLIC, "{error}");

        let any = users_webhook_client(timeout, false).unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let error = any.post(format!("http://{closed}/hook")).send().await.unwrap_err();
        assert_eq!(failure_reason(&error), "no answer: could not connect", "{error}");

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let error = any.post(format!("http://{}/hook", silent.local_addr().unwrap())).send().await.unwrap_err();
        assert_eq!(failure_reason(&error), "no answer: timed out", "{error}");
    }

    #[test]
    fn links_round_trip_and_muted_categories_stay_in_app() {
        let links = vec![
            Link::Trade(uuid::Uuid::new_v4()),
            Link::RiskAlert(uuid::Uuid::new_v4()),
            Link::Decision(uuid::Uuid::new_v4()),
        ];
        let stored = serde_json::Value::Array(links.iter().map(|l| l.to_json()).collect());
        assert_eq!(Link::from_json(&stored), links);
        assert!(wants_webhook(Priority::High, Category::Purchase, Priority::Normal, &[]));
        assert!(!wants_webhook(Priority::Low, Category::Purchase, Priority::Normal, &[]));
        assert!(!wants_webhook(Priority::Urgent, Category::Purchase, Priority::Low, &["purchase".to_owned()]));
    }
}
