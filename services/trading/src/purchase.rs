//! A purchase, the one path of every purchase (manual, automated, or the buying half of an
//! arbitrage): the trade is recorded pending (its price reserved against the balance, under the
//! user's account lock) → risk places a hold → marketplace hands over the listing → one
//! database transaction settles it (ledger transfer, trade, holding, a sale for a FastBreak
//! seller, and outbox messages to commit the hold, notify and record the strategy's outcome).
//! A failure before the listing is taken fails the trade with the status its caller got and
//! releases the hold through the outbox; after it is taken, the purchase only goes forward.

use crate::store::{self as repo, Holding, Trade, TradeKind, TradeOrigin, TradeState};
use chrono::{DateTime, Utc};
use fastbreak_db::DatabaseError;
use fastbreak_db::OrStatus as _;
use fastbreak_db::outbox;

use fastbreak_mesh::status::is_answer;
use fastbreak_mesh::status::{self, timestamp};
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_internal_service_client::MarketplaceInternalServiceClient;
use fastbreak_proto::risk::v1 as risk;
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::user::v1 as user;
use futures::FutureExt;
use tonic::{Code, Status};
use uuid::Uuid;

use crate::convert::{self, factors_to_json};
use crate::domain::{Order, fee, refusal, relist_key};
use crate::ledger::{Seller, Transfer};
use crate::trader::{COMMIT_HOLD, INLINE_GRACE, Message, NOTIFY, RELEASE_HOLD, STRATEGY_OUTCOME, Trader, fail_point};

impl Trader {
    /// Buys a listing for a user: the one path of every purchase.
    pub(crate) async fn purchase(&self, order: Order) -> Result<Trade, Status> {
        let hash = order.hash();
        let existing = self.read(|conn| {
            let (user, key) = (order.user, order.key.clone());
            async move { repo::find_trade_by_key(conn, user, &key, TradeKind::Purchase).await }.boxed()
        });
        if let Some(trade) = existing.await? {
            return self.replay(trade, &hash).await;
        }
        let resale_bps = match &order.relist {
            Some((source, _)) => Some(self.fee_bps(source, "relist_source_id").await?),
            None => None,
        };
        let listing = self.listing(order.listing).await?;
        let moment =
            Uuid::parse_str(&listing.moment_id).map_err(|_| Status::internal("marketplace sent a bad moment id"))?;
        if let Some((source, _)) = &order.relist
            && *source == listing.source_id
        {
            return Err(status::invalid_field("relist_source_id", "must be another source than the listing's"));
        }
        let fee_bps = self.fee_bps(&listing.source_id, "listing_id").await?;
        let resale_bps = resale_bps.unwrap_or(fee_bps);
        let wallet = self.user_status(order.user).await?;
        let fees = (fee_bps, resale_bps);
        let turn = self.turns.take(&order.user).await;
        let mut admitted = self.admit(&order, &hash, &listing, moment, fees, &wallet).await;
        if matches!(&admitted, Err(DatabaseError::UniqueViolation { constraint }) if constraint == "trades_one_purchase_per_listing")
        {
            // Another purchase of the listing began at the same instant; the second look finds it.
            admitted = self.admit(&order, &hash, &listing, moment, fees, &wallet).await;
        }
        drop(turn);
        let (trade, balance, at) = match admitted.or_status()? {
            Admission::Admitted { trade, balance, at } => (trade, balance, at),
            Admission::Existing(trade) => return self.replay(trade, &hash).await,
            Admission::Refused(trade) => return Err(convert::status_of(&trade)),
        };
        self.authorize_and_take(trade, balance, at).await
    }

