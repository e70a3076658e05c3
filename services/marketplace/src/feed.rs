//! Where market events come from: one trait every source sits behind, and the built-in
//! simulator as the default source. A real marketplace adapter implements [`MarketFeed`] and
//! maps what it reads into [`SourceEvent`]s (the simulator's own event type, which carries
//! exactly what a marketplace reports: players, moments, listings and their changes).

use std::time::Duration;

use chrono::{DateTime, Utc};
use fastbreak_market_sim::{Config, Simulator};
use futures::FutureExt;
use futures::future::BoxFuture;

pub use fastbreak_market_sim::Event as SourceEvent;

/// A marketplace a feed reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub display_name: String,
    /// Its fee on sales, in basis points.
    pub fee_bps: i32,
}

/// Why a feed could not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FeedError(pub String);

/// A source of market events, polled by the ingest worker one batch at a time. A feed that
/// fails or stalls is marked unhealthy and polled again; the others go on.
///
/// A feed may say where it stands ([`MarketFeed::position`]): the ingest worker keeps that
/// position in the transaction that stores the batch, and gives it back through
/// [`MarketFeed::resume`] when the marketplace starts again, so that every batch is stored
/// once and a restart goes on where the last one stopped.
pub trait MarketFeed: Send + Sync + 'static {
    /// The feed's name, for logs and its stored position.
    fn name(&self) -> &str;
    /// The marketplaces it reports on.
    fn sources(&self) -> Vec<SourceInfo>;
    /// The next batch of events, in order; it may wait for them.
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>>;

    /// How long the feed waits on purpose before each batch (its pace); the stall timeout is
    /// counted beyond it.
    fn pace(&self) -> Duration {
        Duration::ZERO
    }

    /// Where the feed stands after the last batch it gave, to be stored with that batch;
    /// `None` for a feed that keeps no position.
    fn position(&self) -> Option<String> {
        None
    }

    /// How far the feed is behind its chain's head after the last batch, in blocks and
    /// seconds; `None` for a feed that follows no chain.
    fn lag(&self) -> Option<(i64, i64)> {
        None
    }

    /// Goes on from a position stored earlier (called once, before the first batch); an error
    /// says why that position cannot be used.
    fn resume(&mut self, position: &str) -> Result<(), FeedError> {
        let _ = position;
        Ok(())
    }
}

/// The built-in simulator: one simulated hour per `tick` of real time (or as fast as it is
/// read, when `tick` is zero). The first batch comes at once: the market opens with its
/// starting catalog, part of it listed.
///
/// Its position is its market (seed, id salt, simulated start) and the steps taken: resumed
/// from it, the simulator replays those steps without giving them again (the same seed and
/// salt give the same market) and goes on, so a restart continues the market it had. A stored
/// market of another seed is left for a new one.
#[derive(Debug)]
pub struct SimulatorFeed {
    simulator: Simulator,
    tick: Duration,
    /// Simulated hours to run in all (from the market's opening); `None` runs on for ever.
    hours: Option<u64>,
    /// Whether a batch was given since this feed was made (the first comes without a pause).
    paced: bool,
}

/// The most steps a resume replays (about 28 hours at the default tick of 5 s). A replay costs
/// more the longer the market ran (every step looks at every moment), and runs before the
/// first batch: a market that ran longer gives way to a new one.
pub const MAX_REPLAY_STEPS: u64 = 20_000;

/// The simulator's stored position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    seed: u64,
    id_salt: u64,
    start: DateTime<Utc>,
    steps: u64,
}

impl Position {
    fn to_text(&self) -> String {
        serde_json::json!({
            "seed": self.seed.to_string(),
            "id_salt": self.id_salt.to_string(),
            "start": self.start.to_rfc3339(),
            "steps": self.steps,
        })
        .to_string()
    }

    fn parse(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let number = |field: &str| -> Result<u64, String> {
            match &value[field] {
                serde_json::Value::String(s) => s.parse().map_err(|_| format!("{field} is not a whole number: {s:?}")),
                serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| format!("{field} is not a whole number: {n}")),
                other => Err(format!("{field} is missing or not a number: {other}")),
            }
        };
        let start = value["start"].as_str().ok_or("start is missing")?;
        let start = DateTime::parse_from_rfc3339(start)
            .map_err(|e| format!("start is not an RFC 3339 time ({e}): {start:?}"))?
            .with_timezone(&Utc);
        Ok(Self { seed: number("seed")?, id_salt: number("id_salt")?, start, steps: number("steps")? })
    }
}

impl SimulatorFeed {
    /// A new market from `seed`, opening at the simulated time `start` (the caller's clock:
    /// the market's course does not depend on it). Its ids are salted at random, so that a new
    /// market never meets the moments, listings or games of another in the same database.
    pub fn new(seed: u64, start: DateTime<Utc>, tick: Duration) -> Self {
        Self::with_salt(seed, fastrand::u64(1..), start, tick)
    }

