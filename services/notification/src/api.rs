//! The notification service's RPCs: each converts its request into domain values, applies the
//! rule, and converts the answer back.

use std::sync::Arc;

use crate::store::{
    self as notifications, Category, Delivery, DeliveryAttempt, DeliveryState, DeliverySubject, Notification,
    Preferences, Priority, SystemAlert,
};
use chrono::Utc;
use fastbreak_db::{Database, DatabaseError, PgConnection};
use fastbreak_mesh::idempotency::IdempotencyKey;
use fastbreak_mesh::status::{Violations, timestamp};
use fastbreak_mesh::{caller, paging};
use fastbreak_proto::notification::v1 as pb;
use fastbreak_proto::notification::v1::notification_internal_service_server::NotificationInternalService;
use fastbreak_proto::notification::v1::notification_service_server::NotificationService;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{self, Link};
use crate::error::NotificationError;
use crate::settings::Settings;

/// Both of the target's services.
#[derive(Debug, Clone)]
pub struct NotificationApi {
    database: Arc<Database>,
    settings: Arc<Settings>,
    /// Wakes the delivery worker when a delivery was written.
    wake: Arc<Notify>,
}

impl NotificationApi {
    pub(crate) fn new(database: Database, settings: Settings, wake: Arc<Notify>) -> Self {
        Self { database: Arc::new(database), settings: Arc::new(settings), wake }
    }

    async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send,
    ) -> Result<T, NotificationError> {
        Ok(self.database.read(work).await?)
    }
}

fn priority_from_pb(value: i32) -> Option<Priority> {
    match pb::Priority::try_from(value).ok()? {
        pb::Priority::Unspecified => None,
        pb::Priority::Low => Some(Priority::Low),
        pb::Priority::Normal => Some(Priority::Normal),
        pb::Priority::High => Some(Priority::High),
        pb::Priority::Urgent => Some(Priority::Urgent),
    }
}

fn priority_to_pb(priority: Priority) -> i32 {
    (match priority {
        Priority::Low => pb::Priority::Low,
        Priority::Normal => pb::Priority::Normal,
        Priority::High => pb::Priority::High,
        Priority::Urgent => pb::Priority::Urgent,
    }) as i32
}

fn category_from_pb(value: i32) -> Option<Category> {
    match pb::NotificationCategory::try_from(value).ok()? {
        pb::NotificationCategory::Unspecified => None,
        pb::NotificationCategory::Purchase => Some(Category::Purchase),
        pb::NotificationCategory::Sale => Some(Category::Sale),
        pb::NotificationCategory::Risk => Some(Category::Risk),
        pb::NotificationCategory::Strategy => Some(Category::Strategy),
        pb::NotificationCategory::System => Some(Category::System),
    }
}

fn category_to_pb(category: Category) -> i32 {
    (match category {
        Category::Purchase => pb::NotificationCategory::Purchase,
        Category::Sale => pb::NotificationCategory::Sale,
        Category::Risk => pb::NotificationCategory::Risk,
        Category::Strategy => pb::NotificationCategory::Strategy,
        Category::System => pb::NotificationCategory::System,
    }) as i32
}

fn severity_from_pb(value: i32) -> Option<&'static str> {
    match pb::SystemAlertSeverity::try_from(value).ok()? {
        pb::SystemAlertSeverity::Unspecified => None,
        pb::SystemAlertSeverity::Warning => Some("warning"),
        pb::SystemAlertSeverity::Critical => Some("critical"),
    }
}

fn severity_to_pb(severity: &str) -> i32 {
    (match severity {
        "warning" => pb::SystemAlertSeverity::Warning,
        "critical" => pb::SystemAlertSeverity::Critical,
        _ => pb::SystemAlertSeverity::Unspecified,
    }) as i32
}

fn link_from_pb(link: &pb::NotificationLink, field: &str, violations: &mut Violations) -> Option<Link> {
    use pb::notification_link::Target;
    let Some(target) = &link.target else {
        violations.add(field, "must name a trade, moment, strategy, risk alert or decision");
        return None;
    };
    let (id, field, make): (&str, String, fn(Uuid) -> Link) = match target {
        Target::TradeId(id) => (id, format!("{field}.trade_id"), Link::Trade),
        Target::MomentId(id) => (id, format!("{field}.moment_id"), Link::Moment),
        Target::StrategyId(id) => (id, format!("{field}.strategy_id"), Link::Strategy),
        Target::RiskAlertId(id) => (id, format!("{field}.risk_alert_id"), Link::RiskAlert),
        Target::DecisionId(id) => (id, format!("{field}.decision_id"), Link::Decision),
    };
    violations.uuid(id, field).map(make)
}

