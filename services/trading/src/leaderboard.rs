//! Leaderboards by ROI (basis points), profit (cents), portfolio value (cents) and successful
//! trades (a count), for the day, week, month and all time. They are computed from the ledger
//! and holdings on a schedule and on demand, stored with the time computed, and served from the
//! store. Users who opted out (asked of the user service) are left out; a user appears only
//! as an alias derived from their id, never with an address or email.

use std::collections::HashSet;
use std::sync::Arc;

use crate::store::{self as repo, LeaderboardFigures, LeaderboardRow};
use chrono::{DateTime, Utc};
use fastbreak_mesh::paging;
use fastbreak_mesh::status::timestamp;
use fastbreak_proto::common::v1::Period;
use fastbreak_proto::trading::v1 as pb;
use fastbreak_proto::user::v1 as user;
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use futures::FutureExt;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tonic::Status;
use uuid::Uuid;

use crate::portfolio::period_start;
use crate::trader::Trader;

const METRICS: [pb::LeaderboardMetric; 4] = [
    pb::LeaderboardMetric::Roi,
    pb::LeaderboardMetric::Profit,
    pb::LeaderboardMetric::PortfolioValue,
    pb::LeaderboardMetric::SuccessfulTrades,
];
const PERIODS: [Period; 4] = [Period::Day, Period::Week, Period::Month, Period::AllTime];

/// A user's public alias: stable, and telling nothing of who they are.
pub fn alias(user: Uuid) -> String {
    let digest = Sha256::digest(format!("fastbreak-leaderboard-alias:{user}"));
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("collector-{hex}")
}

/// The value a metric ranks a user by; `None` leaves them off that board.
fn metric_value(metric: pb::LeaderboardMetric, f: &LeaderboardFigures) -> Option<i64> {
    let profit = f.realized_cents + f.unrealized_cents;
    match metric {
        pb::LeaderboardMetric::Roi => (f.spent_cents > 0).then(|| profit.saturating_mul(10_000) / f.spent_cents),
        pb::LeaderboardMetric::Profit => (f.spent_cents > 0 || f.realized_cents != 0).then_some(profit),
        pb::LeaderboardMetric::PortfolioValue => (f.portfolio_cents > 0).then_some(f.portfolio_cents),
        pb::LeaderboardMetric::SuccessfulTrades => (f.spent_cents > 0 || f.successful > 0).then_some(f.successful),
        pb::LeaderboardMetric::Unspecified => None,
    }
}

