//! The agents service's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::Reader;

/// How the agents behave.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The deadline of each call to a peer.
    pub call_timeout: Duration,
    /// How long one step (a valuation, a purchase) may take with its retries.
    pub step_deadline: Duration,
    /// The first pause between retries of a step (doubling).
    pub retry_min: Duration,
    /// How long to wait before following the listing stream again after it failed.
    pub reconnect_pause: Duration,
    /// The most listings a scan looks at.
    pub scan_limit: usize,
    /// How often the daily scans' schedule is looked at.
    pub schedule_interval: Duration,
    /// The most listing events decided together.
    pub batch: usize,
    /// Whether the listing loop runs in this target.
    pub worker_enabled: bool,
    /// The longest a backtest may replay before it is stopped (failed, saying so).
    pub backtest_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(3),
            step_deadline: Duration::from_secs(10),
            retry_min: Duration::from_millis(100),
            reconnect_pause: Duration::from_secs(1),
            scan_limit: 500,
            schedule_interval: Duration::from_secs(30),
            batch: 500,
            worker_enabled: true,
            backtest_deadline: Duration::from_secs(600),
        }
    }
}

impl Settings {
    /// Reads `FASTBREAK_AGENTS_*`, recording every bad value in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        let ms = Duration::from_millis;
        for (var, expected, range, target) in [
            (
                "FASTBREAK_AGENTS_CALL_TIMEOUT",
                "a duration from 100ms to 1m",
                ms(100)..=ms(60_000),
                &mut settings.call_timeout,
            ),
            (
                "FASTBREAK_AGENTS_STEP_DEADLINE",
                "a duration from 100ms to 5m",
                ms(100)..=ms(300_000),
                &mut settings.step_deadline,
            ),
            ("FASTBREAK_AGENTS_RETRY_MIN", "a duration from 10ms to 10s", ms(10)..=ms(10_000), &mut settings.retry_min),
            (
                "FASTBREAK_AGENTS_SCHEDULE_INTERVAL",
                "a duration from 10ms to 10m",
                ms(10)..=ms(600_000),
                &mut settings.schedule_interval,
            ),
            (
                // Below the 15 minutes after which a running backtest counts as interrupted.
                "FASTBREAK_AGENTS_BACKTEST_DEADLINE",
                "a duration from 100ms to 10m",
                ms(100)..=ms(600_000),
                &mut settings.backtest_deadline,
            ),
        ] {
            reader.set_duration(var, expected, range, target);
        }
        if let Some(n) = reader.optional("FASTBREAK_AGENTS_SCAN_LIMIT", "a whole number from 1 to 10000", |v| {
            v.parse::<usize>().ok().filter(|n| (1..=10_000).contains(n))
        }) {
            settings.scan_limit = n;
        }
        if let Some(n) = reader.optional("FASTBREAK_AGENTS_BATCH", "a whole number from 1 to 5000", |v| {
            v.parse::<usize>().ok().filter(|n| (1..=5_000).contains(n))
        }) {
            settings.batch = n;
        }
        if let Some(on) = reader.optional_switch("FASTBREAK_AGENTS_WORKER") {
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
        let mut reader = Reader::new([
            ("FASTBREAK_AGENTS_SCAN_LIMIT", "0"),
            ("FASTBREAK_AGENTS_RETRY_MIN", "1h"),
            ("FASTBREAK_AGENTS_BATCH", "5001"),
            ("FASTBREAK_AGENTS_BACKTEST_DEADLINE", "1h"),
        ]);
        let _ = Settings::read(&mut reader);
        let text = reader.finish().unwrap_err().to_string();
        for variable in [
            "FASTBREAK_AGENTS_SCAN_LIMIT",
            "FASTBREAK_AGENTS_RETRY_MIN",
            "FASTBREAK_AGENTS_BATCH",
            "FASTBREAK_AGENTS_BACKTEST_DEADLINE",
        ] {
            assert!(text.contains(variable), "{variable}: {text}");
        }
        let mut reader = Reader::new([("FASTBREAK_AGENTS_BATCH", "20")]);
        assert_eq!(Settings::read(&mut reader).batch, 20);
        reader.finish().unwrap();
    }
}
