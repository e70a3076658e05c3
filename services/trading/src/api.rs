//! The trading service's RPCs: each reads its caller and request, then hands the work to the
//! trader (purchases and listings), the portfolio or the leaderboards.

use std::sync::Arc;

use crate::store::{self as repo, IdempotencyClaim, TradeKind, TradeOrigin};
use chrono::Utc;
use fastbreak_db::DatabaseError;
use fastbreak_mesh::idempotency::IdempotencyKey;
use fastbreak_mesh::status::{self, Violations, required_uuid, timestamp};
use fastbreak_mesh::{caller, paging};
use fastbreak_proto::common::v1::{ErrorReason, Period};
use fastbreak_proto::trading::v1 as pb;
use fastbreak_proto::trading::v1::trading_internal_service_server::TradingInternalService;
use fastbreak_proto::trading::v1::trading_service_server::TradingService;
use futures::FutureExt;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::convert::{self, kind_from_pb, trade_to_pb};
use crate::domain::Order;
use crate::error::key_reused;
use crate::leaderboard::Leaderboards;
use crate::ledger::Ledger;
use crate::portfolio;
use crate::purchase::new_trade;
use crate::trader::{DEFAULT_SOURCE, Trader};

/// The longest note on a manual purchase.
const MAX_NOTE: usize = 1000;
/// The most reasoning sentences and factors a purchase keeps.
const MAX_REASONS: usize = 50;
/// The largest price or deposit, in cents (one million dollars).
const MAX_CENTS: i64 = 100_000_000;

/// Both of the target's services.
#[derive(Debug, Clone)]
pub struct TradingApi {
    trader: Trader,
    ledger: Arc<dyn Ledger>,
    boards: Leaderboards,
}

impl TradingApi {
    pub(crate) fn new(trader: Trader, ledger: Arc<dyn Ledger>, boards: Leaderboards) -> Self {
        Self { trader, ledger, boards }
    }
}

/// Checks a request's idempotency key by the one rule (it is then used as given).
fn key(text: &str, violations: &mut Violations) {
    IdempotencyKey::parse(text, "idempotency_key", violations);
}

fn cents(value: i64, field: &str, violations: &mut Violations) {
    violations.check((1..=MAX_CENTS).contains(&value), field, "must be from 1 to 100000000 cents");
}

fn optional_uuid(text: &str, field: &str, violations: &mut Violations) -> Option<Uuid> {
    if text.is_empty() { None } else { violations.uuid(text, field) }
}

fn reasons(reasoning: &[String], factors: &[pb::ReasoningFactor], required: bool, violations: &mut Violations) {
    if required {
        violations.check(!reasoning.is_empty(), "reasoning", "must give at least one sentence");
    }
    violations.check(reasoning.len() <= MAX_REASONS, "reasoning", "must have at most 50 sentences");
    for (i, sentence) in reasoning.iter().enumerate() {
        violations.check(
            !sentence.trim().is_empty()
                && sentence.chars().count() <= MAX_NOTE
                && !sentence.chars().any(char::is_control),
            format!("reasoning[{i}]"),
            "must be 1 to 1000 characters without control characters",
        );
    }
    violations.check(factors.len() <= MAX_REASONS, "factors", "must have at most 50 factors");
    for (i, f) in factors.iter().enumerate() {
        violations.check(
            !f.name.is_empty() && f.name.len() <= 100,
            format!("factors[{i}].name"),
            "must be 1 to 100 characters",
        );
        violations.check((0.0..=1.0).contains(&f.weight), format!("factors[{i}].weight"), "must be from 0 to 1");
        violations.check(
            f.explanation.chars().count() <= MAX_NOTE,
            format!("factors[{i}].explanation"),
            "must be at most 1000 characters",
        );
    }
}

fn expected(value: i64, violations: &mut Violations) {
    violations.check((0..=MAX_CENTS).contains(&value), "expected_value_cents", "must be from 0 to 100000000 cents");
}

/// A purchase the agents ask for, as its request gave it: checked field by field, all at once.
struct Automated {
    user_id: String,
    listing_id: String,
    max_price_cents: i64,
    idempotency_key: String,
    strategy_id: String,
    decision_id: String,
    valuation_id: String,
    reasoning: Vec<String>,
    factors: Vec<pb::ReasoningFactor>,
    expected_value_cents: i64,
    relist: Option<(String, i64)>,
}

