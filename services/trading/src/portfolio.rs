//! The portfolio: holdings at market value (the last known value, with its age, when the
//! market cannot be asked — never an error), cost, profit and loss, ROI, and the day's, week's
//! and month's returns against the market as a whole.
//!
//! A period's return is the change in equity (cash plus moments at market value) since the
//! period began, less what was deposited meanwhile; the equity at the start is the latest
//! snapshot taken before it (none: the user started within the period, from nothing). Its
//! basis points are over the equity at the start plus the deposits since.

use crate::store::{self as repo, EquitySnapshot, Holding};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use fastbreak_mesh::status::timestamp;
use fastbreak_proto::common::v1::Period;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_internal_service_client::MarketplaceInternalServiceClient;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::trading::v1 as pb;
use futures::FutureExt;
use tonic::Status;
use uuid::Uuid;

use crate::trader::Trader;

/// The most holdings a portfolio values.
const MAX_HOLDINGS: i64 = 1000;

/// A holding with its value.
#[derive(Debug, Clone)]
pub(crate) struct Valued {
    pub holding: Holding,
    pub value: i64,
    pub time: DateTime<Utc>,
    pub stale: bool,
}

/// The start of the current period (UTC).
pub(crate) fn period_start(period: Period, now: DateTime<Utc>) -> DateTime<Utc> {
    let day = now.date_naive();
    let midnight = |d: chrono::NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    match period {
        Period::Day => midnight(day),
        Period::Week => midnight(day - Duration::days(i64::from(day.weekday().num_days_from_monday()))),
        Period::Month => midnight(day.with_day(1).expect("the first exists")),
        Period::AllTime | Period::Unspecified => DateTime::UNIX_EPOCH,
    }
}

/// Values holdings at the market now (the last sale, else the floor, else what they cost),
/// keeping the values read; when the market cannot be asked, the last known values, marked
/// stale with their time.
pub(crate) async fn value(trader: &Trader, holdings: &[Holding]) -> Vec<Valued> {
    let now = Utc::now();
    let stale = |h: &Holding| Valued {
        holding: h.clone(),
        value: h.value_cents.unwrap_or(h.cost_cents),
        time: h.valued_at.unwrap_or(h.acquired_at),
        stale: true,
    };
    if holdings.is_empty() {
        return Vec::new();
    }
    let fresh = match fetch(trader, holdings).await {
        Ok(moments) => moments,
        Err(error) => {
            tracing::warn!(error = %error.message(), "market values unavailable; last known values used");
            return holdings.iter().map(stale).collect();
        }
    };
    let valued: Vec<Valued> = holdings
        .iter()
        .map(|h| match fresh.iter().find(|m| m.moment_id == h.moment_id.to_string()) {
            Some(m) => Valued {
                holding: h.clone(),
                value: m.last_sale_cents.or(m.floor_price_cents).unwrap_or(h.cost_cents),
                time: now,
                stale: false,
            },
            None => stale(h),
        })
        .collect();
    let values: Vec<(Uuid, i64)> = valued.iter().filter(|v| !v.stale).map(|v| (v.holding.moment_id, v.value)).collect();
    let kept = trader
        .read_committed(move |conn| {
            let values = values.clone();
            async move { repo::set_holding_values(conn, &values, now).await }.boxed()
        })
        .await;
    if let Err(error) = kept {
        tracing::warn!(error = %error.message(), "market values not kept");
    }
    valued
}

async fn fetch(trader: &Trader, holdings: &[Holding]) -> Result<Vec<market::Moment>, Status> {
    let mut client = MarketplaceServiceClient::new(trader.peers.marketplace.channel()?);
    let mut moments = Vec::with_capacity(holdings.len());
    for chunk in holdings.chunks(1000) {
        let ids = chunk.iter().map(|h| h.moment_id.to_string()).collect();
        let request = trader.request(market::BatchGetMomentsRequest { moment_ids: ids });
        moments.extend(client.batch_get_moments(request).await?.into_inner().moments);
    }
    Ok(moments)
}

