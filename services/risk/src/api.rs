//! The risk service's RPCs: each converts its request into domain values, applies the rule, and
//! converts the answer back.

use fastbreak_mesh::bulkhead::Turns;
use std::sync::Arc;

use crate::store::{self as risk, HoldFilter, HoldState, LimitChangeState, LimitKind, StopActor};
use chrono::Utc;
use fastbreak_db::{Database, DatabaseError, PgConnection};
use fastbreak_mesh::idempotency::IdempotencyKey;
use fastbreak_mesh::status::{self, Violations, required_uuid, timestamp};
use fastbreak_mesh::{caller, paging};
use fastbreak_proto::common::v1::{ErrorReason, Period};
use fastbreak_proto::risk::v1 as pb;
use fastbreak_proto::risk::v1::risk_internal_service_server::RiskInternalService;
use fastbreak_proto::risk::v1::risk_service_server::RiskService;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::authorize::{self, Decision, Purchase};
use crate::convert::{self, in_force_to_pb, limits_in_force};
use crate::domain::{self, Periods};
use crate::error::RiskError;
use crate::settings::Settings;

/// The longest reason for an emergency stop or a release.
const MAX_REASON: usize = 500;

/// Text a caller gives (a reason): no control characters, which the database refuses.
fn plain(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// Both of the target's services.
#[derive(Debug, Clone)]
pub struct RiskApi {
    database: Arc<Database>,
    settings: Arc<Settings>,
    /// Wakes the worker when an alert's notification is due.
    wake: Arc<Notify>,
    /// Authorisation turns, by user: calls of one user wait there, not on a pooled connection
    /// blocked on the user's database lock, so that a hot user cannot take the whole pool from
    /// the others.
    turns: Arc<Turns>,
}

impl RiskApi {
    pub(crate) fn new(database: Database, settings: Arc<Settings>, wake: Arc<Notify>) -> Self {
        Self { database: Arc::new(database), settings, wake, turns: Arc::default() }
    }

    async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send,
    ) -> Result<T, RiskError> {
        Ok(self.database.read(work).await?)
    }

    async fn serializable<T: Send>(
        &self,
        work: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send + Sync,
    ) -> Result<T, RiskError> {
        Ok(self.database.transaction(work).await?)
    }

    /// A hold's commit or release: a conditional UPDATE of one row, whose row lock decides
    /// between concurrent transitions.
    async fn transition<T: Send>(
        &self,
        work: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send + Sync,
    ) -> Result<T, RiskError> {
        Ok(self.database.read_committed(work).await?)
    }

    async fn engage(&self, user_id: Uuid, actor: StopActor, reason: &str) -> Result<pb::EmergencyStop, Status> {
        let reason = reason.trim().to_owned();
        let mut violations = Violations::new();
        violations.check(!reason.is_empty(), "reason", "must say why the stop is engaged");
        violations.check(plain(&reason), "reason", "must not contain control characters");
        violations.check(
            reason.chars().count() <= MAX_REASON,
            "reason",
            format!("must be at most {MAX_REASON} characters"),
        );
        violations.into_result(())?;
        // Under the user's risk lock: an authorisation in flight finishes first, and every later
        // one sees the stop.
        let (stop, engaged) = self
            .database
            .read_committed(|conn| {
                let reason = reason.clone();
                async move {
                    risk::lock_user_risk(conn, user_id).await?;
                    risk::engage_emergency_stop(conn, user_id, actor, &reason).await
                }
                .boxed()
            })
            .await
            .map_err(RiskError::from)?;
        if engaged {
            tracing::warn!(%user_id, actor = actor.as_str(), %reason, "emergency stop engaged");
        }
        Ok(convert::stop_to_pb(Some(&stop)))
    }

    async fn release(&self, user_id: Uuid, actor: StopActor) -> Result<pb::EmergencyStop, Status> {
        let stop = self
            .database
            .read_committed(|conn| {
                async move {
                    risk::lock_user_risk(conn, user_id).await?;
                    risk::release_emergency_stop(conn, user_id, actor).await
                }
                .boxed()
            })
            .await
            .map_err(RiskError::from)?;
        if let Some(stop) = &stop
            && stop.engaged
            && stop.engaged_by == Some(StopActor::Operator)
            && actor != StopActor::Operator
        {
            return Err(status::failed_precondition(
                "an operator engaged this emergency stop; only an operator can release it",
                ErrorReason::InvalidState,
                [("engaged_by".to_owned(), "operator".to_owned())],
            ));
        }
        if stop.as_ref().is_some_and(|s| s.released_by == Some(actor) && !s.engaged) {
            tracing::info!(%user_id, actor = actor.as_str(), "emergency stop released");
        }
        Ok(convert::stop_to_pb(stop.as_ref()))
    }

    /// Confirms or cancels a change; says whether it was pending before this call.
    async fn resolve_change(&self, user_id: Uuid, id: Uuid, confirm: bool) -> Result<Resolved, RiskError> {
        self.serializable(|conn| {
            async move {
                // Under the user's risk lock: no authorisation decides on the old limits after
                // the new ones are in force.
                risk::lock_user_risk(conn, user_id).await?;
                let before =
                    risk::find_limit_change(conn, user_id, id).await?.ok_or(DatabaseError::NotFound("limit change"))?;
                let change = risk::resolve_limit_change(conn, user_id, id, confirm, Utc::now()).await?;
                let in_force = risk::find_limits(conn, user_id).await?;
                Ok(Resolved { was_pending: before.state == LimitChangeState::Pending, change, in_force })
            }
            .boxed()
        })
        .await
    }
}