impl Automated {
    fn order(self) -> Result<Order, Status> {
        let mut violations = Violations::new();
        let user = violations.uuid(&self.user_id, "user_id");
        let listing = violations.uuid(&self.listing_id, "listing_id");
        cents(self.max_price_cents, "max_price_cents", &mut violations);
        if let Some((source, price)) = &self.relist {
            cents(*price, "relist_price_cents", &mut violations);
            violations.check(!source.is_empty(), "relist_source_id", "is required");
        }
        key(&self.idempotency_key, &mut violations);
        let strategy = violations.uuid(&self.strategy_id, "strategy_id");
        let decision = violations.uuid(&self.decision_id, "decision_id");
        let valuation = optional_uuid(&self.valuation_id, "valuation_id", &mut violations);
        reasons(&self.reasoning, &self.factors, true, &mut violations);
        expected(self.expected_value_cents, &mut violations);
        violations.into_result(())?;
        Ok(Order {
            user: user.unwrap_or_default(),
            listing: listing.unwrap_or_default(),
            max_price: self.max_price_cents,
            key: self.idempotency_key,
            origin: TradeOrigin::Automated,
            strategy,
            decision,
            valuation,
            reasoning: self.reasoning,
            factors: self.factors,
            expected_value: self.expected_value_cents,
            relist: self.relist,
        })
    }
}

fn purchase_pair(purchase: repo::Trade, listing: Option<repo::Trade>) -> pb::BuyAndRelistResponse {
    pb::BuyAndRelistResponse { purchase: Some(trade_to_pb(&purchase)), sale_listing: listing.as_ref().map(trade_to_pb) }
}

impl TradingApi {
    async fn arbitrage(&self, order: Order) -> Result<pb::BuyAndRelistResponse, Status> {
        let purchase = self.trader.purchase(order).await?;
        let listing = self.trader.relist_of(&purchase).await?;
        Ok(purchase_pair(purchase, listing))
    }

    /// A sale listing or a new price: recorded pending under its key, then made.
    async fn listing_trade(
        &self,
        user: Uuid,
        kind: TradeKind,
        moment: Uuid,
        price: i64,
        source: String,
        key: String,
    ) -> Result<repo::Trade, Status> {
        let order = Order {
            user,
            listing: Uuid::nil(),
            max_price: 0,
            key: key.clone(),
            origin: TradeOrigin::Manual,
            strategy: None,
            decision: None,
            valuation: None,
            reasoning: Vec::new(),
            factors: Vec::new(),
            expected_value: 0,
            relist: None,
        };
        let hash: String = Sha256::digest(format!("{}|{moment}|{price}|{source}", kind.as_str()))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let existing = self
            .trader
            .read(|conn| {
                let key = key.clone();
                async move { repo::find_trade_by_key(conn, user, &key, kind).await }.boxed()
            })
            .await?;
        if let Some(trade) = existing {
            if trade.request_hash != hash {
                return Err(key_reused(&trade));
            }
            return self.trader.finish_listing(trade).await;
        }
        let wallet = self.trader.wallet(user).await?;
        if kind == TradeKind::SaleListing {
            self.trader.fee_bps(&source, "source_id").await?;
        }
        let inserted = self
            .trader
            .read_committed(|conn| {
                let (order, hash, source, wallet) = (order.clone(), hash.clone(), source.clone(), wallet.clone());
                async move {
                    let Some(holding) = repo::find_holding(conn, user, moment).await? else {
                        return Ok(Err(status::not_found("moment (among the user's holdings)")));
                    };
                    match (kind, holding.listing_id) {
                        (TradeKind::SaleListing, Some(listing)) => {
                            return Ok(Err(status::failed_precondition(
                                "the moment is listed already; relist it to change its price",
                                ErrorReason::InvalidState,
                                [("listing_id".to_owned(), listing.to_string())],
                            )));
                        }
                        (TradeKind::Relist, None) => {
                            return Ok(Err(status::failed_precondition(
                                "the moment is not listed; sell it first",
                                ErrorReason::InvalidState,
                                [],
                            )));
                        }
                        _ => {}
                    }
                    let mut trade = new_trade(&order, &hash, kind, moment, price, Utc::now());
                    trade.source_id = source;
                    trade.buyer_address = wallet;
                    trade.listing_id = holding.listing_id;
                    Ok(Ok(repo::insert_trade_if_new(conn, &trade).await?))
                }
                .boxed()
            })
            .await??;
        match inserted {
            Some(trade) => self.trader.finish_listing(trade).await,
            None => Err(Status::aborted("another call with the same idempotency key is under way; try again")),
        }
    }
}

