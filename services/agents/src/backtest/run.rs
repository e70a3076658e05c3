//! A backtest where the service meets it: the request checked, the caller's strategies read
//! from the strategy service, the run stored, replayed on a blocking thread (a few at once
//! across users, one at a time per user) with its progress written as it goes, and its report
//! stored at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use fastbreak_limits::{Limits, Suspicion};
use fastbreak_mesh::caller;
use fastbreak_mesh::status::{self, Violations, timestamp};
use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::risk::v1 as risk;
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use futures::FutureExt;
use tokio::sync::{Semaphore, watch};
use tonic::{Code, Status};
use uuid::Uuid;

use super::{Plan, Report, check, replay};
use crate::engine::Engine;
use crate::store::{self as repo, Backtest, BacktestState};

/// Backtests replayed at once across all users (each takes a core while it runs).
pub(crate) const AT_ONCE: usize = 2;

/// The paper money a ledger starts with when the request names none: $1,000.
const DEFAULT_STARTING_CENTS: i64 = 100_000;

/// The replays running, bounded.
pub(crate) fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(AT_ONCE))
}

impl Engine {
    /// Checks a backtest's request, stores it running and starts it: answered at once.
    pub(crate) async fn start_backtest(
        &self,
        user: Uuid,
        request: pb::RunBacktestRequest,
        slots: Arc<Semaphore>,
    ) -> Result<Backtest, Status> {
        let mut violations = Violations::new();
        let mut ids: Vec<Uuid> = Vec::new();
        for (k, text) in request.strategy_ids.iter().enumerate() {
            let field = format!("strategy_ids[{k}]");
            if let Some(id) = violations.uuid(text, field.clone()) {
                violations.check(!ids.contains(&id), field, "names a strategy already named");
                ids.push(id);
            }
        }
        let starting =
            if request.starting_balance_cents == 0 { DEFAULT_STARTING_CENTS } else { request.starting_balance_cents };
        let days = u32::try_from(request.days).unwrap_or(0);
        let hold_days = u32::try_from(request.hold_days).unwrap_or(u32::MAX);
        for (field, description) in check(days, starting, hold_days, request.strategy_ids.len()) {
            violations.add(field, description);
        }
        violations.into_result(())?;
        let mut strategies = Vec::with_capacity(ids.len());
        for (k, id) in ids.iter().enumerate() {
            let strategy = self.strategy_of(user, *id, k).await?;
            if matches!(strategy.parameters, Some(strategy::strategy::Parameters::ArbitrageMode(_))) {
                let mut violations = Violations::new();
                violations.add(
                    format!("strategy_ids[{k}]"),
                    format!(
                        "\"{}\" is in arbitrage mode, which acts on arbitrage opportunities across marketplaces; the \
                         simulated season has one market to replay, so it is not backtested",
                        strategy.display_name
                    ),
                );
                violations.into_result(())?;
            }
            strategies.push(strategy);
        }
        // The user's budget limits as they stand: each ledger is held to them.
        let limits = self.limits_of(user).await?;
        // And the deployment's rules for suspicious activity, as risk applies them.
        let suspicion = self.suspicion_rules().await?;
        let now = Utc::now();
        let backtest = Backtest {
            id: Uuid::now_v7(),
            user_id: user,
            state: BacktestState::Running,
            strategy_ids: ids,
            seed: request.seed as i64,
            days: request.days,
            starting_cents: starting,
            hold_days: request.hold_days,
            days_done: 0,
            failure_reason: None,
            created_at: now,
            finished_at: None,
        };
        let stored = backtest.clone();
        let started = self
            .read_committed(move |conn| {
                let stored = stored.clone();
                async move { repo::start_backtest(conn, &stored).await }.boxed()
            })
            .await?;
        if !started {
            return Err(status::failed_precondition(
                "a backtest of yours is running: wait for it to finish (GetBacktest) before starting another",
                ErrorReason::InvalidState,
                [],
            ));
        }
        let plan = Plan {
            seed: request.seed,
            start: super::season(request.seed).start,
            days,
            starting_cents: starting,
            hold_days,
            strategies,
            limits: Some(limits),
            suspicion,
        };
        let engine = self.on_background();
        tokio::spawn(async move { engine.run_backtest(backtest.id, plan, slots).await });
        Ok(backtest)
    }