/// A change as confirming or cancelling left it.
struct Resolved {
    was_pending: bool,
    change: risk::LimitChange,
    in_force: Option<risk::BudgetLimits>,
}

/// A decision as the caller gets it: the hold, or the refusal with its reason and figures.
fn answer(decision: Decision) -> Result<crate::store::Hold, Status> {
    Err(match decision {
        Decision::Granted(hold) => return Ok(hold),
        Decision::KeyReused(hold) => status::failed_precondition(
            "the idempotency key was used for another purchase (a different amount or moment)",
            ErrorReason::IdempotencyKeyReused,
            [
                ("hold_id".to_owned(), hold.id.to_string()),
                ("amount_cents".to_owned(), hold.amount_cents.to_string()),
                ("moment_id".to_owned(), hold.moment_id.to_string()),
            ],
        ),
        Decision::Released(hold) => status::failed_precondition(
            format!(
                "the purchase under this key was released ({}): use a new key to try again",
                hold.release_reason.as_deref().unwrap_or("no reason given")
            ),
            ErrorReason::InvalidState,
            [("hold_id".to_owned(), hold.id.to_string()), ("state".to_owned(), "released".to_owned())],
        ),
        Decision::Stopped(stop) => status::failed_precondition(
            format!("the emergency stop is engaged: {}", stop.reason),
            ErrorReason::EmergencyStopEngaged,
            [
                ("engaged_by".to_owned(), stop.engaged_by.map_or("", |a| a.as_str()).to_owned()),
                ("reason".to_owned(), stop.reason.clone()),
            ],
        ),
        Decision::Limit(refusal) => refusal.status(),
        Decision::Paused(alert) => status::failed_precondition(
            format!("automated purchases are paused: {}; acknowledge risk alert {} to resume", alert.message, alert.id),
            ErrorReason::SuspiciousActivity,
            [("alert_id".to_owned(), alert.id.to_string())],
        ),
    })
}