#[tonic::async_trait]
impl TradingService for TradingApi {
    async fn purchase_moment(
        &self,
        request: Request<pb::PurchaseMomentRequest>,
    ) -> Result<Response<pb::Trade>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let listing = violations.uuid(&r.listing_id, "listing_id");
        cents(r.max_price_cents, "max_price_cents", &mut violations);
        key(&r.idempotency_key, &mut violations);
        violations.check(
            r.note.chars().count() <= MAX_NOTE && !r.note.chars().any(char::is_control),
            "note",
            "must be at most 1000 characters without control characters",
        );
        expected(r.expected_value_cents, &mut violations);
        violations.into_result(())?;
        let note = r.note.trim();
        let order = Order {
            user,
            listing: listing.unwrap_or_default(),
            max_price: r.max_price_cents,
            key: r.idempotency_key,
            origin: TradeOrigin::Manual,
            strategy: None,
            decision: None,
            valuation: None,
            reasoning: if note.is_empty() { Vec::new() } else { vec![note.to_owned()] },
            factors: Vec::new(),
            expected_value: r.expected_value_cents,
            relist: None,
        };
        Ok(Response::new(trade_to_pb(&self.trader.purchase(order).await?)))
    }

    async fn sell_moment(&self, request: Request<pb::SellMomentRequest>) -> Result<Response<pb::Trade>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let moment = violations.uuid(&r.moment_id, "moment_id");
        cents(r.price_cents, "price_cents", &mut violations);
        key(&r.idempotency_key, &mut violations);
        violations.into_result(())?;
        let source = if r.source_id.is_empty() { DEFAULT_SOURCE.to_owned() } else { r.source_id };
        let trade = self
            .listing_trade(
                user,
                TradeKind::SaleListing,
                moment.unwrap_or_default(),
                r.price_cents,
                source,
                r.idempotency_key,
            )
            .await?;
        Ok(Response::new(trade_to_pb(&trade)))
    }

    async fn relist_moment(&self, request: Request<pb::RelistMomentRequest>) -> Result<Response<pb::Trade>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let moment = violations.uuid(&r.moment_id, "moment_id");
        cents(r.price_cents, "price_cents", &mut violations);
        key(&r.idempotency_key, &mut violations);
        violations.into_result(())?;
        let trade = self
            .listing_trade(
                user,
                TradeKind::Relist,
                moment.unwrap_or_default(),
                r.price_cents,
                String::new(),
                r.idempotency_key,
            )
            .await?;
        Ok(Response::new(trade_to_pb(&trade)))
    }

    async fn buy_and_relist(
        &self,
        request: Request<pb::BuyAndRelistRequest>,
    ) -> Result<Response<pb::BuyAndRelistResponse>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let listing = violations.uuid(&r.listing_id, "listing_id");
        cents(r.max_price_cents, "max_price_cents", &mut violations);
        cents(r.relist_price_cents, "relist_price_cents", &mut violations);
        violations.check(!r.relist_source_id.is_empty(), "relist_source_id", "is required");
        key(&r.idempotency_key, &mut violations);
        violations.into_result(())?;
        let order = Order {
            user,
            listing: listing.unwrap_or_default(),
            max_price: r.max_price_cents,
            key: r.idempotency_key,
            origin: TradeOrigin::Manual,
            strategy: None,
            decision: None,
            valuation: None,
            reasoning: vec![format!("Bought to relist on {} for {} cents.", r.relist_source_id, r.relist_price_cents)],
            factors: Vec::new(),
            expected_value: 0,
            relist: Some((r.relist_source_id, r.relist_price_cents)),
        };
        Ok(Response::new(self.arbitrage(order).await?))
    }

    async fn get_trade(&self, request: Request<pb::GetTradeRequest>) -> Result<Response<pb::Trade>, Status> {
        let user = caller::user_id(&request)?;
        let id = required_uuid(&request.get_ref().trade_id, "trade_id")?;
        let trade = self
            .trader
            .read(move |conn| async move { repo::find_trade(conn, user, id).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("trade"))?;
        Ok(Response::new(trade_to_pb(&trade)))
    }

    async fn list_trades(
        &self,
        request: Request<pb::ListTradesRequest>,
    ) -> Result<Response<pb::ListTradesResponse>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(r.page_size, &r.page_token, 50, 100, &mut violations);
        let strategy = optional_uuid(&r.strategy_id, "strategy_id", &mut violations);
        let kind = pb::TradeKind::try_from(r.kind).ok();
        violations.check(kind.is_some(), "kind", "is not a known trade kind");
        violations.into_result(())?;
        let kind = kind.and_then(kind_from_pb);
        let found = self
            .trader
            .read(move |conn| async move { repo::list_trades_by(conn, user, kind, strategy, page).await }.boxed())
            .await?;
        Ok(Response::new(pb::ListTradesResponse {
            trades: found.items.iter().map(trade_to_pb).collect(),
            next_page_token: paging::next_page_token(found.next),
        }))
    }

    async fn list_holdings(
        &self,
        request: Request<pb::ListHoldingsRequest>,
    ) -> Result<Response<pb::ListHoldingsResponse>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(r.page_size, &r.page_token, 50, 100, &mut violations);
        violations.into_result(())?;
        let found =
            self.trader.read(move |conn| async move { repo::list_holdings(conn, user, page).await }.boxed()).await?;
        let valued = portfolio::value(&self.trader, &found.items).await;
        Ok(Response::new(pb::ListHoldingsResponse {
            holdings: valued.iter().map(|v| convert::holding_to_pb(&v.holding, v.value, v.time, v.stale)).collect(),
            next_page_token: paging::next_page_token(found.next),
        }))
    }

    async fn get_portfolio(
        &self,
        request: Request<pb::GetPortfolioRequest>,
    ) -> Result<Response<pb::Portfolio>, Status> {
        let user = caller::user_id(&request)?;
        Ok(Response::new(portfolio::portfolio(&self.trader, user).await?))
    }

    async fn get_equity_history(
        &self,
        request: Request<pb::GetEquityHistoryRequest>,
    ) -> Result<Response<pb::EquityHistory>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.get_ref();
        let mut violations = Violations::new();
        let now = Utc::now();
        let end = r.end_time.as_ref().and_then(|t| status::time_field(t, "end_time", &mut violations)).unwrap_or(now);
        let start = r
            .start_time
            .as_ref()
            .and_then(|t| status::time_field(t, "start_time", &mut violations))
            .unwrap_or_else(|| end - chrono::Duration::days(30));
        violations.check(start < end, "start_time", "must be before end_time");
        violations.check(
            end - start <= chrono::Duration::days(400),
            "start_time",
            "must be at most 400 days before end_time",
        );
        violations.check((0..=1000).contains(&r.max_points), "max_points", "must be from 1 to 1000, or 0 for 200");
        violations.into_result(())?;
        let most = if r.max_points == 0 { 200 } else { i64::from(r.max_points) };
        let (snapshots, total) = self
            .trader
            .read(move |conn| async move { repo::snapshots_between(conn, user, start, end, most).await }.boxed())
            .await?;
        let points = snapshots
            .into_iter()
            .map(|s| pb::EquityPoint {
                time: Some(timestamp(s.taken_at)),
                equity_cents: s.equity_cents,
                deposits_cents: s.deposits_cents,
            })
            .collect();
        Ok(Response::new(pb::EquityHistory { points, snapshot_count: total }))
    }

    async fn get_balance(&self, request: Request<pb::GetBalanceRequest>) -> Result<Response<pb::Balance>, Status> {
        let user = caller::user_id(&request)?;
        let balance = self
            .trader
            .read(move |conn| {
                async move {
                    let account = repo::user_account(conn, user).await?;
                    let time = repo::last_entry_time(conn, account.id).await?.unwrap_or(account.created_at);
                    Ok(pb::Balance { available_cents: account.balance_cents, update_time: Some(timestamp(time)) })
                }
                .boxed()
            })
            .await?;
        Ok(Response::new(balance))
    }

    async fn deposit_funds(&self, request: Request<pb::DepositFundsRequest>) -> Result<Response<pb::Balance>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        cents(r.amount_cents, "amount_cents", &mut violations);
        key(&r.idempotency_key, &mut violations);
        violations.into_result(())?;
        let amount = r.amount_cents;
        let ledger = self.ledger.clone();
        let outcome = self
            .trader
            .read_committed(move |conn| {
                let (key, ledger) = (r.idempotency_key.clone(), ledger.clone());
                async move {
                    match repo::claim_idempotency_key(conn, user, &key, "deposit", &amount.to_string()).await? {
                        IdempotencyClaim::New => {
                            // The deposit's id follows from its key: a retry can never credit twice.
                            let digest = Sha256::digest(format!("deposit|{user}|{key}"));
                            let mut bytes = [0u8; 16];
                            bytes.copy_from_slice(&digest[..16]);
                            let id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
                            let posted = ledger.deposit(conn, id, user, amount).await?;
                            let account = repo::user_account(conn, user).await?;
                            let answer = serde_json::json!({
                                "available_cents": account.balance_cents,
                                "update_time": posted.created_at,
                            });
                            repo::complete_idempotency_key(conn, user, &key, &answer).await?;
                            Ok(Ok(answer))
                        }
                        IdempotencyClaim::Completed(answer) => Ok(Ok(answer)),
                        IdempotencyClaim::InProgress => Err(DatabaseError::NotFound("completed deposit")),
                        IdempotencyClaim::Mismatch { operation } => Ok(Err(operation)),
                    }
                }
                .boxed()
            })
            .await?;
        let answer = outcome.map_err(|operation| {
            status::failed_precondition(
                format!("the idempotency key was used before for another {operation}"),
                ErrorReason::IdempotencyKeyReused,
                [("operation".to_owned(), operation)],
            )
        })?;
        let time = answer["update_time"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        Ok(Response::new(pb::Balance {
            available_cents: answer["available_cents"].as_i64().unwrap_or_default(),
            update_time: time.map(|t| timestamp(t.with_timezone(&Utc))),
        }))
    }

    async fn get_leaderboard(
        &self,
        request: Request<pb::GetLeaderboardRequest>,
    ) -> Result<Response<pb::Leaderboard>, Status> {
        let user = caller::user_id(&request)?;
        let r = request.into_inner();
        let mut violations = Violations::new();
        let metric = pb::LeaderboardMetric::try_from(r.metric).ok();
        violations.check(metric.is_some(), "metric", "is not a known leaderboard metric");
        let period = Period::try_from(r.period).ok();
        violations.check(period.is_some(), "period", "is not a known period");
        let size = paging::page_size(r.page_size, 50, 100, &mut violations);
        let offset = paging::decode_offset(&r.page_token, &mut violations);
        violations.into_result(())?;
        let metric = match metric {
            Some(pb::LeaderboardMetric::Unspecified) | None => pb::LeaderboardMetric::Roi,
            Some(m) => m,
        };
        let period = match period {
            Some(Period::Unspecified) | None => Period::Week,
            Some(p) => p,
        };
        Ok(Response::new(self.boards.page(user, metric, period, offset, size).await?))
    }
}