    /// The caller's budget limits, as the risk service answers the caller.
    async fn limits_of(&self, user: Uuid) -> Result<Limits, Status> {
        let limits = self
            .retried(|| {
                let mut request = self.request(risk::GetBudgetLimitsRequest {});
                caller::set_user_id(&mut request, user);
                async move {
                    let mut client = RiskServiceClient::new(self.peers.risk.channel()?);
                    client.get_budget_limits(request).await.map(|r| r.into_inner())
                }
            })
            .await?;
        Ok(Limits::from_pb(&limits))
    }

    /// The rules by which the deployment's risk service finds activity suspicious.
    async fn suspicion_rules(&self) -> Result<Suspicion, Status> {
        let rules = self
            .retried(|| {
                let request = self.request(risk::GetSuspicionRulesRequest {});
                async move {
                    let mut client = RiskInternalServiceClient::new(self.peers.risk.channel()?);
                    client.get_suspicion_rules(request).await.map(|r| r.into_inner())
                }
            })
            .await?;
        Ok(Suspicion::from_pb(&rules))
    }

    /// One of the caller's strategies, as the strategy service answers the caller.
    async fn strategy_of(&self, user: Uuid, id: Uuid, place: usize) -> Result<strategy::Strategy, Status> {
        let found = self
            .retried(|| {
                let mut request = self.request(strategy::GetStrategyRequest { strategy_id: id.to_string() });
                caller::set_user_id(&mut request, user);
                async move {
                    let mut client = StrategyServiceClient::new(self.peers.strategy.channel()?);
                    client.get_strategy(request).await.map(|r| r.into_inner())
                }
            })
            .await;
        match found {
            Ok(strategy) => Ok(strategy),
            Err(status) if status.code() == Code::NotFound => {
                let mut violations = Violations::new();
                violations.add(format!("strategy_ids[{place}]"), format!("you have no strategy {id}"));
                violations.into_result(()).map(|()| strategy::Strategy::default())
            }
            Err(status) => Err(status),
        }
    }