fn link_to_pb(link: Link) -> pb::NotificationLink {
    use pb::notification_link::Target;
    let target = match link {
        Link::Trade(id) => Target::TradeId(id.to_string()),
        Link::Moment(id) => Target::MomentId(id.to_string()),
        Link::Strategy(id) => Target::StrategyId(id.to_string()),
        Link::RiskAlert(id) => Target::RiskAlertId(id.to_string()),
        Link::Decision(id) => Target::DecisionId(id.to_string()),
    };
    pb::NotificationLink { target: Some(target) }
}

fn notification_to_pb(notification: Notification) -> pb::Notification {
    pb::Notification {
        notification_id: notification.id.to_string(),
        user_id: notification.user_id.to_string(),
        category: category_to_pb(notification.category),
        priority: priority_to_pb(notification.priority),
        title: notification.title,
        body: notification.body,
        create_time: Some(timestamp(notification.created_at)),
        read_time: notification.read_at.map(timestamp),
        links: Link::from_json(&notification.links).into_iter().map(link_to_pb).collect(),
    }
}

fn alert_to_pb(alert: SystemAlert) -> pb::SystemAlert {
    pb::SystemAlert {
        alert_id: alert.id.to_string(),
        severity: severity_to_pb(&alert.severity),
        source: alert.source,
        message: alert.message,
        correlation_id: alert.correlation_id,
        create_time: Some(timestamp(alert.created_at)),
        dedup_key: alert.dedup_key.unwrap_or_default(),
    }
}

fn delivery_to_pb(delivery: Delivery, attempts: Vec<DeliveryAttempt>) -> pb::Delivery {
    let state = match delivery.state {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Delivered => pb::DeliveryState::Delivered,
        DeliveryState::Failed => pb::DeliveryState::Failed,
    };
    pb::Delivery {
        delivery_id: delivery.id.to_string(),
        notification_id: delivery.notification_id.map(|id| id.to_string()).unwrap_or_default(),
        state: state as i32,
        attempt_count: delivery.attempt_count,
        last_http_status: delivery.last_http_status,
        last_error: delivery.last_error,
        next_attempt_time: delivery.next_attempt_at.map(timestamp),
        create_time: Some(timestamp(delivery.created_at)),
        attempts: attempts
            .into_iter()
            .map(|a| pb::DeliveryAttempt {
                attempt: a.attempt,
                http_status: a.http_status,
                error: a.error,
                start_time: Some(timestamp(a.started_at)),
                duration_ms: a.duration_ms,
            })
            .collect(),
    }
}

fn default_preferences(user_id: Uuid) -> Preferences {
    Preferences {
        user_id,
        webhook_min_priority: Priority::High,
        webhook_url: None,
        muted_categories: Vec::new(),
        webhook_secret: None,
        updated_at: Utc::now(),
    }
}

fn preferences_to_pb(preferences: Preferences, new_secret: Option<String>) -> pb::NotificationPreferences {
    pb::NotificationPreferences {
        webhook_min_priority: priority_to_pb(preferences.webhook_min_priority),
        webhook_url: preferences.webhook_url.unwrap_or_default(),
        muted_categories: preferences
            .muted_categories
            .iter()
            .filter_map(|c| c.parse::<Category>().ok())
            .map(category_to_pb)
            .collect(),
        webhook_secret_set: preferences.webhook_secret.is_some(),
        webhook_secret: new_secret.unwrap_or_default(),
        update_time: Some(timestamp(preferences.updated_at)),
    }
}

