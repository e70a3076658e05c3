//! The engine behind every trade, shared by the RPCs and the worker: a purchase (manual,
//! automated, or the buying half of an arbitrage) and a listing (a sale listing, an arbitrage's
//! relist, or a new price), each driven from what the database says, so that the worker can
//! finish or undo what a crash interrupted.
//!
//! A purchase: the trade is recorded pending (its price reserved against the balance, under the
//! user's account lock) → risk places a hold → marketplace hands over the listing → one
//! database transaction settles it (ledger transfer, trade, holding, a sale for a FastBreak
//! seller, and outbox messages to commit the hold, notify and record the strategy's outcome).
//! A failure before the listing is taken fails the trade with the status its caller got and
//! releases the hold through the outbox; after it is taken, the purchase only goes forward.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fastbreak_db::repo::outbox;
use fastbreak_db::repo::trading::{self as repo, Holding, Trade, TradeKind, TradeOrigin, TradeState};
use fastbreak_db::{Database, DatabaseError};
use fastbreak_mesh::status::{self, timestamp};
use fastbreak_mesh::{PeerChannel, Peers};
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_internal_service_client::MarketplaceInternalServiceClient;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::notification::v1 as notification;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::risk::v1 as risk;
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::strategy::v1::strategy_internal_service_client::StrategyInternalServiceClient;
use fastbreak_proto::trading::v1 as pb;
use fastbreak_proto::user::v1 as user;
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Status};
use uuid::Uuid;

use crate::convert::{self, factors_to_json};
use crate::ledger::{Ledger, Seller, Transfer};
use crate::settings::Settings;

/// Outbox topics: a settled purchase's hold to commit, a failed one's to release, a
/// notification to send, a strategy outcome to record.
pub(crate) const COMMIT_HOLD: &str = "trading.commit_hold";
pub(crate) const RELEASE_HOLD: &str = "trading.release_hold";
pub(crate) const NOTIFY: &str = "trading.notify";
pub(crate) const STRATEGY_OUTCOME: &str = "trading.strategy_outcome";

/// The source a listing goes on when none is named.
pub(crate) const DEFAULT_SOURCE: &str = "simulator";

/// How long a message the request delivers itself waits before the worker may take it.
const INLINE_GRACE: Duration = Duration::from_secs(2);

/// How long a repeated request waits for the first one to finish before answering with the
/// trade as it stands (pending).
const REPLAY_WAIT: Duration = Duration::from_secs(5);

/// The key of an arbitrage's relist: its purchase's id.
fn relist_key(purchase: Uuid) -> String {
    format!("relist:{purchase}")
}

/// An outbox message's payload: the trade it is about, and what to tell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Message {
    pub trade_id: Uuid,
    #[serde(default)]
    pub hold_id: Option<Uuid>,
    #[serde(default)]
    pub reason: String,
    /// The trace of the call that wrote it, continued by its delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The correlation id of the call that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl Message {
    /// A message about `trade_id` written by the call being served, carrying its trace.
    pub(crate) fn new(trade_id: Uuid, hold_id: Option<Uuid>, reason: String) -> Self {
        let (traceparent, correlation_id) = fastbreak_telemetry::carried_context();
        Self { trade_id, hold_id, reason, traceparent, correlation_id }
    }
}

/// A purchase asked for: by the user, by the agents, or as an arbitrage's first half.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub user: Uuid,
    pub listing: Uuid,
    pub max_price: i64,
    pub key: String,
    pub origin: TradeOrigin,
    pub strategy: Option<Uuid>,
    pub decision: Option<Uuid>,
    pub valuation: Option<Uuid>,
    pub reasoning: Vec<String>,
    pub factors: Vec<pb::ReasoningFactor>,
    pub expected_value: i64,
    /// Where and at what price to relist, for an arbitrage.
    pub relist: Option<(String, i64)>,
}

