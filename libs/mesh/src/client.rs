//! The client side of the mesh: a channel to a peer service built from its endpoint list. It
//! connects lazily, watches every endpoint's `grpc.health.v1` status and sends nothing to one
//! that is not SERVING, keeps a circuit breaker per endpoint, puts a deadline on every call,
//! and attaches the internal credential, the correlation id and the trace context. When no
//! endpoint can take a call, the caller gets UNAVAILABLE naming the peer: at once, or within the
//! deadline while the first health checks are still out — never a hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use fastbreak_config::{Endpoints, Secret};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt;
use tracing::Instrument;

use crate::auth::INTERNAL_TOKEN_HEADER;
use crate::breaker::{Admission, CircuitBreaker, Outcome};
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_telemetry::context::grpc_timeout;

/// How much later than the caller's deadline the server is told to give up.
const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// How much of an inherited deadline is kept back, for the answer to travel back up in time.
/// More than [`DEADLINE_GRACE`]: the deadline a server reads includes the grace its caller
/// added, and every hop must still shrink it.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(120);

/// How many health checks in a row must go unanswered (within the check timeout) before an
/// endpoint is taken out as not answering. One late answer is a busy server, not a hung one:
/// taking its only endpoint out would fail every call to the peer until the next check.
/// Answers that say NOT_SERVING, and connections refused or broken, count at once.
pub const MISSED_CHECKS_TO_FAIL: u32 = 2;

/// How a peer channel behaves.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The deadline of a call that sets none itself.
    pub call_timeout: Duration,
    /// How long connecting to an endpoint may take.
    pub connect_timeout: Duration,
    /// How often every endpoint's health is checked.
    pub health_interval: Duration,
    /// Consecutive failures that open an endpoint's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker keeps its endpoint out before one trial call.
    pub breaker_cooldown: Duration,
    /// The internal credential sent with every call.
    pub credential: Option<Secret<String>>,
    /// How long after the channel is made an endpoint that has never served may stay down
    /// before that is a warning: peers starting beside this process are expected to be down
    /// for a moment. An endpoint that was SERVING and stops is a warning at once.
    pub startup_grace: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            health_interval: Duration::from_secs(1),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(5),
            credential: None,
            startup_grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    Unknown,
    Serving,
    NotServing(String),
}

#[derive(Debug)]
struct EndpointState {
    uri: http::Uri,
    channel: Channel,
    health: Mutex<Health>,
    breaker: Mutex<CircuitBreaker>,
    /// When the last health check ended, and when the health last changed.
    checked: Mutex<(Option<Time>, Option<Time>)>,
    /// Health checks in a row that went unanswered (see [`MISSED_CHECKS_TO_FAIL`]).
    missed: std::sync::atomic::AtomicU32,
    /// What its last health check answer said of it: version, start, dependencies.
    info: Mutex<ServerInfo>,
}

/// What a server tells of itself with its health check answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// Its version.
    pub version: String,
    /// When it started.
    pub started_at: Option<Time>,
    /// Its dependencies' states, by name.
    pub dependencies: Vec<(String, String)>,
}

impl ServerInfo {
    fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Self {
        let [version, started, dependencies] = crate::server::INFO_HEADERS;
        let text = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let started_at =
            chrono::DateTime::parse_from_rfc3339(&text(started)).ok().map(|t| t.with_timezone(&chrono::Utc));
        let dependencies = text(dependencies)
            .split("; ")
            .filter_map(|pair| pair.split_once('=').map(|(n, s)| (n.to_owned(), s.to_owned())))
            .collect();
        Self { version: text(version), started_at, dependencies }
    }
}

/// A wall-clock time.
type Time = chrono::DateTime<chrono::Utc>;

/// What a channel knows of one endpoint, from its health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointReport {
    /// The endpoint's URL.
    pub uri: String,
    /// SERVING at the last check.
    pub serving: bool,
    /// Why not, when it is not; "not checked yet" before the first check.
    pub detail: String,
    /// True when the endpoint could not be reached at all (not merely NOT_SERVING).
    pub unreachable: bool,
    /// When it was last checked.
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When its health last changed.
    pub changed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Health checks in a row that went unanswered; it is taken out at
    /// [`MISSED_CHECKS_TO_FAIL`].
    pub missed_checks: u32,
    /// What it told of itself at its last check.
    pub info: ServerInfo,
}

