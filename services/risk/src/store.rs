//! Budget limits and their confirmed changes, holds and spending, emergency stops, risk alerts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::Reuse as _;
use fastbreak_db::schema::{
    budget_limit_changes, budget_limits, emergency_stop_events, emergency_stops, holds, risk_alerts, risk_states,
    spending,
};
use fastbreak_db::{Cursor, Page, PageRequest, text_enum};

pub use fastbreak_limits::{Figures, LimitKind, LimitValues};

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
    /// The IANA time zone the periods follow.
    pub time_zone: String,
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
    /// Proposed emergency threshold.
    pub emergency_threshold_cents: Option<i64>,
    /// Proposed time zone.
    pub time_zone: String,
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
            emergency_threshold_cents: self.emergency_threshold_cents,
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
    time_zone: &str,
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
            budget_limit_changes::emergency_threshold_cents.eq(limits.emergency_threshold_cents),
            budget_limit_changes::time_zone.eq(time_zone),
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

/// The user's change waiting for confirmation, if any (one that expired unconfirmed is marked
/// expired on the way).
pub async fn find_pending_limit_change(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<LimitChange>, DatabaseError> {
    diesel::update(
        budget_limit_changes::table
            .filter(budget_limit_changes::user_id.eq(user_id))
            .filter(budget_limit_changes::state.eq(LimitChangeState::Pending))
            .filter(budget_limit_changes::expires_at.le(now)),
    )
    .set((budget_limit_changes::state.eq(LimitChangeState::Expired), budget_limit_changes::resolved_at.eq(now)))
    .execute(conn)
    .await?;
    Ok(budget_limit_changes::table
        .filter(budget_limit_changes::user_id.eq(user_id))
        .filter(budget_limit_changes::state.eq(LimitChangeState::Pending))
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
            .values((
                budget_limits::user_id.eq(user_id),
                l,
                budget_limits::effective_at.eq(now),
                budget_limits::time_zone.eq(&change.time_zone),
            ))
            .on_conflict(budget_limits::user_id)
            .do_update()
            .set((
                budget_limits::daily_cents.eq(l.daily_cents),
                budget_limits::weekly_cents.eq(l.weekly_cents),
                budget_limits::monthly_cents.eq(l.monthly_cents),
                budget_limits::total_cents.eq(l.total_cents),
                budget_limits::per_moment_cents.eq(l.per_moment_cents),
                budget_limits::reserve_cents.eq(l.reserve_cents),
                budget_limits::emergency_threshold_cents.eq(l.emergency_threshold_cents),
                budget_limits::time_zone.eq(&change.time_zone),
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

text_enum! {
    /// Who asked for a purchase.
    HoldOrigin {
        /// The user, by hand.
        Manual => "manual",
        /// An agent.
        Automated => "automated",
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
    /// When the reconciler takes over.
    pub expires_at: DateTime<Utc>,
    /// Who asked for the purchase.
    pub origin: HoldOrigin,
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
    /// When the reconciler takes over.
    pub expires_at: DateTime<Utc>,
    /// Who asked for the purchase.
    pub origin: HoldOrigin,
}

/// Places a hold, or returns the one already placed under the same key (the bool is true when
/// this call placed it).
pub async fn place_hold(conn: &mut AsyncPgConnection, new: &NewHold<'_>) -> Result<(Hold, bool), DatabaseError> {
    let inserted = diesel::insert_into(holds::table)
        .values(new)
        .on_conflict((holds::user_id, holds::idempotency_key))
        .do_nothing()
        .returning(Hold::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?;
    match inserted {
        Some(hold) => Ok((hold, true)),
        None => {
            let existing = find_hold_by_key(conn, new.user_id, new.idempotency_key)
                .await?
                .ok_or(DatabaseError::NotFound("hold"))?;
            Ok((existing, false))
        }
    }
}

/// Finds a user's hold by its purchase's key.
pub async fn find_hold_by_key(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
) -> Result<Option<Hold>, DatabaseError> {
    Ok(holds::table
        .filter(holds::user_id.eq(user_id))
        .filter(holds::idempotency_key.eq(key))
        .select(Hold::as_select())
        .first(conn)
        .await
        .optional()?)
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
        .reused()
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
                .reused()
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
        .reused()
        .get_result(conn)
        .await
        .optional()?;
    match updated {
        Some(hold) => Ok(hold),
        None => find_hold(conn, id).await?.ok_or(DatabaseError::NotFound("hold")),
    }
}

/// Which holds to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct HoldFilter {
    /// Only holds in this state.
    pub state: Option<HoldState>,
    /// Only holds placed before this time.
    pub created_before: Option<DateTime<Utc>>,
}

/// Lists holds, oldest first, a page at a time.
pub async fn list_holds(
    conn: &mut AsyncPgConnection,
    filter: HoldFilter,
    page: PageRequest,
) -> Result<Page<Hold>, DatabaseError> {
    let mut query =
        holds::table.select(Hold::as_select()).order((holds::created_at, holds::id)).limit(page.size + 1).into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(holds::state.eq(state));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(holds::created_at.lt(before));
    }
    if let Some(after) = page.after {
        query = query
            .filter(holds::created_at.gt(after.time).or(holds::created_at.eq(after.time).and(holds::id.gt(after.id))));
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |h| Cursor { time: h.created_at, id: h.id }))
}

/// Puts off the reconciler's next look at a hold until `until` (its purchase is still
/// settling, or trading could not say), so that it does not hold up the holds behind it.
pub async fn postpone_hold(conn: &mut AsyncPgConnection, id: Uuid, until: DateTime<Utc>) -> Result<(), DatabaseError> {
    diesel::update(holds::table.find(id).filter(holds::state.eq(HoldState::Placed)))
        .set(holds::expires_at.eq(until))
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// Placed holds whose expiry passed, oldest expiry first (the reconciler's work list).
pub async fn expired_holds(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    size: i64,
) -> Result<Vec<Hold>, DatabaseError> {
    Ok(holds::table
        .filter(holds::state.eq(HoldState::Placed))
        .filter(holds::expires_at.le(now))
        .order((holds::expires_at, holds::id))
        .limit(size)
        .select(Hold::as_select())
        .load(conn)
        .await?)
}

/// Where the periods and windows a purchase is checked against begin.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// The start of the user's day.
    pub day: DateTime<Utc>,
    /// The start of the user's ISO week.
    pub week: DateTime<Utc>,
    /// The start of the user's month.
    pub month: DateTime<Utc>,
    /// An hour ago (for the emergency threshold).
    pub hour: DateTime<Utc>,
    /// When the caller read the balance: spending committed since may not be in it.
    pub balance: DateTime<Utc>,
    /// The start of the burst window.
    pub burst: DateTime<Utc>,
    /// The start of the history the usual rate and size are taken from.
    pub history: DateTime<Utc>,
}

/// Reads a user's [`Figures`].
pub async fn figures(conn: &mut AsyncPgConnection, user_id: Uuid, w: &Windows) -> Result<Figures, DatabaseError> {
    use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
    Ok(diesel::sql_query(
        "SELECT s.*, h.* FROM
           (SELECT coalesce(sum(amount_cents) FILTER (WHERE spent_at >= $2), 0)::bigint AS spent_day,
                   coalesce(sum(amount_cents) FILTER (WHERE spent_at >= $3), 0)::bigint AS spent_week,
                   coalesce(sum(amount_cents) FILTER (WHERE spent_at >= $4), 0)::bigint AS spent_month,
                   coalesce(sum(amount_cents), 0)::bigint AS spent_total,
                   coalesce(sum(amount_cents) FILTER (WHERE spent_at >= $5), 0)::bigint AS spent_hour,
                   coalesce(sum(amount_cents) FILTER (WHERE spent_at >= $6), 0)::bigint AS spent_since_balance,
                   count(*) FILTER (WHERE spent_at >= $8)::bigint AS history_purchases,
                   coalesce(avg(amount_cents) FILTER (WHERE spent_at >= $8), 0)::bigint AS history_mean_cents
              FROM spending WHERE user_id = $1) s,
           (SELECT coalesce(sum(amount_cents) FILTER (WHERE state = 'placed'), 0)::bigint AS held,
                   count(*) FILTER (WHERE created_at >= $7)::bigint AS burst_holds,
                   count(*) FILTER (WHERE created_at >= $8 AND created_at < $7)::bigint AS history_holds
              FROM holds WHERE user_id = $1 AND (state = 'placed' OR created_at >= $8)) h",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Timestamptz, _>(w.day)
    .bind::<Timestamptz, _>(w.week)
    .bind::<Timestamptz, _>(w.month)
    .bind::<Timestamptz, _>(w.hour)
    .bind::<Timestamptz, _>(w.balance)
    .bind::<Timestamptz, _>(w.burst)
    .bind::<Timestamptz, _>(w.history)
    .reused()
    .get_result(conn)
    .await?)
}

/// Notes a refused purchase; returns how many were refused in a row.
pub async fn record_refusal(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<i32, DatabaseError> {
    Ok(diesel::insert_into(risk_states::table)
        .values((risk_states::user_id.eq(user_id), risk_states::consecutive_refusals.eq(1)))
        .on_conflict(risk_states::user_id)
        .do_update()
        .set((
            risk_states::consecutive_refusals.eq(risk_states::consecutive_refusals + 1),
            risk_states::updated_at.eq(diesel::dsl::now),
        ))
        .returning(risk_states::consecutive_refusals)
        .reused()
        .get_result(conn)
        .await?)
}

/// Ends a run of refusals (a purchase was granted).
pub async fn reset_refusals(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<(), DatabaseError> {
    diesel::update(risk_states::table.find(user_id).filter(risk_states::consecutive_refusals.gt(0)))
        .set((risk_states::consecutive_refusals.eq(0), risk_states::updated_at.eq(diesel::dsl::now)))
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks a user's risk state for the rest of the transaction, so that concurrent purchase
/// authorisations of one user are decided one after another.
pub async fn lock_user_risk(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<(), DatabaseError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind::<diesel::sql_types::Text, _>(user_id.to_string())
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// What authorising a purchase reads once the user's risk lock is held.
#[derive(Debug, Clone)]
pub struct AuthorizationReads {
    /// The hold under the purchase's key, if one was placed before.
    pub hold: Option<Hold>,
    /// The user's emergency stop, engaged or not, if one was ever set.
    pub stop: Option<EmergencyStop>,
    /// The oldest unacknowledged suspicious-activity alert, which pauses automated purchases.
    pub paused_by: Option<RiskAlert>,
    /// The user's budget limits, if set.
    pub limits: Option<BudgetLimits>,
}

/// [`AuthorizationReads`] for a purchase under a key: four statements sent at once (one round
/// trip), each run after [`lock_user_risk`] returned, so each sees what the lock's previous
/// holder committed.
pub async fn authorization_reads(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
) -> Result<AuthorizationReads, DatabaseError> {
    // Statements sent together on one connection run one after another, as sent; none of
    // these four depends on another.
    let conn: &AsyncPgConnection = conn;
    let (mut a, mut b, mut c, mut d) = (conn, conn, conn, conn);
    let hold = holds::table
        .filter(holds::user_id.eq(user_id))
        .filter(holds::idempotency_key.eq(key))
        .select(Hold::as_select())
        .first(&mut a);
    let stop = emergency_stops::table.find(user_id).select(EmergencyStop::as_select()).first(&mut b);
    let paused_by = risk_alerts::table
        .filter(risk_alerts::user_id.eq(user_id))
        .filter(risk_alerts::kind.eq(AlertKind::SuspiciousActivity))
        .filter(risk_alerts::acknowledged_at.is_null())
        .order(risk_alerts::created_at)
        .select(RiskAlert::as_select())
        .first(&mut c);
    let limits = budget_limits::table.find(user_id).select(BudgetLimits::as_select()).first(&mut d);
    let (hold, stop, paused_by, limits) = futures::join!(hold, stop, paused_by, limits);
    Ok(AuthorizationReads {
        hold: hold.optional()?,
        stop: stop.optional()?,
        paused_by: paused_by.optional()?,
        limits: limits.optional()?,
    })
}

text_enum! {
    /// Who engaged or released an emergency stop.
    StopActor {
        /// The user.
        User => "user",
        /// An operator.
        Operator => "operator",
        /// FastBreak itself.
        System => "system",
    }
}

/// A user's emergency stop.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = emergency_stops)]
pub struct EmergencyStop {
    /// The user.
    pub user_id: Uuid,
    /// Engaged now.
    pub engaged: bool,
    /// Why it was last engaged.
    pub reason: String,
    /// Last engaged.
    pub engaged_at: Option<DateTime<Utc>>,
    /// Last released.
    pub released_at: Option<DateTime<Utc>>,
    /// Who engaged it last.
    pub engaged_by: Option<StopActor>,
    /// Who released it last.
    pub released_by: Option<StopActor>,
}

/// Engages a user's emergency stop (engaging an engaged stop changes nothing and records
/// nothing). Returns the stop and whether this call engaged it.
pub async fn engage_emergency_stop(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    actor: StopActor,
    reason: &str,
) -> Result<(EmergencyStop, bool), DatabaseError> {
    diesel::insert_into(emergency_stops::table)
        .values((emergency_stops::user_id.eq(user_id), emergency_stops::engaged.eq(false)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    // An operator's call also takes over a stop the user or the system engaged: from then on
    // only an operator releases it.
    let update = diesel::update(emergency_stops::table.find(user_id))
        .set((
            emergency_stops::engaged.eq(true),
            emergency_stops::reason.eq(reason),
            emergency_stops::engaged_at.eq(diesel::dsl::now),
            emergency_stops::engaged_by.eq(actor),
        ))
        .into_boxed();
    let update = if actor == StopActor::Operator {
        update.filter(
            emergency_stops::engaged
                .eq(false)
                .or(emergency_stops::engaged_by.ne(StopActor::Operator))
                .or(emergency_stops::engaged_by.is_null()),
        )
    } else {
        update.filter(emergency_stops::engaged.eq(false))
    };
    let engaged = update.returning(EmergencyStop::as_returning()).get_result(conn).await.optional()?;
    match engaged {
        Some(stop) => {
            record_stop_event(conn, user_id, "engaged", actor, reason).await?;
            Ok((stop, true))
        }
        None => {
            Ok((find_emergency_stop(conn, user_id).await?.ok_or(DatabaseError::NotFound("emergency stop"))?, false))
        }
    }
}

/// Releases a user's emergency stop (releasing a stop that is not engaged changes nothing and
/// records nothing). A stop an operator engaged is released only by an operator: for anyone
/// else it stays engaged. Returns the stop, if it was ever engaged.
pub async fn release_emergency_stop(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    actor: StopActor,
) -> Result<Option<EmergencyStop>, DatabaseError> {
    let update = diesel::update(emergency_stops::table.find(user_id))
        .set((
            emergency_stops::engaged.eq(false),
            emergency_stops::released_at.eq(diesel::dsl::now),
            emergency_stops::released_by.eq(actor),
        ))
        .into_boxed()
        .filter(emergency_stops::engaged.eq(true));
    let update = if actor == StopActor::Operator {
        update
    } else {
        update.filter(emergency_stops::engaged_by.ne(StopActor::Operator).or(emergency_stops::engaged_by.is_null()))
    };
    let released = update.returning(EmergencyStop::as_returning()).get_result(conn).await.optional()?;
    match released {
        Some(stop) => {
            record_stop_event(conn, user_id, "released", actor, "").await?;
            Ok(Some(stop))
        }
        None => find_emergency_stop(conn, user_id).await,
    }
}

async fn record_stop_event(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    action: &str,
    actor: StopActor,
    reason: &str,
) -> Result<(), DatabaseError> {
    diesel::insert_into(emergency_stop_events::table)
        .values((
            emergency_stop_events::user_id.eq(user_id),
            emergency_stop_events::action.eq(action),
            emergency_stop_events::actor.eq(actor),
            emergency_stop_events::reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// One engagement or release of an emergency stop.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = emergency_stop_events)]
pub struct StopEvent {
    /// "engaged" or "released".
    pub action: String,
    /// Who did it.
    pub actor: StopActor,
    /// Why (engagements only).
    pub reason: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A user's emergency stop history, oldest first.
pub async fn list_stop_events(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Vec<StopEvent>, DatabaseError> {
    Ok(emergency_stop_events::table
        .filter(emergency_stop_events::user_id.eq(user_id))
        .order(emergency_stop_events::id)
        .select(StopEvent::as_select())
        .load(conn)
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

text_enum! {
    /// What a risk alert is about.
    AlertKind {
        /// Spending passed a share of a limit.
        LimitApproached => "limit_approached",
        /// A limit was reached or refused a purchase.
        LimitReached => "limit_reached",
        /// Activity looks suspicious.
        SuspiciousActivity => "suspicious_activity",
        /// The emergency stop engaged by itself.
        EmergencyStop => "emergency_stop",
    }
}

/// A risk alert.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = risk_alerts)]
pub struct RiskAlert {
    /// Id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// How serious.
    pub severity: AlertSeverity,
    /// What it is about.
    pub kind: AlertKind,
    /// The limit concerned.
    pub limit_name: Option<LimitKind>,
    /// What happened.
    pub message: String,
    /// Raised.
    pub created_at: DateTime<Utc>,
    /// Acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Its notification was sent.
    pub notified_at: Option<DateTime<Utc>>,
    /// Tries at sending its notification so far.
    pub notify_attempts: i32,
}

/// A risk alert to raise.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = risk_alerts)]
pub struct NewRiskAlert<'a> {
    /// Id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// How serious.
    pub severity: AlertSeverity,
    /// What it is about.
    pub kind: AlertKind,
    /// The limit concerned.
    pub limit_name: Option<LimitKind>,
    /// What happened.
    pub message: &'a str,
    /// Raised once per user and key; `None` for alerts that are never de-duplicated.
    pub dedup_key: Option<&'a str>,
}

/// Raises a risk alert; `None` when one with the same key was raised before.
pub async fn insert_risk_alert(
    conn: &mut AsyncPgConnection,
    alert: &NewRiskAlert<'_>,
) -> Result<Option<RiskAlert>, DatabaseError> {
    Ok(diesel::insert_into(risk_alerts::table)
        .values(alert)
        .on_conflict_do_nothing()
        .returning(RiskAlert::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?)
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

/// The user's oldest unacknowledged suspicious-activity alert: while there is one, automated
/// purchases are paused.
pub async fn open_suspicious_alert(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Option<RiskAlert>, DatabaseError> {
    Ok(risk_alerts::table
        .filter(risk_alerts::user_id.eq(user_id))
        .filter(risk_alerts::kind.eq(AlertKind::SuspiciousActivity))
        .filter(risk_alerts::acknowledged_at.is_null())
        .order(risk_alerts::created_at)
        .select(RiskAlert::as_select())
        .first(conn)
        .await
        .optional()?)
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

/// Claims up to `size` alerts whose notification is due, for `lease` (another claimant skips
/// them meanwhile; a claimant that dies leaves them due again when the lease ends).
pub async fn claim_alerts_to_notify(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    size: i64,
) -> Result<Vec<RiskAlert>, DatabaseError> {
    let due: Vec<Uuid> = risk_alerts::table
        .filter(risk_alerts::notified_at.is_null())
        .filter(risk_alerts::next_notify_at.le(now))
        .order(risk_alerts::next_notify_at)
        .limit(size)
        .select(risk_alerts::id)
        .for_update()
        .skip_locked()
        .load(conn)
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::update(risk_alerts::table.filter(risk_alerts::id.eq_any(&due)))
        .set((
            risk_alerts::next_notify_at.eq(now + lease),
            risk_alerts::notify_attempts.eq(risk_alerts::notify_attempts + 1),
        ))
        .returning(RiskAlert::as_returning())
        .load(conn)
        .await?)
}

/// Notes that an alert's notification was sent.
pub async fn mark_alert_notified(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), DatabaseError> {
    diesel::update(risk_alerts::table.find(id))
        .set(risk_alerts::notified_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts off an alert's notification until `at` (its send failed).
pub async fn postpone_alert_notification(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<i32, DatabaseError> {
    Ok(diesel::update(risk_alerts::table.find(id))
        .set(risk_alerts::next_notify_at.eq(at))
        .returning(risk_alerts::notify_attempts)
        .get_result(conn)
        .await?)
}
