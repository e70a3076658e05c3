//! Delivery of what a trade announces: a settled purchase's hold committed, a failed one's
//! released, the notification sent (with its wording) and the strategy's outcome recorded —
//! at once by the request where it can, else by the worker from the outbox.

use crate::store::{Trade, TradeKind};
use fastbreak_db::outbox;

use fastbreak_proto::notification::v1 as notification;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::risk::v1 as risk;
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::strategy::v1::strategy_internal_service_client::StrategyInternalServiceClient;
use futures::FutureExt;
use tonic::{Code, Status};
use uuid::Uuid;

use crate::trader::{COMMIT_HOLD, Message, NOTIFY, RELEASE_HOLD, STRATEGY_OUTCOME, Trader, fail_point};

impl Trader {
    /// After settlement: commits the hold and lists an arbitrage's moment now when the peers
    /// answer (the outbox and the worker do it otherwise).
    pub(crate) async fn deliver_now(&self, trade: Trade) -> Result<Trade, Status> {
        fail_point!(self, "trading::before-commit");
        if let Some(hold_id) = trade.hold_id {
            let message = Message::new(trade.id, Some(hold_id), String::new());
            if self.deliver(COMMIT_HOLD, &message).await.is_ok() {
                let key = trade.id.to_string();
                let marked = self
                    .database
                    .autocommit(move |conn| {
                        async move { outbox::mark_delivered_by_key(conn, COMMIT_HOLD, &key).await }.boxed()
                    })
                    .await;
                if let Err(error) = marked {
                    tracing::warn!(%error, trade = %trade.id, "the hold's commit is delivered again later");
                }
            }
        }
        if !trade.relist_source_id.is_empty() {
            let relisted = match self.relist_of(&trade).await {
                Ok(Some(relist)) => self.finish_listing(relist).await.map(|_| ()),
                Ok(None) => Ok(()),
                Err(status) => Err(status),
            };
            if let Err(status) = relisted {
                tracing::warn!(trade = %trade.id, error = %status.message(), "the relist is left to the worker");
            }
        }
        Ok(trade)
    }

    pub(crate) async fn release_now(&self, trade_id: Uuid, hold_id: Uuid, reason: &str) {
        let message = Message::new(trade_id, Some(hold_id), reason.to_owned());
        if self.deliver(RELEASE_HOLD, &message).await.is_ok() {
            let key = trade_id.to_string();
            let _ = self
                .database
                .autocommit(move |conn| {
                    async move { outbox::mark_delivered_by_key(conn, RELEASE_HOLD, &key).await }.boxed()
                })
                .await;
        }
    }

    /// Delivers one outbox message to its peer.
    pub(crate) async fn deliver(&self, topic: &str, message: &Message) -> Result<(), Status> {
        match topic {
            COMMIT_HOLD | RELEASE_HOLD => {
                let hold_id = message.hold_id.map(|h| h.to_string()).unwrap_or_default();
                let mut client = RiskInternalServiceClient::new(self.peers.risk.channel()?);
                let result = if topic == COMMIT_HOLD {
                    client.commit_hold(self.request(risk::CommitHoldRequest { hold_id })).await
                } else {
                    let mut reason = message.reason.clone();
                    reason.truncate(400);
                    client.release_hold(self.request(risk::ReleaseHoldRequest { hold_id, reason })).await
                };
                result.map(|_| ())
            }
            NOTIFY => {
                let trade = self.current(message.trade_id).await?;
                let mut client = NotificationInternalServiceClient::new(self.peers.notification.channel()?);
                let (category, title) = match trade.kind {
                    TradeKind::Sale => (notification::NotificationCategory::Sale, "Moment sold"),
                    _ => (notification::NotificationCategory::Purchase, "Moment bought"),
                };
                let dollars = fastbreak_mesh::money::dollars;
                let body = match trade.kind {
                    TradeKind::Sale => format!(
                        "Sold moment {} for {} ({} after the fee, {} over its cost).",
                        trade.moment_id,
                        dollars(trade.price_cents),
                        dollars(trade.price_cents - trade.fee_cents),
                        dollars(trade.realized_pnl_cents)
                    ),
                    _ => format!(
                        "Bought moment {} for {}. {}",
                        trade.moment_id,
                        dollars(trade.price_cents),
                        trade.reasoning.first().cloned().unwrap_or_default()
                    ),
                };
                let link = |target| notification::NotificationLink { target: Some(target) };
                let mut links = vec![
                    link(notification::notification_link::Target::TradeId(trade.id.to_string())),
                    link(notification::notification_link::Target::MomentId(trade.moment_id.to_string())),
                ];
                if let Some(strategy) = trade.strategy_id {
                    links.push(link(notification::notification_link::Target::StrategyId(strategy.to_string())));
                }
                let request = self.request(notification::SendNotificationRequest {
                    user_id: trade.user_id.to_string(),
                    category: category.into(),
                    priority: notification::Priority::Normal.into(),
                    title: title.to_owned(),
                    body,
                    idempotency_key: format!("trade:{}", trade.id),
                    links,
                });
                client.send_notification(request).await.map(|_| ())
            }
            STRATEGY_OUTCOME => {
                let trade = self.current(message.trade_id).await?;
                let Some(strategy_id) = trade.strategy_id else { return Ok(()) };
                let mut client = StrategyInternalServiceClient::new(self.peers.strategy.channel()?);
                // A purchase spends its price; a sale brings in its price less the fee, and
                // realises its profit or loss on the moment's cost.
                let (spent_cents, proceeds_cents, realized_pnl_cents) = match trade.kind {
                    TradeKind::Sale => (0, trade.price_cents - trade.fee_cents, trade.realized_pnl_cents),
                    _ => (trade.price_cents, 0, 0),
                };
                let request = self.request(strategy::RecordStrategyOutcomeRequest {
                    strategy_id: strategy_id.to_string(),
                    trade_id: trade.id.to_string(),
                    spent_cents,
                    proceeds_cents,
                    realized_pnl_cents,
                    moment_id: trade.moment_id.to_string(),
                    occur_time: Some(fastbreak_mesh::status::timestamp(trade.settled_at.unwrap_or(trade.created_at))),
                });
                match client.record_strategy_outcome(request).await {
                    Ok(_) => Ok(()),
                    // A strategy deleted since: nothing to record it on.
                    Err(status) if status.code() == Code::NotFound => Ok(()),
                    Err(status) => Err(status),
                }
            }
            other => Err(Status::internal(format!("unknown outbox topic {other}"))),
        }
    }
}
