//! Purchase authorisation: one transaction per request, under the user's risk lock, so that
//! concurrent purchases of one user are decided one after another against what the previous
//! ones held. A refusal is an answer, not a failure: what it records (the run of refusals, an
//! alert, an emergency stop engaged by the threshold) is committed with it.

use crate::store::{
    self as risk, AlertKind, AlertSeverity, EmergencyStop, Hold, HoldOrigin, LimitKind, NewHold, NewRiskAlert,
    RiskAlert, StopActor,
};
use chrono::{DateTime, Utc};
use fastbreak_db::{DatabaseError, PgConnection};
use uuid::Uuid;

use crate::convert::limits_in_force;
use crate::domain::{self, Periods, Refusal};
use crate::settings::Settings;

/// A purchase to authorise.
#[derive(Debug, Clone)]
pub(crate) struct Purchase {
    pub user_id: Uuid,
    pub amount: i64,
    pub moment_id: Uuid,
    pub key: String,
    pub balance: i64,
    pub balance_time: DateTime<Utc>,
    pub origin: HoldOrigin,
}

/// What was decided.
#[derive(Debug, Clone)]
pub(crate) enum Decision {
    /// A hold was placed, or had been under the same key with the same purchase.
    Granted(Hold),
    /// The key was used for another purchase.
    KeyReused(Hold),
    /// The purchase under this key was released: it did not happen, and the key is spent.
    Released(Hold),
    /// The emergency stop is engaged (perhaps by this very purchase, past the threshold).
    Stopped(EmergencyStop),
    /// A limit refuses the purchase.
    Limit(Refusal),
    /// Automated purchases are paused by this unacknowledged alert.
    Paused(RiskAlert),
}

/// The decision, and whether it raised alerts (whose notifications are then due).
#[derive(Debug, Clone)]
pub(crate) struct Authorized {
    pub decision: Decision,
    pub alerts_raised: bool,
}

/// Raises an alert; `None` when one with the same key was raised before.
pub(crate) async fn raise(
    conn: &mut PgConnection,
    user_id: Uuid,
    severity: AlertSeverity,
    kind: AlertKind,
    limit: Option<LimitKind>,
    message: &str,
    dedup_key: Option<&str>,
) -> Result<Option<RiskAlert>, DatabaseError> {
    let alert = NewRiskAlert { id: Uuid::new_v4(), user_id, severity, kind, limit_name: limit, message, dedup_key };
    risk::insert_risk_alert(conn, &alert).await
}