fn usage(kind: LimitKind, limits: &domain::Limits, figures: &risk::Figures, periods: &Periods) -> pb::LimitUsage {
    let limit = limits.get(kind);
    let held = figures.held;
    let spent = match kind {
        LimitKind::PerMoment | LimitKind::Reserve => 0,
        kind => domain::spent(figures, kind),
    };
    let remaining = match kind {
        LimitKind::Reserve => None,
        LimitKind::PerMoment => limit,
        _ => limit.map(|l| (l - spent - held).max(0)),
    };
    let period = match kind {
        LimitKind::Daily => Period::Day,
        LimitKind::Weekly => Period::Week,
        LimitKind::Monthly => Period::Month,
        LimitKind::Total => Period::AllTime,
        _ => Period::Unspecified,
    };
    pb::LimitUsage {
        kind: convert::limit_kind_to_pb(kind) as i32,
        limit_cents: limit,
        spent_cents: spent,
        held_cents: held,
        remaining_cents: remaining,
        period: period as i32,
        period_start_time: periods.start(kind).map(timestamp),
    }
}

#[tonic::async_trait]
impl RiskService for RiskApi {
    async fn get_budget_limits(
        &self,
        request: Request<pb::GetBudgetLimitsRequest>,
    ) -> Result<Response<pb::BudgetLimits>, Status> {
        let user_id = caller::user_id(&request)?;
        let row = self.read(|conn| risk::find_limits(conn, user_id).boxed()).await?;
        Ok(Response::new(in_force_to_pb(row.as_ref())))
    }

