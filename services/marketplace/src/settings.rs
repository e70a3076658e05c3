//! The marketplace service's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::Reader;

/// How the marketplace watches its sources and feeds its streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Whether the built-in simulator is a source (its two marketplaces).
    pub simulator: bool,
    /// The simulator's seed: the same seed, the same market.
    pub simulator_seed: u64,
    /// Real time per simulated hour; zero runs the simulation as fast as it can be ingested.
    pub simulator_tick: Duration,
    /// A source that does not answer within this is marked stalled (and polled again).
    pub stall_timeout: Duration,
    /// The pause before polling a failed source again.
    pub retry_pause: Duration,
    /// How often a stream looks for events written by other replicas, when nothing wakes it.
    pub stream_poll: Duration,
    /// Whether this target ingests (replicas may leave ingestion to one of them).
    pub ingest_enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            simulator: true,
            simulator_seed: 7,
            simulator_tick: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
            retry_pause: Duration::from_secs(2),
            stream_poll: Duration::from_millis(500),
            ingest_enabled: true,
        }
    }
}

impl Settings {
    /// Reads the `FASTBREAK_MARKET_*` and `FASTBREAK_SIMULATOR_*` variables, noting problems in
    /// `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        let ms = Duration::from_millis;
        if let Some(on) = reader.optional_switch("FASTBREAK_SIMULATOR") {
            settings.simulator = on;
        }
        if let Some(seed) = reader.optional("FASTBREAK_SIMULATOR_SEED", "a whole number", |v| v.parse().ok()) {
            settings.simulator_seed = seed;
        }
        reader.set_duration(
            "FASTBREAK_SIMULATOR_TICK",
            "a duration from 0s (as fast as possible) to 1h, such as 5s",
            Duration::ZERO..=ms(3_600_000),
            &mut settings.simulator_tick,
        );
        reader.set_duration(
            "FASTBREAK_MARKET_STALL_TIMEOUT",
            "a duration from 100ms to 10m, such as 30s",
            ms(100)..=ms(600_000),
            &mut settings.stall_timeout,
        );
        if let Some(on) = reader.optional_switch("FASTBREAK_MARKET_INGEST") {
            settings.ingest_enabled = on;
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let mut reader = Reader::new([("FASTBREAK_SIMULATOR_TICK", "2h"), ("FASTBREAK_SIMULATOR_SEED", "x")]);
        let _ = Settings::read(&mut reader);
        let text = reader.finish().unwrap_err().to_string();
        assert!(text.contains("FASTBREAK_SIMULATOR_TICK"), "{text}");
        assert!(text.contains("FASTBREAK_SIMULATOR_SEED: expected a whole number, got 'x'"), "{text}");
        let mut reader = Reader::new([("FASTBREAK_SIMULATOR_TICK", "0s"), ("FASTBREAK_SIMULATOR", "off")]);
        let settings = Settings::read(&mut reader);
        reader.finish().unwrap();
        assert_eq!((settings.simulator_tick, settings.simulator), (Duration::ZERO, false));
    }
}
