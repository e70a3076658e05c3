//! The trading service's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::Reader;

/// How trading behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The deadline of each call to a peer (risk, marketplace, user, notification, strategy).
    pub call_timeout: Duration,
    /// How long a purchase may stay pending before the worker finishes or undoes it: longer
    /// than any call in flight can take.
    pub recover_after: Duration,
    /// How often the worker looks for pending trades and due messages.
    pub worker_interval: Duration,
    /// How often the leaderboards are recomputed.
    pub leaderboard_interval: Duration,
    /// How often each user's equity is kept for the returns.
    pub snapshot_interval: Duration,
    /// Whether the worker runs in this target.
    pub worker_enabled: bool,
    /// Put in front of this instance's fail point names, so that tests sharing a process (fail
    /// points are process-wide) reach only their own server's.
    #[cfg(feature = "failpoints")]
    pub fail_point_scope: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(3),
            recover_after: Duration::from_secs(30),
            worker_interval: Duration::from_secs(1),
            leaderboard_interval: Duration::from_secs(300),
            snapshot_interval: Duration::from_secs(3600),
            worker_enabled: true,
            #[cfg(feature = "failpoints")]
            fail_point_scope: String::new(),
        }
    }
}

impl Settings {
    /// Reads `FASTBREAK_TRADING_*`, recording every bad value in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        let ms = Duration::from_millis;
        for (var, expected, range, target) in [
            (
                "FASTBREAK_TRADING_CALL_TIMEOUT",
                "a duration from 100ms to 1m, such as 3s",
                ms(100)..=ms(60_000),
                &mut settings.call_timeout,
            ),
            (
                "FASTBREAK_TRADING_RECOVER_AFTER",
                "a duration from 1s to 1h, such as 30s",
                ms(1_000)..=ms(3_600_000),
                &mut settings.recover_after,
            ),
            (
                "FASTBREAK_TRADING_WORKER_INTERVAL",
                "a duration from 10ms to 1m, such as 1s",
                ms(10)..=ms(60_000),
                &mut settings.worker_interval,
            ),
            (
                "FASTBREAK_TRADING_LEADERBOARD_INTERVAL",
                "a duration from 1s to 1d, such as 5m",
                ms(1_000)..=ms(86_400_000),
                &mut settings.leaderboard_interval,
            ),
            (
                "FASTBREAK_TRADING_SNAPSHOT_INTERVAL",
                "a duration from 1s to 1d, such as 1h",
                ms(1_000)..=ms(86_400_000),
                &mut settings.snapshot_interval,
            ),
        ] {
            reader.set_duration(var, expected, range, target);
        }
        if let Some(on) = reader.optional_switch("FASTBREAK_TRADING_WORKER") {
            settings.worker_enabled = on;
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
            Reader::new([("FASTBREAK_TRADING_RECOVER_AFTER", "10ms"), ("FASTBREAK_TRADING_CALL_TIMEOUT", "soon")]);
        let _ = Settings::read(&mut reader);
        let text = reader.finish().unwrap_err().to_string();
        assert!(text.contains("FASTBREAK_TRADING_RECOVER_AFTER"), "{text}");
        assert!(text.contains("FASTBREAK_TRADING_CALL_TIMEOUT"), "{text}");

        let mut reader =
            Reader::new([("FASTBREAK_TRADING_WORKER", "off"), ("FASTBREAK_TRADING_LEADERBOARD_INTERVAL", "2s")]);
        let settings = Settings::read(&mut reader);
        reader.finish().unwrap();
        assert!(!settings.worker_enabled);
        assert_eq!(settings.leaderboard_interval, Duration::from_secs(2));
    }
}