    async fn propose_budget_limit_change(
        &self,
        request: Request<pb::ProposeBudgetLimitChangeRequest>,
    ) -> Result<Response<pb::BudgetLimitChange>, Status> {
        let user_id = caller::user_id(&request)?;
        let mut violations = Violations::new();
        let Some(proposed) = &request.get_ref().limits else {
            violations.add("limits", "required: the whole new set of limits");
            return Err(violations.into_status());
        };
        let values = convert::limits_from_pb(proposed);
        let zone_name = if proposed.time_zone.is_empty() { "UTC" } else { proposed.time_zone.as_str() };
        domain::validate(&values, &proposed.time_zone, &mut violations);
        violations.into_result(())?;
        let current = self.read(|conn| risk::find_limits(conn, user_id).boxed()).await?;
        let in_force = limits_in_force(current.as_ref());
        if in_force.values == values && in_force.zone.name() == zone_name {
            return Err(status::invalid_field("limits", "the same as the limits in force: nothing would change"));
        }
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.settings.change_ttl).unwrap_or(chrono::Duration::minutes(15));
        let id = Uuid::new_v4();
        let zone_name = zone_name.to_owned();
        let change = self
            .serializable(|conn| {
                let zone_name = zone_name.clone();
                async move { risk::propose_limit_change(conn, id, user_id, &values, &zone_name, expires_at).await }
                    .boxed()
            })
            .await?;
        tracing::info!(%user_id, change_id = %id, "limit change proposed");
        Ok(Response::new(convert::change_to_pb(&change, current.as_ref())))
    }

    async fn get_pending_budget_limit_change(
        &self,
        request: Request<pb::GetPendingBudgetLimitChangeRequest>,
    ) -> Result<Response<pb::BudgetLimitChange>, Status> {
        let user_id = caller::user_id(&request)?;
        let (change, current) = self
            .serializable(|conn| {
                async move {
                    let change = risk::find_pending_limit_change(conn, user_id, Utc::now()).await?;
                    Ok((change, risk::find_limits(conn, user_id).await?))
                }
                .boxed()
            })
            .await?;
        let change = change.ok_or_else(|| status::not_found("pending limit change"))?;
        Ok(Response::new(convert::change_to_pb(&change, current.as_ref())))
    }

    async fn confirm_budget_limit_change(
        &self,
        request: Request<pb::ConfirmBudgetLimitChangeRequest>,
    ) -> Result<Response<pb::BudgetLimits>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().change_id, "change_id")?;
        let Resolved { was_pending, change, in_force } = self.resolve_change(user_id, id, true).await?;
        if !was_pending || change.state != LimitChangeState::Confirmed {
            return Err(RiskError::ChangeNotPending(change.state.as_str()).into());
        }
        tracing::info!(%user_id, change_id = %id, "limit change confirmed");
        Ok(Response::new(in_force_to_pb(in_force.as_ref())))
    }

    async fn cancel_budget_limit_change(
        &self,
        request: Request<pb::CancelBudgetLimitChangeRequest>,
    ) -> Result<Response<pb::BudgetLimitChange>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().change_id, "change_id")?;
        let Resolved { change, in_force, .. } = self.resolve_change(user_id, id, false).await?;
        if change.state == LimitChangeState::Confirmed {
            return Err(RiskError::ChangeNotPending("confirmed").into());
        }
        Ok(Response::new(convert::change_to_pb(&change, in_force.as_ref())))
    }

    async fn get_spending_summary(
        &self,
        request: Request<pb::GetSpendingSummaryRequest>,
    ) -> Result<Response<pb::SpendingSummary>, Status> {
        let user_id = caller::user_id(&request)?;
        let now = Utc::now();
        let suspicion = self.settings.suspicion.clone();
        let (row, figures, stop, paused, periods) = self
            .read(|conn| {
                async move {
                    // One statement reads all the sums; the limits and states around it are
                    // read on the same connection.
                    let row = risk::find_limits(conn, user_id).await?;
                    let limits = limits_in_force(row.as_ref());
                    let periods = Periods::at(now, limits.zone);
                    let figures =
                        risk::figures(conn, user_id, &crate::domain::windows(&periods, now, now, &suspicion)).await?;
                    let stop = risk::find_emergency_stop(conn, user_id).await?;
                    let paused = risk::open_suspicious_alert(conn, user_id).await?.is_some();
                    Ok((row, figures, stop, paused, periods))
                }
                .boxed()
            })
            .await?;
        let limits = limits_in_force(row.as_ref());
        let usages = LimitKind::ALL.iter().map(|&kind| usage(kind, &limits, &figures, &periods)).collect();
        Ok(Response::new(pb::SpendingSummary {
            usages,
            emergency_stop_engaged: stop.is_some_and(|s| s.engaged),
            compute_time: Some(timestamp(now)),
            time_zone: limits.zone.name().to_owned(),
            automation_paused: paused,
        }))
    }

    async fn engage_emergency_stop(
        &self,
        request: Request<pb::EngageEmergencyStopRequest>,
    ) -> Result<Response<pb::EmergencyStop>, Status> {
        let user_id = caller::user_id(&request)?;
        Ok(Response::new(self.engage(user_id, StopActor::User, &request.get_ref().reason).await?))
    }

    async fn release_emergency_stop(
        &self,
        request: Request<pb::ReleaseEmergencyStopRequest>,
    ) -> Result<Response<pb::EmergencyStop>, Status> {
        let user_id = caller::user_id(&request)?;
        Ok(Response::new(self.release(user_id, StopActor::User).await?))
    }

    async fn get_emergency_stop(
        &self,
        request: Request<pb::GetEmergencyStopRequest>,
    ) -> Result<Response<pb::EmergencyStop>, Status> {
        let user_id = caller::user_id(&request)?;
        let stop = self.read(|conn| risk::find_emergency_stop(conn, user_id).boxed()).await?;
        Ok(Response::new(convert::stop_to_pb(stop.as_ref())))
    }

    async fn list_risk_alerts(
        &self,
        request: Request<pb::ListRiskAlertsRequest>,
    ) -> Result<Response<pb::ListRiskAlertsResponse>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let page = paging::page_request(request.page_size, &request.page_token, 50, 100, &mut violations);
        violations.into_result(())?;
        let unacknowledged_only = request.unacknowledged_only;
        let page = self.read(|conn| risk::list_risk_alerts(conn, user_id, unacknowledged_only, page).boxed()).await?;
        Ok(Response::new(pb::ListRiskAlertsResponse {
            alerts: page.items.iter().map(convert::alert_to_pb).collect(),
            next_page_token: paging::next_page_token(page.next),
        }))
    }

    async fn acknowledge_risk_alert(
        &self,
        request: Request<pb::AcknowledgeRiskAlertRequest>,
    ) -> Result<Response<pb::RiskAlert>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().alert_id, "alert_id")?;
        let alert = self
            .serializable(|conn| {
                async move {
                    let alert = risk::acknowledge_risk_alert(conn, user_id, id).await?;
                    if alert.kind == risk::AlertKind::SuspiciousActivity {
                        risk::reset_refusals(conn, user_id).await?;
                    }
                    Ok(alert)
                }
                .boxed()
            })
            .await?;
        if alert.kind == risk::AlertKind::SuspiciousActivity {
            tracing::info!(%user_id, alert_id = %id, "suspicious activity acknowledged");
        }
        Ok(Response::new(convert::alert_to_pb(&alert)))
    }
}

