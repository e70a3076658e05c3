//! The risk service's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::Reader;

pub use fastbreak_limits::Suspicion;

/// How the risk service decides and reconciles.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How long a hold waits for its purchase before the reconciler asks trading about it.
    pub hold_ttl: Duration,
    /// How long a proposed limit change can be confirmed.
    pub change_ttl: Duration,
    /// How often the worker looks for expired holds and unsent alert notifications.
    pub reconcile_interval: Duration,
    /// Shares of a limit, in percent and ascending, that raise an alert once per period.
    pub alert_thresholds: Vec<u8>,
    /// When activity is suspicious.
    pub suspicion: Suspicion,
    /// How long one call to trading or notification may take.
    pub call_timeout: Duration,
    /// The pause before an alert's notification is tried again; it doubles up to five minutes.
    pub notify_retry_min: Duration,
    /// Whether this target runs the reconciler and the alert notifier.
    pub worker_enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hold_ttl: Duration::from_secs(120),
            change_ttl: Duration::from_secs(900),
            reconcile_interval: Duration::from_secs(5),
            alert_thresholds: vec![80, 95],
            suspicion: Suspicion::default(),
            call_timeout: Duration::from_secs(3),
            notify_retry_min: Duration::from_secs(1),
            worker_enabled: true,
        }
    }
}

/// Parses "80,95": whole percentages from 1 to 99, ascending, at most five.
fn thresholds(text: &str) -> Option<Vec<u8>> {
    let values: Vec<u8> = text.split(',').map(|p| p.trim().parse::<u8>().ok()).collect::<Option<_>>()?;
    let ascending = values.windows(2).all(|w| w[0] < w[1]);
    let in_range = values.iter().all(|p| (1..=99).contains(p));
    (ascending && in_range && (1..=5).contains(&values.len())).then_some(values)
}

impl Settings {
    /// Reads the `FASTBREAK_RISK_*` variables, noting problems in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        let ms = Duration::from_millis;
        reader.set_duration(
            "FASTBREAK_RISK_HOLD_TTL",
            "a duration from 1s to 1h, such as 2m",
            ms(1_000)..=ms(3_600_000),
            &mut settings.hold_ttl,
        );
        reader.set_duration(
            "FASTBREAK_RISK_CHANGE_TTL",
            "a duration from 10s to 1d, such as 15m",
            ms(10_000)..=ms(86_400_000),
            &mut settings.change_ttl,
        );
        reader.set_duration(
            "FASTBREAK_RISK_RECONCILE_INTERVAL",
            "a duration from 10ms to 10m, such as 5s",
            ms(10)..=ms(600_000),
            &mut settings.reconcile_interval,
        );
        reader.set_duration(
            "FASTBREAK_RISK_BURST_WINDOW",
            "a duration from 1s to 1d, such as 10m",
            ms(1_000)..=ms(86_400_000),
            &mut settings.suspicion.burst_window,
        );
        if let Some(t) = reader.optional(
            "FASTBREAK_RISK_ALERT_THRESHOLDS",
            "one to five ascending percentages from 1 to 99, such as 80,95",
            thresholds,
        ) {
            settings.alert_thresholds = t;
        }
        let count = |v: &str| v.parse::<u32>().ok().filter(|n| (1..=10_000).contains(n));
        let s = &mut settings.suspicion;
        for (var, target) in [
            ("FASTBREAK_RISK_BURST_MIN", &mut s.burst_min),
            ("FASTBREAK_RISK_BURST_FACTOR", &mut s.burst_factor),
            ("FASTBREAK_RISK_SIZE_FACTOR", &mut s.size_factor),
            ("FASTBREAK_RISK_SIZE_MIN_HISTORY", &mut s.size_min_history),
            ("FASTBREAK_RISK_REFUSALS_IN_A_ROW", &mut s.refusals_in_a_row),
        ] {
            if let Some(n) = reader.optional(var, "a whole number from 1 to 10000", count) {
                *target = n;
            }
        }
        if let Some(on) = reader.optional_switch("FASTBREAK_RISK_WORKER") {
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
            ("FASTBREAK_RISK_ALERT_THRESHOLDS", "95,80"),
            ("FASTBREAK_RISK_BURST_MIN", "0"),
            ("FASTBREAK_RISK_HOLD_TTL", "2h"),
        ]);
        let _ = Settings::read(&mut reader);
        let text = reader.finish().unwrap_err().to_string();
        assert!(text.contains("FASTBREAK_RISK_ALERT_THRESHOLDS: expected one to five ascending"), "{text}");
        assert!(text.contains("FASTBREAK_RISK_BURST_MIN: expected a whole number from 1 to 10000, got '0'"), "{text}");
        assert!(text.contains("FASTBREAK_RISK_HOLD_TTL"), "{text}");

        let mut reader = Reader::new([
            ("FASTBREAK_RISK_ALERT_THRESHOLDS", "50, 90"),
            ("FASTBREAK_RISK_REFUSALS_IN_A_ROW", "3"),
            ("FASTBREAK_RISK_WORKER", "off"),
        ]);
        let settings = Settings::read(&mut reader);
        reader.finish().unwrap();
        assert_eq!(settings.alert_thresholds, vec![50, 90]);
        assert_eq!(settings.suspicion.refusals_in_a_row, 3);
        assert!(!settings.worker_enabled);
    }
}