fn text(value: &str, field: &str, range: std::ops::RangeInclusive<usize>, violations: &mut Violations) -> String {
    let length = value.chars().count();
    violations.check(
        range.contains(&length),
        field,
        format!("must be {} to {} characters", range.start(), range.end()),
    );
    value.to_owned()
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(request.page_size, &request.page_token, 50, 100, &mut violations);
        let min_priority = priority_from_pb(request.min_priority);
        violations.check(min_priority.is_some() || request.min_priority == 0, "min_priority", "must be a priority");
        violations.into_result(())?;
        let unread_only = request.unread_only;
        let (page, unread_count) = self
            .read(|conn| {
                async move {
                    let page =
                        notifications::list_notifications(conn, user_id, unread_only, min_priority, page).await?;
                    Ok((page, notifications::unread_count(conn, user_id).await?))
                }
                .boxed()
            })
            .await?;
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: page.items.into_iter().map(notification_to_pb).collect(),
            unread_count,
            next_page_token: paging::next_page_token(page.next),
        }))
    }

    async fn get_unread_count(
        &self,
        request: Request<pb::GetUnreadCountRequest>,
    ) -> Result<Response<pb::UnreadCount>, Status> {
        let user_id = caller::user_id(&request)?;
        let unread_count = self.read(|conn| notifications::unread_count(conn, user_id).boxed()).await?;
        Ok(Response::new(pb::UnreadCount { unread_count }))
    }

    async fn mark_notification_read(
        &self,
        request: Request<pb::MarkNotificationReadRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = fastbreak_mesh::status::required_uuid(&request.get_ref().notification_id, "notification_id")?;
        let read = self.read(|conn| notifications::mark_read(conn, user_id, id).boxed()).await?;
        Ok(Response::new(notification_to_pb(read)))
    }

    async fn mark_all_notifications_read(
        &self,
        request: Request<pb::MarkAllNotificationsReadRequest>,
    ) -> Result<Response<pb::UnreadCount>, Status> {
        let user_id = caller::user_id(&request)?;
        let unread_count = self
            .read(|conn| {
                async move {
                    notifications::mark_all_read(conn, user_id).await?;
                    notifications::unread_count(conn, user_id).await
                }
                .boxed()
            })
            .await?;
        Ok(Response::new(pb::UnreadCount { unread_count }))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<pb::GetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::NotificationPreferences>, Status> {
        let user_id = caller::user_id(&request)?;
        let found = self.read(|conn| notifications::find_preferences(conn, user_id).boxed()).await?;
        Ok(Response::new(preferences_to_pb(found.unwrap_or_else(|| default_preferences(user_id)), None)))
    }

    async fn update_notification_preferences(
        &self,
        request: Request<pb::UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<pb::NotificationPreferences>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.into_inner();
        let given = request.preferences.unwrap_or_default();
        let mut paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() && !request.rotate_webhook_secret {
            paths = ["webhook_min_priority", "webhook_url", "muted_categories"].map(str::to_owned).to_vec();
        }
        let mut violations = Violations::new();
        let mut change = PreferenceChange::default();
        for path in &paths {
            match path.as_str() {
                "webhook_min_priority" => {
                    change.min_priority = priority_from_pb(given.webhook_min_priority);
                    violations.check(
                        change.min_priority.is_some(),
                        "preferences.webhook_min_priority",
                        "must be a priority (not PRIORITY_UNSPECIFIED)",
                    );
                }
                "webhook_url" if given.webhook_url.trim().is_empty() => change.url = Some(None),
                "webhook_url" => match domain::webhook_url(&given.webhook_url) {
                    Ok(url) => change.url = Some(Some(url)),
                    Err(why) => violations.add("preferences.webhook_url", why),
                },
                "muted_categories" => {
                    let mut muted: Vec<String> = Vec::new();
                    for (i, value) in given.muted_categories.iter().enumerate() {
                        match category_from_pb(*value) {
                            Some(category) if !muted.contains(&category.as_str().to_owned()) => {
                                muted.push(category.as_str().to_owned());
                            }
                            Some(_) => violations
                                .add(format!("preferences.muted_categories[{i}]"), "must not repeat a category"),
                            None => violations.add(format!("preferences.muted_categories[{i}]"), "must be a category"),
                        }
                    }
                    change.muted = Some(muted);
                }
                other => violations.add("update_mask", format!("{other}: not a field that can be updated")),
            }
        }
        if let Some(Some(url)) = &change.url {
            violations.check(
                self.settings.allow_private_webhooks || !domain::names_a_private_host(url),
                "preferences.webhook_url",
                "must point at a public address, not a loopback, private or other special-purpose one",
            );
        }
        violations.into_result(())?;
        // Drawn up front (the transaction may run more than once); used only when needed.
        let candidate = domain::new_signing_secret().map_err(NotificationError::from)?;
        let rotate = request.rotate_webhook_secret;
        let change = Arc::new(change);
        let (stored, new_secret) = self
            .database
            .transaction(|conn| {
                let (change, candidate) = (change.clone(), candidate.clone());
                async move {
                    let current = notifications::find_preferences(conn, user_id)
                        .await?
                        .unwrap_or_else(|| default_preferences(user_id));
                    // A webhook gets a signing secret when it is first set, and a new one on request.
                    let needs_secret = rotate
                        || (current.webhook_secret.is_none() && change.url.as_ref().is_some_and(Option::is_some));
                    let new_secret = needs_secret.then_some(candidate);
                    let updated = Preferences {
                        webhook_min_priority: change.min_priority.unwrap_or(current.webhook_min_priority),
                        webhook_url: change.url.clone().unwrap_or(current.webhook_url.clone()),
                        muted_categories: change.muted.clone().unwrap_or(current.muted_categories.clone()),
                        webhook_secret: new_secret.clone().or(current.webhook_secret.clone()),
                        ..current
                    };
                    Ok((notifications::put_preferences(conn, &updated).await?, new_secret))
                }
                .boxed()
            })
            .await
            .map_err(NotificationError::from)?;
        Ok(Response::new(preferences_to_pb(stored, new_secret)))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(request.page_size, &request.page_token, 50, 100, &mut violations);
        let notification_id = (!request.notification_id.is_empty())
            .then(|| violations.uuid(&request.notification_id, "notification_id"))
            .flatten();
        violations.into_result(())?;
        let (page, attempts) = self
            .read(|conn| {
                async move {
                    let page = notifications::list_deliveries(conn, user_id, notification_id, page).await?;
                    let ids: Vec<Uuid> = page.items.iter().map(|d| d.id).collect();
                    let attempts = notifications::list_delivery_attempts(conn, &ids).await?;
                    Ok((page, attempts))
                }
                .boxed()
            })
            .await?;
        let deliveries = page
            .items
            .into_iter()
            .map(|delivery| {
                let own = attempts.iter().filter(|a| a.delivery_id == delivery.id).cloned().collect();
                delivery_to_pb(delivery, own)
            })
            .collect();
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries,
            next_page_token: paging::next_page_token(page.next),
        }))
    }
}