#[tonic::async_trait]
impl RiskInternalService for RiskApi {
    async fn authorize_purchase(
        &self,
        request: Request<pb::AuthorizePurchaseRequest>,
    ) -> Result<Response<pb::Hold>, Status> {
        let r = request.get_ref();
        let mut violations = Violations::new();
        let user_id = violations.uuid(&r.user_id, "user_id");
        let moment_id = violations.uuid(&r.moment_id, "moment_id");
        violations.check(
            (1..=domain::MAX_CENTS).contains(&r.amount_cents),
            "amount_cents",
            format!("must be from 1 to {}, got {}", domain::MAX_CENTS, r.amount_cents),
        );
        violations.check(
            r.balance_cents >= 0,
            "balance_cents",
            format!("must not be negative, got {}", r.balance_cents),
        );
        let key = IdempotencyKey::parse(&r.idempotency_key, "idempotency_key", &mut violations)
            .map(IdempotencyKey::into_string)
            .unwrap_or_default();
        let key = key.as_str();
        let balance_time = r.balance_time.as_ref().and_then(|t| status::time_field(t, "balance_time", &mut violations));
        if r.balance_time.is_none() {
            violations.add("balance_time", "required: when the balance was read");
        }
        // A balance read in the future would hide spending committed since it was read.
        if let Some(read) = balance_time {
            violations.check(
                read <= Utc::now() + chrono::Duration::seconds(5),
                "balance_time",
                "must not be in the future: the time the balance was read, by the database's clock",
            );
        }
        let origin = convert::origin_from_pb(r.origin);
        violations.check(origin.is_some(), "origin", "required: PURCHASE_ORIGIN_MANUAL or PURCHASE_ORIGIN_AUTOMATED");
        violations.into_result(())?;
        let (Some(user_id), Some(moment_id), Some(balance_time), Some(origin)) =
            (user_id, moment_id, balance_time, origin)
        else {
            return Err(status::invalid_field("request", "incomplete"));
        };
        let purchase = Arc::new(Purchase {
            user_id,
            amount: r.amount_cents,
            moment_id,
            key: key.to_owned(),
            balance: r.balance_cents,
            balance_time,
            origin,
        });
        let settings = self.settings.clone();
        let _turn = self.turns.take(&user_id).await;
        let authorized = self
            .database
            .read_committed(|conn| {
                let purchase = purchase.clone();
                let settings = settings.clone();
                async move { authorize::authorize(conn, &purchase, &settings, Utc::now()).await }.boxed()
            })
            .await
            .map_err(RiskError::from)?;
        if authorized.alerts_raised {
            self.wake.notify_one();
        }
        match answer(authorized.decision) {
            Ok(hold) => Ok(Response::new(convert::hold_to_pb(&hold))),
            Err(refused) => {
                tracing::info!(%user_id, amount_cents = purchase.amount, why = refused.message(), "purchase refused");
                Err(refused)
            }
        }
    }