impl EndpointState {
    fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Lets a call through the endpoint's breaker, or not.
    fn admit(&self) -> Option<Admission> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner()).admit(tokio::time::Instant::now())
    }

    /// Reports how an admitted call ended to the endpoint's breaker.
    fn record(&self, admission: Admission, outcome: Outcome) {
        let mut breaker = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        let was_open = breaker.is_open();
        breaker.record(admission, outcome, tokio::time::Instant::now());
        if breaker.is_open() && !was_open {
            tracing::warn!(endpoint = %self.uri, "circuit breaker open");
        }
    }

    fn breaker_open(&self) -> bool {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner()).is_open()
    }
}

#[derive(Debug)]
struct Inner {
    peer: String,
    endpoints: Vec<Arc<EndpointState>>,
    next: AtomicUsize,
    health_changed: Notify,
    options: PeerOptions,
}

/// Why a peer channel could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{peer}: invalid endpoint {endpoint}: {reason}")]
pub struct PeerError {
    /// The peer.
    pub peer: String,
    /// The endpoint.
    pub endpoint: String,
    /// Why.
    pub reason: String,
}

/// A channel to one peer service over all of its endpoints. Clone it freely; generated tonic
/// clients take it as their transport. Health checks stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct PeerChannel {
    inner: Arc<Inner>,
}

impl PeerChannel {
    /// Builds the channel and starts watching the health of `health_service` (a fully-qualified
    /// service name, or "" for the whole server) on every endpoint. Needs a tokio runtime.
    pub fn new(
        peer: &str,
        health_service: &str,
        endpoints: &Endpoints,
        options: PeerOptions,
    ) -> Result<Self, PeerError> {
        let mut states = Vec::with_capacity(endpoints.0.len());
        for uri in &endpoints.0 {
            let endpoint = Endpoint::from_shared(uri.to_string())
                .map_err(|error| PeerError {
                    peer: peer.to_owned(),
                    endpoint: uri.to_string(),
                    reason: error.to_string(),
                })?
                .connect_timeout(options.connect_timeout)
                .tcp_nodelay(true);
            states.push(Arc::new(EndpointState {
                uri: uri.clone(),
                channel: endpoint.connect_lazy(),
                health: Mutex::new(Health::Unknown),
                breaker: Mutex::new(CircuitBreaker::new(options.breaker_failures, options.breaker_cooldown)),
                checked: Mutex::new((None, None)),
                missed: std::sync::atomic::AtomicU32::new(0),
                info: Mutex::new(ServerInfo::default()),
            }));
        }
        let inner = Arc::new(Inner {
            peer: peer.to_owned(),
            endpoints: states,
            next: AtomicUsize::new(0),
            health_changed: Notify::new(),
            options,
        });
        for index in 0..inner.endpoints.len() {
            tokio::spawn(watch_health(Arc::downgrade(&inner), index, health_service.to_owned()));
        }
        Ok(Self { inner })
    }

    /// The peer's name.
    pub fn peer(&self) -> &str {
        &self.inner.peer
    }

    /// Every endpoint as its health checks found it.
    pub fn endpoints(&self) -> Vec<EndpointReport> {
        self.inner
            .endpoints
            .iter()
            .map(|e| {
                let (checked_at, changed_at) = *e.checked.lock().unwrap_or_else(|p| p.into_inner());
                let (serving, detail) = match e.health() {
                    Health::Serving => (true, String::new()),
                    Health::Unknown => (false, "not checked yet".to_owned()),
                    Health::NotServing(why) => (false, why),
                };
                let unreachable = detail.starts_with("unreachable") || detail == "health check timed out";
                let info = e.info.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let missed_checks = e.missed.load(Ordering::Relaxed);
                EndpointReport {
                    uri: e.uri.to_string(),
                    serving,
                    detail,
                    unreachable,
                    checked_at,
                    changed_at,
                    missed_checks,
                    info,
                }
            })
            .collect()
    }

