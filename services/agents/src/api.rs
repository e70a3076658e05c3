//! The agents' RPCs: a user's runs and decisions, and a scan started by hand.

use crate::store::{self as repo, AgentRun, Decision, DecisionFilter, DecisionOutcome, RunState, RunTrigger};
use fastbreak_db::OrStatus as _;
use fastbreak_mesh::idempotency::IdempotencyKey;
use fastbreak_mesh::status::{self, Violations, required_uuid, timestamp};
use fastbreak_mesh::{caller, paging};
use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::agents::v1::agent_internal_service_server::AgentInternalService;
use fastbreak_proto::agents::v1::agent_service_server::AgentService;
use futures::FutureExt;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use std::sync::Arc;
use tokio::sync::Semaphore;

use crate::backtest::{self, run::backtest_to_pb};
use crate::domain::{Factor, reason_of};
use crate::engine::{Engine, Scope};

/// The service.
#[derive(Debug, Clone)]
pub struct AgentApi {
    engine: Engine,
    /// The backtests replaying, bounded.
    backtests: Arc<Semaphore>,
}

impl AgentApi {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine, backtests: backtest::run::slots() }
    }

    async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(
            &'c mut fastbreak_db::PgConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, fastbreak_db::DatabaseError>>
        + Send,
    ) -> Result<T, Status> {
        self.engine.database.read(work).await.or_status()
    }
}

fn trigger_to_pb(trigger: RunTrigger) -> pb::RunTrigger {
    match trigger {
        RunTrigger::ListingEvent => pb::RunTrigger::ListingEvent,
        RunTrigger::GameEvent => pb::RunTrigger::GameEvent,
        RunTrigger::ScheduledScan => pb::RunTrigger::ScheduledScan,
        RunTrigger::ManualScan => pb::RunTrigger::ManualScan,
        RunTrigger::Arbitrage => pb::RunTrigger::Arbitrage,
    }
}

fn state_to_pb(state: RunState) -> pb::RunState {
    match state {
        RunState::Running => pb::RunState::Running,
        RunState::Succeeded => pb::RunState::Succeeded,
        RunState::Failed => pb::RunState::Failed,
    }
}

#[tonic::async_trait]
impl AgentInternalService for AgentApi {
    async fn get_automation_health(
        &self,
        _request: Request<pb::GetAutomationHealthRequest>,
    ) -> Result<Response<pb::AutomationHealth>, Status> {
        let since = chrono::Utc::now() - chrono::Duration::hours(1);
        let (cursors, counts, failures, paused) = self
            .read(move |conn| {
                async move {
                    let cursors = repo::cursors(conn).await?;
                    let counts = repo::run_counts_since(conn, since).await?;
                    let failures = repo::recent_failures(conn, 20).await?;
                    let paused = repo::paused_count(conn).await?;
                    Ok((cursors, counts, failures, paused))
                }
                .boxed()
            })
            .await?;
        Ok(Response::new(pb::AutomationHealth {
            streams: cursors
                .into_iter()
                .map(|(stream, sequence, at)| pb::StreamPosition { stream, sequence, update_time: Some(timestamp(at)) })
                .collect(),
            last_hour: counts
                .into_iter()
                .map(|(trigger, state, count)| pb::RunCount {
                    trigger: trigger_to_pb(trigger).into(),
                    state: state_to_pb(state).into(),
                    count,
                })
                .collect(),
            recent_failures: failures.iter().map(run_to_pb).collect(),
            paused_users: paused,
        }))
    }
}

fn run_to_pb(run: &AgentRun) -> pb::AgentRun {
    pb::AgentRun {
        run_id: run.id.to_string(),
        user_id: run.user_id.to_string(),
        trigger: trigger_to_pb(run.trigger).into(),
        state: state_to_pb(run.state).into(),
        listings_evaluated: run.listings_evaluated,
        decision_count: run.decision_count,
        purchase_count: run.purchase_count,
        attempt_count: run.attempt_count,
        failure_reason: run.failure_reason.clone().unwrap_or_default(),
        start_time: Some(timestamp(run.started_at)),
        end_time: run.ended_at.map(timestamp),
    }
}

fn automation_to_pb(a: &repo::Automation) -> pb::AutomationStatus {
    pb::AutomationStatus { paused: a.paused, reason: a.reason.clone(), change_time: Some(timestamp(a.changed_at)) }
}

impl AgentApi {
    async fn set_automation(
        &self,
        user: Uuid,
        paused: bool,
        reason: String,
    ) -> Result<Response<pb::AutomationStatus>, Status> {
        let set = self
            .engine
            .read_committed(move |conn| {
                let reason = reason.clone();
                async move { repo::set_automation(conn, user, paused, &reason).await }.boxed()
            })
            .await?;
        Ok(Response::new(automation_to_pb(&set)))
    }
}

