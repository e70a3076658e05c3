//! A strategy's protections where the engine meets them: at the instant a purchase was chosen,
//! the pauses after losses (read from the strategy's outcomes), the user told once per trip;
//! purchases that wait for the user's approval, with their notification; and the approval,
//! the decline and the expiry that end the wait.

use chrono::{DateTime, Duration, Utc};
use fastbreak_db::OrStatus as _;
use fastbreak_mesh::money::dollars;
use fastbreak_mesh::status;
use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::notification::v1 as notification;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::strategy::v1::strategy_internal_service_client::StrategyInternalServiceClient;
use fastbreak_proto::trading::v1 as trading;
use futures::FutureExt;
use tonic::Status;
use uuid::Uuid;

use crate::domain::protections::{self, MANUAL_APPROVAL, Outcome, Pause, clock};
use crate::domain::{self, Factor, skip};
use crate::engine::{Book, Engine, bought, purchase_request};
use crate::store::{self as repo, Decision, DecisionOutcome};

/// FAILED_PRECONDITION: the decision is not in a state the call can act on.
fn invalid_state(message: impl Into<String>) -> Status {
    status::failed_precondition(message, fastbreak_proto::common::v1::ErrorReason::InvalidState, [])
}

impl Engine {
    /// The pause that holds at `now` for the strategy buying `player`'s moment, judged from its
    /// outcomes; `None` when none holds (or it has no pauses after losses).
    pub(crate) async fn pause(
        &self,
        strategy: &strategy::Strategy,
        player: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Pause>, Status> {
        let guard = strategy.protections.as_ref();
        let Some(lookback) = protections::lookback(guard) else { return Ok(None) };
        let mut listed = Vec::new();
        let mut token = String::new();
        loop {
            let request = strategy::ListStrategyOutcomesRequest {
                strategy_id: strategy.strategy_id.clone(),
                since: Some(status::timestamp(now - lookback)),
                page_size: 1000,
                page_token: token.clone(),
            };
            let page = self
                .retried(|| {
                    let request = self.request(request.clone());
                    async move {
                        let mut client = StrategyInternalServiceClient::new(self.peers.strategy.channel()?);
                        client.list_strategy_outcomes(request).await.map(|r| r.into_inner())
                    }
                })
                .await?;
            listed.extend(page.outcomes);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        // A per-player cooldown needs the players of the losing moments.
        let players = if protections::needs_players(guard) {
            // Only the losses the cooldown still looks at.
            let cooldown = guard.and_then(|g| g.cooldown_after_loss).map_or(0, |c| i64::from(c.minutes));
            let from = status::timestamp(now - Duration::minutes(cooldown));
            let mut ids: Vec<String> = listed
                .iter()
                .filter(|o| o.realized_pnl_cents < 0 && !o.moment_id.is_empty())
                .filter(|o| o.occur_time.is_none_or(|t| (t.seconds, t.nanos) >= (from.seconds, from.nanos)))
                .map(|o| o.moment_id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            self.moments(ids).await?
        } else {
            Vec::new()
        };
        let outcomes: Vec<Outcome> = listed
            .iter()
            .map(|o| Outcome {
                player_id: players.iter().find(|m| m.moment_id == o.moment_id).map(|m| m.player_id.clone()),
                pnl_cents: o.realized_pnl_cents,
                at: o
                    .occur_time
                    .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
                    .unwrap_or(now),
            })
            .collect();
        let rules = strategy.rules.unwrap_or_default();
        Ok(protections::paused(guard, &rules, &strategy.display_name, &outcomes, player, now))
    }

    /// Moments by id (unknown ones left out), a thousand at a time.
    async fn moments(&self, ids: Vec<String>) -> Result<Vec<market::Moment>, Status> {
        let mut found = Vec::new();
        for chunk in ids.chunks(1000) {
            let moments = self
                .retried(|| {
                    let request = self.request(market::BatchGetMomentsRequest { moment_ids: chunk.to_vec() });
                    async move {
                        let mut client = MarketplaceServiceClient::new(self.peers.marketplace.channel()?);
                        client.batch_get_moments(request).await.map(|r| r.into_inner().moments)
                    }
                })
                .await?;
            found.extend(moments);
        }
        Ok(found)
    }

    /// Tells the user that a protection paused a strategy: once per trip.
    async fn tell_paused(&self, strategy: &strategy::Strategy, user: Uuid, pause: &Pause) {
        let body = pause.sentence.trim_start_matches("Skipped: ").to_owned()
            + " It resumes by itself then, or when you reset the strategy's protections.";
        let key = format!("protection:{}:{}:{}", strategy.strategy_id, pause.rule, pause.until.timestamp());
        let links = vec![notification::notification_link::Target::StrategyId(strategy.strategy_id.clone())];
        self.notify(
            user,
            notification::NotificationCategory::Strategy,
            "A strategy paused by its protections",
            body,
            key,
            links,
        )
        .await;
    }

    /// Tells the users of decisions that wait for approval (once each, after they are stored).
    pub(crate) async fn tell_awaiting(&self, decisions: &[Decision]) {
        for decision in decisions.iter().filter(|d| d.outcome == DecisionOutcome::AwaitingApproval) {
            use notification::notification_link::Target;
            let until = decision.approval_expires_at.map(clock).unwrap_or_default();
            let chosen = decision.reasons.get(1).cloned().unwrap_or_default();
            let body = format!(
                "A purchase of moment {} for {} waits for your approval until {until}: {chosen} Approve or decline \
                 decision {}; without an answer it expires.",
                decision.moment_id,
                dollars(decision.price_cents),
                decision.id
            );
            let links = vec![
                Target::DecisionId(decision.id.to_string()),
                Target::MomentId(decision.moment_id.to_string()),
                Target::StrategyId(decision.strategy_id.to_string()),
            ];
            let key = format!("approval:{}", decision.id);
            self.notify(
                decision.user_id,
                notification::NotificationCategory::Strategy,
                "A purchase waits for your approval",
                body,
                key,
                links,
            )
            .await;
        }
    }

    /// Sends a user a notification, once per key. Best effort: a failure is only logged.
    pub(crate) async fn notify(
        &self,
        user: Uuid,
        category: notification::NotificationCategory,
        title: &str,
        body: String,
        key: String,
        links: Vec<notification::notification_link::Target>,
    ) {
        let Ok(channel) = self.peers.notification.channel() else { return };
        let mut client = NotificationInternalServiceClient::new(channel);
        let sent = client
            .send_notification(self.request(notification::SendNotificationRequest {
                user_id: user.to_string(),
                category: category.into(),
                priority: notification::Priority::High.into(),
                title: title.to_owned(),
                body,
                idempotency_key: key,
                links:
                    links.into_iter().map(|target| notification::NotificationLink { target: Some(target) }).collect(),
            }))
            .await;
        if let Err(status) = sent {
            tracing::warn!(error = %status.message(), "a notification could not be sent");
        }
    }

    /// A user's decision that waits for approval, or why it cannot be acted on.
    async fn waiting(&self, user: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<Result<Decision, Decision>, Status> {
        let found = self
            .database
            .read(move |conn| async move { repo::find_decision(conn, user, id).await }.boxed())
            .await
            .or_status()?
            .ok_or_else(|| status::not_found("decision"))?;
        match found.outcome {
            DecisionOutcome::AwaitingApproval => {}
            // Already bought on approval: the same answer again.
            DecisionOutcome::Buy => return Ok(Err(found)),
            _ if found.approval_expires_at.is_some() => {
                return Err(invalid_state(format!(
                    "the purchase no longer waits for approval: {}",
                    found.reasons.first().cloned().unwrap_or_default()
                )));
            }
            _ => {
                return Err(invalid_state("the decision did not wait for approval"));
            }
        }
        if found.approval_expires_at.is_none_or(|until| until <= now) {
            self.expire(now).await?;
            return Err(invalid_state(format!(
                "the purchase waited for approval until {} and expired",
                found.approval_expires_at.map(clock).unwrap_or_default()
            )));
        }
        Ok(Ok(found))
    }

    /// Approves a purchase that waits: bought now at most at its price, unless the strategy's
    /// daily cap or a protection stops it, or trading refuses it. The decision is claimed first,
    /// so that a decline or the expiry cannot end it meanwhile; when the strategy or trading
    /// cannot be reached, it is given back to its wait (the error says so).
    pub(crate) async fn approve(&self, user: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<Decision, Status> {
        if let Err(bought) = self.waiting(user, id, now).await? {
            return Ok(bought);
        }
        let indexed = self.indexed().await?;
        let claimed = self
            .read_committed(move |conn| async move { repo::claim_approval(conn, user, id, now).await }.boxed())
            .await?;
        let Some(waiting) = claimed else {
            // Answered, declined or expired meanwhile, or being approved by another call.
            return match self.waiting(user, id, now).await? {
                Err(bought) => Ok(bought),
                Ok(_) => Err(status::dependency_unavailable("agents", std::time::Duration::from_secs(1))),
            };
        };
        let ended = match self.approved(user, &waiting, &indexed, now).await {
            Ok(ended) => ended,
            Err(error) => {
                let release = self
                    .read_committed(move |conn| async move { repo::release_approval(conn, id).await }.boxed())
                    .await;
                if let Err(status) = release {
                    tracing::warn!(error = %status.message(), "a claimed approval could not be given back");
                }
                return Err(error);
            }
        };
        self.end_wait(ended, true).await
    }

    /// What a claimed approval ends in; an error when it could not be acted on.
    async fn approved(
        &self,
        user: Uuid,
        waiting: &Decision,
        indexed: &crate::index::Indexed,
        now: DateTime<Utc>,
    ) -> Result<Decision, Status> {
        let strategy_id = waiting.strategy_id.to_string();
        let Some(strategy) = indexed.strategies.iter().find(|s| s.strategy_id == strategy_id) else {
            return Err(invalid_state("its strategy is paused or deleted: activate it to approve the purchase"));
        };
        // What was decided, without the sentence that it waits.
        let mut decision = waiting.clone();
        decision.reasons.remove(0);
        decision.outcome = DecisionOutcome::Skip;
        let rules = strategy.rules.unwrap_or_default();
        let midnight = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let bought_today = self.bought_since(waiting.strategy_id, midnight).await?;
        if let Some(cap) = domain::daily_cap(&rules, &strategy.display_name, bought_today) {
            return Ok(cap.decide(decision));
        }
        // The protections as they are now: a block or a pause added since the purchase was chosen.
        let guard = strategy.protections.as_ref();
        let moment = self.moments(vec![waiting.moment_id.to_string()]).await?.pop();
        if let Some(blocked) = protections::blocked(guard, moment.as_ref(), &strategy.display_name) {
            return Ok(blocked.decide(decision));
        }
        let player = moment.as_ref().map(|m| m.player_id.as_str());
        if let Some(pause) = self.pause(strategy, player, now).await? {
            self.tell_paused(strategy, user, &pause).await;
            return Ok(pause.skip().decide(decision));
        }
        let factors: Vec<Factor> = serde_json::from_value(waiting.factors.clone()).unwrap_or_default();
        let request = purchase_request(strategy, user, &decision, &factors);
        let sentence = format!("Bought on your approval at {}.", clock(now));
        bought(decision, self.execute(request).await, sentence)
    }

    /// Declines a purchase that waits.
    pub(crate) async fn decline(&self, user: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<Decision, Status> {
        let waiting = match self.waiting(user, id, now).await? {
            Ok(waiting) => waiting,
            Err(bought) if bought.approval_expires_at.is_some() => {
                return Err(invalid_state("the purchase was approved and made already"));
            }
            Err(_) => return Err(invalid_state("the decision did not wait for approval")),
        };
        let mut decision = waiting;
        decision.reasons.remove(0);
        decision.outcome = DecisionOutcome::Skip;
        let ended = skip(
            decision,
            pb::DecisionReason::Declined,
            MANUAL_APPROVAL,
            format!("Declined by you at {}.", clock(now)),
        );
        let stored = self.end_wait(ended, false).await?;
        if stored.outcome == DecisionOutcome::AwaitingApproval {
            return Err(invalid_state("the purchase is being approved right now"));
        }
        Ok(stored)
    }

    /// Stores how a wait ended (`claimed`: by its approval); when it ended otherwise meanwhile,
    /// that is the answer.
    async fn end_wait(&self, ended: Decision, claimed: bool) -> Result<Decision, Status> {
        let (user, id) = (ended.user_id, ended.id);
        let stored = self
            .read_committed(move |conn| {
                let ended = ended.clone();
                async move {
                    match repo::end_approval(conn, &ended, claimed).await? {
                        Some(stored) => Ok(Some(stored)),
                        None => repo::find_decision(conn, user, id).await,
                    }
                }
                .boxed()
            })
            .await?;
        stored.ok_or_else(|| status::not_found("decision"))
    }

    /// Expires the purchases whose approval did not come by `now`; how many.
    pub(crate) async fn expire(&self, now: DateTime<Utc>) -> Result<usize, Status> {
        let expired =
            self.read_committed(move |conn| async move { repo::expire_approvals(conn, now).await }.boxed()).await?;
        for decision in &expired {
            tracing::info!(decision_id = %decision.id, user_id = %decision.user_id, "a purchase waiting for approval expired");
        }
        Ok(expired.len())
    }
}

/// The live book: protections read from the strategy's outcomes (the user told of a pause),
/// purchases through trading.
impl Book for Engine {
    /// Now: a listing judged late is put to the user when it is decided, with the whole time
    /// limit to approve it.
    fn asked_at(&self, _judged: DateTime<Utc>) -> DateTime<Utc> {
        Utc::now()
    }

    /// The decision skipped when the strategy's protections stop a chosen purchase now: a
    /// pause that holds (the user told once per trip), or protections that could not be read
    /// (then nothing is bought, and the decision says why). `None` when the purchase may go on.
    async fn stopped(
        &self,
        strategy: &strategy::Strategy,
        user: Uuid,
        player: Option<&str>,
        decision: &Decision,
        judged: DateTime<Utc>,
    ) -> Option<Decision> {
        // At the instant the purchase would be made: a pause in force now stops it, however
        // long before its listing event was judged.
        match self.pause(strategy, player, Utc::now().max(judged)).await {
            Ok(None) => None,
            Ok(Some(pause)) => {
                self.tell_paused(strategy, user, &pause).await;
                Some(pause.skip().decide(decision.clone()))
            }
            Err(status) => {
                let mut decision = decision.clone();
                decision.data_incomplete = true;
                Some(skip(
                    decision,
                    pb::DecisionReason::ServiceUnavailable,
                    "protections",
                    format!(
                        "Skipped: the strategy's protections could not be checked, so nothing was bought: {}",
                        status.message()
                    ),
                ))
            }
        }
    }

    async fn buy(&self, request: trading::ExecutePurchaseRequest) -> Result<trading::Trade, Status> {
        self.execute(request).await
    }
}
