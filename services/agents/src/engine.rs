//! The decision engine: for one listing, the active strategies it could match (asked of the
//! strategy service, filtered by player and rarity), scouting's valuation, and per strategy a
//! decision — skip with a reason code and the figures, or buy through trading with an
//! idempotency key derived from the user, the listing and its price (a replayed event never
//! buys twice). Competing strategies go by priority, highest first. Every decision is stored
//! with its reasons, the rule that decided, the valuation and its weighted factors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{self as repo, Decision, DecisionOutcome, RunTrigger};
use chrono::{DateTime, Utc};
use fastbreak_db::OrStatus as _;
use fastbreak_db::{Database, DatabaseError};
use fastbreak_mesh::RetryPolicy;

use crate::peers::AgentPeers;
use fastbreak_mesh::status::{is_answer, timestamp};
use fastbreak_mesh::{Peers, status};
use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::notification::v1 as notification;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::scouting::v1 as scouting;
use fastbreak_proto::scouting::v1::scouting_internal_service_client::ScoutingInternalServiceClient;
use fastbreak_proto::scouting::v1::scouting_service_client::ScoutingServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::strategy::v1::strategy_internal_service_client::StrategyInternalServiceClient;
use fastbreak_proto::trading::v1 as trading;
use fastbreak_proto::trading::v1::trading_internal_service_client::TradingInternalServiceClient;
use futures::FutureExt;
use tonic::{Code, Request, Status};
use uuid::Uuid;

use crate::domain::{self, FORM_GAMES, Factor, PlayerForm, reason_code, skip};
use crate::error;
use crate::index::{Indexed, StrategyIndex};
use crate::settings::Settings;

/// A listing to decide on.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub listing: market::Listing,
    pub moment: Option<market::Moment>,
    /// The listing event it came from, if one.
    pub sequence: Option<i64>,
    /// The game event whose run evaluates it, if one.
    pub trigger_event: Option<String>,
    /// Its valuation, when it was valued before (to rank it against others).
    pub valuation: Option<scouting::Valuation>,
    /// When its listing event happened: it is judged as the market stood then (its valuation
    /// and the player's form from the sales and games up to it, the rules' clock at it), however
    /// late it is decided. `None` judges it now.
    pub at: Option<DateTime<Utc>>,
}

impl Candidate {
    /// A listing to decide on, not valued yet.
    pub(crate) fn new(listing: market::Listing, moment: Option<market::Moment>) -> Self {
        Self { listing, moment, sequence: None, trigger_event: None, valuation: None, at: None }
    }

    /// The instant it is judged at: its event's, else now.
    pub(crate) fn judged_at(&self) -> DateTime<Utc> {
        self.at.unwrap_or_else(Utc::now)
    }

    /// What buying it is expected to return per cent spent (fair value over price, less one);
    /// `None` when it has no valuation or price.
    fn expected_return(&self) -> Option<f64> {
        let valuation = self.valuation.as_ref()?;
        (self.listing.price_cents > 0 && valuation.fair_value_cents > 0)
            .then(|| valuation.fair_value_cents as f64 / self.listing.price_cents as f64 - 1.0)
    }
}

/// Whose strategies a decision is for: everyone's, one user's, or one strategy's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scope {
    pub user: Option<Uuid>,
    pub strategy: Option<Uuid>,
}

/// What deciding on one listing did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub decisions: Vec<Decision>,
}

/// The engine.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub database: Database,
    pub settings: Arc<Settings>,
    pub peers: AgentPeers,
    /// The active strategies held in memory, indexed by what they match.
    pub index: StrategyIndex,
    /// How a step's calls are retried: until answered, within the step's deadline.
    retry: RetryPolicy,
}

impl Engine {
    pub(crate) fn new(database: Database, settings: Arc<Settings>, peers: Peers) -> Self {
        let retry = RetryPolicy::backoff(usize::MAX, settings.retry_min, Duration::from_secs(5))
            .with_overall_timeout(settings.step_deadline);
        Self { database, settings, peers: AgentPeers::new(&peers), index: StrategyIndex::default(), retry }
    }

