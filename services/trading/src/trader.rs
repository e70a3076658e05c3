//! The trader: what every trade shares, for the RPCs and the worker — its peers, how it calls
//! them (one retry rule, answers passed through), its queries' transactions, and the outbox
//! topics. The trades themselves are in `purchase`, `listing`, `delivery` and `recovery`.

use fastbreak_mesh::bulkhead::Turns;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::{self as repo, Trade};
use fastbreak_db::OrStatus as _;
use fastbreak_db::{Database, DatabaseError};
use fastbreak_mesh::RetryPolicy;

use crate::peers::TradingPeers;
use fastbreak_mesh::status::is_answer;
use fastbreak_mesh::status::{self};
use fastbreak_mesh::{Peer, Peers};
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::user::v1 as user;
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};
use uuid::Uuid;

use crate::error::wallet_disconnected;
use crate::ledger::Ledger;
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
pub(crate) const INLINE_GRACE: Duration = Duration::from_secs(2);

/// How long a repeated request waits for the first one to finish before answering with the
/// trade as it stands (pending).
pub(crate) const REPLAY_WAIT: Duration = Duration::from_secs(5);

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
pub(crate) use fail_point;

/// The engine.
#[derive(Debug, Clone)]
pub(crate) struct Trader {
    pub database: Database,
    pub settings: Arc<Settings>,
    pub(crate) ledger: Arc<dyn Ledger>,
    pub peers: TradingPeers,
    /// How reads and calls idempotent by their key are retried while they do not get through.
    pub(crate) retry: RetryPolicy,
    /// Fee of each market source, in basis points.
    pub(crate) fees: Arc<Mutex<HashMap<String, i64>>>,
    /// One admission at a time per user in this process: a user's purchases wait for their
    /// turn there, rather than all at once on their account's row in the database.
    pub(crate) turns: Arc<Turns>,
}

impl Trader {
    /// The same trader on background work's own connections (for the worker), so that it
    /// never waits behind the API's callers for a connection, nor they behind it.
    pub(crate) fn on_background(&self) -> Self {
        Self { database: self.database.background(), ..self.clone() }
    }

    pub(crate) fn new(database: Database, settings: Arc<Settings>, ledger: Arc<dyn Ledger>, peers: Peers) -> Self {
        // Three attempts, each with the call timeout, 50 ms and then 100 ms apart.
        let retry = RetryPolicy::backoff(3, Duration::from_millis(50), Duration::from_millis(100))
            .with_overall_timeout(settings.call_timeout * 3 + Duration::from_secs(1));
        let peers = TradingPeers::new(&peers);
        Self { database, settings, ledger, peers, retry, fees: Arc::default(), turns: Arc::default() }
    }

    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.settings.call_timeout);
        request
    }

    /// A peer's failure as this call's: its answers pass through, anything else names it.
    pub(crate) fn through(peer: &Peer, status: Status) -> Status {
        if is_answer(&status) { status } else { status::dependency_unavailable(peer.name(), Duration::from_secs(1)) }
    }

    /// Calls a read (or a call idempotent by its key) `call` to `peer`, again while it does not
    /// get through (it is safe to send again); its answers, and the last failure, as this
    /// call's.
    pub(crate) async fn read_from<T, F, Fut>(&self, peer: &Peer, call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.retry.call_idempotent(call).await.map_err(|status| Self::through(peer, status))
    }

    pub(crate) async fn user_status(&self, user_id: Uuid) -> Result<user::UserStatus, Status> {
        let channel = self.peers.user.channel()?;
        self.read_from(&self.peers.user, || {
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

    pub(crate) async fn listing(&self, listing_id: Uuid) -> Result<market::Listing, Status> {
        let channel = self.peers.marketplace.channel()?;
        self.read_from(&self.peers.marketplace, || {
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
        let client = MarketplaceServiceClient::new(self.peers.marketplace.channel()?);
        let request = self.request(market::ListMarketSourcesRequest { page_size: 100, ..Default::default() });
        let sources = self
            .read_from(&self.peers.marketplace, || {
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
        self.database.read(work).await.or_status()
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
