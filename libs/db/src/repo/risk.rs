//! Budget limits and their confirmed changes, holds and spending, emergency stops, risk alerts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::DatabaseError;
use crate::repo::{Cursor, Page, PageRequest, text_enum};
use crate::schema::{budget_limit_changes, budget_limits, emergency_stops, holds, risk_alerts, spending};

/// The six limits, in cents; `None` means no such limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = budget_limits)]
pub struct LimitValues {
    /// Per calendar day.
    pub daily_cents: Option<i64>,
    /// Per ISO week.
    pub weekly_cents: Option<i64>,
    /// Per calendar month.
    pub monthly_cents: Option<i64>,
    /// Ever.
    pub total_cents: Option<i64>,
    /// Per moment.
    pub per_moment_cents: Option<i64>,
    /// Balance to keep.
    pub reserve_cents: Option<i64>,
}

/// The limits in force for a user.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = budget_limits)]
pub struct BudgetLimits {
    /// The user.
    pub user_id: Uuid,
    /// The limits.
    #[diesel(embed)]
    pub limits: LimitValues,
    /// When they took effect.
    pub effective_at: DateTime<Utc>,
}

text_enum! {
    /// Where a proposed limit change stands.
    LimitChangeState {
        /// Waiting for confirmation.
        Pending => "pending",
        /// Confirmed.
        Confirmed => "confirmed",
        /// Cancelled.
        Cancelled => "cancelled",
        /// Not confirmed in time.
        Expired => "expired",
    }
}

/// A proposed change of limits.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = budget_limit_changes)]
pub struct LimitChange {
    /// Id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Proposed daily limit.
    pub daily_cents: Option<i64>,
    /// Proposed weekly limit.
    pub weekly_cents: Option<i64>,
    /// Proposed monthly limit.
    pub monthly_cents: Option<i64>,
    /// Proposed total limit.
    pub total_cents: Option<i64>,
    /// Proposed per-moment limit.
    pub per_moment_cents: Option<i64>,
    /// Proposed reserve.
    pub reserve_cents: Option<i64>,
    /// Where it stands.
    pub state: LimitChangeState,
    /// Proposed.
    pub created_at: DateTime<Utc>,
    /// Last moment it can be confirmed.
    pub expires_at: DateTime<Utc>,
    /// Confirmed, cancelled or expired.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl LimitChange {
    /// The limits it would put in force.
    pub fn limits(&self) -> LimitValues {
        LimitValues {
            daily_cents: self.daily_cents,
            weekly_cents: self.weekly_cents,
            monthly_cents: self.monthly_cents,
            total_cents: self.total_cents,
            per_moment_cents: self.per_moment_cents,
            reserve_cents: self.reserve_cents,
        }
    }
}

