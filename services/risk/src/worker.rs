//! The risk worker: the hold reconciler and the alert notifier.
//!
//! The reconciler takes each placed hold past its expiry and asks trading whether the purchase
//! under its key settled: settled → committed; failed, or never begun (NOT_FOUND) → released;
//! still pending, or trading unreachable → left placed and asked again next round. A hold is
//! never released by the clock alone: releasing a settled purchase would let the user overspend.
//!
//! The notifier sends each alert's notification through notification's internal RPC, with the
//! alert's id as the idempotency key (so a notification sent twice is stored once). While
//! notification cannot be reached the alert stays due and is tried again with backoff.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{self as risk, AlertSeverity, Hold, RiskAlert};
use chrono::Utc;
use fastbreak_db::{Database, DatabaseError};
use fastbreak_mesh::{Draining, PeerChannel};
use fastbreak_proto::notification::v1 as notification;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::trading::v1 as trading;
use fastbreak_proto::trading::v1::trading_internal_service_client::TradingInternalServiceClient;
use futures::FutureExt;
use tokio::sync::Notify;

use crate::settings::Settings;

/// Holds reconciled, and alerts claimed, per round.
const BATCH: i64 = 100;

/// The longest pause between tries of an alert's notification.
const NOTIFY_RETRY_MAX: Duration = Duration::from_secs(300);

/// What a round of the reconciler did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Holds committed: their purchase settled.
    pub committed: usize,
    /// Holds released: their purchase failed or never began.
    pub released: usize,
    /// Holds left placed: still settling, or trading could not answer.
    pub left: usize,
}

/// The reconciler and the notifier, run in one loop.
#[derive(Debug, Clone)]
pub struct RiskWorker {
    database: Database,
    settings: Arc<Settings>,
    trading: Option<PeerChannel>,
    notification: Option<PeerChannel>,
    wake: Arc<Notify>,
}

enum Verdict {
    Commit,
    Release(String),
    Leave(String),
}

impl RiskWorker {
    /// A worker; without a trading peer expired holds stay placed, without a notification peer
    /// alerts stay due (both are logged).
    pub fn new(
        database: Database,
        settings: Arc<Settings>,
        trading: Option<PeerChannel>,
        notification: Option<PeerChannel>,
        wake: Arc<Notify>,
    ) -> Self {
        Self { database, settings, trading, notification, wake }
    }

    /// Runs rounds until draining begins.
    pub async fn run(self, mut draining: Draining) {
        loop {
            if let Err(error) = self.reconcile_once().await {
                tracing::warn!(%error, "hold reconciliation failed; trying again next round");
            }
            if let Err(error) = self.notify_once().await {
                tracing::warn!(%error, "alert notification round failed; trying again next round");
            }
            tokio::select! {
                stop = draining.sleep(self.settings.reconcile_interval) => if stop { return },
                () = self.wake.notified() => {}
            }
            if draining.is_draining() {
                return;
            }
        }
    }

    async fn verdict(&self, trading: &PeerChannel, hold: &Hold) -> Verdict {
        let mut client = TradingInternalServiceClient::new(trading.clone());
        let request = trading::GetTradeByIdempotencyKeyRequest {
            user_id: hold.user_id.to_string(),
            idempotency_key: hold.idempotency_key.clone(),
        };
        match client.get_trade_by_idempotency_key(request).await {
            Ok(trade) => match trade.get_ref().state() {
                trading::TradeState::Settled => Verdict::Commit,
                trading::TradeState::Failed => Verdict::Release(format!(
                    "the purchase failed: {}",
                    if trade.get_ref().failure_reason.is_empty() {
                        "no reason given"
                    } else {
                        &trade.get_ref().failure_reason
                    }
                )),
                other => Verdict::Leave(format!("the trade is {}", other.as_str_name())),
            },
            Err(status) if status.code() == tonic::Code::NotFound => {
                Verdict::Release("the purchase never began (reconciled after the hold expired)".to_owned())
            }
            Err(status) => Verdict::Leave(format!("trading could not answer: {}", status.message())),
        }
    }

