//! The gateway's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::Reader;

/// How the gateway behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How long an authenticated token is trusted without asking the user service again: a
    /// revoked token is refused at most this long after its revocation.
    pub token_cache_ttl: Duration,
    /// Calls per second each user may make (and as many again in a burst).
    pub user_rate: u32,
    /// Calls per second each client address may make (and as many again in a burst).
    pub address_rate: u32,
    /// The largest request message, in bytes.
    pub max_message_bytes: usize,
    /// The longest deadline a call gets (and the deadline of calls that set none).
    pub max_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_cache_ttl: Duration::from_secs(30),
            user_rate: 100,
            address_rate: 200,
            max_message_bytes: 4 * 1024 * 1024,
            max_deadline: Duration::from_secs(30),
        }
    }
}

impl Settings {
    /// Reads `FASTBREAK_GATEWAY_*`, recording every bad value in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        let ms = Duration::from_millis;
        reader.set_duration(
            "FASTBREAK_GATEWAY_TOKEN_CACHE_TTL",
            "a duration from 0s to 1m, such as 30s",
            ms(0)..=ms(60_000),
            &mut settings.token_cache_ttl,
        );
        reader.set_duration(
            "FASTBREAK_GATEWAY_MAX_DEADLINE",
            "a duration from 1s to 10m, such as 30s",
            ms(1_000)..=ms(600_000),
            &mut settings.max_deadline,
        );
        let rate = |v: &str| v.parse::<u32>().ok().filter(|n| (1..=1_000_000).contains(n));
        if let Some(n) = reader.optional("FASTBREAK_GATEWAY_USER_RATE", "calls per second, from 1 to 1000000", rate) {
            settings.user_rate = n;
        }
        if let Some(n) = reader.optional("FASTBREAK_GATEWAY_ADDRESS_RATE", "calls per second, from 1 to 1000000", rate)
        {
            settings.address_rate = n;
        }
        if let Some(n) =
            reader.optional("FASTBREAK_GATEWAY_MAX_MESSAGE_BYTES", "a size in bytes from 1024 to 67108864", |v| {
                v.parse::<usize>().ok().filter(|n| (1024..=64 * 1024 * 1024).contains(n))
            })
        {
            settings.max_message_bytes = n;
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_and_bad_values_are_named() {
        let mut reader = Reader::new(std::iter::empty::<(&str, &str)>());
        assert_eq!(Settings::read(&mut reader), Settings::default());
        reader.finish().unwrap();
        let mut reader =
            Reader::new([("FASTBREAK_GATEWAY_USER_RATE", "0"), ("FASTBREAK_GATEWAY_TOKEN_CACHE_TTL", "2m")]);
        let _ = Settings::read(&mut reader);
        let text = reader.finish().unwrap_err().to_string();
        assert!(text.contains("FASTBREAK_GATEWAY_USER_RATE"), "{text}");
        assert!(text.contains("FASTBREAK_GATEWAY_TOKEN_CACHE_TTL"), "{text}");
    }
}