    /// A new market from `seed` whose ids are salted with `id_salt`.
    pub fn with_salt(seed: u64, id_salt: u64, start: DateTime<Utc>, tick: Duration) -> Self {
        let simulator = Simulator::new(Config { seed, start, id_salt, ..Config::default() });
        Self { simulator, tick, hours: None, paced: false }
    }

    /// The same simulation, stopped after `hours` simulated hours from its opening (a market
    /// day is 24): later batches are empty, a tick (at least a second when the tick is zero)
    /// apart.
    #[must_use]
    pub fn for_hours(mut self, hours: usize) -> Self {
        self.hours = Some(hours as u64);
        self
    }

    /// The simulated hours (steps) taken since the market opened.
    pub fn steps(&self) -> u64 {
        self.simulator.steps()
    }

    fn current(&self) -> Position {
        let config = self.simulator.config();
        Position { seed: config.seed, id_salt: config.id_salt, start: config.start, steps: self.simulator.steps() }
    }
}

impl MarketFeed for SimulatorFeed {
    fn name(&self) -> &str {
        "simulator"
    }

    fn sources(&self) -> Vec<SourceInfo> {
        self.simulator
            .config()
            .marketplaces
            .iter()
            .map(|m| SourceInfo {
                id: m.id.clone(),
                display_name: format!("Built-in market simulator ({})", m.id),
                fee_bps: m.fee_bps,
            })
            .collect()
    }

    fn pace(&self) -> Duration {
        self.tick
    }

    fn position(&self) -> Option<String> {
        Some(self.current().to_text())
    }

    fn resume(&mut self, position: &str) -> Result<(), FeedError> {
        // A position that cannot be used gives way to a new market (it would never become
        // usable by waiting), said once.
        let stored = match Position::parse(position) {
            Ok(stored) => stored,
            Err(why) => {
                tracing::warn!(%why, "the stored simulated market's position cannot be read; a new market opens");
                return Ok(());
            }
        };
        let config = self.simulator.config().clone();
        if stored.seed != config.seed {
            tracing::warn!(
                stored = stored.seed,
                configured = config.seed,
                "the stored simulated market has another seed; a new market opens"
            );
            return Ok(());
        }
        if stored.steps > MAX_REPLAY_STEPS {
            tracing::warn!(
                steps = stored.steps,
                most = MAX_REPLAY_STEPS,
                "the stored simulated market ran too long to be replayed; a new market opens"
            );
            return Ok(());
        }
        let mut simulator =
            Simulator::new(Config { seed: stored.seed, id_salt: stored.id_salt, start: stored.start, ..config });
        for _ in 0..stored.steps {
            simulator.step();
        }
        tracing::info!(steps = stored.steps, start = %stored.start, "the simulated market goes on where it stopped");
        self.simulator = simulator;
        Ok(())
    }

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        async move {
            if self.hours.is_some_and(|hours| self.simulator.steps() >= hours) {
                tokio::time::sleep(self.tick.max(Duration::from_secs(1))).await;
                return Ok(Vec::new());
            }
            if self.paced && !self.tick.is_zero() {
                tokio::time::sleep(self.tick).await;
            }
            self.paced = true;
            Ok(self.simulator.step().into_iter().map(|timed| timed.event).collect())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> SimulatorFeed {
        SimulatorFeed::with_salt(7, 99, fastbreak_market_sim::Config::default().start, Duration::ZERO)
    }

    #[test]
    fn a_stored_position_is_resumed_and_one_that_cannot_be_is_left_for_a_new_market() {
        let mut ran = feed();
        for _ in 0..30 {
            ran.simulator.step();
        }
        let stored = ran.position().expect("the simulator keeps a position");

        let mut resumed = SimulatorFeed::with_salt(7, 1, chrono::Utc::now(), Duration::ZERO);
        resumed.resume(&stored).unwrap();
        assert_eq!(resumed.steps(), 30, "the same market, where it stopped");
        assert_eq!(resumed.position(), Some(stored.clone()), "its seed, salt and start with it");
        assert_eq!(resumed.simulator.step(), ran.simulator.step(), "and it goes on as the first would have");

        // Another seed, a position that cannot be read, or a market too long to replay: a new
        // market, from the start this feed was made with.
        let too_long = stored.replace("\"steps\":30", &format!("\"steps\":{}", MAX_REPLAY_STEPS + 1));
        assert!(too_long.contains(&(MAX_REPLAY_STEPS + 1).to_string()), "{too_long}");
        for position in ["not JSON", r#"{"seed":"7"}"#, too_long.as_str()] {
            let mut fresh = feed();
            fresh.resume(position).unwrap();
            assert_eq!(fresh.steps(), 0, "{position}");
            assert!(fresh.position().unwrap().contains("\"id_salt\":\"99\""), "{position}");
        }
        let mut other = SimulatorFeed::with_salt(8, 99, fastbreak_market_sim::Config::default().start, Duration::ZERO);
        other.resume(&stored).unwrap();
        assert_eq!(other.steps(), 0);
    }
}