/// What an update of preferences changes (`None`: left as it is).
#[derive(Debug, Default, Clone)]
struct PreferenceChange {
    min_priority: Option<Priority>,
    url: Option<Option<String>>,
    muted: Option<Vec<String>>,
}

#[tonic::async_trait]
impl NotificationInternalService for NotificationApi {
    async fn send_notification(
        &self,
        request: Request<pb::SendNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let user_id = violations.uuid(&request.user_id, "user_id");
        let category = category_from_pb(request.category);
        violations.check(category.is_some(), "category", "must be a category (not NOTIFICATION_CATEGORY_UNSPECIFIED)");
        let priority = priority_from_pb(request.priority);
        violations.check(priority.is_some(), "priority", "must be a priority (not PRIORITY_UNSPECIFIED)");
        let title = text(request.title.trim(), "title", 1..=120, &mut violations);
        let body = text(&request.body, "body", 0..=4000, &mut violations);
        let key = IdempotencyKey::parse(&request.idempotency_key, "idempotency_key", &mut violations)
            .map(IdempotencyKey::into_string)
            .unwrap_or_default();
        violations.check(request.links.len() <= 10, "links", "must hold at most 10 links");
        let links: Vec<Link> = request
            .links
            .iter()
            .enumerate()
            .filter_map(|(i, link)| link_from_pb(link, &format!("links[{i}]"), &mut violations))
            .collect();
        let (user_id, category, priority) = violations.into_result((user_id, category, priority))?;
        let notification = Notification {
            id: Uuid::new_v4(),
            user_id: user_id.unwrap_or_default(),
            category: category.expect("checked"),
            priority: priority.expect("checked"),
            title,
            body,
            idempotency_key: key,
            created_at: Utc::now(),
            read_at: None,
            links: serde_json::Value::Array(links.into_iter().map(Link::to_json).collect()),
        };
        let (stored, delivery) = self
            .database
            .transaction(|conn| {
                let notification = notification.clone();
                async move {
                    let (stored, created) = notifications::insert_notification(conn, &notification).await?;
                    if !created {
                        return Ok((stored, None));
                    }
                    let preferences = notifications::find_preferences(conn, stored.user_id).await?;
                    let url = preferences.filter(|p| {
                        domain::wants_webhook(
                            stored.priority,
                            stored.category,
                            p.webhook_min_priority,
                            &p.muted_categories,
                        )
                    });
                    let delivery = match url.and_then(|p| p.webhook_url) {
                        Some(url) => Some(
                            notifications::insert_delivery(
                                conn,
                                Uuid::new_v4(),
                                DeliverySubject::Notification(stored.id),
                                &url,
                            )
                            .await?,
                        ),
                        None => None,
                    };
                    Ok((stored, delivery))
                }
                .boxed()
            })
            .await
            .map_err(NotificationError::from)?;
        if let Some(delivery) = delivery {
            tracing::info!(notification_id = %stored.id, delivery_id = %delivery.id, "webhook delivery scheduled");
            self.wake.notify_one();
        }
        Ok(Response::new(notification_to_pb(stored)))
    }