fn decision_to_pb(d: &Decision) -> pb::Decision {
    let factors: Vec<Factor> = serde_json::from_value(d.factors.clone()).unwrap_or_default();
    pb::Decision {
        decision_id: d.id.to_string(),
        run_id: d.run_id.to_string(),
        strategy_id: d.strategy_id.to_string(),
        listing_id: d.listing_id.to_string(),
        moment_id: d.moment_id.to_string(),
        outcome: match d.outcome {
            DecisionOutcome::Buy => pb::DecisionOutcome::Buy,
            DecisionOutcome::Skip => pb::DecisionOutcome::Skip,
            DecisionOutcome::Refused => pb::DecisionOutcome::Refused,
            DecisionOutcome::AwaitingApproval => pb::DecisionOutcome::AwaitingApproval,
        }
        .into(),
        reasons: d.reasons.clone(),
        price_cents: d.price_cents,
        fair_value_cents: d.fair_value_cents,
        confidence: d.confidence,
        trade_id: d.trade_id.map(|t| t.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(d.created_at)),
        reason: reason_of(&d.reason_code).into(),
        rule: d.rule.clone(),
        valuation_id: d.valuation_id.map(|v| v.to_string()).unwrap_or_default(),
        factors: factors
            .into_iter()
            .map(|f| pb::DecisionFactor {
                name: f.name,
                weight: f.weight,
                impact_cents: f.impact_cents,
                explanation: f.explanation,
            })
            .collect(),
        data_incomplete: d.data_incomplete,
        approval_expire_time: d.approval_expires_at.map(timestamp),
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn run_backtest(&self, request: Request<pb::RunBacktestRequest>) -> Result<Response<pb::Backtest>, Status> {
        let user = caller::user_id(&request)?;
        let started = self.engine.start_backtest(user, request.into_inner(), self.backtests.clone()).await?;
        Ok(Response::new(backtest_to_pb(&started, None, None, false)))
    }

    async fn get_backtest(&self, request: Request<pb::GetBacktestRequest>) -> Result<Response<pb::Backtest>, Status> {
        let user = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().backtest_id, "backtest_id")?;
        let view = pb::BacktestView::try_from(request.get_ref().view)
            .map_err(|_| status::invalid_field("view", format!("{} is no BacktestView", request.get_ref().view)))?;
        let (chart, report) = match view {
            pb::BacktestView::Basic => (false, false),
            pb::BacktestView::Chart => (true, false),
            pb::BacktestView::Report => (false, true),
            pb::BacktestView::Unspecified | pb::BacktestView::Full => (true, true),
        };
        let (found, stored, drawn) = self
            .read(move |conn| async move { repo::find_backtest(conn, user, id, chart).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("backtest"))?;
        // Every view gives the ledgers' figures, which are read from the report.
        Ok(Response::new(backtest_to_pb(&found, stored, drawn, report)))
    }

    async fn cancel_backtest(
        &self,
        request: Request<pb::CancelBacktestRequest>,
    ) -> Result<Response<pb::Backtest>, Status> {
        let user = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().backtest_id, "backtest_id")?;
        let cancelled = self.engine.cancel_backtest(user, id).await?;
        Ok(Response::new(backtest_to_pb(&cancelled, None, None, false)))
    }

    async fn list_backtests(
        &self,
        request: Request<pb::ListBacktestsRequest>,
    ) -> Result<Response<pb::ListBacktestsResponse>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(r.page_size, &r.page_token, 20, 100, &mut violations);
        violations.into_result(())?;
        let found = self.read(move |conn| async move { repo::list_backtests(conn, user, page).await }.boxed()).await?;
        Ok(Response::new(pb::ListBacktestsResponse {
            backtests: found.items.iter().map(|b| backtest_to_pb(b, None, None, false)).collect(),
            next_page_token: paging::next_page_token(found.next),
        }))
    }

    async fn approve_decision(
        &self,
        request: Request<pb::ApproveDecisionRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let user = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().decision_id, "decision_id")?;
        let decision = self.engine.approve(user, id, chrono::Utc::now()).await?;
        tracing::info!(%user, decision_id = %id, outcome = decision.outcome.as_str(), "a purchase approved");
        Ok(Response::new(decision_to_pb(&decision)))
    }

    async fn decline_decision(
        &self,
        request: Request<pb::DeclineDecisionRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let user = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().decision_id, "decision_id")?;
        let decision = self.engine.decline(user, id, chrono::Utc::now()).await?;
        tracing::info!(%user, decision_id = %id, "a purchase declined");
        Ok(Response::new(decision_to_pb(&decision)))
    }

    async fn start_scan(&self, request: Request<pb::StartScanRequest>) -> Result<Response<pb::AgentRun>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let only = if r.strategy_id.is_empty() { None } else { violations.uuid(&r.strategy_id, "strategy_id") };
        IdempotencyKey::parse_optional(&r.idempotency_key, "idempotency_key", &mut violations);
        violations.into_result(())?;
        let key = r.idempotency_key.clone();
        if !key.is_empty() {
            let found =
                self.read(move |conn| async move { repo::find_run_by_key(conn, user, &key).await }.boxed()).await?;
            if let Some(run) = found {
                return Ok(Response::new(run_to_pb(&run)));
            }
        }
        let listings = self.engine.market_listings().await?;
        let run = Uuid::new_v4();
        let key = r.idempotency_key.clone();
        let started = self
            .engine
            .read_committed(move |conn| {
                let key = key.clone();
                async move {
                    if key.is_empty() {
                        repo::start_run(conn, run, user, RunTrigger::ManualScan).await.map(Some)
                    } else {
                        repo::start_keyed_run(conn, run, user, RunTrigger::ManualScan, &key).await
                    }
                }
                .boxed()
            })
            .await?;
        if started.is_none() {
            // Another call under the key started first: its run is the answer.
            let key = r.idempotency_key.clone();
            let first = self
                .read(move |conn| async move { repo::find_run_by_key(conn, user, &key).await }.boxed())
                .await?
                .ok_or_else(|| status::not_found("run"))?;
            return Ok(Response::new(run_to_pb(&first)));
        }
        self.engine
            .scan(run, user, Scope { user: Some(user), strategy: only }, RunTrigger::ManualScan, &listings)
            .await;
        let run = self
            .read(move |conn| async move { repo::find_run(conn, user, run).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("run"))?;
        Ok(Response::new(run_to_pb(&run)))
    }

    async fn pause_automation(
        &self,
        request: Request<pb::PauseAutomationRequest>,
    ) -> Result<Response<pb::AutomationStatus>, Status> {
        let user = caller::user_id(&request)?;
        let reason = request.into_inner().reason;
        let mut violations = Violations::new();
        violations.check(
            reason.chars().count() <= 500 && !reason.chars().any(char::is_control),
            "reason",
            "must be at most 500 characters without control characters",
        );
        violations.into_result(())?;
        self.set_automation(user, true, reason).await
    }

    async fn resume_automation(
        &self,
        request: Request<pb::ResumeAutomationRequest>,
    ) -> Result<Response<pb::AutomationStatus>, Status> {
        let user = caller::user_id(&request)?;
        self.set_automation(user, false, String::new()).await
    }

    async fn get_automation_status(
        &self,
        request: Request<pb::GetAutomationStatusRequest>,
    ) -> Result<Response<pb::AutomationStatus>, Status> {
        let user = caller::user_id(&request)?;
        let found = self.read(move |conn| async move { repo::automation(conn, user).await }.boxed()).await?;
        Ok(Response::new(found.as_ref().map_or_else(pb::AutomationStatus::default, automation_to_pb)))
    }

    async fn get_agent_run(&self, request: Request<pb::GetAgentRunRequest>) -> Result<Response<pb::AgentRun>, Status> {
        let user = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().run_id, "run_id")?;
        let run = self
            .read(move |conn| async move { repo::find_run(conn, user, id).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("run"))?;
        Ok(Response::new(run_to_pb(&run)))
    }

    async fn list_agent_runs(
        &self,
        request: Request<pb::ListAgentRunsRequest>,
    ) -> Result<Response<pb::ListAgentRunsResponse>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(r.page_size, &r.page_token, 50, 100, &mut violations);
        violations.into_result(())?;
        let found = self.read(move |conn| async move { repo::list_runs(conn, user, page).await }.boxed()).await?;
        Ok(Response::new(pb::ListAgentRunsResponse {
            runs: found.items.iter().map(run_to_pb).collect(),
            next_page_token: paging::next_page_token(found.next),
        }))
    }

    async fn get_decision(&self, request: Request<pb::GetDecisionRequest>) -> Result<Response<pb::Decision>, Status> {
        let user = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().decision_id, "decision_id")?;
        let decision = self
            .read(move |conn| async move { repo::find_decision(conn, user, id).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("decision"))?;
        Ok(Response::new(decision_to_pb(&decision)))
    }

    async fn list_decisions(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(r.page_size, &r.page_token, 50, 100, &mut violations);
        let optional =
            |text: &str, field: &str, v: &mut Violations| if text.is_empty() { None } else { v.uuid(text, field) };
        let strategy_id = optional(&r.strategy_id, "strategy_id", &mut violations);
        let run_id = optional(&r.run_id, "run_id", &mut violations);
        let moment_id = optional(&r.moment_id, "moment_id", &mut violations);
        let outcome = match pb::DecisionOutcome::try_from(r.outcome) {
            Ok(pb::DecisionOutcome::Unspecified) => None,
            Ok(pb::DecisionOutcome::Buy) => Some(DecisionOutcome::Buy),
            Ok(pb::DecisionOutcome::Skip) => Some(DecisionOutcome::Skip),
            Ok(pb::DecisionOutcome::Refused) => Some(DecisionOutcome::Refused),
            Ok(pb::DecisionOutcome::AwaitingApproval) => Some(DecisionOutcome::AwaitingApproval),
            Err(_) => {
                violations.add("outcome", "is not a known decision outcome");
                None
            }
        };
        violations.into_result(())?;
        let filter = DecisionFilter { strategy_id, run_id, moment_id, outcome };
        let found = self
            .read(move |conn| async move { repo::list_decisions_by(conn, user, filter, page).await }.boxed())
            .await?;
        Ok(Response::new(pb::ListDecisionsResponse {
            decisions: found.items.iter().map(decision_to_pb).collect(),
            next_page_token: paging::next_page_token(found.next),
        }))
    }
}