/// The market's return since `start`, when it can be had.
async fn market_return(trader: &Trader, start: DateTime<Utc>) -> Option<i64> {
    let mut client = MarketplaceInternalServiceClient::new(trader.peers.marketplace.channel().ok()?);
    let request = trader.request(market::GetMarketReturnRequest { start_time: Some(timestamp(start)) });
    client.get_market_return(request).await.ok()?.into_inner().return_bps
}

/// A user's equity now: cash and holdings at value, with the valued holdings.
pub(crate) async fn equity(trader: &Trader, user: Uuid) -> Result<(i64, i64, Vec<Valued>), Status> {
    let (cash, holdings) = trader
        .read(move |conn| {
            async move {
                let account = repo::user_account(conn, user).await?;
                Ok((account.balance_cents, repo::all_holdings(conn, user, MAX_HOLDINGS).await?))
            }
            .boxed()
        })
        .await?;
    let valued = value(trader, &holdings).await;
    let market: i64 = valued.iter().map(|v| v.value).sum();
    Ok((cash, market, valued))
}

/// Keeps a user's equity now, for later periods' returns.
pub(crate) async fn snapshot(trader: &Trader, user: Uuid, equity: i64) -> Result<(), Status> {
    trader
        .read_committed(move |conn| {
            async move {
                let now = repo::database_now(conn).await?;
                let deposits = repo::deposits_before(conn, user, now + Duration::seconds(1)).await?;
                repo::record_snapshot(
                    conn,
                    &EquitySnapshot { user_id: user, taken_at: now, equity_cents: equity, deposits_cents: deposits },
                )
                .await
            }
            .boxed()
        })
        .await
}

/// The user's portfolio now.
pub(crate) async fn portfolio(trader: &Trader, user: Uuid) -> Result<pb::Portfolio, Status> {
    let now = Utc::now();
    let (cash, market_value, valued) = equity(trader, user).await?;
    let cost: i64 = valued.iter().map(|v| v.holding.cost_cents).sum();
    let equity_now = cash + market_value;
    let periods = [Period::Day, Period::Week, Period::Month];
    let starts: Vec<DateTime<Utc>> = periods.iter().map(|p| period_start(*p, now)).collect();
    let (totals, deposits_now, bases) = trader
        .read(move |conn| {
            let starts = starts.clone();
            async move {
                let totals = repo::trade_totals(conn, user, DateTime::UNIX_EPOCH).await?;
                let deposits_now = repo::deposits_before(conn, user, now + Duration::seconds(1)).await?;
                let mut bases = Vec::new();
                for start in starts {
                    bases.push((start, repo::snapshot_at(conn, user, start).await?));
                }
                Ok((totals, deposits_now, bases))
            }
            .boxed()
        })
        .await?;
    let unrealized = market_value - cost;
    let roi_bps = if totals.spent_cents > 0 {
        (totals.realized_pnl_cents + unrealized).saturating_mul(10_000) / totals.spent_cents
    } else {
        0
    };
    let mut returns = Vec::new();
    for (period, (start, base)) in periods.iter().zip(bases) {
        let (base_equity, base_deposits) = base.map_or((0, 0), |s| (s.equity_cents, s.deposits_cents));
        let added = deposits_now - base_deposits;
        let return_cents = equity_now - base_equity - added;
        let capital = base_equity + added;
        returns.push(pb::PeriodReturn {
            period: (*period).into(),
            return_cents,
            return_bps: if capital > 0 { return_cents.saturating_mul(10_000) / capital } else { 0 },
            market_return_bps: market_return(trader, start).await,
        });
    }
    if let Err(error) = snapshot(trader, user, equity_now).await {
        tracing::warn!(error = %error.message(), "equity snapshot not kept");
    }
    Ok(pb::Portfolio {
        holding_count: i64::try_from(valued.len()).unwrap_or(i64::MAX),
        market_value_cents: market_value,
        cost_basis_cents: cost,
        unrealized_pnl_cents: unrealized,
        realized_pnl_cents: totals.realized_pnl_cents,
        roi_bps,
        returns,
        cash_cents: cash,
        compute_time: Some(timestamp(now)),
        stale_value_count: i64::try_from(valued.iter().filter(|v| v.stale).count()).unwrap_or(i64::MAX),
        oldest_value_time: valued.iter().map(|v| v.time).min().map(timestamp),
    })
}
