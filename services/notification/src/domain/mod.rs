//! The notification domain: what a notification may hold, which deliveries it gets, how a
//! webhook body is signed, and when a failed delivery is tried again. No gRPC, no SQL.

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
}

impl Link {
    /// As stored: `{"kind": "trade", "id": "<uuid>"}`.
    pub fn to_json(self) -> serde_json::Value {
        let (kind, id) = match self {
            Link::Trade(id) => ("trade", id),
            Link::Moment(id) => ("moment", id),
            Link::Strategy(id) => ("strategy", id),
            Link::RiskAlert(id) => ("risk_alert", id),
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
                    _ => return None,
                })
            })
            .collect()
    }
}

/// True for an address on the public internet: not loopback, private, link-local, shared,
/// unspecified, multicast or documentation space. Users' webhooks may only reach these, so that
/// nobody can make FastBreak POST into its own network.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0x0db8)
            }
        },
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

/// Resolves host names for users' webhooks, keeping public addresses only: a name that
/// resolves to a private address (or is re-pointed there later) is refused at connect time.
#[derive(Debug, Default)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> = found.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let message = format!("{host} resolves to no public address; webhooks may not reach private networks");
                return Err(message.into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
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

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_not_connected_to() {
        use reqwest::dns::Resolve;
        let refused = PublicOnlyResolver.resolve("localhost".parse().unwrap()).await;
        let error = refused.err().expect("localhost resolves to loopback only").to_string();
        assert!(error.contains("no public address"), "{error}");
    }

    #[test]
    fn links_round_trip_and_muted_categories_stay_in_app() {
        let links = vec![Link::Trade(uuid::Uuid::new_v4()), Link::RiskAlert(uuid::Uuid::new_v4())];
        let stored = serde_json::Value::Array(links.iter().map(|l| l.to_json()).collect());
        assert_eq!(Link::from_json(&stored), links);
        assert!(wants_webhook(Priority::High, Category::Purchase, Priority::Normal, &[]));
        assert!(!wants_webhook(Priority::Low, Category::Purchase, Priority::Normal, &[]));
        assert!(!wants_webhook(Priority::Urgent, Category::Purchase, Priority::Low, &["purchase".to_owned()]));
    }
}