/// The boards: computing them, and serving a page.
#[derive(Debug, Clone)]
pub(crate) struct Leaderboards {
    trader: Trader,
    /// One computation at a time in this process.
    computing: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl Leaderboards {
    pub(crate) fn new(trader: Trader) -> Self {
        Self { trader, computing: Arc::default() }
    }

    /// Users who asked to be left off, among `users`.
    async fn opted_out(&self, users: &[Uuid]) -> Result<HashSet<Uuid>, Status> {
        let mut out = HashSet::new();
        let mut client = UserInternalServiceClient::new(self.trader.peers.user.channel()?);
        for chunk in users.chunks(1000) {
            let request = self
                .trader
                .request(user::BatchGetUserStatusRequest { user_ids: chunk.iter().map(Uuid::to_string).collect() });
            let statuses = client.batch_get_user_status(request).await?.into_inner().statuses;
            let known: HashSet<Uuid> = statuses.iter().filter_map(|s| Uuid::parse_str(&s.user_id).ok()).collect();
            for s in statuses {
                if s.leaderboard_opt_out
                    && let Ok(id) = Uuid::parse_str(&s.user_id)
                {
                    out.insert(id);
                }
            }
            // A user the user service does not know is not shown either.
            out.extend(chunk.iter().filter(|u| !known.contains(u)));
        }
        Ok(out)
    }

    /// Recomputes every board; how many users were ranked, and when.
    pub(crate) async fn recompute(&self) -> Result<(usize, DateTime<Utc>), Status> {
        let mut last = self.computing.lock().await;
        let now = Utc::now();
        let mut figures = Vec::new();
        for period in PERIODS {
            let since = period_start(period, now);
            let rows = self
                .trader
                .read(move |conn| async move { repo::leaderboard_figures(conn, since).await }.boxed())
                .await?;
            figures.push((period, rows));
        }
        let users: Vec<Uuid> = {
            let mut all: Vec<Uuid> = figures.iter().flat_map(|(_, rows)| rows.iter().map(|r| r.user_id)).collect();
            all.sort();
            all.dedup();
            all
        };
        let out = self.opted_out(&users).await?;
        let mut boards = Vec::new();
        for (period, rows) in &figures {
            for metric in METRICS {
                let mut ranked: Vec<(i64, String, Uuid)> = rows
                    .iter()
                    .filter(|r| !out.contains(&r.user_id))
                    .filter_map(|r| metric_value(metric, r).map(|v| (v, alias(r.user_id), r.user_id)))
                    .collect();
                ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                let rows: Vec<LeaderboardRow> = ranked
                    .into_iter()
                    .enumerate()
                    .map(|(i, (value, alias, user_id))| LeaderboardRow {
                        metric: metric.as_str_name().to_owned(),
                        period: period.as_str_name().to_owned(),
                        rank: i32::try_from(i + 1).unwrap_or(i32::MAX),
                        user_id,
                        alias,
                        value,
                        computed_at: now,
                    })
                    .collect();
                boards.push((metric.as_str_name(), period.as_str_name(), rows));
            }
        }
        let ranked = users.len() - out.len().min(users.len());
        self.trader
            .read_committed(move |conn| {
                let boards = boards.clone();
                async move {
                    for (metric, period, rows) in &boards {
                        repo::replace_leaderboard(conn, metric, period, rows).await?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .await?;
        *last = Some(now);
        Ok((ranked, now))
    }

    /// A page of a board, with the caller's own row; a board never computed is computed now.
    pub(crate) async fn page(
        &self,
        caller: Uuid,
        metric: pb::LeaderboardMetric,
        period: Period,
        offset: i64,
        size: i64,
    ) -> Result<pb::Leaderboard, Status> {
        let (m, p) = (metric.as_str_name(), period.as_str_name());
        let computed =
            self.trader.read(move |conn| async move { repo::leaderboard_time(conn, m, p).await }.boxed()).await?;
        let mut compute_time = computed.or(*self.computing.lock().await);
        if compute_time.is_none() {
            compute_time = Some(self.recompute().await?.1);
        }
        let (rows, mine) = self
            .trader
            .read(move |conn| {
                async move {
                    let rows = repo::leaderboard_page(conn, m, p, offset, size + 1).await?;
                    let mine = repo::leaderboard_row(conn, m, p, caller).await?;
                    Ok((rows, mine))
                }
                .boxed()
            })
            .await?;
        // An opt-out counts from the moment it is made, not from the next computation: rows of
        // users who opted out since are left out (their ranks stay as computed).
        let mut shown: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
        shown.extend(mine.as_ref().map(|r| r.user_id));
        let out = self
            .opted_out(&shown)
            .await
            .map_err(|_| fastbreak_mesh::status::dependency_unavailable("user", std::time::Duration::from_secs(1)))?;
        let rows: Vec<LeaderboardRow> = rows.into_iter().filter(|r| !out.contains(&r.user_id)).collect();
        let mine = mine.filter(|r| !out.contains(&r.user_id));
        let more = rows.len() as i64 > size;
        let entry = |r: &LeaderboardRow| pb::LeaderboardEntry {
            rank: r.rank,
            alias: r.alias.clone(),
            value: r.value,
            is_caller: r.user_id == caller,
        };
        Ok(pb::Leaderboard {
            metric: metric.into(),
            period: period.into(),
            entries: rows.iter().take(usize::try_from(size).unwrap_or(0)).map(entry).collect(),
            next_page_token: if more { paging::encode_offset(offset + size) } else { String::new() },
            compute_time: compute_time.map(timestamp),
            caller_entry: mine.as_ref().map(entry),
        })
    }
}