    async fn commit_hold(&self, request: Request<pb::CommitHoldRequest>) -> Result<Response<pb::Hold>, Status> {
        let id = required_uuid(&request.get_ref().hold_id, "hold_id")?;
        let hold = self.transition(|conn| risk::commit_hold(conn, id).boxed()).await?;
        if hold.state == HoldState::Released {
            return Err(status::failed_precondition(
                "the hold was released; its purchase must not settle",
                ErrorReason::InvalidState,
                [("state".to_owned(), "released".to_owned())],
            ));
        }
        Ok(Response::new(convert::hold_to_pb(&hold)))
    }

    async fn release_hold(&self, request: Request<pb::ReleaseHoldRequest>) -> Result<Response<pb::Hold>, Status> {
        let r = request.get_ref();
        let mut violations = Violations::new();
        let id = violations.uuid(&r.hold_id, "hold_id");
        let reason = r.reason.trim().to_owned();
        violations.check(
            !reason.is_empty() && reason.chars().count() <= MAX_REASON && plain(&reason),
            "reason",
            format!("must say why the purchase did not happen, in 1 to {MAX_REASON} characters"),
        );
        violations.into_result(())?;
        let id = id.unwrap_or_default();
        let hold = self
            .transition(|conn| {
                let reason = reason.clone();
                async move { risk::release_hold(conn, id, &reason).await }.boxed()
            })
            .await?;
        if hold.state == HoldState::Committed {
            return Err(status::failed_precondition(
                "the hold was committed: its purchase settled",
                ErrorReason::InvalidState,
                [("state".to_owned(), "committed".to_owned())],
            ));
        }
        Ok(Response::new(convert::hold_to_pb(&hold)))
    }

    async fn get_hold(&self, request: Request<pb::GetHoldRequest>) -> Result<Response<pb::Hold>, Status> {
        let id = required_uuid(&request.get_ref().hold_id, "hold_id")?;
        let hold =
            self.read(|conn| risk::find_hold(conn, id).boxed()).await?.ok_or_else(|| status::not_found("hold"))?;
        Ok(Response::new(convert::hold_to_pb(&hold)))
    }

    async fn list_holds(
        &self,
        request: Request<pb::ListHoldsRequest>,
    ) -> Result<Response<pb::ListHoldsResponse>, Status> {
        let r = request.get_ref();
        let mut violations = Violations::new();
        let page = paging::page_request(r.page_size, &r.page_token, 100, 1000, &mut violations);
        let state = convert::hold_state_from_pb(r.state);
        violations.check(state.is_some(), "state", format!("unknown hold state {}", r.state));
        let created_before =
            r.create_before_time.as_ref().map(|t| status::time_field(t, "create_before_time", &mut violations));
        violations.into_result(())?;
        let filter = HoldFilter { state: state.flatten(), created_before: created_before.flatten() };
        let page = self.read(|conn| risk::list_holds(conn, filter, page).boxed()).await?;
        Ok(Response::new(pb::ListHoldsResponse {
            holds: page.items.iter().map(convert::hold_to_pb).collect(),
            next_page_token: paging::next_page_token(page.next),
        }))
    }

    async fn engage_emergency_stop_for_user(
        &self,
        request: Request<pb::EngageEmergencyStopForUserRequest>,
    ) -> Result<Response<pb::EmergencyStop>, Status> {
        let r = request.get_ref();
        let user_id = required_uuid(&r.user_id, "user_id")?;
        Ok(Response::new(self.engage(user_id, StopActor::Operator, &r.reason).await?))
    }

    async fn release_emergency_stop_for_user(
        &self,
        request: Request<pb::ReleaseEmergencyStopForUserRequest>,
    ) -> Result<Response<pb::EmergencyStop>, Status> {
        let user_id = required_uuid(&request.get_ref().user_id, "user_id")?;
        Ok(Response::new(self.release(user_id, StopActor::Operator).await?))
    }

    async fn get_suspicion_rules(
        &self,
        _request: Request<pb::GetSuspicionRulesRequest>,
    ) -> Result<Response<pb::SuspicionRules>, Status> {
        Ok(Response::new(self.settings.suspicion.to_pb()))
    }
}