#[tonic::async_trait]
impl TradingInternalService for TradingApi {
    async fn execute_purchase(
        &self,
        request: Request<pb::ExecutePurchaseRequest>,
    ) -> Result<Response<pb::Trade>, Status> {
        let r = request.into_inner();
        let order = Automated {
            user_id: r.user_id,
            listing_id: r.listing_id,
            max_price_cents: r.max_price_cents,
            idempotency_key: r.idempotency_key,
            strategy_id: r.strategy_id,
            decision_id: r.decision_id,
            valuation_id: r.valuation_id,
            reasoning: r.reasoning,
            factors: r.factors,
            expected_value_cents: r.expected_value_cents,
            relist: None,
        }
        .order()?;
        Ok(Response::new(trade_to_pb(&self.trader.purchase(order).await?)))
    }

    async fn get_trade_by_idempotency_key(
        &self,
        request: Request<pb::GetTradeByIdempotencyKeyRequest>,
    ) -> Result<Response<pb::Trade>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let user = violations.uuid(&r.user_id, "user_id");
        key(&r.idempotency_key, &mut violations);
        violations.into_result(())?;
        let user = user.unwrap_or_default();
        let trade = self
            .trader
            .read(move |conn| {
                let key = r.idempotency_key.clone();
                async move { repo::find_trade_by_key(conn, user, &key, TradeKind::Purchase).await }.boxed()
            })
            .await?
            .ok_or_else(|| status::not_found("trade"))?;
        Ok(Response::new(trade_to_pb(&trade)))
    }

    async fn execute_arbitrage(
        &self,
        request: Request<pb::ExecuteArbitrageRequest>,
    ) -> Result<Response<pb::BuyAndRelistResponse>, Status> {
        let r = request.into_inner();
        let order = Automated {
            user_id: r.user_id,
            listing_id: r.listing_id,
            max_price_cents: r.max_price_cents,
            idempotency_key: r.idempotency_key,
            strategy_id: r.strategy_id,
            decision_id: r.decision_id,
            valuation_id: r.valuation_id,
            reasoning: r.reasoning,
            factors: r.factors,
            expected_value_cents: 0,
            relist: Some((r.relist_source_id, r.relist_price_cents)),
        }
        .order()?;
        Ok(Response::new(self.arbitrage(order).await?))
    }

    async fn recompute_leaderboards(
        &self,
        _request: Request<pb::RecomputeLeaderboardsRequest>,
    ) -> Result<Response<pb::RecomputeLeaderboardsResponse>, Status> {
        let (ranked, at) = self.boards.recompute().await?;
        Ok(Response::new(pb::RecomputeLeaderboardsResponse {
            ranked_users: i64::try_from(ranked).unwrap_or(i64::MAX),
            compute_time: Some(timestamp(at)),
        }))
    }
}
