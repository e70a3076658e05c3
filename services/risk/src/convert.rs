//! Between the contract's messages and the risk service's rows.

use crate::store::{
    AlertKind, AlertSeverity, BudgetLimits, EmergencyStop, Hold, HoldOrigin, HoldState, LimitChange, LimitChangeState,
    LimitValues, RiskAlert, StopActor,
};
use chrono::{DateTime, Utc};
use fastbreak_mesh::status::timestamp;
use fastbreak_proto::risk::v1 as pb;

use crate::domain::{self, Limits};

pub(crate) use fastbreak_limits::{limit_kind_to_pb, limits_from_pb};

pub(crate) fn values_to_pb(v: &LimitValues, time_zone: &str, effective: Option<DateTime<Utc>>) -> pb::BudgetLimits {
    pb::BudgetLimits {
        daily_cents: v.daily_cents,
        weekly_cents: v.weekly_cents,
        monthly_cents: v.monthly_cents,
        total_cents: v.total_cents,
        per_moment_cents: v.per_moment_cents,
        reserve_cents: v.reserve_cents,
        effective_time: effective.map(timestamp),
        emergency_threshold_cents: v.emergency_threshold_cents,
        time_zone: time_zone.to_owned(),
    }
}

/// The limits in force, as stored or the defaults.
pub(crate) fn limits_in_force(row: Option<&BudgetLimits>) -> Limits {
    match row {
        Some(row) => Limits { values: row.limits, zone: domain::zone(&row.time_zone).unwrap_or(chrono_tz::Tz::UTC) },
        None => Limits::default(),
    }
}

pub(crate) fn in_force_to_pb(row: Option<&BudgetLimits>) -> pb::BudgetLimits {
    match row {
        Some(row) => values_to_pb(&row.limits, &row.time_zone, Some(row.effective_at)),
        None => values_to_pb(&domain::DEFAULT_LIMITS, "UTC", None),
    }
}

pub(crate) fn change_to_pb(change: &LimitChange, current: Option<&BudgetLimits>) -> pb::BudgetLimitChange {
    let in_force = limits_in_force(current);
    let current_zone = current.map_or("UTC", |c| c.time_zone.as_str());
    pb::BudgetLimitChange {
        change_id: change.id.to_string(),
        limits: Some(values_to_pb(&change.limits(), &change.time_zone, None)),
        state: match change.state {
            LimitChangeState::Pending => pb::BudgetLimitChangeState::Pending,
            LimitChangeState::Confirmed => pb::BudgetLimitChangeState::Confirmed,
            LimitChangeState::Cancelled => pb::BudgetLimitChangeState::Cancelled,
            LimitChangeState::Expired => pb::BudgetLimitChangeState::Expired,
        } as i32,
        create_time: Some(timestamp(change.created_at)),
        expire_time: Some(timestamp(change.expires_at)),
        differences: domain::differences(&in_force.values, &change.limits())
            .into_iter()
            .map(|(kind, current_cents, proposed_cents)| pb::LimitDifference {
                kind: limit_kind_to_pb(kind) as i32,
                current_cents,
                proposed_cents,
            })
            .collect(),
        current_time_zone: if current_zone == change.time_zone { String::new() } else { current_zone.to_owned() },
    }
}

fn actor_to_pb(actor: Option<StopActor>) -> i32 {
    (match actor {
        None => pb::StopActor::Unspecified,
        Some(StopActor::User) => pb::StopActor::User,
        Some(StopActor::Operator) => pb::StopActor::Operator,
        Some(StopActor::System) => pb::StopActor::System,
    }) as i32
}

pub(crate) fn stop_to_pb(stop: Option<&EmergencyStop>) -> pb::EmergencyStop {
    match stop {
        None => pb::EmergencyStop::default(),
        Some(stop) => pb::EmergencyStop {
            engaged: stop.engaged,
            reason: stop.reason.clone(),
            engage_time: stop.engaged_at.map(timestamp),
            release_time: stop.released_at.map(timestamp),
            engaged_by: actor_to_pb(stop.engaged_by),
            released_by: actor_to_pb(stop.released_by),
        },
    }
}

pub(crate) fn alert_to_pb(alert: &RiskAlert) -> pb::RiskAlert {
    pb::RiskAlert {
        alert_id: alert.id.to_string(),
        severity: match alert.severity {
            AlertSeverity::Info => pb::AlertSeverity::Info,
            AlertSeverity::Warning => pb::AlertSeverity::Warning,
            AlertSeverity::Critical => pb::AlertSeverity::Critical,
        } as i32,
        kind: match alert.kind {
            AlertKind::LimitApproached => pb::RiskAlertKind::LimitApproached,
            AlertKind::LimitReached => pb::RiskAlertKind::LimitReached,
            AlertKind::SuspiciousActivity => pb::RiskAlertKind::SuspiciousActivity,
            AlertKind::EmergencyStop => pb::RiskAlertKind::EmergencyStop,
        } as i32,
        limit: alert.limit_name.map_or(pb::LimitKind::Unspecified, limit_kind_to_pb) as i32,
        message: alert.message.clone(),
        create_time: Some(timestamp(alert.created_at)),
        acknowledge_time: alert.acknowledged_at.map(timestamp),
    }
}

pub(crate) fn hold_state_from_pb(state: i32) -> Option<Option<HoldState>> {
    match pb::HoldState::try_from(state).ok()? {
        pb::HoldState::Unspecified => Some(None),
        pb::HoldState::Placed => Some(Some(HoldState::Placed)),
        pb::HoldState::Committed => Some(Some(HoldState::Committed)),
        pb::HoldState::Released => Some(Some(HoldState::Released)),
    }
}

pub(crate) fn origin_from_pb(origin: i32) -> Option<HoldOrigin> {
    match pb::PurchaseOrigin::try_from(origin).ok()? {
        pb::PurchaseOrigin::Unspecified => None,
        pb::PurchaseOrigin::Manual => Some(HoldOrigin::Manual),
        pb::PurchaseOrigin::Automated => Some(HoldOrigin::Automated),
    }
}

pub(crate) fn hold_to_pb(hold: &Hold) -> pb::Hold {
    pb::Hold {
        hold_id: hold.id.to_string(),
        user_id: hold.user_id.to_string(),
        amount_cents: hold.amount_cents,
        moment_id: hold.moment_id.to_string(),
        idempotency_key: hold.idempotency_key.clone(),
        state: match hold.state {
            HoldState::Placed => pb::HoldState::Placed,
            HoldState::Committed => pb::HoldState::Committed,
            HoldState::Released => pb::HoldState::Released,
        } as i32,
        create_time: Some(timestamp(hold.created_at)),
        resolve_time: hold.resolved_at.map(timestamp),
        release_reason: hold.release_reason.clone().unwrap_or_default(),
        expire_time: Some(timestamp(hold.expires_at)),
    }
}
