//! Where market events come from: one trait every source sits behind, and the built-in
//! simulator as the default source. A real marketplace adapter implements [`MarketFeed`] and
//! maps what it reads into [`SourceEvent`]s (the simulator's own event type, which carries
//! exactly what a marketplace reports: players, moments, listings and their changes).

use std::time::Duration;

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
pub trait MarketFeed: Send + Sync + 'static {
    /// The feed's name, for logs.
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
}

/// The built-in simulator: one simulated hour per `tick` of real time (or as fast as it is
/// read, when `tick` is zero).
#[derive(Debug)]
pub struct SimulatorFeed {
    simulator: Simulator,
    tick: Duration,
    /// Simulated hours left to run; `None` runs on for ever.
    hours_left: Option<usize>,
}

impl SimulatorFeed {
    /// A simulation from `seed`, starting now. Each start salts its ids with the time, so a
    /// restarted service never meets the moments, listings or games of its earlier runs.
    pub fn new(seed: u64, tick: Duration) -> Self {
        let start = chrono::Utc::now();
        let id_salt = start.timestamp_nanos_opt().unwrap_or_default() as u64;
        Self { simulator: Simulator::new(Config { seed, start, id_salt, ..Config::default() }), tick, hours_left: None }
    }

    /// The same simulation, stopped after `hours` simulated hours (a market day is 24): later
    /// batches are empty, a tick (at least a second when the tick is zero) apart.
    #[must_use]
    pub fn for_hours(mut self, hours: usize) -> Self {
        self.hours_left = Some(hours);
        self
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

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        async move {
            if let Some(left) = self.hours_left.as_mut() {
                if *left == 0 {
                    tokio::time::sleep(self.tick.max(Duration::from_secs(1))).await;
                    return Ok(Vec::new());
                }
                *left -= 1;
            }
            if !self.tick.is_zero() {
                tokio::time::sleep(self.tick).await;
            }
            Ok(self.simulator.step().into_iter().map(|timed| timed.event).collect())
        }
        .boxed()
    }
}