/// The limits in force for a user, if any were ever set.
pub async fn find_limits(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Option<BudgetLimits>, DatabaseError> {
    Ok(budget_limits::table.find(user_id).select(BudgetLimits::as_select()).first(conn).await.optional()?)
}

/// Proposes new limits. A change still pending for the user is cancelled first: only the
/// newest proposal can be confirmed.
pub async fn propose_limit_change(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user_id: Uuid,
    limits: &LimitValues,
    expires_at: DateTime<Utc>,
) -> Result<LimitChange, DatabaseError> {
    diesel::update(
        budget_limit_changes::table
            .filter(budget_limit_changes::user_id.eq(user_id))
            .filter(budget_limit_changes::state.eq(LimitChangeState::Pending)),
    )
    .set((
        budget_limit_changes::state.eq(LimitChangeState::Cancelled),
        budget_limit_changes::resolved_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(diesel::insert_into(budget_limit_changes::table)
        .values((
            budget_limit_changes::id.eq(id),
            budget_limit_changes::user_id.eq(user_id),
            budget_limit_changes::daily_cents.eq(limits.daily_cents),
            budget_limit_changes::weekly_cents.eq(limits.weekly_cents),
            budget_limit_changes::monthly_cents.eq(limits.monthly_cents),
            budget_limit_changes::total_cents.eq(limits.total_cents),
            budget_limit_changes::per_moment_cents.eq(limits.per_moment_cents),
            budget_limit_changes::reserve_cents.eq(limits.reserve_cents),
            budget_limit_changes::expires_at.eq(expires_at),
        ))
        .returning(LimitChange::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds one of a user's limit changes.
pub async fn find_limit_change(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<LimitChange>, DatabaseError> {
    Ok(budget_limit_changes::table
        .find(id)
        .filter(budget_limit_changes::user_id.eq(user_id))
        .select(LimitChange::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Resolves a pending change: confirming puts its limits in force at `now` (unless it expired,
/// which marks it expired instead); cancelling just closes it. Returns the change as it ends.
pub async fn resolve_limit_change(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
    confirm: bool,
    now: DateTime<Utc>,
) -> Result<LimitChange, DatabaseError> {
    let change = find_limit_change(conn, user_id, id).await?.ok_or(DatabaseError::NotFound("limit change"))?;
    if change.state != LimitChangeState::Pending {
        return Ok(change);
    }
    let state = match (confirm, change.expires_at <= now) {
        (_, true) => LimitChangeState::Expired,
        (true, false) => LimitChangeState::Confirmed,
        (false, false) => LimitChangeState::Cancelled,
    };
    if state == LimitChangeState::Confirmed {
        let l = change.limits();
        diesel::insert_into(budget_limits::table)
            .values((budget_limits::user_id.eq(user_id), l, budget_limits::effective_at.eq(now)))
            .on_conflict(budget_limits::user_id)
            .do_update()
            .set((
                budget_limits::daily_cents.eq(l.daily_cents),
                budget_limits::weekly_cents.eq(l.weekly_cents),
                budget_limits::monthly_cents.eq(l.monthly_cents),
                budget_limits::total_cents.eq(l.total_cents),
                budget_limits::per_moment_cents.eq(l.per_moment_cents),
                budget_limits::reserve_cents.eq(l.reserve_cents),
                budget_limits::effective_at.eq(now),
            ))
            .execute(conn)
            .await?;
    }
    Ok(diesel::update(budget_limit_changes::table.find(id))
        .set((budget_limit_changes::state.eq(state), budget_limit_changes::resolved_at.eq(now)))
        .returning(LimitChange::as_returning())
        .get_result(conn)
        .await?)
}

text_enum! {
    /// Where a hold stands.
    HoldState {
        /// Counts as spent while its purchase settles.
        Placed => "placed",
        /// Its purchase settled: it is spending.
        Committed => "committed",
        /// Its purchase did not happen.
        Released => "released",
    }
}

/// An amount set aside for one purchase.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = holds)]
pub struct Hold {
    /// Id.
    pub id: Uuid,
    /// The buyer.
    pub user_id: Uuid,
    /// Amount.
    pub amount_cents: i64,
    /// The moment being bought.
    pub moment_id: Uuid,
    /// The purchase's key.
    pub idempotency_key: String,
    /// Where it stands.
    pub state: HoldState,
    /// Placed.
    pub created_at: DateTime<Utc>,
    /// Committed or released.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Why it was released.
    pub release_reason: Option<String>,
}

/// A hold to place.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = holds)]
pub struct NewHold<'a> {
    /// Id.
    pub id: Uuid,
    /// The buyer.
    pub user_id: Uuid,
    /// Amount.
    pub amount_cents: i64,
    /// The moment being bought.
    pub moment_id: Uuid,
    /// The purchase's key.
    pub idempotency_key: &'a str,
}

/// Places a hold, or returns the one already placed under the same key (the bool is true when
/// this call placed it).
pub async fn place_hold(conn: &mut AsyncPgConnection, new: &NewHold<'_>) -> Result<(Hold, bool), DatabaseError> {
    let inserted = diesel::insert_into(holds::table)
        .values(new)
        .on_conflict((holds::user_id, holds::idempotency_key))
        .do_nothing()
        .returning(Hold::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match inserted {
        Some(hold) => Ok((hold, true)),
        None => {
            let existing = holds::table
                .filter(holds::user_id.eq(new.user_id))
                .filter(holds::idempotency_key.eq(new.idempotency_key))
                .select(Hold::as_select())
                .first(conn)
                .await?;
            Ok((existing, false))
        }
    }
}

/// Finds a hold.
pub async fn find_hold(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Hold>, DatabaseError> {
    Ok(holds::table.find(id).select(Hold::as_select()).first(conn).await.optional()?)
}

/// Commits a placed hold: its amount becomes spending. Committing twice is a no-op; a
/// released hold cannot be committed (the hold is returned unchanged).
pub async fn commit_hold(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Hold, DatabaseError> {
    let updated = diesel::update(holds::table.find(id).filter(holds::state.eq(HoldState::Placed)))
        .set((holds::state.eq(HoldState::Committed), holds::resolved_at.eq(diesel::dsl::now)))
        .returning(Hold::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match updated {
        Some(hold) => {
            diesel::insert_into(spending::table)
                .values((
                    spending::hold_id.eq(hold.id),
                    spending::user_id.eq(hold.user_id),
                    spending::amount_cents.eq(hold.amount_cents),
                ))
                .execute(conn)
                .await?;
            Ok(hold)
        }
        None => find_hold(conn, id).await?.ok_or(DatabaseError::NotFound("hold")),
    }
}

/// Releases a placed hold. Releasing twice is a no-op; a committed hold stays committed.
pub async fn release_hold(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> Result<Hold, DatabaseError> {
    let updated = diesel::update(holds::table.find(id).filter(holds::state.eq(HoldState::Placed)))
        .set((
            holds::state.eq(HoldState::Released),
            holds::resolved_at.eq(diesel::dsl::now),
            holds::release_reason.eq(reason),
        ))
        .returning(Hold::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match updated {
        Some(hold) => Ok(hold),
        None => find_hold(conn, id).await?.ok_or(DatabaseError::NotFound("hold")),
    }
}

/// Lists holds in a state placed before a time, oldest first (for the reconciler).
pub async fn list_holds(
    conn: &mut AsyncPgConnection,
    state: HoldState,
    created_before: DateTime<Utc>,
    size: i64,
) -> Result<Vec<Hold>, DatabaseError> {
    Ok(holds::table
        .filter(holds::state.eq(state))
        .filter(holds::created_at.lt(created_before))
        .order((holds::created_at, holds::id))
        .limit(size)
        .select(Hold::as_select())
        .load(conn)
        .await?)
}

/// What a user committed since `since`, in cents.
pub async fn spent_since(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    since: DateTime<Utc>,
) -> Result<i64, DatabaseError> {
    let total: Option<i64> = spending::table
        .filter(spending::user_id.eq(user_id))
        .filter(spending::spent_at.ge(since))
        .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("sum(amount_cents)::bigint"))
        .first(conn)
        .await?;
    Ok(total.unwrap_or(0))
}

/// What a user has on hold now (placed, not yet committed or released), in cents.
pub async fn held_total(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<i64, DatabaseError> {
    let total: Option<i64> = holds::table
        .filter(holds::user_id.eq(user_id))
        .filter(holds::state.eq(HoldState::Placed))
        .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("sum(amount_cents)::bigint"))
        .first(conn)
        .await?;
    Ok(total.unwrap_or(0))
}

/// Locks a user's risk state for the rest of the transaction, so that concurrent purchase
/// authorisations of one user are decided one after another.
pub async fn lock_user_risk(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<(), DatabaseError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind::<diesel::sql_types::Text, _>(user_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// A user's emergency stop.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = emergency_stops)]
pub struct EmergencyStop {
    /// The user.
    pub user_id: Uuid,
    /// Engaged now.
    pub engaged: bool,
    /// Why it was engaged.
    pub reason: String,
    /// Last engaged.
    pub engaged_at: Option<DateTime<Utc>>,
    /// Last released.
    pub released_at: Option<DateTime<Utc>>,
}

/// Engages or releases a user's emergency stop.
pub async fn set_emergency_stop(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    engaged: bool,
    reason: &str,
) -> Result<EmergencyStop, DatabaseError> {
    let now = Utc::now();
    let (engaged_at, released_at) = if engaged { (Some(now), None) } else { (None, Some(now)) };
    Ok(diesel::insert_into(emergency_stops::table)
        .values((
            emergency_stops::user_id.eq(user_id),
            emergency_stops::engaged.eq(engaged),
            emergency_stops::reason.eq(reason),
            emergency_stops::engaged_at.eq(engaged_at),
            emergency_stops::released_at.eq(released_at),
        ))
        .on_conflict(emergency_stops::user_id)
        .do_update()
        .set((
            emergency_stops::engaged.eq(engaged),
            emergency_stops::reason.eq(reason),
            emergency_stops::engaged_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >(
                "CASE WHEN excluded.engaged THEN excluded.engaged_at ELSE emergency_stops.engaged_at END",
            )),
            emergency_stops::released_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >(
                "CASE WHEN excluded.engaged THEN emergency_stops.released_at ELSE excluded.released_at END",
            )),
        ))
        .returning(EmergencyStop::as_returning())
        .get_result(conn)
        .await?)
}

/// A user's emergency stop, if it was ever used.
pub async fn find_emergency_stop(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Option<EmergencyStop>, DatabaseError> {
    Ok(emergency_stops::table.find(user_id).select(EmergencyStop::as_select()).first(conn).await.optional()?)
}

text_enum! {
    /// How serious a risk alert is.
    AlertSeverity {
        /// For information.
        Info => "info",
        /// A limit is nearly reached.
        Warning => "warning",
        /// A limit was reached, or activity looks suspicious.
        Critical => "critical",
    }
}

/// A risk alert.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = risk_alerts)]
pub struct RiskAlert {
    /// Id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// How serious.
    pub severity: AlertSeverity,
    /// "limit_approached", "limit_reached" or "suspicious_activity".
    pub kind: String,
    /// The limit concerned.
    pub limit_name: Option<String>,
    /// What happened.
    pub message: String,
    /// Raised.
    pub created_at: DateTime<Utc>,
    /// Acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// Raises a risk alert.
pub async fn insert_risk_alert(conn: &mut AsyncPgConnection, alert: &RiskAlert) -> Result<RiskAlert, DatabaseError> {
    Ok(diesel::insert_into(risk_alerts::table)
        .values(alert)
        .returning(RiskAlert::as_returning())
        .get_result(conn)
        .await?)
}

/// Lists a user's risk alerts, newest first.
pub async fn list_risk_alerts(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    unacknowledged_only: bool,
    page: PageRequest,
) -> Result<Page<RiskAlert>, DatabaseError> {
    let mut query = risk_alerts::table
        .filter(risk_alerts::user_id.eq(user_id))
        .select(RiskAlert::as_select())
        .order((risk_alerts::created_at.desc(), risk_alerts::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if unacknowledged_only {
        query = query.filter(risk_alerts::acknowledged_at.is_null());
    }
    if let Some(after) = page.after {
        query = query.filter(
            risk_alerts::created_at
                .lt(after.time)
                .or(risk_alerts::created_at.eq(after.time).and(risk_alerts::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |a| Cursor { time: a.created_at, id: a.id }))
}

/// Acknowledges one of a user's alerts (the first acknowledgement time is kept).
pub async fn acknowledge_risk_alert(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<RiskAlert, DatabaseError> {
    diesel::update(risk_alerts::table.find(id).filter(risk_alerts::user_id.eq(user_id)))
        .set(risk_alerts::acknowledged_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("COALESCE(acknowledged_at, now())")))
        .returning(RiskAlert::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("risk alert"))
}