    /// Replays a stored backtest once a slot is free, writing its progress, then its report. It
    /// stops when its deadline passes, counted from the request (failed, saying so), or when
    /// its progress finds it no longer running (cancelled).
    async fn run_backtest(&self, id: Uuid, plan: Plan, slots: Arc<Semaphore>) {
        // The deadline counts from the request, the wait for a slot included.
        let deadline = self.settings.backtest_deadline;
        let until = tokio::time::Instant::now() + deadline;
        let _slot = tokio::time::timeout_at(until, slots.acquire_owned()).await;
        // One cancelled while it waited is not replayed.
        let running =
            self.read_committed(move |conn| async move { repo::backtest_progress(conn, id, 0).await }.boxed()).await;
        if matches!(running, Ok(false)) {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = watch::channel(0u32);
        let stopping = stop.clone();
        let mut replaying = tokio::task::spawn_blocking(move || {
            let report = futures::executor::block_on(replay(
                &plan,
                |day| {
                    let _ = tx.send(day);
                },
                &stopping,
            ))?;
            let chart = report.chart_svg();
            Some((report, chart))
        });
        let (mut late, mut cancelled) = (false, false);
        let result = loop {
            tokio::select! {
                done = &mut replaying => break done,
                () = tokio::time::sleep_until(until), if !late => {
                    late = true;
                    stop.store(true, Ordering::Relaxed);
                }
                changed = rx.changed() => {
                    if changed.is_err() {
                        break (&mut replaying).await;
                    }
                    let day = i32::try_from(*rx.borrow_and_update()).unwrap_or(i32::MAX);
                    let running = self
                        .read_committed(move |conn| async move { repo::backtest_progress(conn, id, day).await }.boxed())
                        .await;
                    if matches!(running, Ok(false)) {
                        cancelled = true;
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        };
        let result = match result {
            Ok(Some((report, chart))) => serde_json::to_value(&report)
                .map(|report| (report, chart))
                .map_err(|e| format!("the report could not be written: {e}")),
            // Cancelled: the user's cancellation is what is stored.
            Ok(None) if cancelled && !late => return,
            Ok(None) => Err(format!(
                "the backtest took longer than the {} s a backtest may run, and was stopped: replay fewer days or \
                 strategies",
                deadline.as_secs_f64()
            )),
            Err(e) => Err(format!("the replay stopped: {e}")),
        };
        let finished = self
            .read_committed(move |conn| {
                let result = result.clone();
                async move { repo::finish_backtest(conn, id, result, Utc::now()).await }.boxed()
            })
            .await;
        if let Err(status) = finished {
            tracing::warn!(backtest = %id, error = %status.message(), "a backtest's end could not be stored");
        }
    }

    /// Cancels one of the user's running backtests: as it now stands, cancelled.
    pub(crate) async fn cancel_backtest(&self, user: Uuid, id: Uuid) -> Result<Backtest, Status> {
        let now = Utc::now();
        let (found, cancelled) = self
            .read_committed(move |conn| async move { repo::cancel_backtest(conn, user, id, now).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("backtest"))?;
        if !cancelled {
            return Err(status::failed_precondition(
                format!("the backtest has already ended ({}); there is nothing to cancel", found.state),
                ErrorReason::InvalidState,
                [("state".to_owned(), found.state.to_string())],
            ));
        }
        Ok(found)
    }
}

fn ledger_to_pb(ledger: &super::report::Ledger) -> pb::BacktestLedger {
    pb::BacktestLedger {
        strategy_id: ledger.strategy_id.clone(),
        display_name: ledger.name.clone(),
        profit_cents: ledger.profit_cents,
        roi: ledger.roi,
        realised_profit_cents: ledger.realised_profit_cents,
        win_rate: ledger.win_rate,
        max_drawdown: ledger.max_drawdown,
        max_drawdown_cents: ledger.max_drawdown_cents,
        purchases: ledger.purchases as i64,
        closed_trades: ledger.closed as i64,
        awaiting_approval: ledger.awaiting_approval as i64,
        decisions: ledger.decisions as i64,
        final_equity_cents: ledger.final_equity_cents,
    }
}

/// A backtest as the contract gives it: its ledgers' figures from the report when it is passed, the
/// report itself when `send_report`, and the chart when it is passed.
pub(crate) fn backtest_to_pb(
    backtest: &Backtest,
    report: Option<serde_json::Value>,
    chart: Option<String>,
    send_report: bool,
) -> pb::Backtest {
    let state = match backtest.state {
        BacktestState::Running => pb::BacktestState::Running,
        BacktestState::Succeeded => pb::BacktestState::Succeeded,
        BacktestState::Failed => pb::BacktestState::Failed,
        BacktestState::Cancelled => pb::BacktestState::Cancelled,
    };
    let report_json = report.as_ref().filter(|_| send_report).map(|r| r.to_string()).unwrap_or_default();
    let parsed: Option<Report> = report.and_then(|r| serde_json::from_value(r).ok());
    pb::Backtest {
        backtest_id: backtest.id.to_string(),
        state: state.into(),
        strategy_ids: backtest.strategy_ids.iter().map(Uuid::to_string).collect(),
        seed: backtest.seed as u64,
        days: backtest.days,
        days_done: backtest.days_done,
        starting_balance_cents: backtest.starting_cents,
        hold_days: backtest.hold_days,
        failure_reason: backtest.failure_reason.clone().unwrap_or_default(),
        create_time: Some(timestamp(backtest.created_at)),
        end_time: backtest.finished_at.map(timestamp),
        strategies: parsed.as_ref().map(|r| r.strategies.iter().map(ledger_to_pb).collect()).unwrap_or_default(),
        baselines: parsed.as_ref().map(|r| r.baselines.iter().map(ledger_to_pb).collect()).unwrap_or_default(),
        budget_limits: parsed
            .as_ref()
            .and_then(|r| r.budget_limits.as_ref())
            .map(|b| b.summary.clone())
            .unwrap_or_default(),
        report_json,
        chart_svg: chart.unwrap_or_default(),
    }
}