    /// Records the purchase pending, with its price reserved against the balance, or failed
    /// with the reason it cannot go on; all under the user's account lock.
    pub(crate) async fn admit(
        &self,
        order: &Order,
        hash: &str,
        listing: &market::Listing,
        moment: Uuid,
        (fee_bps, resale_bps): (i64, i64),
        wallet: &user::UserStatus,
    ) -> Result<Admission, DatabaseError> {
        self.database
            .read_committed(|conn| {
                let order = order.clone();
                let hash = hash.to_owned();
                let listing = listing.clone();
                let wallet = wallet.clone();
                async move {
                    // Under the account's lock: the lock with one read, the trade, the commit.
                    let facts = repo::lock_for_admission(conn, order.user, &order.key, order.listing).await?;
                    if let Some(id) = facts.existing {
                        let existing = repo::find_trade(conn, order.user, id).await?;
                        return Ok(Admission::Existing(existing.ok_or(DatabaseError::NotFound("trade"))?));
                    }
                    let at = facts.at;
                    let price = listing.price_cents;
                    let fee_cents = fee(price, fee_bps);
                    let available = facts.balance_cents - facts.pending_cents;
                    let refusal = refusal(&order, &listing, &wallet, resale_bps, available, facts.live_state);
                    let mut trade = new_trade(&order, &hash, TradeKind::Purchase, moment, price, at);
                    trade.listing_id = Some(order.listing);
                    trade.fee_cents = fee_cents;
                    trade.source_id = listing.source_id.clone();
                    trade.buyer_address = wallet.flow_address.clone();
                    if let Some(status) = refusal {
                        let (message, code, details) = convert::failure_of(&status);
                        trade.state = TradeState::Failed;
                        trade.failure_reason = Some(message);
                        trade.failure_code = Some(code);
                        trade.failure_details = Some(details);
                        return Ok(match repo::insert_trade_if_new(conn, &trade).await? {
                            Some(trade) => Admission::Refused(trade),
                            None => Admission::Existing(
                                repo::find_trade_by_key(conn, order.user, &order.key, TradeKind::Purchase)
                                    .await?
                                    .ok_or(DatabaseError::NotFound("trade"))?,
                            ),
                        });
                    }
                    Ok(match repo::insert_trade_if_new(conn, &trade).await? {
                        Some(trade) => Admission::Admitted { trade, balance: facts.balance_cents, at },
                        None => Admission::Existing(
                            repo::find_trade_by_key(conn, order.user, &order.key, TradeKind::Purchase)
                                .await?
                                .ok_or(DatabaseError::NotFound("trade"))?,
                        ),
                    })
                }
                .boxed()
            })
            .await
    }

    /// The hold, then the listing, then settlement.
    pub(crate) async fn authorize_and_take(
        &self,
        trade: Trade,
        balance: i64,
        at: DateTime<Utc>,
    ) -> Result<Trade, Status> {
        fail_point!(self, "trading::before-hold");
        let client = match self.peers.risk.channel() {
            Ok(channel) => RiskInternalServiceClient::new(channel),
            Err(status) => {
                let status = status::with_reason(
                    Code::Unavailable,
                    "risk is not configured, so nothing was bought",
                    ErrorReason::DependencyUnavailable,
                    [("service".to_owned(), "risk".to_owned()), ("detail".to_owned(), status.message().to_owned())],
                    tonic_types::ErrorDetails::new(),
                );
                self.fail(&trade, &status, None).await?;
                return Err(status);
            }
        };
        let origin = match trade.origin {
            TradeOrigin::Manual => risk::PurchaseOrigin::Manual,
            TradeOrigin::Automated => risk::PurchaseOrigin::Automated,
        };
        let authorize = risk::AuthorizePurchaseRequest {
            user_id: trade.user_id.to_string(),
            amount_cents: trade.price_cents,
            moment_id: trade.moment_id.to_string(),
            idempotency_key: trade.idempotency_key.clone(),
            balance_cents: balance,
            balance_time: Some(timestamp(at)),
            origin: origin.into(),
        };
        // Risk places one hold per key: asking again is safe.
        let authorized = self
            .read_from(&self.peers.risk, || {
                let (mut client, request) = (client.clone(), self.request(authorize.clone()));
                async move { client.authorize_purchase(request).await.map(|r| r.into_inner()) }
            })
            .await;
        let hold = match authorized {
            Ok(hold) => hold,
            Err(status) => {
                // Whatever risk may have placed under the key is released by its reconciler,
                // which finds this trade failed. A purchase risk could not answer is over: its
                // key answers the same from now on, and a new key tries again.
                let status = if is_answer(&status) {
                    status
                } else {
                    status::with_reason(
                        Code::Unavailable,
                        "risk could not be reached, so nothing was bought; try again with a new idempotency key",
                        ErrorReason::DependencyUnavailable,
                        [("service".to_owned(), "risk".to_owned())],
                        tonic_types::ErrorDetails::new(),
                    )
                };
                self.fail(&trade, &status, None).await?;
                return Err(status);
            }
        };
        let hold_id = Uuid::parse_str(&hold.hold_id).map_err(|_| Status::internal("risk sent a bad hold id"))?;
        fail_point!(self, "trading::before-hold-noted");
        // One statement: it commits on its own (a round trip, where a transaction takes three).
        let noted = self
            .database
            .autocommit(|conn| async move { repo::set_trade_hold(conn, trade.id, hold_id).await }.boxed())
            .await
            .or_status()?;
        if !noted {
            // The worker gave the purchase up meanwhile: the hold goes back.
            self.release_now(trade.id, hold_id, "the purchase was given up").await;
            return self.current(trade.id).await.and_then(answer);
        }
        fail_point!(self, "trading::after-hold");
        self.take_and_settle(Trade { hold_id: Some(hold_id), ..trade }).await
    }

