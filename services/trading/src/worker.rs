//! The trading worker: finishes or undoes trades a crash or a lost call left pending, delivers
//! the outbox (holds to commit or release, notifications, strategy outcomes) with backoff until
//! each lands, recomputes the leaderboards and keeps equity snapshots on their schedules.
//! Outbox messages are claimed with row locks, so replicas never deliver one message at once.

use std::time::Duration;

use chrono::Utc;
use fastbreak_db::outbox;

use crate::store as repo;
use fastbreak_mesh::Draining;
use futures::FutureExt;
use tokio::time::Instant;

use crate::leaderboard::Leaderboards;
use crate::portfolio;
use fastbreak_mesh::status::is_answer;

use crate::trader::{COMMIT_HOLD, Message, NOTIFY, RELEASE_HOLD, STRATEGY_OUTCOME, Trader};

/// Pending trades and messages taken per round.
const BATCH: i64 = 50;

/// The longest pause before a message is tried again.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Pending trades finished (settled, listed, or failed).
    pub recovered: usize,
    /// Pending trades left for a later round.
    pub left: usize,
    /// Outbox messages delivered.
    pub delivered: usize,
    /// Outbox messages to try again later.
    pub postponed: usize,
}

/// The worker.
#[derive(Debug, Clone)]
pub struct TradingWorker {
    trader: Trader,
    boards: Leaderboards,
}

impl TradingWorker {
    pub(crate) fn new(trader: Trader, boards: Leaderboards) -> Self {
        Self { trader, boards }
    }

    /// One round of repairs and deliveries.
    pub async fn round(&self) -> Round {
        let mut round = Round::default();
        let before = Utc::now()
            - chrono::Duration::from_std(self.trader.settings.recover_after).unwrap_or(chrono::Duration::seconds(30));
        let pending = self
            .trader
            .read(move |conn| async move { repo::list_pending_trades(conn, before, BATCH).await }.boxed())
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(error = %error.message(), "pending trades could not be read");
                Vec::new()
            });
        for trade in pending {
            let id = trade.id;
            match self.trader.recover(trade).await {
                Ok(trade) if trade.state != repo::TradeState::Pending => round.recovered += 1,
                Ok(_) => round.left += 1,
                Err(status) => {
                    let still = self.trader.current(id).await.map(|t| t.state == repo::TradeState::Pending);
                    if still.unwrap_or(true) {
                        tracing::info!(trade = %id, error = %status.message(), "a pending trade waits for a later round");
                        round.left += 1;
                    } else {
                        round.recovered += 1;
                    }
                }
            }
        }
        for topic in [COMMIT_HOLD, RELEASE_HOLD, NOTIFY, STRATEGY_OUTCOME] {
            let (delivered, postponed) = self.deliver(topic).await;
            round.delivered += delivered;
            round.postponed += postponed;
        }
        round
    }

    /// Delivers a topic's due messages, each marked delivered or given a later try.
    async fn deliver(&self, topic: &'static str) -> (usize, usize) {
        let trader = self.trader.clone();
        let result = self
            .trader
            .database
            .read_committed(move |conn| {
                let trader = trader.clone();
                async move {
                    let (mut delivered, mut postponed) = (0, 0);
                    for message in outbox::claim_due(conn, topic, Utc::now(), BATCH).await? {
                        let outcome = match serde_json::from_value::<Message>(message.payload.clone()) {
                            Ok(m) => match fastbreak_telemetry::resume_carried(
                                tracing::info_span!(
                                    "outbox delivery",
                                    topic,
                                    target = fastbreak_telemetry::current_target().unwrap_or_default()
                                ),
                                m.traceparent.as_deref(),
                                m.correlation_id.clone(),
                                trader.deliver(topic, &m),
                            )
                            .await
                            {
                                Ok(()) => Ok(()),
                                // A definite refusal (a hold already released, say) will not
                                // change by asking again: it is set aside, loudly.
                                Err(status) if is_answer(&status) => {
                                    tracing::error!(
                                        topic,
                                        id = message.id,
                                        error = %status.message(),
                                        "an outbox message was refused; set aside for an operator"
                                    );
                                    Ok(())
                                }
                                Err(status) => Err(status.message().to_owned()),
                            },
                            Err(error) => Err(error.to_string()),
                        };
                        match outcome {
                            Ok(()) => {
                                outbox::mark_delivered(conn, message.id).await?;
                                delivered += 1;
                            }
                            Err(error) => {
                                let exponent = u32::try_from(message.attempts.clamp(0, 16)).unwrap_or(16);
                                let wait = Duration::from_millis(100u64 << exponent).min(RETRY_MAX);
                                let retry_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                                tracing::warn!(topic, id = message.id, %error, "an outbox message is tried again later");
                                outbox::mark_failed(conn, message.id, &error, retry_at).await?;
                                postponed += 1;
                            }
                        }
                    }
                    Ok((delivered, postponed))
                }
                .boxed()
            })
            .await;
        result.unwrap_or_else(|error| {
            tracing::warn!(topic, %error, "the outbox could not be read");
            (0, 0)
        })
    }

    /// Keeps every user's equity now.
    pub async fn snapshots(&self) -> usize {
        let users = match self.trader.read(|conn| async move { repo::account_holders(conn).await }.boxed()).await {
            Ok(users) => users,
            Err(error) => {
                tracing::warn!(error = %error.message(), "equity snapshots skipped");
                return 0;
            }
        };
        let mut kept = 0;
        for (user, _) in users {
            let Ok((cash, market, _)) = portfolio::equity(&self.trader, user).await else { continue };
            if portfolio::snapshot(&self.trader, user, cash + market).await.is_ok() {
                kept += 1;
            }
        }
        kept
    }

    /// Runs rounds until draining begins.
    pub async fn run(self, mut draining: Draining) {
        let settings = self.trader.settings.clone();
        let mut next_boards = Instant::now();
        let mut next_snapshots = Instant::now() + settings.snapshot_interval;
        loop {
            let round = self.round().await;
            if round != Round::default() {
                tracing::debug!(?round, "trading worker round");
            }
            if Instant::now() >= next_boards {
                if let Err(status) = self.boards.recompute().await {
                    tracing::warn!(error = %status.message(), "leaderboards not recomputed; tried again next time");
                }
                next_boards = Instant::now() + settings.leaderboard_interval;
            }
            if Instant::now() >= next_snapshots {
                self.snapshots().await;
                next_snapshots = Instant::now() + settings.snapshot_interval;
            }
            if draining.sleep(settings.worker_interval).await {
                return;
            }
        }
    }
}
