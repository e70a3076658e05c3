//! The value types configuration is made of.

use std::fmt;
use std::time::Duration;

/// A value that is never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself: use it, never log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The endpoints of a peer service: one URL per replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints(pub Vec<http::Uri>);

impl Endpoints {
    /// What a valid value looks like, for messages.
    pub const EXPECTED: &'static str = "a comma-separated list of http:// URLs (https is not supported: the mesh speaks plaintext gRPC inside its network)";

    /// Parses `http://a:1,http://b:2`; `None` unless every item is an http(s) URL with a host.
    pub fn parse(text: &str) -> Option<Self> {
        let uris: Option<Vec<http::Uri>> = text
            .split(',')
            .map(str::trim)
            .map(|item| {
                let uri: http::Uri = item.parse().ok()?;
                // No TLS in the mesh's client: an https endpoint would fail on every call, so it
                // is refused here, at start-up.
                let scheme_ok = uri.scheme_str() == Some("http");
                (scheme_ok && uri.host().is_some()).then_some(uri)
            })
            .collect();
        uris.filter(|u| !u.is_empty()).map(Self)
    }

    /// One endpoint.
    pub fn single(uri: http::Uri) -> Self {
        Self(vec![uri])
    }
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&items.join(","))
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people at a terminal.
    #[default]
    Text,
    /// One JSON object per line, for collectors.
    Json,
}

impl LogFormat {
    /// What a valid value looks like, for messages.
    pub const EXPECTED: &'static str = "'text' or 'json'";

    /// Parses `text` or `json`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Parses "500ms", "5s" or "2m".
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(at);
    let value: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(value)),
        "s" => Some(Duration::from_secs(value)),
        "m" => Some(Duration::from_secs(value.checked_mul(60)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls() {
        assert_eq!(Endpoints::parse("http://a:1, http://b:2").unwrap().0.len(), 2);
        assert!(Endpoints::parse("http://a:1, https://b:2").is_none(), "https is refused, not dropped at call time");
        assert!(Endpoints::parse("risk:50054").is_none());
        assert!(Endpoints::parse("http://a:1,ftp://b").is_none());
        assert!(Endpoints::parse("").is_none());
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn durations_and_formats_parse() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("yaml"), None);
    }
}
