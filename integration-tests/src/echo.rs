//! Small test services built with the real mesh server, for testing the mesh itself: an echo
//! backend that says who it is and what context it saw, and a relay that calls it through a
//! peer channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fastbreak_config::{Endpoints, Secret};
use fastbreak_mesh::{MeshServer, PeerChannel, PeerOptions, Readiness};
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::risk::v1::risk_internal_service_server::{RiskInternalService, RiskInternalServiceServer};
use fastbreak_proto::risk::v1::{GetHoldRequest, Hold};
use fastbreak_proto::user::v1::user_internal_service_server::{UserInternalService, UserInternalServiceServer};
use fastbreak_proto::user::v1::{GetUserStatusRequest, UserStatus};
use tokio::sync::oneshot;

use crate::TEST_TOKEN;

/// What the echo backend saw of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Which backend answered.
    pub name: String,
    /// The correlation id in the call's metadata.
    pub correlation_id: String,
    /// The trace id of the span the call was served in.
    pub trace_id: String,
    /// The `grpc-timeout` the call arrived with (such as "380m"), empty when none.
    pub timeout: String,
}

impl Seen {
    /// Decodes what [`Echo`] put in a hold.
    pub fn from_hold(hold: &Hold) -> Self {
        Self {
            name: hold.hold_id.clone(),
            correlation_id: hold.idempotency_key.clone(),
            trace_id: hold.release_reason.clone(),
            timeout: hold.user_id.clone(),
        }
    }
}

/// The echo backend: `RiskInternalService.GetHold` answers with who it is and what it saw.
#[derive(Debug, Clone)]
pub struct Echo {
    name: String,
    delay: Duration,
    failing: Arc<AtomicBool>,
    dependency_down: Arc<AtomicBool>,
    arrived: Arc<tokio::sync::Notify>,
}

#[tonic::async_trait]
impl RiskInternalService for Echo {
    async fn get_hold(&self, request: tonic::Request<GetHoldRequest>) -> Result<tonic::Response<Hold>, tonic::Status> {
        self.arrived.notify_one();
        if self.failing.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable(format!("{} is failing on purpose", self.name)));
        }
        if self.dependency_down.load(Ordering::SeqCst) {
            return Err(fastbreak_mesh::status::dependency_unavailable("database", Duration::from_secs(1)));
        }
        let timeout =
            request.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let correlation_id = request
            .metadata()
            .get(fastbreak_telemetry::CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let trace_id = fastbreak_telemetry::context::trace_id_of(&tracing::Span::current());
        tracing::info!(backend = %self.name, "echo handled the call");
        Ok(tonic::Response::new(Hold {
            hold_id: self.name.clone(),
            idempotency_key: correlation_id,
            release_reason: trace_id,
            user_id: timeout,
            ..Hold::default()
        }))
    }
}

/// The relay: `UserInternalService.GetUserStatus` calls the echo backend through the mesh and
/// answers with what the backend saw (in `user_id`, as `name|correlation|trace`) and with the
/// correlation id it saw itself (in `flow_address`).
#[derive(Debug, Clone)]
pub struct Relay {
    backend: RiskInternalServiceClient<PeerChannel>,
}

#[tonic::async_trait]
impl UserInternalService for Relay {
    async fn get_user_status(
        &self,
        request: tonic::Request<GetUserStatusRequest>,
    ) -> Result<tonic::Response<UserStatus>, tonic::Status> {
        let own = request
            .metadata()
            .get(fastbreak_telemetry::CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let hold = self.backend.clone().get_hold(GetHoldRequest::default()).await?.into_inner();
        let seen = Seen::from_hold(&hold);
        tracing::info!("relay got its answer");
        Ok(tonic::Response::new(UserStatus {
            user_id: format!("{}|{}|{}|{}", seen.name, seen.correlation_id, seen.trace_id, seen.timeout),
            flow_address: own,
            ..UserStatus::default()
        }))
    }
}

/// A test server running in this process.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its health.
    pub readiness: Readiness,
    /// Set to make the echo answer UNAVAILABLE.
    pub failing: Arc<AtomicBool>,
    /// Set to make the echo answer UNAVAILABLE because its own dependency is down.
    pub dependency_down: Arc<AtomicBool>,
    /// Notified when a call reaches the echo's handler.
    pub arrived: Arc<tokio::sync::Notify>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), fastbreak_mesh::ServerError>>,
}

impl TestServer {
    /// Starts shutting down and waits until serving ended.
    pub async fn shutdown(mut self) -> Result<(), fastbreak_mesh::ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("serving does not panic")
    }

    /// Asks it to shut down without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until serving ended.
    pub async fn finished(self) -> Result<(), fastbreak_mesh::ServerError> {
        self.task.await.expect("serving does not panic")
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn start(
    server: MeshServer,
    failing: Arc<AtomicBool>,
    dependency_down: Arc<AtomicBool>,
    arrived: Arc<tokio::sync::Notify>,
) -> TestServer {
    let bound = server
        .with_credential(Secret::new(TEST_TOKEN.to_owned()))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds");
    let addr = bound.local_addr();
    let readiness = bound.readiness();
    readiness.set_serving().await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async move {
        let _ = stop_rx.await;
    }));
    TestServer { addr, readiness, failing, dependency_down, arrived, stop: Some(stop_tx), task }
}

/// The drain grace of test servers: long enough to see calls accepted after NOT_SERVING.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Starts an echo backend named `name` that takes `delay` to answer, draining for
/// `drain_timeout` at most at shutdown.
pub async fn spawn_echo(name: &'static str, delay: Duration, drain_timeout: Duration) -> TestServer {
    let failing = Arc::new(AtomicBool::new(false));
    let dependency_down = Arc::new(AtomicBool::new(false));
    let arrived = Arc::new(tokio::sync::Notify::new());
    let echo = Echo {
        name: name.to_owned(),
        delay,
        failing: failing.clone(),
        dependency_down: dependency_down.clone(),
        arrived: arrived.clone(),
    };
    let server = MeshServer::new(name)
        .add_internal_service(RiskInternalServiceServer::new(echo))
        .with_drain_timeout(drain_timeout)
        .with_drain_grace(DRAIN_GRACE);
    start(server, failing, dependency_down, arrived).await
}

/// Options for test peer channels: quick health checks and the test credential.
pub fn test_peer_options() -> PeerOptions {
    PeerOptions {
        call_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(300),
        health_interval: Duration::from_millis(100),
        breaker_failures: 3,
        breaker_cooldown: Duration::from_millis(500),
        credential: Some(Secret::new(TEST_TOKEN.to_owned())),
        startup_grace: Duration::from_secs(5),
    }
}

/// A peer channel named "risk" to the given servers.
pub fn risk_channel(urls: &[String], options: PeerOptions) -> PeerChannel {
    let endpoints = Endpoints::parse(&urls.join(",")).expect("valid URLs");
    PeerChannel::new("risk", "fastbreak.risk.v1.RiskInternalService", &endpoints, options).expect("a valid peer")
}

/// Starts a relay named `name` that calls the echo backends at `backends`.
pub async fn spawn_relay(name: &'static str, backends: &[String]) -> TestServer {
    let backend = RiskInternalServiceClient::new(risk_channel(backends, test_peer_options()));
    let server = MeshServer::new(name)
        .add_internal_service(UserInternalServiceServer::new(Relay { backend }))
        .with_drain_grace(DRAIN_GRACE);
    start(server, Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::default()).await
}