impl Order {
    /// A hash of every parameter: the same key with any other parameter is refused.
    fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        let text = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{}",
            self.listing,
            self.max_price,
            self.origin,
            self.strategy,
            self.decision,
            self.valuation,
            self.reasoning,
            self.relist,
            self.expected_value,
            self.factors.iter().map(|f| (&f.name, f.weight.to_bits(), f.impact_cents)).collect::<Vec<_>>(),
            self.key
        );
        hasher.update(text.as_bytes());
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Whether a peer's error status is an answer about the request (the call reached a server
/// that decided), as opposed to the call not getting through.
pub(crate) fn is_answer(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
    )
}

/// A marketplace fee, in cents, rounded down.
pub(crate) fn fee(price: i64, fee_bps: i64) -> i64 {
    i64::try_from(i128::from(price) * i128::from(fee_bps) / 10_000).unwrap_or(i64::MAX)
}

/// A fail point of this trader (with the `failpoints` feature): its name carries the settings'
/// scope, so that a test configures only its own server's.
macro_rules! fail_point {
    ($trader:expr, $name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!(&format!("{}{}", $trader.settings.fail_point_scope, $name));
    };
    ($trader:expr, $name:literal, $action:expr) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!(&format!("{}{}", $trader.settings.fail_point_scope, $name), $action);
    };
}

/// The engine.
#[derive(Debug, Clone)]
pub(crate) struct Trader {
    pub database: Database,
    pub settings: Arc<Settings>,
    ledger: Arc<dyn Ledger>,
    peers: Peers,
    /// Fee of each market source, in basis points.
    fees: Arc<Mutex<HashMap<String, i64>>>,
}

impl Trader {
    pub(crate) fn new(database: Database, settings: Arc<Settings>, ledger: Arc<dyn Ledger>, peers: Peers) -> Self {
        Self { database, settings, ledger, peers, fees: Arc::default() }
    }

