//! The dashboard's settings, read from `FASTBREAK_WEB_*`.

use std::time::Duration;

use fastbreak_config::Reader;

/// How the dashboard behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether its cookies carry `Secure` (sent over HTTPS only): on for a deployment behind
    /// TLS, off where the dashboard is reached over plain HTTP (a laptop, compose).
    pub secure_cookies: bool,
    /// How long a sign-in lasts: the life of the access token it makes, and of its cookie.
    pub session_ttl: Duration,
    /// How often the live decisions feed asks for new decisions.
    pub feed_interval: Duration,
    /// The deadline of each call the pages make.
    pub call_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            feed_interval: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
        }
    }
}

impl Settings {
    /// Reads `FASTBREAK_WEB_*`, recording every bad value in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        if let Some(secure) = reader.optional_switch("FASTBREAK_WEB_SECURE_COOKIES") {
            settings.secure_cookies = secure;
        }
        reader.set_duration(
            "FASTBREAK_WEB_SESSION_TTL",
            "a duration from 1m to 90d, such as 168h",
            Duration::from_secs(60)..=Duration::from_secs(90 * 24 * 3600),
            &mut settings.session_ttl,
        );
        reader.set_duration(
            "FASTBREAK_WEB_FEED_INTERVAL",
            "a duration from 100ms to 1m, such as 2s",
            Duration::from_millis(100)..=Duration::from_secs(60),
            &mut settings.feed_interval,
        );
        reader.set_duration(
            "FASTBREAK_WEB_CALL_TIMEOUT",
            "a duration from 100ms to 1m, such as 5s",
            Duration::from_millis(100)..=Duration::from_secs(60),
            &mut settings.call_timeout,
        );
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> (Settings, Result<(), fastbreak_config::ConfigError>) {
        let mut reader = Reader::new(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = Settings::read(&mut reader);
        (settings, reader.finish())
    }

    #[test]
    fn secure_cookies_are_off_unless_turned_on() {
        assert!(!read(&[]).0.secure_cookies);
        assert!(read(&[("FASTBREAK_WEB_SECURE_COOKIES", "on")]).0.secure_cookies);
        let (_, problems) = read(&[("FASTBREAK_WEB_SECURE_COOKIES", "yes"), ("FASTBREAK_WEB_SESSION_TTL", "1s")]);
        let text = problems.unwrap_err().to_string();
        assert!(text.contains("FASTBREAK_WEB_SECURE_COOKIES") && text.contains("FASTBREAK_WEB_SESSION_TTL"), "{text}");
    }
}
