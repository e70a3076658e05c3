//! The webhook delivery worker. It claims due deliveries with a lease in the database (rows
//! locked by another worker are skipped; a dead worker's lease expires and its deliveries are
//! taken over), POSTs each one signed, and records the attempt: delivered, retried later with
//! backoff, or given up after the configured number of tries. Only the holder of a lease can
//! record an attempt, so one delivery is never recorded twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::{self as notifications, AttemptOutcome, Delivery, DeliveryAttempt};
use chrono::Utc;
use fastbreak_db::{Database, DatabaseError};
use fastbreak_mesh::Draining;
use fastbreak_mesh::status::timestamp;
use futures::{FutureExt, StreamExt};
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{self, Link};
use crate::settings::Settings;

/// How many deliveries one worker claims at a time; all of them are sent at once, so that none
/// waits in the worker while its lease runs.
const BATCH: i64 = 8;

/// One worker; several may run (in one process or many) on one database.
#[derive(Debug, Clone)]
pub struct DeliveryWorker {
    id: Uuid,
    database: Database,
    settings: Arc<Settings>,
    wake: Arc<Notify>,
    /// For users' webhooks: public addresses only (unless configured otherwise).
    users_client: reqwest::Client,
    /// For the operator webhook, which operators configure and may be internal.
    operator_client: reqwest::Client,
}

/// How an attempt went.
struct Answer {
    /// The HTTP status, 0 when none came.
    http_status: i32,
    /// What went wrong, empty on a 2xx.
    error: String,
    /// True when trying again cannot help.
    permanent: bool,
}

impl Answer {
    fn refused(why: &str) -> Self {
        Self { http_status: 0, error: why.to_owned(), permanent: true }
    }
}

/// What a delivery carries, ready to POST.
struct Payload {
    body: Vec<u8>,
    secret: Option<String>,
}

impl DeliveryWorker {
    /// A worker with an id of its own, woken early by `wake`.
    pub fn new(database: Database, settings: Settings, wake: Arc<Notify>) -> Self {
        let users_client = domain::users_webhook_client(settings.request_timeout, !settings.allow_private_webhooks)
            .expect("a client with a timeout and no redirects builds");
        let operator_client = domain::operator_webhook_client(settings.request_timeout)
            .expect("a client with a timeout and no redirects builds");
        Self { id: Uuid::new_v4(), database, settings: Arc::new(settings), wake, users_client, operator_client }
    }

    /// Delivers until the server drains: a batch at a time, waking at once when there may be
    /// more, when the API wrote a delivery, or every poll interval.
    pub async fn run(self, mut draining: Draining) {
        tracing::info!(worker = %self.id, "webhook delivery worker running");
        while !draining.is_draining() {
            let pause = match self.deliver_due().await {
                Ok(done) if done as i64 >= BATCH => continue,
                Ok(_) => self.settings.poll_interval,
                Err(error) => {
                    tracing::warn!(worker = %self.id, %error, "cannot claim deliveries; trying again");
                    self.settings.poll_interval.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
                () = draining.wait() => {}
            }
        }
        tracing::info!(worker = %self.id, "webhook delivery worker stopped");
    }

    /// Claims the deliveries due now, for this worker's lease.
    pub async fn claim(&self) -> Result<Vec<Delivery>, DatabaseError> {
        let (owner, lease) =
            (self.id, chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::seconds(30)));
        self.database
            .transaction(|conn| notifications::claim_due_deliveries(conn, owner, Utc::now(), lease, BATCH).boxed())
            .await
    }

    /// Claims and attempts one batch; returns how many deliveries it attempted.
    pub async fn deliver_due(&self) -> Result<usize, DatabaseError> {
        let claimed = self.claim().await?;
        let count = claimed.len();
        futures::stream::iter(claimed).for_each_concurrent(BATCH as usize, |delivery| self.attempt(delivery)).await;
        Ok(count)
    }

    async fn payload(&self, delivery: &Delivery) -> Result<Option<Payload>, DatabaseError> {
        if let Some(id) = delivery.notification_id {
            let found = self
                .database
                .read(|conn| {
                    async move {
                        let Some(notification) = notifications::find_notification(conn, id).await? else {
                            return Ok(None);
                        };
                        let preferences = notifications::find_preferences(conn, notification.user_id).await?;
                        Ok(Some((notification, preferences.and_then(|p| p.webhook_secret))))
                    }
                    .boxed()
                })
                .await?;
            return Ok(found.map(|(n, secret)| {
                let links: Vec<serde_json::Value> = Link::from_json(&n.links).into_iter().map(Link::to_json).collect();
                let body = json!({
                    "type": "notification",
                    "delivery_id": delivery.id.to_string(),
                    "notification": {
                        "notification_id": n.id.to_string(),
                        "user_id": n.user_id.to_string(),
                        "category": n.category.as_str(),
                        "priority": n.priority.as_str(),
                        "title": n.title,
                        "body": n.body,
                        "create_time": timestamp(n.created_at).to_string(),
                        "links": links,
                    }
                });
                Payload { body: body.to_string().into_bytes(), secret }
            }));
        }
        let Some(id) = delivery.system_alert_id else { return Ok(None) };
        let alert = self.database.read(|conn| notifications::find_system_alert(conn, id).boxed()).await?;
        let secret = self.settings.operator_webhook.as_ref().map(|hook| hook.secret.expose().clone());
        Ok(alert.map(|a| {
            let body = json!({
                "type": "system_alert",
                "delivery_id": delivery.id.to_string(),
                "alert": {
                    "alert_id": a.id.to_string(),
                    "severity": a.severity,
                    "source": a.source,
                    "message": a.message,
                    "correlation_id": a.correlation_id,
                    "dedup_key": a.dedup_key,
                    "create_time": timestamp(a.created_at).to_string(),
                }
            });
            Payload { body: body.to_string().into_bytes(), secret }
        }))
    }