    pub(crate) fn peer(&self, name: &str) -> Result<PeerChannel, Status> {
        self.peers.get(name).ok_or_else(|| status::dependency_unavailable(name, Duration::from_secs(5)))
    }

    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.settings.call_timeout);
        request
    }

    /// A peer's failure as this call's: its answers pass through, anything else names it.
    fn through(peer: &str, status: Status) -> Status {
        if is_answer(&status) { status } else { status::dependency_unavailable(peer, Duration::from_secs(1)) }
    }

    /// Calls a read (or a call idempotent by its key) `call` to `peer` up to three times while it
    /// does not get through (it is safe to send again); its answers, and the last failure, as
    /// this call's.
    async fn read_from<T, F, Fut>(peer: &str, mut call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match call().await {
                Ok(value) => return Ok(value),
                Err(status) if is_answer(&status) || tries == 3 => return Err(Self::through(peer, status)),
                Err(_) => tokio::time::sleep(Duration::from_millis(50 * tries)).await,
            }
        }
    }

    pub(crate) async fn user_status(&self, user_id: Uuid) -> Result<user::UserStatus, Status> {
        let channel = self.peer("user")?;
        Self::read_from("user", || {
            let mut client = UserInternalServiceClient::new(channel.clone());
            let request = self.request(user::GetUserStatusRequest { user_id: user_id.to_string() });
            async move { client.get_user_status(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// The user's wallet address, refused with WALLET_DISCONNECTED while trading is off.
    pub(crate) async fn wallet(&self, user_id: Uuid) -> Result<String, Status> {
        let status = self.user_status(user_id).await?;
        if !status.trading_enabled || status.flow_address.is_empty() {
            return Err(wallet_disconnected());
        }
        Ok(status.flow_address)
    }

    async fn listing(&self, listing_id: Uuid) -> Result<market::Listing, Status> {
        let channel = self.peer("marketplace")?;
        Self::read_from("marketplace", || {
            let mut client = MarketplaceServiceClient::new(channel.clone());
            let request = self.request(market::GetListingRequest { listing_id: listing_id.to_string() });
            async move { client.get_listing(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// A source's fee in basis points; NOT_FOUND naming `field` for an unknown source.
    pub(crate) async fn fee_bps(&self, source: &str, field: &str) -> Result<i64, Status> {
        if let Some(bps) = self.fees.lock().expect("fees lock").get(source) {
            return Ok(*bps);
        }
        let client = MarketplaceServiceClient::new(self.peer("marketplace")?);
        let request = self.request(market::ListMarketSourcesRequest { page_size: 100, ..Default::default() });
        let sources = Self::read_from("marketplace", || {
            let (mut client, request) = (client.clone(), self.request(request.get_ref().clone()));
            async move { client.list_market_sources(request).await.map(|r| r.into_inner()) }
        })
        .await?;
        let mut fees = self.fees.lock().expect("fees lock");
        for s in sources.sources {
            fees.insert(s.source_id, i64::from(s.fee_bps));
        }
        fees.get(source)
            .copied()
            .ok_or_else(|| status::invalid_field(field, format!("no market source is named {source:?}")))
    }

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
        let mut admitted = self.admit(&order, &hash, &listing, moment, fees, &wallet).await;
        if matches!(&admitted, Err(DatabaseError::UniqueViolation { constraint }) if constraint == "trades_one_purchase_per_listing")
        {
            // Another purchase of the listing began at the same instant; the second look finds it.
            admitted = self.admit(&order, &hash, &listing, moment, fees, &wallet).await;
        }
        let (trade, balance, at) = match admitted.map_err(|e| status::from_database(&e))? {
            Admission::Admitted { trade, balance, at } => (trade, balance, at),
            Admission::Existing(trade) => return self.replay(trade, &hash).await,
            Admission::Refused(trade) => return Err(convert::status_of(&trade)),
        };
        self.authorize_and_take(trade, balance, at).await
    }

    /// Records the purchase pending, with its price reserved against the balance, or failed
    /// with the reason it cannot go on; all under the user's account lock.
    async fn admit(
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
                    let account = repo::lock_user_account(conn, order.user).await?;
                    if let Some(trade) =
                        repo::find_trade_by_key(conn, order.user, &order.key, TradeKind::Purchase).await?
                    {
                        return Ok(Admission::Existing(trade));
                    }
                    let at = repo::database_now(conn).await?;
                    let pending = repo::pending_purchase_total(conn, order.user).await?;
                    let live = repo::live_purchase_of_listing(conn, order.listing).await?;
                    let price = listing.price_cents;
                    let fee_cents = fee(price, fee_bps);
                    let refusal = refusal(&order, &listing, &wallet, resale_bps, account.balance_cents - pending, live);
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
                        Some(trade) => Admission::Admitted { trade, balance: account.balance_cents, at },
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
    async fn authorize_and_take(&self, trade: Trade, balance: i64, at: DateTime<Utc>) -> Result<Trade, Status> {
        fail_point!(self, "trading::before-hold");
        let client = match self.peer("risk") {
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
        let authorized = Self::read_from("risk", || {
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
        let noted =
            self.write(|conn| async move { repo::set_trade_hold(conn, trade.id, hold_id).await }.boxed()).await?;
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
    async fn take_and_settle(&self, trade: Trade) -> Result<Trade, Status> {
        let listing = trade.listing_id.ok_or_else(|| Status::internal("a purchase without a listing"))?;
        let mut client = MarketplaceInternalServiceClient::new(self.peer("marketplace")?);
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
    async fn settle(&self, trade: &Trade, price: i64) -> Result<Trade, Status> {
        // The fee recorded at admission, in proportion if the price paid differs (never a call
        // to another service once the listing is taken).
        let fee_cents = if trade.price_cents > 0 {
            i64::try_from(i128::from(trade.fee_cents) * i128::from(price) / i128::from(trade.price_cents)).unwrap_or(0)
        } else {
            0
        };
        let ledger = self.ledger.clone();
        let (trade_id, user, moment) = (trade.id, trade.user_id, trade.moment_id);
        self.write(move |conn| {
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
                let posted = ledger.transfer(conn, &transfer).await?;
                let settled = repo::settle_trade_at(conn, trade_id, posted.id, price, fee_cents).await?;
                if let Some(holding) = holder {
                    sell(conn, &settled, &holding, posted.id).await?;
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
                Ok(settled)
            }
            .boxed()
        })
        .await
    }

    /// After settlement: commits the hold and lists an arbitrage's moment now when the peers
    /// answer (the outbox and the worker do it otherwise).
    async fn deliver_now(&self, trade: Trade) -> Result<Trade, Status> {
        fail_point!(self, "trading::before-commit");
        if let Some(hold_id) = trade.hold_id {
            let message = Message::new(trade.id, Some(hold_id), String::new());
            if self.deliver(COMMIT_HOLD, &message).await.is_ok() {
                let key = trade.id.to_string();
                let marked = self
                    .write(move |conn| {
                        let key = key.clone();
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
    async fn fail(&self, trade: &Trade, status: &Status, hold: Option<Uuid>) -> Result<(), Status> {
        let (message, code, details) = convert::failure_of(status);
        let trade_id = trade.id;
        let failed = self
            .write(move |conn| {
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

    async fn release_now(&self, trade_id: Uuid, hold_id: Uuid, reason: &str) {
        let message = Message::new(trade_id, Some(hold_id), reason.to_owned());
        if self.deliver(RELEASE_HOLD, &message).await.is_ok() {
            let key = trade_id.to_string();
            let _ = self
                .write(move |conn| {
                    let key = key.clone();
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
                let mut client = RiskInternalServiceClient::new(self.peer("risk")?);
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
                let mut client = NotificationInternalServiceClient::new(self.peer("notification")?);
                let (category, title) = match trade.kind {
                    TradeKind::Sale => (notification::NotificationCategory::Sale, "Moment sold"),
                    _ => (notification::NotificationCategory::Purchase, "Moment bought"),
                };
                let dollars = |cents: i64| format!("${}.{:02}", cents / 100, cents % 100);
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
                let mut client = StrategyInternalServiceClient::new(self.peer("strategy")?);
                let request = self.request(strategy::RecordStrategyOutcomeRequest {
                    strategy_id: strategy_id.to_string(),
                    trade_id: trade.id.to_string(),
                    spent_cents: trade.price_cents,
                    proceeds_cents: 0,
                    realized_pnl_cents: 0,
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

    /// Lists a moment (a sale listing or an arbitrage's relist) or changes a listing's price,
    /// as a pending trade says; repeated, the marketplace answers the same listing.
    pub(crate) async fn finish_listing(&self, trade: Trade) -> Result<Trade, Status> {
        if trade.state != TradeState::Pending {
            return answer(trade);
        }
        fail_point!(self, "trading::before-listing", |_| Err(Status::unavailable("the listing call was cut off")));
        let outcome = match trade.kind {
            TradeKind::SaleListing => {
                let mut client = MarketplaceInternalServiceClient::new(self.peer("marketplace")?);
                let request = self.request(market::CreateListingRequest {
                    seller_address: trade.buyer_address.clone(),
                    moment_id: trade.moment_id.to_string(),
                    source_id: trade.source_id.clone(),
                    price_cents: trade.price_cents,
                    idempotency_key: format!("trade:{}", trade.id),
                });
                client.create_listing(request).await.map(|r| r.into_inner())
            }
            TradeKind::Relist => {
                let mut client = MarketplaceInternalServiceClient::new(self.peer("marketplace")?);
                let request = self.request(market::UpdateListingPriceRequest {
                    seller_address: trade.buyer_address.clone(),
                    listing_id: trade.listing_id.map(|l| l.to_string()).unwrap_or_default(),
                    price_cents: trade.price_cents,
                });
                client.update_listing_price(request).await.map(|r| r.into_inner())
            }
            _ => return Err(Status::internal("not a listing trade")),
        };
        match outcome {
            Ok(listing) => {
                let listing_id =
                    Uuid::parse_str(&listing.listing_id).map_err(|_| Status::internal("bad listing id"))?;
                let (trade_id, user, moment) = (trade.id, trade.user_id, trade.moment_id);
                self.write(move |conn| {
                    async move {
                        repo::set_trade_listing(conn, trade_id, listing_id).await?;
                        repo::set_holding_listing(conn, user, moment, Some(listing_id)).await?;
                        match repo::complete_trade(conn, trade_id).await? {
                            Some(trade) => Ok(trade),
                            None => {
                                repo::find_trade_by_id(conn, trade_id).await?.ok_or(DatabaseError::NotFound("trade"))
                            }
                        }
                    }
                    .boxed()
                })
                .await
            }
            // A definite refusal ends the listing trade (an arbitrage's moment stays owned and
            // unlisted, the refusal recorded on the relist); a call that did not get through is
            // tried again by the worker while the trade stays pending (an open position).
            Err(status) if is_answer(&status) => {
                self.fail(&trade, &status, None).await?;
                Err(status)
            }
            Err(status) => Err(Self::through("marketplace", status)),
        }
    }

    /// The worker's repair of a pending trade left behind by a crash or a lost call: a
    /// purchase without a hold is failed (risk releases any hold under its key when it asks);
    /// one with a hold asks the marketplace for the listing again, and settles or fails as it
    /// answers; a listing is made again (the marketplace answers the same one).
    pub(crate) async fn recover(&self, trade: Trade) -> Result<Trade, Status> {
        match (trade.kind, trade.hold_id) {
            (TradeKind::Purchase, None) => {
                let status = status::with_reason(
                    Code::Aborted,
                    "the purchase was interrupted before its hold was noted; nothing moved",
                    ErrorReason::InvalidState,
                    [],
                    tonic_types::ErrorDetails::new(),
                );
                let (message, code, details) = convert::failure_of(&status);
                let id = trade.id;
                // Only while no hold is noted: a live call may have gone on meanwhile.
                self.write(move |conn| {
                    let (message, details) = (message.clone(), details.clone());
                    async move { repo::fail_unheld_trade(conn, id, &message, code, &details).await }.boxed()
                })
                .await?;
                self.current(trade.id).await
            }
            (TradeKind::Purchase, Some(_)) => match self.take_and_settle(trade.clone()).await {
                Ok(trade) => Ok(trade),
                Err(status) if is_answer(&status) => self.current(trade.id).await,
                Err(status) => Err(status),
            },
            (TradeKind::SaleListing | TradeKind::Relist, _) => self.finish_listing(trade).await,
            (TradeKind::Sale, _) => Ok(trade),
        }
    }

    /// A repeat of a request under a key used before: the first answer, once it is known.
    pub(crate) async fn replay(&self, trade: Trade, hash: &str) -> Result<Trade, Status> {
        if trade.request_hash != hash {
            return Err(key_reused(&trade));
        }
        let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
        let mut trade = trade;
        while trade.state == TradeState::Pending && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trade = self.current(trade.id).await?;
        }
        answer(trade)
    }

    pub(crate) async fn current(&self, id: Uuid) -> Result<Trade, Status> {
        self.read(move |conn| async move { repo::find_trade_by_id(conn, id).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("trade"))
    }

    pub(crate) async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(
            &'c mut fastbreak_db::PgConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, DatabaseError>>
        + Send,
    ) -> Result<T, Status> {
        self.database.read(work).await.map_err(|e| status::from_database(&e))
    }

    pub(crate) async fn write<T: Send>(
        &self,
        work: impl for<'c> Fn(
            &'c mut fastbreak_db::PgConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, DatabaseError>>
        + Send
        + Sync,
    ) -> Result<T, Status> {
        self.database.read_committed(work).await.map_err(|e| status::from_database(&e))
    }
}

/// What recording a purchase found.
enum Admission {
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

/// Why a purchase cannot begin, checked in this order: the wallet, the listing, the price, the
/// profit after fees, another purchase of the listing, the balance.
fn refusal(
    order: &Order,
    listing: &market::Listing,
    wallet: &user::UserStatus,
    fee_bps: i64,
    available: i64,
    live: Option<Trade>,
) -> Option<Status> {
    let price = listing.price_cents;
    let listing_id = ("listing_id".to_owned(), listing.listing_id.clone());
    if !wallet.trading_enabled || wallet.flow_address.is_empty() {
        return Some(wallet_disconnected());
    }
    if listing.state != market::ListingState::Active as i32 {
        return Some(status::failed_precondition(
            "the listing is no longer for sale",
            ErrorReason::ListingUnavailable,
            [listing_id],
        ));
    }
    if listing.seller_address == wallet.flow_address {
        return Some(status::failed_precondition(
            "the listing is the user's own",
            ErrorReason::ListingUnavailable,
            [listing_id],
        ));
    }
    if price > order.max_price {
        return Some(status::failed_precondition(
            format!("the listing costs {price} cents, above the most the buyer pays ({})", order.max_price),
            ErrorReason::ListingUnavailable,
            [
                listing_id,
                ("price_cents".to_owned(), price.to_string()),
                ("max_price_cents".to_owned(), order.max_price.to_string()),
            ],
        ));
    }
    // Selling at the expected value (an arbitrage's relist price) pays the fee of the source
    // it sells on: what is left must beat the price.
    let expected = order.relist.as_ref().map_or(order.expected_value, |(_, relist_price)| *relist_price);
    if expected > 0 {
        let resale_fee = fee(expected, fee_bps);
        if expected - resale_fee <= price {
            return Some(status::failed_precondition(
                format!(
                    "unprofitable after fees: selling at the expected {expected} cents leaves {} after a {resale_fee} cent fee, not more than the price of {price}",
                    expected - resale_fee
                ),
                ErrorReason::Unprofitable,
                [
                    ("expected_value_cents".to_owned(), expected.to_string()),
                    ("fee_cents".to_owned(), resale_fee.to_string()),
                    ("price_cents".to_owned(), price.to_string()),
                ],
            ));
        }
    }
    if let Some(live) = live {
        return Some(status::failed_precondition(
            "the listing is being bought by another purchase",
            ErrorReason::ListingUnavailable,
            [listing_id, ("trade_state".to_owned(), live.state.as_str().to_owned())],
        ));
    }
    if available < price {
        return Some(status::failed_precondition(
            format!("the balance available ({available} cents) is less than the price ({price} cents)"),
            ErrorReason::InsufficientFunds,
            [("available_cents".to_owned(), available.to_string()), ("price_cents".to_owned(), price.to_string())],
        ));
    }
    None
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
        strategy_id: None,
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
    Ok(())
}

/// A trade as its caller is answered: failed trades as the status their first caller got.
pub(crate) fn answer(trade: Trade) -> Result<Trade, Status> {
    if trade.state == TradeState::Failed { Err(convert::status_of(&trade)) } else { Ok(trade) }
}

pub(crate) fn wallet_disconnected() -> Status {
    status::failed_precondition(
        "the user's wallet is disconnected (or none is registered): trading is off",
        ErrorReason::WalletDisconnected,
        [],
    )
}

pub(crate) fn key_reused(trade: &Trade) -> Status {
    status::with_reason(
        Code::FailedPrecondition,
        "the idempotency key was used before with other parameters",
        ErrorReason::IdempotencyKeyReused,
        [("trade_id".to_owned(), trade.id.to_string())],
        tonic_types::ErrorDetails::new(),
    )
}