    /// How many endpoints the channel has.
    pub fn endpoint_count(&self) -> usize {
        self.inner.endpoints.len()
    }

    /// How many endpoints are SERVING now.
    pub fn serving_endpoints(&self) -> usize {
        self.inner.endpoints.iter().filter(|e| e.health() == Health::Serving).count()
    }
}

async fn watch_health(inner: Weak<Inner>, index: usize, service: String) {
    let watching = tokio::time::Instant::now();
    // Whether the endpoint ever answered SERVING, and whether its late start was told.
    let (mut served, mut late) = (false, false);
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let endpoint = strong.endpoints[index].clone();
        let interval = strong.options.health_interval;
        let check_timeout = interval.max(Duration::from_millis(200)).min(strong.options.call_timeout);
        drop(strong);
        let mut client = HealthClient::new(endpoint.channel.clone());
        let mut request = tonic::Request::new(HealthCheckRequest { service: service.clone() });
        request
            .metadata_mut()
            .insert(crate::server::INFO_REQUEST_HEADER, tonic::metadata::MetadataValue::from_static("1"));
        let answer = tokio::time::timeout(check_timeout, client.check(request)).await;
        if let Ok(Ok(response)) = &answer {
            *endpoint.info.lock().unwrap_or_else(|p| p.into_inner()) = ServerInfo::from_metadata(response.metadata());
        }
        // An unanswered check counts only once enough of them come in a row; until then the
        // endpoint keeps the health it had. Any answer starts the count again.
        let missed = if answer.is_ok() { 0 } else { endpoint.missed.load(Ordering::Relaxed).saturating_add(1) };
        endpoint.missed.store(missed, Ordering::Relaxed);
        let health = match answer {
            Err(_) if missed < MISSED_CHECKS_TO_FAIL => {
                tracing::debug!(endpoint = %endpoint.uri, missed, "health check unanswered");
                endpoint.health()
            }
            Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving => Health::Serving,
            Ok(Ok(response)) => Health::NotServing(response.get_ref().status().as_str_name().to_owned()),
            Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
                Health::NotServing(format!("does not serve {service}"))
            }
            Ok(Err(status)) => Health::NotServing(format!("unreachable ({})", status.message())),
            Err(_) => Health::NotServing("health check timed out".to_owned()),
        };
        let Some(strong) = inner.upgrade() else { return };
        let changed = {
            let mut current = endpoint.health.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *current != health;
            *current = health.clone();
            let now = chrono::Utc::now();
            let mut checked = endpoint.checked.lock().unwrap_or_else(|p| p.into_inner());
            checked.0 = Some(now);
            if changed {
                checked.1 = Some(now);
            }
            changed
        };
        if changed {
            match &health {
                Health::Serving => {
                    served = true;
                    tracing::info!(peer = %strong.peer, endpoint = %endpoint.uri, "endpoint SERVING");
                }
                // One that served and stopped is news at once (unless this process is stopping
                // too, and its peers with it).
                Health::NotServing(why) if served && crate::shutdown::process_stopping() => {
                    tracing::info!(peer = %strong.peer, endpoint = %endpoint.uri, why = %why, "endpoint stopped with this process");
                }
                Health::NotServing(why) if served => {
                    tracing::warn!(peer = %strong.peer, endpoint = %endpoint.uri, why = %why, "endpoint not serving");
                }
                // A peer starting beside us: expected, until the grace is over.
                Health::NotServing(why) => {
                    tracing::debug!(peer = %strong.peer, endpoint = %endpoint.uri, why = %why, "endpoint not up yet");
                }
                Health::Unknown => {}
            }
            strong.health_changed.notify_waiters();
        }
        if !served
            && !late
            && watching.elapsed() >= strong.options.startup_grace
            && let Health::NotServing(why) = &health
        {
            late = true;
            tracing::warn!(
                    peer = %strong.peer,
                    endpoint = %endpoint.uri,
                    why = %why,
                    grace_ms = strong.options.startup_grace.as_millis() as u64,
                    "endpoint still not serving after the start-up grace"
            );
        }
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}

