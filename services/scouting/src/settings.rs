//! The scouting service's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::Reader;

/// How scouting takes in games and feeds its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How often the worker looks for box scores the marketplace's feeds reported.
    pub poll_interval: Duration,
    /// How often a stream looks for events other replicas recorded, when nothing wakes it.
    pub stream_poll: Duration,
    /// The bounds of the streams: per caller, in all, their lifetime and idle time.
    pub streams: fastbreak_mesh::tail::Limits,
    /// Most listed moments of a player re-valued after one of his games.
    pub revalue_limit: i64,
    /// Whether this target takes in box scores (replicas may leave it to one of them).
    pub worker_enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            stream_poll: Duration::from_millis(500),
            streams: fastbreak_mesh::tail::Limits::default(),
            revalue_limit: 100,
            worker_enabled: true,
        }
    }
}

impl Settings {
    /// Reads the `FASTBREAK_SCOUTING_*` variables, noting problems in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self { streams: fastbreak_mesh::tail::Limits::read(reader), ..Self::default() };
        if let Some(on) = reader.optional_switch("FASTBREAK_SCOUTING_WORKER") {
            settings.worker_enabled = on;
        }
        if let Some(n) = reader.optional("FASTBREAK_SCOUTING_REVALUE_LIMIT", "a whole number from 0 to 10000", |v| {
            v.parse::<i64>().ok().filter(|n| (0..=10_000).contains(n))
        }) {
            settings.revalue_limit = n;
        }
        settings
    }
}