    /// Takes the listing and settles; a refusal fails the trade and releases the hold; a call
    /// that did not get through leaves the trade pending for the worker.
    pub(crate) async fn take_and_settle(&self, trade: Trade) -> Result<Trade, Status> {
        let listing = trade.listing_id.ok_or_else(|| Status::internal("a purchase without a listing"))?;
        let mut client = MarketplaceInternalServiceClient::new(self.peers.marketplace.channel()?);
        let request = self.request(market::TakeListingRequest {
            listing_id: listing.to_string(),
            buyer_address: trade.buyer_address.clone(),
            max_price_cents: trade.price_cents,
        });
        let sale = match client.take_listing(request).await {
            Ok(sale) => sale.into_inner(),
            Err(status) if is_answer(&status) => {
                self.fail(&trade, &status, trade.hold_id).await?;
                return Err(status);
            }
            Err(_) => {
                // Taken or not, nobody knows yet: the worker asks again later.
                return Err(status::dependency_unavailable("marketplace", self.settings.recover_after));
            }
        };
        fail_point!(self, "trading::after-take");
        let settled = self.settle(&trade, sale.price_cents).await?;
        fail_point!(self, "trading::after-settle");
        if settled.state != TradeState::Settled {
            return answer(settled);
        }
        self.deliver_now(settled).await
    }

