//! Notifications, preferences, webhook deliveries and operator alerts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::schema::{deliveries, delivery_attempts, notification_preferences, notifications, system_alerts};
use fastbreak_db::{Cursor, Page, PageRequest, text_enum};

text_enum! {
    /// How urgent a notification is (ordered).
    Priority {
        /// Can wait.
        Low => "low",
        /// Ordinary.
        Normal => "normal",
        /// Soon.
        High => "high",
        /// Now.
        Urgent => "urgent",
    }
}

text_enum! {
    /// What a notification is about.
    Category {
        /// A purchase.
        Purchase => "purchase",
        /// A sale.
        Sale => "sale",
        /// A risk alert.
        Risk => "risk",
        /// A strategy.
        Strategy => "strategy",
        /// The system.
        System => "system",
    }
}

/// A notification.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
pub struct Notification {
    /// Id.
    pub id: Uuid,
    /// For whom.
    pub user_id: Uuid,
    /// About what.
    pub category: Category,
    /// How urgent.
    pub priority: Priority,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// The sender's key: one notification per key.
    pub idempotency_key: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Read.
    pub read_at: Option<DateTime<Utc>>,
    /// Typed links to what it is about: `[{"kind": "trade", "id": "..."}]`.
    pub links: serde_json::Value,
}

/// Stores a notification, or returns the one already stored under its key (the bool is true
/// when this call stored it).
pub async fn insert_notification(
    conn: &mut AsyncPgConnection,
    notification: &Notification,
) -> Result<(Notification, bool), DatabaseError> {
    let inserted = diesel::insert_into(notifications::table)
        .values(notification)
        .on_conflict((notifications::user_id, notifications::idempotency_key))
        .do_nothing()
        .returning(Notification::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match inserted {
        Some(stored) => Ok((stored, true)),
        None => Ok((
            notifications::table
                .filter(notifications::user_id.eq(notification.user_id))
                .filter(notifications::idempotency_key.eq(&notification.idempotency_key))
                .select(Notification::as_select())
                .first(conn)
                .await?,
            false,
        )),
    }
}

impl Priority {
    /// This priority and every higher one.
    pub fn and_above(self) -> Vec<Priority> {
        Self::ALL.iter().copied().filter(|p| *p >= self).collect()
    }
}

impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Priority {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |p: &Priority| Self::ALL.iter().position(|q| q == p);
        rank(self).cmp(&rank(other))
    }
}

