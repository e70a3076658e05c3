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
    /// The longest deadline a call gets (and the deadline of calls that set none), its
    /// request's body and its answer included.
    pub max_deadline: Duration,
    /// The longest a server stream lasts (`FASTBREAK_STREAM_LIFETIME`, as the backends'); the
    /// client resumes from the last sequence it saw.
    pub stream_lifetime: Duration,
    /// Bytes of request bodies one client address may have in flight at once.
    pub body_bytes_per_address: usize,
    /// Bytes of request bodies every client together may have in flight at once.
    pub body_bytes_total: usize,
    /// Sign-ins and sign-ups (each hashes a password) one client address may have in progress
    /// at once.
    pub sign_ins_per_address: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_cache_ttl: Duration::from_secs(30),
            user_rate: 100,
            address_rate: 200,
            max_message_bytes: 4 * 1024 * 1024,
            max_deadline: Duration::from_secs(30),
            stream_lifetime: fastbreak_mesh::tail::Limits::default().lifetime,
            body_bytes_per_address: 16 * 1024 * 1024,
            body_bytes_total: 256 * 1024 * 1024,
            sign_ins_per_address: 2,
        }
    }
}

impl Settings {
    /// Reads `FASTBREAK_GATEWAY_*`, recording every bad value in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings =
            Self { stream_lifetime: fastbreak_mesh::tail::Limits::read(reader).lifetime, ..Self::default() };
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
        let bytes = |v: &str| v.parse::<usize>().ok().filter(|n| (1024 * 1024..=16 * 1024 * 1024 * 1024).contains(n));
        let expected = "a size in bytes from 1048576 to 17179869184";
        if let Some(n) = reader.optional("FASTBREAK_GATEWAY_BODY_BYTES_PER_ADDRESS", expected, bytes) {
            settings.body_bytes_per_address = n;
        }
        if let Some(n) = reader.optional("FASTBREAK_GATEWAY_BODY_BYTES_TOTAL", expected, bytes) {
            settings.body_bytes_total = n;
        }
        if let Some(n) =
            reader.optional("FASTBREAK_GATEWAY_SIGN_INS_PER_ADDRESS", "a whole number from 1 to 1000", |v| {
                v.parse::<usize>().ok().filter(|n| (1..=1000).contains(n))
            })
        {
            settings.sign_ins_per_address = n;
        }
        if settings.body_bytes_per_address < settings.max_message_bytes + 5 {
            reader.problem(
                "FASTBREAK_GATEWAY_BODY_BYTES_PER_ADDRESS",
                "must leave room for one request of FASTBREAK_GATEWAY_MAX_MESSAGE_BYTES",
            );
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