    /// Settles a purchase in one transaction; a purchase settled before is returned as is.
    pub(crate) async fn settle(&self, trade: &Trade, price: i64) -> Result<Trade, Status> {
        // The fee recorded at admission, in proportion if the price paid differs (never a call
        // to another service once the listing is taken).
        let fee_cents = if trade.price_cents > 0 {
            i64::try_from(i128::from(trade.fee_cents) * i128::from(price) / i128::from(trade.price_cents)).unwrap_or(0)
        } else {
            0
        };
        let ledger = self.ledger.clone();
        let (trade_id, user, moment) = (trade.id, trade.user_id, trade.moment_id);
        self.read_committed(move |conn| {
            let ledger = ledger.clone();
            async move {
                let Some(current) = repo::lock_trade(conn, trade_id).await? else {
                    return Err(DatabaseError::NotFound("trade"));
                };
                if current.state != TradeState::Pending {
                    return Ok(current);
                }
                let holder = repo::lock_holding(conn, moment).await?.filter(|h| h.user_id != user);
                let seller = holder.as_ref().map_or(Seller::Market, |h| Seller::User(h.user_id));
                let transfer = Transfer {
                    id: trade_id,
                    buyer: user,
                    seller,
                    price_cents: price,
                    fee_cents,
                    description: format!("moment {moment} bought for {price} cents"),
                };
                // The ledger transaction is the trade's own id (the ledger refuses a repeat). The
                // trade names it now; the transfer is posted last (below), just before the commit:
                // its entries update the market's and the fees' account rows, which every
                // purchase shares, so they are held for the shortest time (the trade's reference
                // to it is checked at the commit).
                let ledger_id = transfer.id;
                let settled = repo::settle_trade_at(conn, trade_id, ledger_id, price, fee_cents).await?;
                if let Some(holding) = holder {
                    sell(conn, &settled, &holding, ledger_id).await?;
                }
                let now = Utc::now();
                repo::put_holding(
                    conn,
                    &Holding {
                        moment_id: moment,
                        user_id: user,
                        cost_cents: price,
                        trade_id: Some(trade_id),
                        acquired_at: now,
                        listing_id: None,
                        value_cents: Some(price),
                        valued_at: Some(now),
                    },
                )
                .await?;
                let message = Message::new(trade_id, settled.hold_id, String::new());
                let payload = serde_json::to_value(&message).unwrap_or_default();
                let key = trade_id.to_string();
                if settled.hold_id.is_some() {
                    // Delivered inline first; the worker takes it if that fails.
                    outbox::enqueue_after(conn, COMMIT_HOLD, &key, &payload, INLINE_GRACE).await?;
                }
                outbox::enqueue(conn, NOTIFY, &key, &payload).await?;
                if settled.strategy_id.is_some() {
                    outbox::enqueue(conn, STRATEGY_OUTCOME, &key, &payload).await?;
                }
                if !settled.relist_source_id.is_empty() {
                    let mut relist = settled.clone();
                    relist.id = Uuid::new_v4();
                    relist.idempotency_key = relist_key(trade_id);
                    relist.kind = TradeKind::SaleListing;
                    relist.state = TradeState::Pending;
                    relist.listing_id = None;
                    relist.source_id = settled.relist_source_id.clone();
                    relist.price_cents = settled.relist_price_cents;
                    relist.fee_cents = 0;
                    relist.hold_id = None;
                    relist.ledger_transaction_id = None;
                    relist.settled_at = None;
                    relist.created_at = now;
                    repo::insert_trade_if_new(conn, &relist).await?;
                }
                // Posted under the transfer's id, the one the trade names.
                ledger.transfer(conn, &transfer).await?;
                Ok(settled)
            }
            .boxed()
        })
        .await
    }

    /// The sale listing an arbitrage's purchase relists its moment with.
    pub(crate) async fn relist_of(&self, purchase: &Trade) -> Result<Option<Trade>, Status> {
        let (user, key) = (purchase.user_id, relist_key(purchase.id));
        self.read(move |conn| {
            let key = key.clone();
            async move { repo::find_trade_by_key(conn, user, &key, TradeKind::SaleListing).await }.boxed()
        })
        .await
    }

    /// Fails a pending trade with the status its caller gets, releasing its hold (through the
    /// outbox) when one was placed.
    pub(crate) async fn fail(&self, trade: &Trade, status: &Status, hold: Option<Uuid>) -> Result<(), Status> {
        let (message, code, details) = convert::failure_of(status);
        let trade_id = trade.id;
        let failed = self
            .read_committed(move |conn| {
                let (message, details) = (message.clone(), details.clone());
                async move {
                    let failed = repo::fail_trade_with(conn, trade_id, &message, code, &details).await?;
                    if failed.is_some()
                        && let Some(hold_id) = hold
                    {
                        let payload = serde_json::to_value(Message::new(trade_id, Some(hold_id), message.clone()))
                            .unwrap_or_default();
                        outbox::enqueue_after(conn, RELEASE_HOLD, &trade_id.to_string(), &payload, INLINE_GRACE)
                            .await?;
                    }
                    Ok(failed.is_some())
                }
                .boxed()
            })
            .await?;
        if failed && let Some(hold_id) = hold {
            self.release_now(trade_id, hold_id, status.message()).await;
        }
        Ok(())
    }
}

