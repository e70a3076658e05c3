//! For tests of one target: serve it on a free port of 127.0.0.1 with a test credential, and
//! make requests as the gateway would (internal credential, user identity).

use std::net::SocketAddr;

use fastbreak_config::Secret;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::auth::INTERNAL_TOKEN_HEADER;
use crate::server::{MeshServer, ServerError};

/// The internal credential of test servers.
pub const TEST_CREDENTIAL: &str = "test-internal-credential-0123456789abcdef";

/// A target serving on a free port; stopped (and drained) on [`TestServer::stop`] or drop.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    /// Binds `server` to 127.0.0.1:0 with [`TEST_CREDENTIAL`], reports SERVING and serves.
    pub async fn start(server: MeshServer) -> Self {
        Self::start_at(server, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// The same on a chosen address (for targets that must know each other's addresses before
    /// either starts; see [`free_addr`]).
    pub async fn start_at(server: MeshServer, addr: SocketAddr) -> Self {
        let bound =
            Self::configured(server).bind(addr).await.unwrap_or_else(|error| panic!("cannot bind {addr}: {error}"));
        Self::serve(bound).await
    }

    /// The same on a port held by [`hold_port`] until now.
    pub async fn start_held(server: MeshServer, held: tokio::net::TcpSocket) -> Self {
        let addr = held.local_addr().expect("a held port has an address");
        let listener = held.listen(1024).unwrap_or_else(|error| panic!("cannot listen on {addr}: {error}"));
        let bound = Self::configured(server)
            .on_listener(listener)
            .await
            .unwrap_or_else(|error| panic!("cannot serve on {addr}: {error}"));
        Self::serve(bound).await
    }

    /// The test credential, and quick draining.
    fn configured(server: MeshServer) -> MeshServer {
        server
            .with_credential(Secret::new(TEST_CREDENTIAL.to_owned()))
            .with_drain_timeout(std::time::Duration::from_secs(5))
            .with_drain_grace(std::time::Duration::from_millis(50))
    }

    async fn serve(bound: crate::server::BoundServer) -> Self {
        let addr = bound.local_addr();
        bound.readiness().set_serving().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A channel to it.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("a valid URL")
            .connect()
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.addr))
    }

    /// Stops it: calls in flight and workers finish first.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("running").await.expect("serving does not panic")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A port held for a server that starts later, or a target that is down: a socket bound to
/// `addr` (127.0.0.1:0 for any free port) but not listening. Calls to it are refused, as to a
/// server that is down, and no other process takes the port meanwhile (a port found free and
/// let go can be taken by anyone's outgoing connection before the server binds it).
pub fn hold_port(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// A free address on 127.0.0.1 (the port is free now; bind it soon).
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a free port on 127.0.0.1");
    listener.local_addr().expect("a bound listener has an address")
}

/// A request from another service: it carries the internal credential.
pub fn internal<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(INTERNAL_TOKEN_HEADER, TEST_CREDENTIAL.parse().expect("a valid header value"));
    request
}

/// A request as the gateway forwards it for `user`: the internal credential and the user id.
pub fn as_user<T>(message: T, user: Uuid) -> tonic::Request<T> {
    let mut request = internal(message);
    crate::caller::set_user_id(&mut request, user);
    request
}

/// What a closed-loop load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Calls that succeeded.
    pub calls: usize,
    /// Calls that failed.
    pub errors: usize,
    /// How long the run took.
    pub elapsed: std::time::Duration,
    /// Latencies of the successful calls, sorted.
    pub latencies: Vec<std::time::Duration>,
}

impl LoadReport {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `q` (0 to 1) of the calls finished.
    pub fn quantile(&self, q: f64) -> std::time::Duration {
        if self.latencies.is_empty() {
            return std::time::Duration::ZERO;
        }
        let index = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    /// One line: rate, p50, p99 and errors.
    pub fn summary(&self) -> String {
        format!(
            "{:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms ({} calls, {} errors, {:.1} s)",
            self.rate(),
            self.quantile(0.5).as_secs_f64() * 1000.0,
            self.quantile(0.99).as_secs_f64() * 1000.0,
            self.calls,
            self.errors,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Runs `concurrency` callers, each calling `call(caller, n)` back to back for `duration`.
pub async fn closed_loop<F, Fut, T, E>(concurrency: usize, duration: std::time::Duration, call: F) -> LoadReport
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send,
    T: Send,
    E: Send,
{
    let started = std::time::Instant::now();
    let callers: Vec<_> = (0..concurrency)
        .map(|caller| {
            let call = call.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                let mut n = 0;
                while started.elapsed() < duration {
                    let sent = std::time::Instant::now();
                    match call(caller, n).await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(_) => errors += 1,
                    }
                    n += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut report = LoadReport { calls: 0, errors: 0, elapsed: std::time::Duration::ZERO, latencies: Vec::new() };
    for caller in callers {
        let (latencies, errors) = caller.await.expect("a caller does not panic");
        report.latencies.extend(latencies);
        report.errors += errors;
    }
    report.elapsed = started.elapsed();
    report.calls = report.latencies.len();
    report.latencies.sort();
    report
}

/// A channel to a peer served by test servers at `addrs`: the test credential, health checked
/// every 100 ms, calls bounded by two seconds.
pub fn peer_channel(peer: &str, addrs: &[SocketAddr]) -> crate::PeerChannel {
    let urls: Vec<String> = addrs.iter().map(|addr| format!("http://{addr}")).collect();
    let endpoints = fastbreak_config::Endpoints::parse(&urls.join(",")).expect("valid test URLs");
    let options = crate::PeerOptions {
        call_timeout: std::time::Duration::from_secs(2),
        connect_timeout: std::time::Duration::from_millis(300),
        health_interval: std::time::Duration::from_millis(100),
        breaker_failures: 3,
        breaker_cooldown: std::time::Duration::from_millis(500),
        credential: Some(Secret::new(TEST_CREDENTIAL.to_owned())),
        startup_grace: std::time::Duration::from_secs(5),
    };
    crate::PeerChannel::new(peer, "", &endpoints, options).expect("a valid test peer")
}

/// A channel whose every call carries [`TEST_CREDENTIAL`], as calls the gateway forwards do.
pub type CredentialChannel = tonic::service::interceptor::InterceptedService<
    Channel,
    fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
>;

fn add_credential(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    request.metadata_mut().insert(INTERNAL_TOKEN_HEADER, TEST_CREDENTIAL.parse().expect("a valid header value"));
    Ok(request)
}

/// Wraps `channel` so that every call carries the test credential.
pub fn credential_channel(channel: Channel) -> CredentialChannel {
    tonic::service::interceptor::InterceptedService::new(channel, add_credential as fn(_) -> _)
}

/// Asks `check` every `every` until it answers `Some`, and returns that; panics naming `what`
/// when `within` passes first.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    within: std::time::Duration,
    every: std::time::Duration,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        tokio::time::sleep(every).await;
    }
}
