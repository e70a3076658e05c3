//! Notifications, preferences, webhook deliveries and operator alerts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::DatabaseError;
use crate::repo::{Cursor, Page, PageRequest, text_enum};
use crate::schema::{deliveries, notification_preferences, notifications, system_alerts};

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

/// A user's notifications, newest first.
pub async fn list_notifications(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    unread_only: bool,
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

/// How a user wants to be notified.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
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

/// A webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    /// Id.
    pub id: Uuid,
    /// The notification.
    pub notification_id: Uuid,
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

/// Schedules a delivery of a notification, due at once.
pub async fn insert_delivery(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    notification_id: Uuid,
) -> Result<Delivery, DatabaseError> {
    Ok(diesel::insert_into(deliveries::table)
        .values((
            deliveries::id.eq(id),
            deliveries::notification_id.eq(notification_id),
            deliveries::next_attempt_at.eq(Some(Utc::now())),
        ))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .await?)
}

/// Records an attempt: delivered, retry at a time, or given up (`retry_at` None and not ok).
pub async fn record_delivery_attempt(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    http_status: i32,
    error: &str,
    delivered: bool,
    retry_at: Option<DateTime<Utc>>,
) -> Result<Delivery, DatabaseError> {
    let state = match (delivered, retry_at) {
        (true, _) => DeliveryState::Delivered,
        (false, Some(_)) => DeliveryState::Pending,
        (false, None) => DeliveryState::Failed,
    };
    let next = if state == DeliveryState::Pending { retry_at } else { None };
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::state.eq(state),
            deliveries::attempt_count.eq(deliveries::attempt_count + 1),
            deliveries::last_http_status.eq(http_status),
            deliveries::last_error.eq(error),
            deliveries::next_attempt_at.eq(next),
            deliveries::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("delivery"))
}

/// Deliveries due at `now`, oldest due first.
pub async fn due_deliveries(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    size: i64,
) -> Result<Vec<Delivery>, DatabaseError> {
    Ok(deliveries::table
        .filter(deliveries::state.eq(DeliveryState::Pending))
        .filter(deliveries::next_attempt_at.le(now))
        .order(deliveries::next_attempt_at)
        .limit(size)
        .select(Delivery::as_select())
        .load(conn)
        .await?)
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
}

/// Raises an operator alert.
pub async fn insert_system_alert(
    conn: &mut AsyncPgConnection,
    alert: &SystemAlert,
) -> Result<SystemAlert, DatabaseError> {
    Ok(diesel::insert_into(system_alerts::table)
        .values(alert)
        .returning(SystemAlert::as_returning())
        .get_result(conn)
        .await?)
}

/// Operator alerts, newest first.
pub async fn list_system_alerts(
    conn: &mut AsyncPgConnection,
    page: PageRequest,
) -> Result<Page<SystemAlert>, DatabaseError> {
    let mut query = system_alerts::table
        .select(SystemAlert::as_select())
        .order((system_alerts::created_at.desc(), system_alerts::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
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