/// What recording a purchase found.
pub(crate) enum Admission {
    /// Recorded pending, with the balance read and when.
    Admitted { trade: Trade, balance: i64, at: DateTime<Utc> },
    /// Refused and recorded failed (its status kept for replays).
    Refused(Trade),
    /// A trade had the key already.
    Existing(Trade),
}

/// A new trade of a kind for an order.
pub(crate) fn new_trade(
    order: &Order,
    hash: &str,
    kind: TradeKind,
    moment: Uuid,
    price: i64,
    at: DateTime<Utc>,
) -> Trade {
    Trade {
        id: Uuid::new_v4(),
        user_id: order.user,
        kind,
        state: TradeState::Pending,
        origin: order.origin,
        moment_id: moment,
        listing_id: None,
        price_cents: price,
        fee_cents: 0,
        strategy_id: order.strategy,
        decision_id: order.decision,
        reasoning: order.reasoning.clone(),
        idempotency_key: order.key.clone(),
        hold_id: None,
        ledger_transaction_id: None,
        failure_reason: None,
        created_at: at,
        settled_at: None,
        valuation_id: order.valuation,
        factors: factors_to_json(&order.factors),
        expected_value_cents: order.expected_value,
        source_id: String::new(),
        buyer_address: String::new(),
        max_price_cents: order.max_price,
        relist_source_id: order.relist.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
        relist_price_cents: order.relist.as_ref().map_or(0, |r| r.1),
        request_hash: hash.to_owned(),
        failure_code: None,
        failure_details: None,
        realized_pnl_cents: 0,
    }
}

/// A trade as its caller is answered: failed trades as the status their first caller got.
pub(crate) fn answer(trade: Trade) -> Result<Trade, Status> {
    if trade.state == TradeState::Failed { Err(convert::status_of(&trade)) } else { Ok(trade) }
}

/// Records a FastBreak seller's sale inside a settlement: their trade (with its realised
/// profit) and the end of their holding.
async fn sell(
    conn: &mut fastbreak_db::PgConnection,
    purchase: &Trade,
    holding: &Holding,
    ledger_transaction: Uuid,
) -> Result<(), DatabaseError> {
    let now = Utc::now();
    let proceeds = purchase.price_cents - purchase.fee_cents;
    // The sale belongs to the strategy that bought the moment, if one did: its profit or loss
    // counts in that strategy's performance and protections.
    let strategy_id = match holding.trade_id {
        Some(bought) => repo::find_trade_by_id(conn, bought).await?.and_then(|t| t.strategy_id),
        None => None,
    };
    let sale = Trade {
        id: Uuid::new_v4(),
        user_id: holding.user_id,
        kind: TradeKind::Sale,
        state: TradeState::Settled,
        origin: TradeOrigin::Manual,
        moment_id: purchase.moment_id,
        listing_id: purchase.listing_id,
        price_cents: purchase.price_cents,
        fee_cents: purchase.fee_cents,
        strategy_id,
        decision_id: None,
        reasoning: vec![format!("Sold to another collector for {} cents.", purchase.price_cents)],
        idempotency_key: format!("sale:{}", purchase.id),
        hold_id: None,
        ledger_transaction_id: Some(ledger_transaction),
        failure_reason: None,
        created_at: now,
        settled_at: Some(now),
        valuation_id: None,
        factors: serde_json::json!([]),
        expected_value_cents: 0,
        source_id: purchase.source_id.clone(),
        buyer_address: String::new(),
        max_price_cents: 0,
        relist_source_id: String::new(),
        relist_price_cents: 0,
        request_hash: String::new(),
        failure_code: None,
        failure_details: None,
        realized_pnl_cents: proceeds - holding.cost_cents,
    };
    repo::insert_trade(conn, &sale).await?;
    repo::remove_holding(conn, holding.user_id, holding.moment_id).await?;
    let payload = serde_json::to_value(Message::new(sale.id, None, String::new())).unwrap_or_default();
    outbox::enqueue(conn, NOTIFY, &sale.id.to_string(), &payload).await?;
    if sale.strategy_id.is_some() {
        outbox::enqueue(conn, STRATEGY_OUTCOME, &sale.id.to_string(), &payload).await?;
    }
    Ok(())
}