    /// POSTs one delivery and records the attempt.
    async fn attempt(&self, delivery: Delivery) {
        let number = delivery.attempt_count + 1;
        let started_at = Utc::now();
        let clock = Instant::now();
        let owner = self.id;
        let held =
            self.database.read(|conn| notifications::lease_held(conn, delivery.id, owner, Utc::now()).boxed()).await;
        if !matches!(held, Ok(true)) {
            tracing::warn!(delivery_id = %delivery.id, "lease lost before sending; another worker has the delivery");
            return;
        }
        let Answer { http_status, error, permanent } = match self.payload(&delivery).await {
            Ok(Some(payload)) => self.post(&delivery, number, payload).await,
            Ok(None) => Answer::refused("what it delivers no longer exists"),
            Err(error) => {
                // Nothing was sent: the lease runs out and the delivery is tried again.
                tracing::warn!(delivery_id = %delivery.id, %error, "cannot read what to deliver");
                return;
            }
        };
        let delivered = error.is_empty();
        let outcome = if delivered {
            AttemptOutcome::Delivered
        } else if number >= self.settings.max_attempts || permanent {
            AttemptOutcome::GaveUp
        } else {
            let delay = domain::retry_delay(number + 1, self.settings.retry_min, self.settings.retry_max);
            AttemptOutcome::RetryAt(
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(60)),
            )
        };
        let record = DeliveryAttempt {
            delivery_id: delivery.id,
            attempt: number,
            http_status,
            error: error.clone(),
            started_at,
            duration_ms: i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX),
        };
        let recorded = self
            .database
            .transaction(|conn| {
                let record = record.clone();
                async move { notifications::record_delivery_attempt(conn, owner, &record, outcome).await }.boxed()
            })
            .await;
        match recorded {
            Ok(Some(_)) => match outcome {
                AttemptOutcome::Delivered => {
                    tracing::info!(delivery_id = %delivery.id, attempt = number, "webhook delivered")
                }
                AttemptOutcome::RetryAt(at) => tracing::warn!(
                    delivery_id = %delivery.id, attempt = number, http_status, %error, retry_at = %at,
                    "webhook delivery failed; will retry"
                ),
                AttemptOutcome::GaveUp => tracing::error!(
                    delivery_id = %delivery.id, attempt = number, http_status, %error,
                    "webhook delivery failed for good"
                ),
            },
            Ok(None) => tracing::warn!(delivery_id = %delivery.id, "lease lost before the attempt was recorded"),
            Err(error) => tracing::warn!(delivery_id = %delivery.id, %error, "cannot record the attempt"),
        }
    }

    /// One POST.
    async fn post(&self, delivery: &Delivery, attempt: i32, payload: Payload) -> Answer {
        let for_user = delivery.notification_id.is_some();
        if for_user && !self.settings.allow_private_webhooks && domain::names_a_private_host(&delivery.url) {
            return Answer::refused(domain::NOT_PUBLIC);
        }
        let client = if for_user { &self.users_client } else { &self.operator_client };
        let sent_at = Utc::now().timestamp();
        let mut request = client
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(domain::DELIVERY_HEADER, delivery.id.to_string())
            .header("x-fastbreak-attempt", attempt.to_string())
            .header(domain::TIMESTAMP_HEADER, sent_at.to_string());
        if let Some(secret) = &payload.secret {
            request = request.header(domain::SIGNATURE_HEADER, domain::sign(secret, sent_at, &payload.body));
        }
        match request.body(payload.body).send().await {
            Ok(response) => {
                let status = response.status();
                let error = if status.is_success() { String::new() } else { format!("the webhook answered {status}") };
                Answer { http_status: i32::from(status.as_u16()), error, permanent: false }
            }
            Err(error) => {
                // Users see the reason only: the error names addresses and the system's words.
                let reason = domain::failure_reason(&error);
                let error = fastbreak_mesh::health::error_chain(&error);
                tracing::warn!(delivery_id = %delivery.id, attempt, reason, %error, "webhook POST got no answer");
                Answer { http_status: 0, error: reason.to_owned(), permanent: false }
            }
        }
    }
}