impl Inner {
    /// A SERVING endpoint whose breaker lets a call through, round robin.
    fn pick(&self) -> Option<(Arc<EndpointState>, Admission)> {
        let count = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count).map(|offset| &self.endpoints[(start + offset) % count]).find_map(|e| {
            if e.health() != Health::Serving {
                return None;
            }
            e.admit().map(|admission| (e.clone(), admission))
        })
    }

    fn unavailable(&self) -> tonic::Status {
        let states: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| match e.health() {
                Health::Unknown => format!("{}: not checked yet", e.uri),
                Health::Serving if e.breaker_open() => format!("{}: circuit breaker open", e.uri),
                Health::Serving => format!("{}: serving", e.uri),
                Health::NotServing(why) => format!("{}: {why}", e.uri),
            })
            .collect();
        // Named as a dependency: whoever passes this answer on is not blamed for it.
        crate::status::with_reason(
            tonic::Code::Unavailable,
            format!("no healthy endpoint of {} ({})", self.peer, states.join("; ")),
            ErrorReason::DependencyUnavailable,
            [("service".to_owned(), self.peer.clone())],
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
        )
    }

    async fn call(
        self: Arc<Self>,
        mut request: Request<Body>,
        inherited: Option<tokio::time::Instant>,
    ) -> Response<Body> {
        let now = tokio::time::Instant::now();
        // The deadline: the configured call timeout, or sooner if the caller asked for less or
        // the call being served (on whose behalf this one is made) has less time left.
        let configured = now.checked_add(self.options.call_timeout).unwrap_or(now + Duration::from_secs(3600));
        let asked = grpc_timeout(request.headers()).and_then(|timeout| now.checked_add(timeout));
        let inherited = inherited.map(|deadline| deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(now));
        let deadline = [Some(configured), asked, inherited].into_iter().flatten().min().unwrap_or(configured);
        let timeout = deadline.saturating_duration_since(now);
        // An endpoint given at least half the configured timeout that does not answer in it is
        // slow; one given less ran out of the caller's time, which is not its fault.
        let caller_limited = timeout < self.options.call_timeout / 2;
        if timeout.is_zero() {
            return tonic::Status::deadline_exceeded(format!("no time left to call {}", self.peer)).into_http();
        }
        let (endpoint, admission) = loop {
            // Register for health news before looking, so none is missed in between.
            let changed = self.health_changed.notified();
            if let Some(picked) = self.pick() {
                break picked;
            }
            let waiting_for_first_check = self.endpoints.iter().any(|e| e.health() == Health::Unknown);
            if !waiting_for_first_check || tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.unavailable().into_http();
            }
        };

        // Named and described as OpenTelemetry's RPC conventions say: `package.Service/Method`,
        // a client span, `rpc.*` and `server.*` attributes, and the status code once answered.
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let (rpc_service, rpc_method) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = %path,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = rpc_service,
            rpc.method = rpc_method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = endpoint.uri.host().unwrap_or_default(),
            server.port = endpoint.uri.port_u16().unwrap_or_default(),
            peer = %self.peer,
            target = fastbreak_telemetry::current_target().unwrap_or_default(),
        );
        span.in_scope(|| fastbreak_telemetry::inject_outgoing(request.headers_mut()));
        if let Some(credential) = &self.options.credential
            && let Ok(mut value) = HeaderValue::from_str(credential.expose())
        {
            value.set_sensitive(true);
            request.headers_mut().insert(INTERNAL_TOKEN_HEADER, value);
        }
        // The server is told the deadline with a little grace, so that it is this side that
        // reports DEADLINE_EXCEEDED when time runs out, the same way every time.
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now()) + DEADLINE_GRACE;
        fastbreak_telemetry::context::set_grpc_timeout(request.headers_mut(), remaining);

        let channel = endpoint.channel.clone();
        let span_code = span.clone();
        let outcome =
            tokio::time::timeout_at(deadline, async move { channel.oneshot(request).await }).instrument(span).await;
        let slow = if caller_limited { Outcome::Neutral } else { Outcome::Fault };
        match outcome {
            Err(_) => {
                endpoint.record(admission, slow);
                self.deadline_exceeded(&endpoint, timeout)
            }
            Ok(Err(error)) if timed_out(&error) => {
                endpoint.record(admission, slow);
                self.deadline_exceeded(&endpoint, timeout)
            }
            Ok(Err(error)) => {
                endpoint.record(admission, Outcome::Fault);
                // Its breaker counts the failure; the next health check says whether it is down.
                let not_sent = connect_failed(&error);
                let mut response = tonic::Status::unavailable(format!(
                    "{} at {}: {}",
                    self.peer,
                    endpoint.uri,
                    crate::health::error_chain(&error)
                ))
                .into_http();
                if not_sent {
                    response.extensions_mut().insert(NotSent);
                }
                response
            }
            Ok(Ok(mut response)) => {
                span_code.record("rpc.grpc.status_code", fastbreak_telemetry::server::response_code(&response).0);
                endpoint.record(admission, answer_outcome(&response));
                response.extensions_mut().insert(FromEndpoint);
                response
            }
        }
    }
}