/// A user's notifications, newest first: unread ones only if asked, and only those of at least
/// `min_priority` if given.
pub async fn list_notifications(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    unread_only: bool,
    min_priority: Option<Priority>,
    page: PageRequest,
) -> Result<Page<Notification>, DatabaseError> {
    let mut query = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .select(Notification::as_select())
        .order((notifications::created_at.desc(), notifications::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if unread_only {
        query = query.filter(notifications::read_at.is_null());
    }
    if let Some(min) = min_priority {
        query = query.filter(notifications::priority.eq_any(min.and_above()));
    }
    if let Some(after) = page.after {
        query = query.filter(
            notifications::created_at
                .lt(after.time)
                .or(notifications::created_at.eq(after.time).and(notifications::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |n| Cursor { time: n.created_at, id: n.id }))
}

/// How many of a user's notifications are unread.
pub async fn unread_count(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<i64, DatabaseError> {
    Ok(notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
        .await?)
}

/// Marks one notification read (the first read time is kept).
pub async fn mark_read(conn: &mut AsyncPgConnection, user_id: Uuid, id: Uuid) -> Result<Notification, DatabaseError> {
    diesel::update(notifications::table.find(id).filter(notifications::user_id.eq(user_id)))
        .set(notifications::read_at.eq(
            diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>("COALESCE(read_at, now())"),
        ))
        .returning(Notification::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("notification"))
}

/// Marks every unread notification of a user read; returns how many changed.
pub async fn mark_all_read(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<usize, DatabaseError> {
    Ok(diesel::update(
        notifications::table.filter(notifications::user_id.eq(user_id)).filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(Some(Utc::now())))
    .execute(conn)
    .await?)
}

/// How a user wants to be notified. `Debug` leaves the signing secret out.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = notification_preferences)]
pub struct Preferences {
    /// The user.
    pub user_id: Uuid,
    /// Below this, in-app only.
    pub webhook_min_priority: Priority,
    /// Where to POST.
    pub webhook_url: Option<String>,
    /// Categories not wanted.
    pub muted_categories: Vec<String>,
    /// HMAC signing secret.
    pub webhook_secret: Option<String>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Preferences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preferences")
            .field("user_id", &self.user_id)
            .field("webhook_min_priority", &self.webhook_min_priority)
            .field("webhook_url", &self.webhook_url)
            .field("muted_categories", &self.muted_categories)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "***"))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A user's preferences, if ever set.
pub async fn find_preferences(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Option<Preferences>, DatabaseError> {
    Ok(notification_preferences::table.find(user_id).select(Preferences::as_select()).first(conn).await.optional()?)
}

/// Sets a user's preferences.
pub async fn put_preferences(
    conn: &mut AsyncPgConnection,
    preferences: &Preferences,
) -> Result<Preferences, DatabaseError> {
    Ok(diesel::insert_into(notification_preferences::table)
        .values(preferences)
        .on_conflict(notification_preferences::user_id)
        .do_update()
        .set((
            notification_preferences::webhook_min_priority.eq(preferences.webhook_min_priority),
            notification_preferences::webhook_url.eq(&preferences.webhook_url),
            notification_preferences::muted_categories.eq(&preferences.muted_categories),
            notification_preferences::webhook_secret.eq(&preferences.webhook_secret),
            notification_preferences::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Preferences::as_returning())
        .get_result(conn)
        .await?)
}

text_enum! {
    /// Where a delivery stands.
    DeliveryState {
        /// Waiting to be sent or retried.
        Pending => "pending",
        /// Delivered.
        Delivered => "delivered",
        /// Given up.
        Failed => "failed",
    }
}

/// A webhook delivery: of a user's notification, or of an operator alert.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    /// Id.
    pub id: Uuid,
    /// The notification, when it delivers one.
    pub notification_id: Option<Uuid>,
    /// The operator alert, when it delivers one.
    pub system_alert_id: Option<Uuid>,
    /// Where it is POSTed.
    pub url: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempt_count: i32,
    /// HTTP status of the last attempt.
    pub last_http_status: i32,
    /// Error of the last attempt.
    pub last_error: String,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverySubject {
    /// A user's notification.
    Notification(Uuid),
    /// An operator alert.
    SystemAlert(Uuid),
}

/// Schedules a delivery to `url`, due at once.
pub async fn insert_delivery(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    subject: DeliverySubject,
    url: &str,
) -> Result<Delivery, DatabaseError> {
    let (notification_id, system_alert_id) = match subject {
        DeliverySubject::Notification(id) => (Some(id), None),
        DeliverySubject::SystemAlert(id) => (None, Some(id)),
    };
    Ok(diesel::insert_into(deliveries::table)
        .values((
            deliveries::id.eq(id),
            deliveries::notification_id.eq(notification_id),
            deliveries::system_alert_id.eq(system_alert_id),
            deliveries::url.eq(url),
            deliveries::next_attempt_at.eq(Some(Utc::now())),
        ))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .await?)
}

/// Claims up to `size` deliveries due at `now` for the worker `owner`, for `lease`: a
/// delivery another worker holds an unexpired lease on is skipped, and one whose lease expired
/// (its worker died) is taken over. Rows locked by a concurrent claim are skipped, not waited on.
pub async fn claim_due_deliveries(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    size: i64,
) -> Result<Vec<Delivery>, DatabaseError> {
    let due: Vec<Uuid> = deliveries::table
        .filter(deliveries::state.eq(DeliveryState::Pending))
        .filter(deliveries::next_attempt_at.le(now))
        .filter(deliveries::lease_expires_at.is_null().or(deliveries::lease_expires_at.lt(now)))
        .order(deliveries::next_attempt_at)
        .limit(size)
        .select(deliveries::id)
        .for_update()
        .skip_locked()
        .load(conn)
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::update(deliveries::table.filter(deliveries::id.eq_any(&due)))
        .set((deliveries::lease_owner.eq(Some(owner)), deliveries::lease_expires_at.eq(Some(now + lease))))
        .returning(Delivery::as_returning())
        .load(conn)
        .await?)
}

/// True while `owner` holds an unexpired lease on the delivery.
pub async fn lease_held(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DatabaseError> {
    let held: i64 = deliveries::table
        .find(id)
        .filter(deliveries::lease_owner.eq(owner))
        .filter(deliveries::lease_expires_at.gt(now))
        .count()
        .get_result(conn)
        .await?;
    Ok(held == 1)
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = delivery_attempts)]
pub struct DeliveryAttempt {
    /// The delivery.
    pub delivery_id: Uuid,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// The HTTP status answered, 0 when none.
    pub http_status: i32,
    /// What went wrong, empty on success.
    pub error: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i32,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The webhook took it.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// No more tries.
    GaveUp,
}

/// Records an attempt made by the worker `owner` and releases its lease. `None` when the
/// worker no longer held the lease (it expired and another worker took the delivery over):
/// nothing is written then.
pub async fn record_delivery_attempt(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    attempt: &DeliveryAttempt,
    outcome: AttemptOutcome,
) -> Result<Option<Delivery>, DatabaseError> {
    let (state, next) = match outcome {
        AttemptOutcome::Delivered => (DeliveryState::Delivered, None),
        AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
        AttemptOutcome::GaveUp => (DeliveryState::Failed, None),
    };
    let updated = diesel::update(
        deliveries::table
            .find(attempt.delivery_id)
            .filter(deliveries::lease_owner.eq(owner))
            .filter(deliveries::attempt_count.eq(attempt.attempt - 1)),
    )
    .set((
        deliveries::state.eq(state),
        deliveries::attempt_count.eq(attempt.attempt),
        deliveries::last_http_status.eq(attempt.http_status),
        deliveries::last_error.eq(&attempt.error),
        deliveries::next_attempt_at.eq(next),
        deliveries::lease_owner.eq(None::<Uuid>),
        deliveries::lease_expires_at.eq(None::<DateTime<Utc>>),
        deliveries::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Delivery::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    if updated.is_some() {
        diesel::insert_into(delivery_attempts::table).values(attempt).execute(conn).await?;
    }
    Ok(updated)
}

/// A user's deliveries (of their notifications), newest first, optionally of one notification.
pub async fn list_deliveries(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    notification_id: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<Delivery>, DatabaseError> {
    let mut query = deliveries::table
        .inner_join(notifications::table)
        .filter(notifications::user_id.eq(user_id))
        .select(Delivery::as_select())
        .order((deliveries::created_at.desc(), deliveries::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(notification_id) = notification_id {
        query = query.filter(deliveries::notification_id.eq(notification_id));
    }
    if let Some(after) = page.after {
        query = query.filter(
            deliveries::created_at
                .lt(after.time)
                .or(deliveries::created_at.eq(after.time).and(deliveries::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |d| Cursor { time: d.created_at, id: d.id }))
}

/// The attempts of these deliveries, in attempt order.
pub async fn list_delivery_attempts(
    conn: &mut AsyncPgConnection,
    delivery_ids: &[Uuid],
) -> Result<Vec<DeliveryAttempt>, DatabaseError> {
    Ok(delivery_attempts::table
        .filter(delivery_attempts::delivery_id.eq_any(delivery_ids))
        .order((delivery_attempts::delivery_id, delivery_attempts::attempt))
        .select(DeliveryAttempt::as_select())
        .load(conn)
        .await?)
}

/// A delivery's notification, if it delivers one.
pub async fn find_notification(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Notification>, DatabaseError> {
    Ok(notifications::table.find(id).select(Notification::as_select()).first(conn).await.optional()?)
}

/// An operator alert.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = system_alerts)]
pub struct SystemAlert {
    /// Id.
    pub id: Uuid,
    /// "warning" or "critical".
    pub severity: String,
    /// The service that raised it.
    pub source: String,
    /// What happened.
    pub message: String,
    /// The failing call's correlation id.
    pub correlation_id: String,
    /// Raised.
    pub created_at: DateTime<Utc>,
    /// The raiser's key: one alert per key.
    pub dedup_key: Option<String>,
}

/// Raises an operator alert, or returns the one already raised under its key (the bool is true
/// when this call raised it).
pub async fn insert_system_alert(
    conn: &mut AsyncPgConnection,
    alert: &SystemAlert,
) -> Result<(SystemAlert, bool), DatabaseError> {
    let inserted = diesel::insert_into(system_alerts::table)
        .values(alert)
        .on_conflict_do_nothing()
        .returning(SystemAlert::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match (inserted, &alert.dedup_key) {
        (Some(stored), _) => Ok((stored, true)),
        (None, Some(key)) => Ok((
            system_alerts::table
                .filter(system_alerts::dedup_key.eq(key))
                .select(SystemAlert::as_select())
                .first(conn)
                .await?,
            false,
        )),
        (None, None) => Err(DatabaseError::UniqueViolation { constraint: "system_alerts_pkey".to_owned() }),
    }
}

/// Finds an operator alert.
pub async fn find_system_alert(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<SystemAlert>, DatabaseError> {
    Ok(system_alerts::table.find(id).select(SystemAlert::as_select()).first(conn).await.optional()?)
}

/// Operator alerts, newest first, optionally only those of the given severities.
pub async fn list_system_alerts(
    conn: &mut AsyncPgConnection,
    severities: Option<&[&str]>,
    page: PageRequest,
) -> Result<Page<SystemAlert>, DatabaseError> {
    let mut query = system_alerts::table
        .select(SystemAlert::as_select())
        .order((system_alerts::created_at.desc(), system_alerts::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(severities) = severities {
        query = query.filter(system_alerts::severity.eq_any(severities.to_vec()));
    }
    if let Some(after) = page.after {
        query = query.filter(
            system_alerts::created_at
                .lt(after.time)
                .or(system_alerts::created_at.eq(after.time).and(system_alerts::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |a| Cursor { time: a.created_at, id: a.id }))
}