    /// The same engine on background work's own connections (for the workers), so that they
    /// never wait behind the API's callers for a connection, nor those behind them.
    pub(crate) fn on_background(&self) -> Self {
        Self { database: self.database.background(), ..self.clone() }
    }

    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.settings.call_timeout);
        request
    }

    /// Calls `call` until it answers or the retries are spent: the kit's one retry rule, with
    /// backoff from `retry_min`, within the step's deadline.
    pub(crate) async fn retried<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.retry.call_idempotent(call).await
    }

    /// The active strategies a listing could match (not arbitrage mode: those act on
    /// arbitrage opportunities), highest priority first.
    pub(crate) async fn strategies(&self, moment: Option<&market::Moment>) -> Result<Vec<strategy::Strategy>, Status> {
        Ok(self.indexed().await?.matching(moment).into_iter().cloned().collect())
    }

    /// The active strategies as they are now: those held when the strategy service's revision
    /// has not moved on, else read again (and held).
    pub(crate) async fn indexed(&self) -> Result<Arc<Indexed>, Status> {
        let revision = self
            .retried(|| {
                let request = self.request(strategy::GetStrategiesRevisionRequest {});
                async move {
                    let mut client = StrategyInternalServiceClient::new(self.peers.strategy.channel()?);
                    client.get_strategies_revision(request).await.map(|r| r.into_inner().revision)
                }
            })
            .await?;
        if let Some(held) = self.index.at(revision).await {
            return Ok(held);
        }
        let indexed = Arc::new(Indexed::new(revision, self.active(String::new(), 0, 0).await?));
        self.index.hold(indexed.clone()).await;
        Ok(indexed)
    }

    /// Active strategies by player, rarity and kind (0: any; arbitrage mode never), highest
    /// priority first.
    pub(crate) async fn active(
        &self,
        player: String,
        rarity: i32,
        kind: i32,
    ) -> Result<Vec<strategy::Strategy>, Status> {
        let mut found = Vec::new();
        let mut token = String::new();
        loop {
            let request = strategy::ListActiveStrategiesRequest {
                page_size: 1000,
                page_token: token.clone(),
                kind,
                player_id: player.clone(),
                rarity,
            };
            let page = self
                .retried(|| {
                    let request = self.request(request.clone());
                    async move {
                        let mut client = StrategyInternalServiceClient::new(self.peers.strategy.channel()?);
                        client.list_active_strategies(request).await.map(|r| r.into_inner())
                    }
                })
                .await?;
            found.extend(page.strategies);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        // Arbitrage-mode strategies act on arbitrage opportunities only: asked for by kind.
        let arbitrage = kind == strategy::StrategyKind::ArbitrageMode as i32;
        found.retain(|s| matches!(s.parameters, Some(strategy::strategy::Parameters::ArbitrageMode(_))) == arbitrage);
        found.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.strategy_id.cmp(&b.strategy_id)));
        Ok(found)
    }

    /// A listing's valuation at its price, as the market stood at `at` (now when `None`).
    pub(crate) async fn valuation(
        &self,
        listing: &market::Listing,
        at: Option<DateTime<Utc>>,
    ) -> Result<scouting::Valuation, Status> {
        self.retried(|| {
            let request = self.request(scouting::ValueListingRequest {
                listing_id: listing.listing_id.clone(),
                price_cents: Some(listing.price_cents).filter(|p| *p > 0),
                valuation_time: at.map(timestamp),
            });
            async move {
                let mut client = ScoutingInternalServiceClient::new(self.peers.scouting.channel()?);
                client.value_listing(request).await.map(|r| r.into_inner())
            }
        })
        .await
    }

    /// Decides on one listing for every strategy it matches (within `scope`). The decisions are
    /// written together, with the runs they start; a purchase that cannot get through to trading
    /// is not decided at all (the error says so), so that the listing is decided again once
    /// trading is back, under the same idempotency key.
    pub(crate) async fn decide(
        &self,
        candidate: &Candidate,
        trigger: RunTrigger,
        scope: Scope,
        runs: &mut HashMap<Uuid, Uuid>,
    ) -> Result<Outcome, Status> {
        let mut strategies = self.strategies(candidate.moment.as_ref()).await?;
        if let Some(user) = scope.user {
            strategies.retain(|s| s.user_id == user.to_string());
        }
        if let Some(strategy) = scope.strategy {
            strategies.retain(|s| s.strategy_id == strategy.to_string());
        }
        // Users who paused their automation get no decisions at all.
        let users: Vec<Uuid> = strategies.iter().filter_map(|s| Uuid::parse_str(&s.user_id).ok()).collect();
        if !users.is_empty() {
            let paused = self
                .database
                .read(move |conn| async move { repo::paused_users(conn, &users).await }.boxed())
                .await
                .or_status()?;
            strategies.retain(|s| !paused.iter().any(|p| p.to_string() == s.user_id));
        }
        // Strategies that decided on this event before (a replay) decide nothing again.
        let ids: Vec<Uuid> = strategies.iter().filter_map(|s| Uuid::parse_str(&s.strategy_id).ok()).collect();
        let done = self.decided(&ids, candidate).await?;
        strategies.retain(|s| !done.iter().any(|d| d.to_string() == s.strategy_id));
        let mut outcome = Outcome::default();
        if strategies.is_empty() {
            return Ok(outcome);
        }
        let listing = &candidate.listing;
        let active = listing.state == market::ListingState::Active as i32;
        let valued = if let Some(valuation) = &candidate.valuation {
            Ok(valuation.clone())
        } else if active {
            self.valuation(listing, candidate.at).await
        } else {
            Err(Status::failed_precondition("the listing is no longer active"))
        };
        let factors = valued.as_ref().map(factors_of).unwrap_or_default();
        // The player's form, when a strategy's kind asks about it.
        let wants_form = strategies.iter().any(|s| {
            matches!(
                s.parameters,
                Some(
                    strategy::strategy::Parameters::RookieRisers(_) | strategy::strategy::Parameters::PostGameSpike(_)
                )
            )
        });
        let form = match (&candidate.moment, active && wants_form) {
            (Some(moment), true) => Some(self.player_form(&moment.player_id, candidate.at).await),
            _ => None,
        };
        // Users without a run in this pass get one, started together.
        let mut started = Vec::new();
        for strategy in &strategies {
            let user = Uuid::parse_str(&strategy.user_id).map_err(|_| error::bad_peer_id("user"))?;
            if let std::collections::hash_map::Entry::Vacant(entry) = runs.entry(user) {
                let id = Uuid::new_v4();
                entry.insert(id);
                started.push((id, user));
            }
        }
        let event = candidate.trigger_event.clone();
        let trigger = if event.is_some() { RunTrigger::GameEvent } else { trigger };
        self.read_committed(move |conn| {
            let (started, event) = (started.clone(), event.clone());
            async move { repo::start_runs(conn, &started, trigger, event.as_deref()).await }.boxed()
        })
        .await?;
        // Users who already took the listing under one of their strategies.
        let mut taken_by: HashMap<String, String> = HashMap::new();
        let mut decisions = Vec::with_capacity(strategies.len());
        let mut held_up = None;
        for strategy in &strategies {
            let user = Uuid::parse_str(&strategy.user_id).map_err(|_| error::bad_peer_id("user"))?;
            let strategy_id =
                Uuid::parse_str(&strategy.strategy_id).map_err(|_| Status::internal("a bad strategy id"))?;
            let run = runs[&user];
            let shared = Shared {
                valued: &valued,
                factors: &factors,
                form: form.as_ref(),
                taken_by: taken_by.get(&strategy.user_id),
                now: candidate.judged_at(),
            };
            match self.decide_one(candidate, strategy, user, strategy_id, run, shared).await {
                Ok(decision) => {
                    if decision.acted_on() {
                        taken_by.insert(strategy.user_id.clone(), strategy.display_name.clone());
                    }
                    decisions.push(decision);
                }
                Err(status) => {
                    held_up = Some((status, user, strategy.display_name.clone()));
                    break;
                }
            }
        }
        let stored = self
            .read_committed(move |conn| {
                let decisions = decisions.clone();
                async move { repo::insert_decisions_if_new(conn, &decisions).await }.boxed()
            })
            .await?;
        let hour = Utc::now().format("%Y-%m-%dT%H");
        for decision in &stored {
            if decision.reason_code == reason_code(pb::DecisionReason::ServiceUnavailable) {
                let name = strategies
                    .iter()
                    .find(|s| s.strategy_id == decision.strategy_id.to_string())
                    .map(|s| s.display_name.clone())
                    .unwrap_or_default();
                let message = format!(
                    "A decision for strategy \"{name}\" could not be completed: {}",
                    decision.reasons.first().cloned().unwrap_or_default()
                );
                self.alert(&format!("agents:unavailable:{hour}"), &message, Some(decision.user_id)).await;
            }
        }
        self.tell_awaiting(&stored).await;
        outcome.decisions = stored;
        if let Some((status, user, name)) = held_up {
            let message = format!(
                "Strategy \"{name}\" chose to buy listing {}, but trading could not be reached: {}. The purchase \
                 is tried again, once, when trading is back.",
                listing.listing_id,
                status.message()
            );
            self.alert(&format!("agents:trading-unavailable:{hour}"), &message, Some(user)).await;
            return Err(status);
        }
        Ok(outcome)
    }

    /// Which of `strategies` decided on the candidate for its event before (a replay).
    async fn decided(&self, strategies: &[Uuid], candidate: &Candidate) -> Result<Vec<Uuid>, Status> {
        let (sequence, event) = (candidate.sequence, candidate.trigger_event.clone());
        if strategies.is_empty() || (sequence.is_none() && event.is_none()) {
            return Ok(Vec::new());
        }
        let listing = Uuid::parse_str(&candidate.listing.listing_id).unwrap_or_default();
        let strategies = strategies.to_vec();
        self.database
            .read(move |conn| {
                let (strategies, event) = (strategies.clone(), event.clone());
                async move { repo::decided_strategies(conn, &strategies, sequence, listing, event.as_deref()).await }
                    .boxed()
            })
            .await
            .or_status()
    }

    /// A player's record and latest games up to `until` (all of them when `None`), as
    /// kind-specific rules read them.
    pub(crate) async fn player_form(&self, player: &str, until: Option<DateTime<Utc>>) -> Result<PlayerForm, Status> {
        let found = self
            .retried(|| {
                let request = self.request(scouting::GetPlayerRequest { player_id: player.to_owned() });
                async move {
                    let mut client = ScoutingServiceClient::new(self.peers.scouting.channel()?);
                    client.get_player(request).await.map(|r| Some(r.into_inner()))
                }
            })
            .await;
        let player_record = match found {
            Ok(found) => found,
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => return Err(status),
        };
        let games = self
            .retried(|| {
                let request = self.request(scouting::ListPlayerGameStatsRequest {
                    player_id: player.to_owned(),
                    page_size: FORM_GAMES,
                    page_token: String::new(),
                    until_time: until.map(timestamp),
                });
                async move {
                    let mut client = ScoutingServiceClient::new(self.peers.scouting.channel()?);
                    client.list_player_game_stats(request).await.map(|r| r.into_inner().stats)
                }
            })
            .await?;
        Ok(PlayerForm { player: player_record, games })
    }

    /// One strategy's decision. An error means trading could not be reached for a purchase
    /// the rules chose: nothing is decided then.
    async fn decide_one(
        &self,
        candidate: &Candidate,
        strategy: &strategy::Strategy,
        user: Uuid,
        strategy_id: Uuid,
        run: Uuid,
        shared: Shared<'_>,
    ) -> Result<Decision, Status> {
        match judge(candidate, strategy, user, strategy_id, run, shared)? {
            Judged::Decided(decision) => Ok(decision),
            Judged::Chosen(chosen) => {
                let today = shared.now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
                let bought_today = self.bought_since(strategy_id, today).await?;
                purchase(self, candidate, strategy, user, chosen, bought_today).await
            }
        }
    }

    /// Sends a purchase to trading, retried until answered within the step's deadline.
    pub(crate) async fn execute(&self, request: trading::ExecutePurchaseRequest) -> Result<trading::Trade, Status> {
        self.retried(|| {
            let request = self.request(request.clone());
            async move {
                let mut client = TradingInternalServiceClient::new(self.peers.trading.channel()?);
                client.execute_purchase(request).await.map(|r| r.into_inner())
            }
        })
        .await
    }

    pub(crate) async fn bought_since(&self, strategy_id: Uuid, since: DateTime<Utc>) -> Result<i64, Status> {
        self.database
            .read(move |conn| async move { repo::purchases_since(conn, strategy_id, since).await }.boxed())
            .await
            .or_status()
    }

    /// Acts on an arbitrage opportunity for one arbitrage-mode strategy: skipped unless its
    /// sources, spread, maximum price and daily cap allow, else bought and relisted through
    /// trading's `ExecuteArbitrage` (or only bought when the strategy does not relist). Decided
    /// once per strategy, listing and price.
    pub(crate) async fn decide_arbitrage(
        &self,
        opportunity: &market::ArbitrageOpportunity,
        strategy: &strategy::Strategy,
        run: &mut Option<Uuid>,
    ) -> Result<Option<Decision>, Status> {
        let Some(strategy::strategy::Parameters::ArbitrageMode(params)) = &strategy.parameters else { return Ok(None) };
        let Some(listing) = opportunity.buy_listing.clone() else { return Ok(None) };
        let user = Uuid::parse_str(&strategy.user_id).map_err(|_| error::bad_peer_id("user"))?;
        let strategy_id = Uuid::parse_str(&strategy.strategy_id).map_err(|_| error::bad_peer_id("strategy"))?;
        let candidate = Candidate {
            trigger_event: Some(format!("arbitrage:{}:{}", listing.listing_id, listing.price_cents)),
            ..Candidate::new(listing.clone(), None)
        };
        if !self.decided(&[strategy_id], &candidate).await?.is_empty() {
            return Ok(None);
        }
        // The run starts with its first decision.
        let run = match *run {
            Some(id) => id,
            None => {
                let id = Uuid::new_v4();
                self.read_committed(move |conn| {
                    async move { repo::start_run(conn, id, user, RunTrigger::Arbitrage).await.map(|_| ()) }.boxed()
                })
                .await?;
                *run = Some(id);
                id
            }
        };
        let sell = opportunity.expected_sell_cents;
        let rules = strategy.rules.unwrap_or_default();
        let name = &strategy.display_name;
        let mut decision = new_decision(&candidate, user, strategy_id, run, Utc::now())?;
        decision.fair_value_cents = sell.max(0);
        decision.confidence = 1.0;
        let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let chosen = match domain::arbitrage_rules(params, &rules, name, opportunity, &listing) {
            Err(skip) => Err(skip),
            Ok(sentence) => match domain::daily_cap(&rules, name, self.bought_since(strategy_id, today).await?) {
                Some(skip) => Err(skip),
                None => Ok(sentence),
            },
        };
        let stopped = match &chosen {
            Ok(_) => self.stopped(strategy, user, None, &decision, Utc::now()).await,
            Err(_) => None,
        };
        let decision = match chosen {
            _ if stopped.is_some() => stopped.unwrap_or(decision),
            Err(skip) => skip.decide(decision),
            Ok(sentence) => {
                let key = purchase_key("agents:arbitrage", &decision);
                let bought = self.buy_arbitrage(params, opportunity, strategy, &decision, user, key, &sentence).await;
                match bought {
                    Ok(trade) => {
                        decision.outcome = DecisionOutcome::Buy;
                        decision.trade_id = Uuid::parse_str(&trade).ok();
                        skip(decision, pb::DecisionReason::Bought, "all_rules_passed", sentence)
                    }
                    Err(status) => {
                        decision.outcome = DecisionOutcome::Refused;
                        decision.data_incomplete = !is_answer(&status);
                        let code = if is_answer(&status) {
                            pb::DecisionReason::RiskRefused
                        } else {
                            pb::DecisionReason::ServiceUnavailable
                        };
                        skip(
                            decision,
                            code,
                            "trading",
                            format!("Chosen to buy, but the purchase was refused: {}", status.message()),
                        )
                    }
                }
            }
        };
        self.read_committed(move |conn| {
            let decision = decision.clone();
            async move { repo::insert_decision_if_new(conn, &decision).await }.boxed()
        })
        .await
    }

    /// Buys an arbitrage's listing through trading: with its relist when the strategy relists
    /// itself, else the purchase alone. The purchase's trade id.
    #[allow(clippy::too_many_arguments)]
    async fn buy_arbitrage(
        &self,
        params: &strategy::ArbitrageModeParameters,
        opportunity: &market::ArbitrageOpportunity,
        strategy: &strategy::Strategy,
        decision: &Decision,
        user: Uuid,
        key: String,
        sentence: &str,
    ) -> Result<String, Status> {
        let listing = opportunity.buy_listing.clone().unwrap_or_default();
        let price = listing.price_cents;
        if params.auto_relist {
            let request = trading::ExecuteArbitrageRequest {
                user_id: user.to_string(),
                listing_id: listing.listing_id.clone(),
                max_price_cents: price,
                relist_source_id: opportunity.sell_source_id.clone(),
                relist_price_cents: opportunity.expected_sell_cents,
                idempotency_key: key,
                strategy_id: strategy.strategy_id.clone(),
                decision_id: decision.id.to_string(),
                valuation_id: String::new(),
                reasoning: vec![sentence.to_owned()],
                factors: Vec::new(),
            };
            self.retried(|| {
                let request = self.request(request.clone());
                async move {
                    let mut client = TradingInternalServiceClient::new(self.peers.trading.channel()?);
                    let pair = client.execute_arbitrage(request).await?.into_inner();
                    Ok(pair.purchase.map(|t| t.trade_id).unwrap_or_default())
                }
            })
            .await
        } else {
            let request = trading::ExecutePurchaseRequest {
                user_id: user.to_string(),
                listing_id: listing.listing_id.clone(),
                max_price_cents: price,
                idempotency_key: key,
                strategy_id: strategy.strategy_id.clone(),
                decision_id: decision.id.to_string(),
                reasoning: vec![sentence.to_owned()],
                valuation_id: String::new(),
                expected_value_cents: opportunity.expected_sell_cents.max(0),
                factors: Vec::new(),
            };
            self.retried(|| {
                let request = self.request(request.clone());
                async move {
                    let mut client = TradingInternalServiceClient::new(self.peers.trading.channel()?);
                    Ok(client.execute_purchase(request).await?.into_inner().trade_id)
                }
            })
            .await
        }
    }

    /// Tells the operators (a system alert, one per `dedup` key) and, when given, the user (a
    /// notification, one per key) that a failure persists. Best effort: a notification service
    /// that is down too is only logged.
    pub(crate) async fn alert(&self, dedup: &str, message: &str, user: Option<Uuid>) {
        tracing::error!(dedup, message, "a failure persists");
        let Ok(channel) = self.peers.notification.channel() else { return };
        let mut client = NotificationInternalServiceClient::new(channel);
        let raised = client
            .raise_system_alert(self.request(notification::RaiseSystemAlertRequest {
                severity: notification::SystemAlertSeverity::Warning.into(),
                source: "agents".to_owned(),
                message: message.to_owned(),
                correlation_id: String::new(),
                dedup_key: dedup.to_owned(),
            }))
            .await;
        if let Err(status) = raised {
            tracing::warn!(error = %status.message(), "the operators' alert could not be raised");
        }
        if let Some(user) = user {
            let category = notification::NotificationCategory::System;
            let (title, key) = ("Your automation is held up", format!("{dedup}:{user}"));
            self.notify(user, category, title, message.to_owned(), key, Vec::new()).await;
        }
    }

    /// The market's active listings, cheapest first, up to the scan limit, with their moments.
    pub(crate) async fn market_listings(&self) -> Result<Vec<(market::Listing, Option<market::Moment>)>, Status> {
        let unavailable = |_| status::dependency_unavailable("marketplace", Duration::from_secs(1));
        let mut listings = Vec::new();
        let mut token = String::new();
        let mut client = MarketplaceServiceClient::new(self.peers.marketplace.channel()?);
        while listings.len() < self.settings.scan_limit {
            let page = client
                .list_listings(self.request(market::ListListingsRequest {
                    page_size: 100,
                    page_token: token.clone(),
                    ..Default::default()
                }))
                .await
                .map_err(unavailable)?
                .into_inner();
            listings.extend(page.listings);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        listings.truncate(self.settings.scan_limit);
        let ids: Vec<String> = listings.iter().map(|l| l.moment_id.clone()).collect();
        let moments = if ids.is_empty() {
            Vec::new()
        } else {
            client
                .batch_get_moments(self.request(market::BatchGetMomentsRequest { moment_ids: ids }))
                .await
                .map_err(unavailable)?
                .into_inner()
                .moments
        };
        Ok(listings
            .into_iter()
            .map(|l| {
                let moment = moments.iter().find(|m| m.moment_id == l.moment_id).cloned();
                (l, moment)
            })
            .collect())
    }

    /// Scans `listings` for the strategies in `scope`, in the run already started, and ends it.
    pub(crate) async fn scan(
        &self,
        run: Uuid,
        user: Uuid,
        scope: Scope,
        trigger: RunTrigger,
        listings: &[(market::Listing, Option<market::Moment>)],
    ) {
        let mut runs = HashMap::from([(user, run)]);
        let mut failure = None;
        let candidates = self
            .rank(listings.iter().map(|(listing, moment)| Candidate::new(listing.clone(), moment.clone())).collect())
            .await;
        for candidate in &candidates {
            if let Err(status) = self.decide(candidate, trigger, scope, &mut runs).await {
                failure = Some(status.message().to_owned());
                break;
            }
        }
        let evaluated = i32::try_from(listings.len()).unwrap_or(i32::MAX);
        self.finish(&runs, evaluated, failure).await;
    }

    /// Candidates competing for one budget, in the order they are taken: each valued first, the
    /// best expected return first (a strategy's priority orders the strategies within each);
    /// those that cannot be valued last, in the order given.
    pub(crate) async fn rank(&self, mut candidates: Vec<Candidate>) -> Vec<Candidate> {
        for candidate in &mut candidates {
            if candidate.valuation.is_none() && candidate.listing.state == market::ListingState::Active as i32 {
                candidate.valuation = self.valuation(&candidate.listing, candidate.at).await.ok();
            }
        }
        candidates.sort_by(|a, b| match (a.expected_return(), b.expected_return()) {
            (Some(a), Some(b)) => b.total_cmp(&a),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        candidates
    }

    /// Ends the runs a pass started.
    pub(crate) async fn finish(&self, runs: &HashMap<Uuid, Uuid>, evaluated: i32, failure: Option<String>) {
        let ids: Vec<Uuid> = runs.values().copied().collect();
        let ended = self
            .read_committed(move |conn| {
                let (ids, failure) = (ids.clone(), failure.clone());
                async move { repo::finish_runs(conn, &ids, evaluated, 1, failure.as_deref()).await }.boxed()
            })
            .await;
        if let Err(error) = ended {
            tracing::warn!(runs = runs.len(), error = %error.message(), "runs could not be ended");
        }
    }

    pub(crate) async fn read_committed<T: Send>(
        &self,
        work: impl for<'c> Fn(
            &'c mut fastbreak_db::PgConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, DatabaseError>>
        + Send
        + Sync,
    ) -> Result<T, Status> {
        self.database.read_committed(work).await.or_status()
    }
}

/// A decision about a candidate for one strategy, not made yet (a skip without reasons).
fn new_decision(
    candidate: &Candidate,
    user: Uuid,
    strategy_id: Uuid,
    run: Uuid,
    now: DateTime<Utc>,
) -> Result<Decision, Status> {
    let listing = &candidate.listing;
    Ok(Decision {
        // Time-ordered: a decision's id lands at the end of its index, as its time does.
        id: Uuid::now_v7(),
        run_id: run,
        user_id: user,
        strategy_id,
        listing_id: Uuid::parse_str(&listing.listing_id).map_err(|_| error::bad_peer_id("listing"))?,
        moment_id: Uuid::parse_str(&listing.moment_id).map_err(|_| error::bad_peer_id("moment"))?,
        outcome: DecisionOutcome::Skip,
        reasons: Vec::new(),
        price_cents: listing.price_cents,
        fair_value_cents: 0,
        confidence: 0.0,
        trade_id: None,
        created_at: now,
        reason_code: String::new(),
        rule: String::new(),
        valuation_id: None,
        factors: serde_json::json!([]),
        data_incomplete: false,
        event_sequence: candidate.sequence,
        trigger_event: candidate.trigger_event.clone(),
        approval_expires_at: None,
    })
}

/// What the rules make of a listing for one strategy, before anything is bought.
pub(crate) enum Judged {
    /// Decided: a skip (or nothing left to ask).
    Decided(Decision),
    /// Every rule passed: to be bought, unless the daily cap stops it.
    Chosen(Chosen),
}

/// A purchase the rules chose, with what it is bought on.
pub(crate) struct Chosen {
    /// The decision so far, with the valuation's figures and factors.
    pub decision: Decision,
    /// Why it is bought, as a sentence.
    pub sentence: String,
    /// The valuation's factors, heaviest first.
    pub factors: Vec<Factor>,
}

/// One strategy's look at a listing by its rules alone (no call, no database): a skip, or a
/// purchase chosen. A skip keeps the valuation's weighted factors only when it is a near miss
/// (see `domain::near_miss`); every decision keeps its reason, rule and sentence.
pub(crate) fn judge(
    candidate: &Candidate,
    strategy: &strategy::Strategy,
    user: Uuid,
    strategy_id: Uuid,
    run: Uuid,
    shared: Shared<'_>,
) -> Result<Judged, Status> {
    let listing = &candidate.listing;
    let price = listing.price_cents;
    let rules = strategy.rules.unwrap_or_default();
    let name = &strategy.display_name;
    let mut decision = new_decision(candidate, user, strategy_id, run, shared.now)?;
    let active = listing.state == market::ListingState::Active as i32;
    if let Some(skip) = domain::before_valuation(active, shared.taken_by.map(String::as_str), &rules, name, price) {
        return Ok(Judged::Decided(skip.decide(decision)));
    }
    if let Some(skip) = domain::protections::blocked(strategy.protections.as_ref(), candidate.moment.as_ref(), name) {
        return Ok(Judged::Decided(skip.decide(decision)));
    }
    if let Some(form) = shared.form
        && let Some(unfit) = domain::kind_fit(strategy, form, &mut decision, shared.now)
    {
        return Ok(Judged::Decided(unfit));
    }
    let valuation = match shared.valued {
        Ok(valuation) => valuation,
        Err(status) => {
            decision.data_incomplete = true;
            return Ok(Judged::Decided(domain::no_valuation(status).decide(decision)));
        }
    };
    decision.fair_value_cents = valuation.fair_value_cents.max(0);
    decision.confidence = valuation.confidence.clamp(0.0, 1.0);
    decision.valuation_id = Uuid::parse_str(&valuation.valuation_id).ok();
    let fair = valuation.fair_value_cents;
    let passed = domain::valuation_rules(&rules, name, price, fair, valuation.confidence);
    let near = passed.is_ok() || domain::near_miss(&rules, price, fair, valuation.confidence);
    let factors = if near { shared.factors.to_vec() } else { Vec::new() };
    if near {
        decision.factors = serde_json::to_value(&factors).unwrap_or_default();
        decision.reasons.extend(factors.iter().take(3).map(|f| f.explanation.clone()).filter(|s| !s.is_empty()));
    }
    match passed {
        Ok(sentence) => Ok(Judged::Chosen(Chosen { decision, sentence, factors })),
        Err(skip) => Ok(Judged::Decided(skip.decide(decision))),
    }
}

/// A valuation's factors as decisions keep them, heaviest first.
pub(crate) fn factors_of(valuation: &scouting::Valuation) -> Vec<Factor> {
    let mut factors: Vec<Factor> = valuation
        .factors
        .iter()
        .map(|f| Factor {
            name: f.name.clone(),
            weight: f.weight,
            impact_cents: f.impact_cents,
            explanation: f.explanation.clone(),
        })
        .collect();
    factors.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    factors
}

/// What one listing's decisions share: its valuation and factors, its player's form (when a
/// strategy's kind asks), and the strategy of the user's that already acted on it, if one did.
#[derive(Clone, Copy)]
pub(crate) struct Shared<'a> {
    pub valued: &'a Result<scouting::Valuation, Status>,
    /// The valuation's factors, heaviest first (empty without a valuation).
    pub factors: &'a [Factor],
    pub form: Option<&'a Result<PlayerForm, Status>>,
    pub taken_by: Option<&'a String>,
    /// The instant the listing is judged at: what the rules read as "now" (a player's window
    /// since his game, the protections' pauses), and the decisions' time.
    pub now: DateTime<Utc>,
}

/// Where a purchase the rules chose is bought: trading for the live agents (the [`Engine`]), a
/// paper ledger for a backtest. Both go through [`purchase`], so that a replay decides as the
/// live agents do.
pub(crate) trait Book {
    /// The decision skipped when the strategy's protections stop the purchase of a listing
    /// judged at `now` (the live agents check them at the instant they would buy); `None` when
    /// it may go on.
    fn stopped(
        &self,
        strategy: &strategy::Strategy,
        user: Uuid,
        player: Option<&str>,
        decision: &Decision,
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Option<Decision>> + Send;

    /// When a purchase that waits for approval is put to the user, for a listing judged at
    /// `judged`: the approval's time limit counts from then.
    fn asked_at(&self, judged: DateTime<Utc>) -> DateTime<Utc>;

    /// Buys, at most at the request's price. An error that is not an answer means the book
    /// could not be reached: nothing is decided then.
    fn buy(
        &self,
        request: trading::ExecutePurchaseRequest,
    ) -> impl std::future::Future<Output = Result<trading::Trade, Status>> + Send;
}

/// Buys what the rules chose unless the strategy's daily cap (with `bought_today` purchases
/// made today) or its protections stop it; with manual approval, the purchase waits for the
/// user instead. An error means the book could not be reached: nothing is decided.
pub(crate) async fn purchase<B: Book>(
    book: &B,
    candidate: &Candidate,
    strategy: &strategy::Strategy,
    user: Uuid,
    chosen: Chosen,
    bought_today: i64,
) -> Result<Decision, Status> {
    let Chosen { decision, sentence, factors } = chosen;
    let rules = strategy.rules.unwrap_or_default();
    if let Some(skip) = domain::daily_cap(&rules, &strategy.display_name, bought_today) {
        return Ok(skip.decide(decision));
    }
    // The instant the listing was judged at.
    let now = decision.created_at;
    let player = candidate.moment.as_ref().map(|m| m.player_id.as_str());
    if let Some(stopped) = book.stopped(strategy, user, player, &decision, now).await {
        return Ok(stopped);
    }
    if let Some(minutes) = domain::protections::approval_minutes(strategy) {
        return Ok(domain::protections::awaiting(decision, sentence, minutes, book.asked_at(now)));
    }
    // Every rule passed: buy, under a key that a replay of this event repeats.
    let mut request = purchase_request(strategy, user, &decision, &factors);
    request.reasoning.insert(0, sentence.clone());
    bought(decision, book.buy(request).await, sentence)
}

/// The key of a decision's purchase: its strategy, listing and price, and what set the decision
/// off — the listing event, the game event, else the run (a scan). A replay of the same event
/// repeats it; a later decision on the listing (a scan, another strategy) is a purchase of its
/// own, not a repeat of one refused before.
pub(crate) fn purchase_key(prefix: &str, decision: &Decision) -> String {
    let origin = match (decision.event_sequence, &decision.trigger_event) {
        (Some(sequence), _) => format!("event-{sequence}"),
        (None, Some(event)) => format!("game-{event}"),
        (None, None) => format!("run-{}", decision.run_id),
    };
    let name = format!("{}:{}:{origin}", decision.listing_id, decision.price_cents);
    // Named within the strategy's id, so the key stays short whatever the event's id.
    format!("{prefix}:{}", Uuid::new_v5(&decision.strategy_id, name.as_bytes()))
}

/// The purchase of a decision's listing at most at its price, under the key a replay of its
/// event repeats, with its reasons, valuation and factors.
pub(crate) fn purchase_request(
    strategy: &strategy::Strategy,
    user: Uuid,
    decision: &Decision,
    factors: &[Factor],
) -> trading::ExecutePurchaseRequest {
    trading::ExecutePurchaseRequest {
        user_id: user.to_string(),
        listing_id: decision.listing_id.to_string(),
        max_price_cents: decision.price_cents,
        idempotency_key: purchase_key("agents", decision),
        strategy_id: strategy.strategy_id.clone(),
        decision_id: decision.id.to_string(),
        reasoning: decision.reasons.clone(),
        valuation_id: decision.valuation_id.map(|v| v.to_string()).unwrap_or_default(),
        expected_value_cents: decision.fair_value_cents.max(0),
        factors: factors
            .iter()
            .map(|f| trading::ReasoningFactor {
                name: f.name.clone(),
                weight: f.weight.clamp(0.0, 1.0),
                impact_cents: f.impact_cents,
                explanation: f.explanation.clone(),
            })
            .collect(),
    }
}

/// The decision as the book's answer makes it: bought (with `sentence` first), or refused with
/// the book's reason. An error means the book could not be reached: nothing is decided.
pub(crate) fn bought(
    mut decision: Decision,
    answer: Result<trading::Trade, Status>,
    sentence: String,
) -> Result<Decision, Status> {
    match answer {
        Ok(trade) => {
            decision.outcome = DecisionOutcome::Buy;
            decision.trade_id = Uuid::parse_str(&trade.trade_id).ok();
            decision.reason_code = reason_code(pb::DecisionReason::Bought);
            decision.rule = "all_rules_passed".to_owned();
            decision.reasons.insert(0, sentence);
            Ok(decision)
        }
        Err(status) => {
            let Some((code, rule)) = domain::purchase_refused(&status) else {
                return Err(status);
            };
            decision.outcome = DecisionOutcome::Refused;
            decision.data_incomplete = code == pb::DecisionReason::ServiceUnavailable;
            Ok(domain::skip(
                decision,
                code,
                rule,
                format!("Chosen to buy, but the purchase was refused: {}", status.message()),
            ))
        }
    }
}