/// Decides one purchase; runs inside a locked transaction.
pub(crate) async fn authorize(
    conn: &mut PgConnection,
    p: &Purchase,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Authorized, DatabaseError> {
    risk::lock_user_risk(conn, p.user_id).await?;
    let reads = risk::authorization_reads(conn, p.user_id, &p.key).await?;
    let done = |decision| Ok(Authorized { decision, alerts_raised: false });
    if let Some(existing) = reads.hold {
        let same = existing.amount_cents == p.amount && existing.moment_id == p.moment_id;
        return done(match (same, existing.state) {
            (false, _) => Decision::KeyReused(existing),
            (true, risk::HoldState::Released) => Decision::Released(existing),
            (true, _) => Decision::Granted(existing),
        });
    }
    if let Some(stop) = reads.stop
        && stop.engaged
    {
        return done(Decision::Stopped(stop));
    }
    let paused = reads.paused_by;
    if p.origin == HoldOrigin::Automated
        && let Some(alert) = paused.clone()
    {
        return done(Decision::Paused(alert));
    }

    let limits = limits_in_force(reads.limits.as_ref());
    let periods = Periods::at(now, limits.zone);
    let windows = domain::windows(&periods, now, p.balance_time, &settings.suspicion);
    let figures = risk::figures(conn, p.user_id, &windows).await?;

    if let Err(refusal) = domain::check(&limits, &figures, p.amount, p.balance) {
        return refuse(conn, p, settings, &periods, refusal, paused.is_some()).await;
    }

    let mut alerts_raised = false;
    if paused.is_none()
        && let Some(suspicion) = domain::suspicious(&settings.suspicion, &figures, p.amount)
    {
        let message = suspicion.message();
        let alert =
            raise(conn, p.user_id, AlertSeverity::Critical, AlertKind::SuspiciousActivity, None, &message, None)
                .await?;
        if let Some(alert) = alert {
            tracing::warn!(user_id = %p.user_id, alert_id = %alert.id, %message, "suspicious activity; automation paused");
            if p.origin == HoldOrigin::Automated {
                return Ok(Authorized { decision: Decision::Paused(alert), alerts_raised: true });
            }
            alerts_raised = true;
        }
    }

    let new = NewHold {
        id: Uuid::new_v4(),
        user_id: p.user_id,
        amount_cents: p.amount,
        moment_id: p.moment_id,
        idempotency_key: &p.key,
        expires_at: now + chrono::Duration::from_std(settings.hold_ttl).unwrap_or(chrono::Duration::minutes(2)),
        origin: p.origin,
    };
    let (hold, _) = risk::place_hold(conn, &new).await?;
    risk::reset_refusals(conn, p.user_id).await?;
    for crossing in domain::crossings(&limits, &figures, p.amount, &settings.alert_thresholds, &periods) {
        let (severity, kind) = if crossing.percent >= 100 {
            (AlertSeverity::Critical, AlertKind::LimitReached)
        } else {
            (AlertSeverity::Warning, AlertKind::LimitApproached)
        };
        let message = format!(
            "{}% of your {} limit is used: {} of {}",
            crossing.percent,
            crossing.kind,
            domain::money(crossing.used),
            domain::money(crossing.limit)
        );
        let raised =
            raise(conn, p.user_id, severity, kind, Some(crossing.kind), &message, Some(&crossing.dedup_key)).await?;
        alerts_raised |= raised.is_some();
    }
    Ok(Authorized { decision: Decision::Granted(hold), alerts_raised })
}

/// Records a refusal by a limit: the emergency threshold engages the stop; a spending limit
/// raises its "reached" alert once per period; a long run of refusals pauses automation.
async fn refuse(
    conn: &mut PgConnection,
    p: &Purchase,
    settings: &Settings,
    periods: &Periods,
    refusal: Refusal,
    paused: bool,
) -> Result<Authorized, DatabaseError> {
    let mut alerts_raised = false;
    let message = refusal.message();
    if refusal.kind == LimitKind::EmergencyThreshold {
        let (stop, engaged) = risk::engage_emergency_stop(conn, p.user_id, StopActor::System, &message).await?;
        if engaged {
            tracing::warn!(user_id = %p.user_id, %message, "emergency stop engaged by the threshold");
            raise(
                conn,
                p.user_id,
                AlertSeverity::Critical,
                AlertKind::EmergencyStop,
                Some(LimitKind::EmergencyThreshold),
                &message,
                None,
            )
            .await?;
            alerts_raised = true;
        }
        debug_assert!(stop.engaged);
    } else if let Some(start) = periods
        .start(refusal.kind)
        .map(|t| t.to_rfc3339())
        .or_else(|| (refusal.kind == LimitKind::Total).then(|| "ever".to_owned()))
    {
        let key = format!("{}:{start}:refused", refusal.kind);
        let raised = raise(
            conn,
            p.user_id,
            AlertSeverity::Critical,
            AlertKind::LimitReached,
            Some(refusal.kind),
            &format!("a purchase was refused: {message}"),
            Some(&key),
        )
        .await?;
        alerts_raised |= raised.is_some();
    }
    let in_a_row = risk::record_refusal(conn, p.user_id).await?;
    if !paused && in_a_row >= i32::try_from(settings.suspicion.refusals_in_a_row).unwrap_or(i32::MAX) {
        let message = domain::Suspicious::Refusals { count: in_a_row }.message();
        raise(conn, p.user_id, AlertSeverity::Critical, AlertKind::SuspiciousActivity, None, &message, None).await?;
        risk::reset_refusals(conn, p.user_id).await?;
        alerts_raised = true;
    }
    Ok(Authorized { decision: Decision::Limit(refusal), alerts_raised })
}