    /// One round of the reconciler over expired holds.
    pub async fn reconcile_once(&self) -> Result<Reconciled, DatabaseError> {
        let now = Utc::now();
        let expired = self.database.read(|conn| risk::expired_holds(conn, now, BATCH).boxed()).await?;
        let mut done = Reconciled::default();
        if expired.is_empty() {
            return Ok(done);
        }
        let Some(trading) = &self.trading else {
            tracing::warn!(holds = expired.len(), "expired holds wait: no trading peer is configured to ask");
            done.left = expired.len();
            return Ok(done);
        };
        for hold in expired {
            match self.verdict(trading, &hold).await {
                Verdict::Commit => {
                    let after = self.database.read_committed(|conn| risk::commit_hold(conn, hold.id).boxed()).await?;
                    if after.state == risk::HoldState::Committed {
                        tracing::info!(hold_id = %hold.id, user_id = %hold.user_id, "expired hold committed: its purchase settled");
                        done.committed += 1;
                    } else {
                        tracing::error!(hold_id = %hold.id, user_id = %hold.user_id, state = after.state.as_str(), "a purchase settled on a hold that was not placed: limits may be broken");
                        done.left += 1;
                    }
                }
                Verdict::Release(reason) => {
                    self.database
                        .read_committed(|conn| {
                            let reason = reason.clone();
                            async move { risk::release_hold(conn, hold.id, &reason).await }.boxed()
                        })
                        .await?;
                    tracing::info!(hold_id = %hold.id, user_id = %hold.user_id, %reason, "expired hold released");
                    done.released += 1;
                }
                Verdict::Leave(why) => {
                    // Asked again later, so that holds still settling do not hold up the others.
                    let next = Utc::now()
                        + chrono::Duration::from_std(self.settings.reconcile_interval * 4)
                            .unwrap_or(chrono::Duration::seconds(20));
                    self.database.read_committed(|conn| risk::postpone_hold(conn, hold.id, next).boxed()).await?;
                    tracing::warn!(hold_id = %hold.id, user_id = %hold.user_id, %why, "expired hold left placed");
                    done.left += 1;
                }
            }
        }
        Ok(done)
    }

    async fn send(&self, channel: &PeerChannel, alert: &RiskAlert) -> Result<(), tonic::Status> {
        let (priority, title) = match alert.severity {
            AlertSeverity::Critical => (notification::Priority::Urgent, "Risk alert"),
            AlertSeverity::Warning => (notification::Priority::High, "Budget warning"),
            AlertSeverity::Info => (notification::Priority::Normal, "Budget notice"),
        };
        let request = notification::SendNotificationRequest {
            user_id: alert.user_id.to_string(),
            category: notification::NotificationCategory::Risk as i32,
            priority: priority as i32,
            title: title.to_owned(),
            body: alert.message.clone(),
            idempotency_key: format!("risk-alert:{}", alert.id),
            links: vec![notification::NotificationLink {
                target: Some(notification::notification_link::Target::RiskAlertId(alert.id.to_string())),
            }],
        };
        NotificationInternalServiceClient::new(channel.clone()).send_notification(request).await.map(drop)
    }

    /// One round of the notifier; returns how many notifications were sent.
    pub async fn notify_once(&self) -> Result<usize, DatabaseError> {
        let Some(channel) = &self.notification else { return Ok(0) };
        let lease = chrono::Duration::from_std(self.settings.call_timeout * 2).unwrap_or(chrono::Duration::seconds(10));
        let claimed = self
            .database
            .transaction(|conn| risk::claim_alerts_to_notify(conn, Utc::now(), lease, BATCH).boxed())
            .await?;
        let mut sent = 0;
        for alert in claimed {
            match self.send(channel, &alert).await {
                Ok(()) => {
                    self.database.transaction(|conn| risk::mark_alert_notified(conn, alert.id).boxed()).await?;
                    sent += 1;
                }
                Err(status) => {
                    let attempts = u32::try_from(alert.notify_attempts.saturating_sub(1)).unwrap_or(1);
                    let pause = self
                        .settings
                        .notify_retry_min
                        .saturating_mul(2u32.saturating_pow(attempts.min(16)))
                        .min(NOTIFY_RETRY_MAX);
                    let at = Utc::now() + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::seconds(1));
                    self.database
                        .transaction(|conn| risk::postpone_alert_notification(conn, alert.id, at).boxed())
                        .await?;
                    tracing::warn!(alert_id = %alert.id, code = ?status.code(), message = status.message(), retry_in_ms = pause.as_millis() as u64, "alert notification not sent; kept for later");
                }
            }
        }
        Ok(sent)
    }
}