    async fn raise_system_alert(
        &self,
        request: Request<pb::RaiseSystemAlertRequest>,
    ) -> Result<Response<pb::SystemAlert>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let severity = severity_from_pb(request.severity);
        violations.check(severity.is_some(), "severity", "must be WARNING or CRITICAL");
        let source = text(request.source.trim(), "source", 1..=64, &mut violations);
        let message = text(&request.message, "message", 1..=4000, &mut violations);
        let correlation_id = text(&request.correlation_id, "correlation_id", 0..=128, &mut violations);
        let dedup_key = text(&request.dedup_key, "dedup_key", 1..=128, &mut violations);
        let severity = violations.into_result(severity)?.expect("checked");
        let alert = SystemAlert {
            id: Uuid::new_v4(),
            severity: severity.to_owned(),
            source,
            message,
            correlation_id,
            created_at: Utc::now(),
            dedup_key: Some(dedup_key),
        };
        let operator_url = self.settings.operator_webhook.as_ref().map(|hook| hook.url.clone());
        let (stored, created) = self
            .database
            .transaction(|conn| {
                let (alert, operator_url) = (alert.clone(), operator_url.clone());
                async move {
                    let (stored, created) = notifications::insert_system_alert(conn, &alert).await?;
                    if let (true, Some(url)) = (created, operator_url) {
                        notifications::insert_delivery(
                            conn,
                            Uuid::new_v4(),
                            DeliverySubject::SystemAlert(stored.id),
                            &url,
                        )
                        .await?;
                    }
                    Ok((stored, created))
                }
                .boxed()
            })
            .await
            .map_err(NotificationError::from)?;
        if created {
            tracing::error!(
                alert_id = %stored.id,
                severity = %stored.severity,
                source = %stored.source,
                correlation_id = %stored.correlation_id,
                message = %stored.message,
                "system alert raised"
            );
            self.wake.notify_one();
        }
        Ok(Response::new(alert_to_pb(stored)))
    }

    async fn list_system_alerts(
        &self,
        request: Request<pb::ListSystemAlertsRequest>,
    ) -> Result<Response<pb::ListSystemAlertsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(request.page_size, &request.page_token, 50, 100, &mut violations);
        let severities: Option<&'static [&'static str]> = match pb::SystemAlertSeverity::try_from(request.min_severity)
        {
            Ok(pb::SystemAlertSeverity::Unspecified | pb::SystemAlertSeverity::Warning) => None,
            Ok(pb::SystemAlertSeverity::Critical) => Some(&["critical"]),
            Err(_) => {
                violations.add("min_severity", "must be a severity");
                None
            }
        };
        violations.into_result(())?;
        let page = self.read(|conn| notifications::list_system_alerts(conn, severities, page).boxed()).await?;
        Ok(Response::new(pb::ListSystemAlertsResponse {
            alerts: page.items.into_iter().map(alert_to_pb).collect(),
            next_page_token: paging::next_page_token(page.next),
        }))
    }
}
