//! The risk service over real gRPC, against a fresh PostgreSQL database per test, with trading
//! and notification stood in by real gRPC servers.

mod alerts;
mod holds;
mod invariant;
mod limits;
mod reconciler;
mod stops;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastbreak_db::testing::TestDatabase;
use fastbreak_db::{Database, PoolOptions};
use fastbreak_mesh::testing::{TestServer, as_user, internal, peer_channel};
use fastbreak_mesh::{Context, MeshServer, Peers};
use fastbreak_proto::notification::v1 as notification;
use fastbreak_proto::notification::v1::notification_internal_service_server::{
    NotificationInternalService, NotificationInternalServiceServer,
};
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::risk::v1::{
    AuthorizePurchaseRequest, BudgetLimits, ConfirmBudgetLimitChangeRequest, Hold, ProposeBudgetLimitChangeRequest,
    PurchaseOrigin,
};
use fastbreak_proto::trading::v1 as trading;
use fastbreak_proto::trading::v1::trading_internal_service_server::{
    TradingInternalService, TradingInternalServiceServer,
};
use fastbreak_risk::Settings;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

struct App {
    public: RiskServiceClient<Channel>,
    internal: RiskInternalServiceClient<Channel>,
    database: TestDatabase,
    _server: TestServer,
}

/// Settings for tests: the worker off unless a test turns it on, quick rounds when it is.
fn test_settings() -> Settings {
    Settings {
        reconcile_interval: Duration::from_millis(50),
        notify_retry_min: Duration::from_millis(20),
        call_timeout: Duration::from_millis(500),
        worker_enabled: false,
        ..Settings::default()
    }
}

async fn spawn_app() -> App {
    spawn_app_with(test_settings(), Vec::new()).await
}

/// Serves risk with `settings`, its peers (name, address) stood in by test servers.
async fn spawn_app_with(settings: Settings, peers: Vec<(&'static str, SocketAddr)>) -> App {
    let database = TestDatabase::create().await;
    spawn_on(database, settings, peers, 4).await
}

async fn spawn_on(
    database: TestDatabase,
    settings: Settings,
    peers: Vec<(&'static str, SocketAddr)>,
    pool: usize,
) -> App {
    let pool = Database::connect_lazy(database.url(), &PoolOptions { max_size: pool, ..PoolOptions::default() })
        .expect("a valid test database URL");
    let mut context = Context::new(pool, settings);
    let mut channels = Peers::default();
    for (name, addr) in peers {
        channels.insert(name, peer_channel(name, &[addr]));
    }
    context.peers = channels;
    let server = TestServer::start(fastbreak_risk::server(context)).await;
    let channel = server.channel().await;
    App {
        public: RiskServiceClient::new(channel.clone()),
        internal: RiskInternalServiceClient::new(channel),
        database,
        _server: server,
    }
}

impl App {
    async fn user(&self) -> Uuid {
        self.database.create_user().await
    }

    /// Proposes and confirms `limits` for `user`.
    async fn set_limits(&self, user: Uuid, limits: BudgetLimits) -> BudgetLimits {
        let change = self
            .public
            .clone()
            .propose_budget_limit_change(as_user(ProposeBudgetLimitChangeRequest { limits: Some(limits) }, user))
            .await
            .expect("a valid proposal")
            .into_inner();
        self.public
            .clone()
            .confirm_budget_limit_change(as_user(ConfirmBudgetLimitChangeRequest { change_id: change.change_id }, user))
            .await
            .expect("a pending change confirms")
            .into_inner()
    }

    /// Authorises a manual purchase with a balance read now.
    async fn buy(&self, user: Uuid, amount: i64, key: &str, balance: i64) -> Result<Hold, Status> {
        self.buy_as(user, amount, key, balance, PurchaseOrigin::Manual).await
    }

    async fn buy_as(
        &self,
        user: Uuid,
        amount: i64,
        key: &str,
        balance: i64,
        origin: PurchaseOrigin,
    ) -> Result<Hold, Status> {
        self.internal
            .clone()
            .authorize_purchase(internal(purchase(user, amount, key, balance, origin)))
            .await
            .map(Response::into_inner)
    }
}

fn purchase(user: Uuid, amount: i64, key: &str, balance: i64, origin: PurchaseOrigin) -> AuthorizePurchaseRequest {
    AuthorizePurchaseRequest {
        user_id: user.to_string(),
        amount_cents: amount,
        moment_id: Uuid::from_u128(7).to_string(),
        idempotency_key: key.to_owned(),
        balance_cents: balance,
        balance_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        origin: origin as i32,
    }
}

/// Limits with only the given ones set (no defaults).
fn only(f: impl FnOnce(&mut BudgetLimits)) -> BudgetLimits {
    let mut limits = BudgetLimits::default();
    f(&mut limits);
    limits
}

/// The ErrorInfo reason and metadata of a status.
fn reason(status: &Status) -> (String, HashMap<String, String>) {
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    (info.reason, info.metadata)
}

/// The fields a status's BadRequest names.
fn fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Trading, stood in: the trades it reports by (user, key); UNAVAILABLE while `down`.
#[derive(Debug, Clone, Default)]
struct FakeTrading {
    trades: Arc<Mutex<HashMap<(String, String), trading::TradeState>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeTrading {
    fn record(&self, user: Uuid, key: &str, state: trading::TradeState) {
        self.trades.lock().unwrap().insert((user.to_string(), key.to_owned()), state);
    }

    async fn serve(&self) -> TestServer {
        TestServer::start(
            MeshServer::new("trading").add_internal_service(TradingInternalServiceServer::new(self.clone())),
        )
        .await
    }
}

#[tonic::async_trait]
impl TradingInternalService for FakeTrading {
    async fn get_trade_by_idempotency_key(
        &self,
        request: Request<trading::GetTradeByIdempotencyKeyRequest>,
    ) -> Result<Response<trading::Trade>, Status> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Status::unavailable("trading is down"));
        }
        let r = request.into_inner();
        let state = self.trades.lock().unwrap().get(&(r.user_id.clone(), r.idempotency_key.clone())).copied();
        match state {
            Some(state) => Ok(Response::new(trading::Trade {
                user_id: r.user_id,
                idempotency_key: r.idempotency_key,
                state: state as i32,
                failure_reason: if state == trading::TradeState::Failed {
                    "listing gone".to_owned()
                } else {
                    String::new()
                },
                ..trading::Trade::default()
            })),
            None => Err(Status::not_found("trade not found")),
        }
    }
}

/// Notification, stood in: the notifications it was sent; UNAVAILABLE while `down`.
#[derive(Debug, Clone, Default)]
struct FakeNotification {
    sent: Arc<Mutex<Vec<notification::SendNotificationRequest>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeNotification {
    async fn serve(&self) -> TestServer {
        TestServer::start(
            MeshServer::new("notification").add_internal_service(NotificationInternalServiceServer::new(self.clone())),
        )
        .await
    }

    fn sent(&self) -> Vec<notification::SendNotificationRequest> {
        self.sent.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl NotificationInternalService for FakeNotification {
    async fn send_notification(
        &self,
        request: Request<notification::SendNotificationRequest>,
    ) -> Result<Response<notification::Notification>, Status> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Status::unavailable("notification is down"));
        }
        self.sent.lock().unwrap().push(request.into_inner());
        Ok(Response::new(notification::Notification::default()))
    }
}

/// Waits until `done` holds, failing with `what` after five seconds.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