/// What an answer says about the endpoint that gave it: UNAVAILABLE is its fault, unless it
/// says (with the `DEPENDENCY_UNAVAILABLE` reason) that one of its own dependencies is down;
/// anything else is a working server.
fn answer_outcome<B>(response: &Response<B>) -> Outcome {
    use tonic_types::StatusExt;
    let code = fastbreak_telemetry::server::response_code(response);
    if code.0 != tonic::Code::Unavailable as i32 {
        return Outcome::Healthy;
    }
    let reason = tonic::Status::from_header_map(response.headers())
        .and_then(|status| status.get_details_error_info())
        .map(|info| info.reason);
    if reason.as_deref() == Some(ErrorReason::DependencyUnavailable.as_str_name()) {
        Outcome::Healthy
    } else {
        Outcome::Fault
    }
}

impl Inner {
    fn deadline_exceeded(&self, endpoint: &EndpointState, timeout: Duration) -> Response<Body> {
        tonic::Status::deadline_exceeded(format!(
            "{} at {} did not answer within {} ms",
            self.peer,
            endpoint.uri,
            timeout.as_millis()
        ))
        .into_http()
    }
}

/// Marks an answer the channel made itself (no endpoint could take the call, the deadline ran
/// out, the transport failed), as opposed to one an endpoint sent: its message names
/// endpoints, which a public edge does not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadeHere;

/// An answer that came from an endpoint (internal to the channel).
#[derive(Debug, Clone, Copy)]
struct FromEndpoint;

/// Marks an answer made because no connection to the endpoint could be made: the request was
/// never sent, so sending it again elsewhere is safe whatever it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotSent;

/// True when a transport error is a failure to connect (nothing was sent).
fn connect_failed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        // The connector's own words: it could not connect, or could not even resolve the name
        // (a replica gone from DNS, as a stopped container is).
        let text = error.to_string();
        if text.starts_with("tcp connect error") || text.starts_with("dns error") {
            return true;
        }
        current = error.source();
    }
    false
}

/// True when a transport error is the channel's own deadline expiring.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        current = error.source();
    }
    false
}

impl tower_service::Service<Request<Body>> for PeerChannel {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        // Read here, in the caller's task, where the call being served set it.
        let inherited = fastbreak_telemetry::context::current_deadline();
        Box::pin(async move {
            let mut response = inner.call(request, inherited).await;
            if response.extensions().get::<FromEndpoint>().is_none() {
                response.extensions_mut().insert(MadeHere);
            }
            response.extensions_mut().remove::<FromEndpoint>();
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::connect_failed;

    async fn connect_error(url: &'static str) -> tonic::transport::Error {
        tonic::transport::Endpoint::from_static(url)
            .connect_timeout(std::time::Duration::from_secs(2))
            .connect()
            .await
            .expect_err("nothing answers there")
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_name_that_does_not_resolve_were_never_sent() {
        // A port nothing listens on, and a host name that resolves nowhere (`.invalid`).
        for url in ["http://127.0.0.1:1", "http://a-replica-that-is-gone.invalid:50054"] {
            let error = connect_error(url).await;
            assert!(connect_failed(&error), "{url}: {error:?}");
        }
    }
}
