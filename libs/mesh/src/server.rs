//! The server every FastBreak target runs: its gRPC services plus `grpc.health.v1` and server
//! reflection (v1 and v1alpha), on a listener it binds itself so that port 0 works in tests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use fastbreak_config::Secret;
use fastbreak_telemetry::ServerTelemetryLayer;

use crate::auth::InternalAuthLayer;
use crate::worker::{Draining, Worker};

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("{target}: cannot listen on {addr}: {source}")]
    Bind {
        /// The target that tried to bind.
        target: &'static str,
        /// The address it asked for.
        addr: SocketAddr,
        /// Why the bind failed.
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptor sets.
    #[error("{target}: cannot build the reflection service: {source}")]
    Reflection {
        /// The target being built.
        target: &'static str,
        /// Why reflection failed.
        source: tonic_reflection::server::Error,
    },
    /// A dependency could not be set up.
    #[error("{target}: {reason}")]
    Dependency {
        /// The dependency.
        target: &'static str,
        /// Why.
        reason: String,
    },
    /// A background worker of the target panicked or stopped before the server drained.
    #[error("{target}: worker {worker} failed: {reason}")]
    Worker {
        /// The target.
        target: &'static str,
        /// The worker.
        worker: &'static str,
        /// What happened.
        reason: String,
    },
    /// The transport failed while serving.
    #[error("{target}: serving failed: {source}")]
    Serve {
        /// The target that was serving.
        target: &'static str,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

/// What a generated tonic server is: a named HTTP service that never fails at the transport.
pub trait GrpcService:
    tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
    + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// A service that answers every method of one gRPC service by handing the call on (the
/// gateway's forwarding): raw HTTP/2 in, raw HTTP/2 out.
pub type ForwardService =
    tower::util::BoxCloneSyncService<http::Request<axum::body::Body>, http::Response<axum::body::Body>, Infallible>;

/// A server being put together: the target's name and its gRPC services.
pub struct MeshServer {
    target: &'static str,
    routes: RoutesBuilder,
    public_services: Vec<&'static str>,
    internal_services: Vec<&'static str>,
    forwarded: Vec<(&'static str, ForwardService)>,
    ready_when: Option<tokio::sync::watch::Receiver<bool>>,
    credential: Option<Secret<String>>,
    public_edge: bool,
    drain_timeout: Duration,
    drain_grace: Duration,
    workers: Vec<Worker>,
    pages: Option<axum::Router>,
}

/// How long a server keeps accepting calls after it reports NOT_SERVING at shutdown, by
/// default: two of the peers' health-check intervals (1 s), so that they stop sending first.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(2);

impl std::fmt::Debug for MeshServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshServer")
            .field("target", &self.target)
            .field("public_services", &self.public_services)
            .field("internal_services", &self.internal_services)
            .finish()
    }
}

impl MeshServer {
    /// Starts a server for the target named `target` (such as "risk").
    pub fn new(target: &'static str) -> Self {
        Self {
            target,
            routes: Routes::builder(),
            public_services: Vec::new(),
            internal_services: Vec::new(),
            forwarded: Vec::new(),
            ready_when: None,
            credential: None,
            public_edge: false,
            drain_timeout: Duration::from_secs(30),
            drain_grace: DEFAULT_DRAIN_GRACE,
            workers: Vec::new(),
            pages: None,
        }
    }

    /// Serves web pages beside the gRPC services on the same port (HTTP/1.1 and HTTP/2): every
    /// path that is not one of the server's gRPC services goes to `pages`, whose own fallback
    /// answers the paths it does not know. The pages authenticate their visitors themselves:
    /// the internal credential guards the gRPC services only.
    pub fn with_pages(mut self, pages: axum::Router) -> Self {
        self.pages = Some(pages);
        self
    }

    /// How long the server keeps accepting calls after it reports NOT_SERVING at shutdown
    /// ([`DEFAULT_DRAIN_GRACE`] by default), so that peers polling its health stop sending
    /// before the door closes.
    pub fn with_drain_grace(mut self, grace: Duration) -> Self {
        self.drain_grace = grace;
        self
    }

    /// Adds background work: `run` starts when the server starts serving, is told through
    /// [`Draining`] when it begins to drain, and is awaited (for the drain timeout at most)
    /// before the server stops.
    pub fn add_worker<F>(mut self, name: &'static str, run: impl FnOnce(Draining) -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.workers.push(Worker { name, run: Box::new(move |draining| Box::pin(run(draining))) });
        self
    }

    /// Refuses every call that does not carry this internal credential (health checks and
    /// reflection excepted) with UNAUTHENTICATED.
    pub fn with_credential(mut self, credential: Secret<String>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Marks the server as the public edge (the gateway): its public services are called by
    /// clients, who authenticate otherwise, so they need no internal credential.
    pub fn public_edge(mut self) -> Self {
        self.public_edge = true;
        self
    }

    /// How long calls in flight may take to finish once shutdown begins (30 s by default);
    /// connections still open after that are closed.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Adds a public service: one clients reach through the gateway.
    pub fn add_public_service<S>(mut self, service: S) -> Self
    where
        S: GrpcService,
        S::Future: Send + 'static,
    {
        self.public_services.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Adds an internal service: one only other FastBreak services call.
    pub fn add_internal_service<S>(mut self, service: S) -> Self
    where
        S: GrpcService,
        S::Future: Send + 'static,
    {
        self.internal_services.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Adds a public service answered by `forward` (every method under `/<name>/`): listed by
    /// reflection and open to clients like the server's own public services.
    pub fn add_forwarded_service(mut self, name: &'static str, forward: ForwardService) -> Self {
        self.forwarded.push((name, forward));
        self
    }

    /// Reports SERVING only while `ready` holds true (and the server is not draining), instead
    /// of from [`Readiness::set_serving`] alone: for a target that cannot work without a peer.
    pub fn ready_when(mut self, ready: tokio::sync::watch::Receiver<bool>) -> Self {
        self.ready_when = Some(ready);
        self
    }

    /// The target's name.
    pub fn target(&self) -> &'static str {
        self.target
    }

    /// The fully-qualified names of the public services added so far.
    pub fn public_services(&self) -> &[&'static str] {
        &self.public_services
    }

    /// The fully-qualified names of the internal services added so far.
    pub fn internal_services(&self) -> &[&'static str] {
        &self.internal_services
    }

    /// Binds the listener (port 0 picks a free port), adds health and reflection, and returns a
    /// server ready to run. Every service reports NOT_SERVING until [`Readiness::set_serving`].
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundServer, ServerError> {
        let listener = bind_listener(self.target, addr).await?;
        self.on_listener(listener).await
    }

    /// Like [`MeshServer::bind`], on a listener bound beforehand (so that every target of a
    /// process can know the others' addresses before any is built).
    pub async fn on_listener(self, listener: tokio::net::TcpListener) -> Result<BoundServer, ServerError> {
        let target = self.target;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            target,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

        let (reporter, health_service) = tonic_health::server::health_reporter();
        let services: Vec<&'static str> =
            self.public_services.iter().chain(self.internal_services.iter()).copied().collect();
        let readiness = Readiness {
            reporter,
            services: services.clone(),
            gate: self.ready_when.clone(),
            dependencies: Default::default(),
            draining: Default::default(),
            changing: Default::default(),
        };
        readiness.set(ServingStatus::NotServing).await;

        let mut routes = self.routes;
        routes.add_service(health_service);
        let forwarded_names: Vec<&'static str> = self.forwarded.iter().map(|(name, _)| *name).collect();
        // Reflection describes what this server serves and nothing else of the contracts.
        let described: Vec<&str> = services.iter().chain(&forwarded_names).copied().collect();
        let contracts = {
            use prost::Message as _;
            prost_types::FileDescriptorSet::decode(fastbreak_proto::FILE_DESCRIPTOR_SET).unwrap_or_default()
        };
        let contracts = crate::reflection::served_only(contracts, &described);
        let reflection = |builder: tonic_reflection::server::Builder<'static>| {
            let builder = builder
                .register_file_descriptor_set(contracts.clone())
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            services.iter().chain(&forwarded_names).fold(builder, |builder, name| builder.with_service_name(*name))
        };
        let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
            .build_v1()
            .map_err(|source| ServerError::Reflection { target, source })?;
        let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
            .build_v1alpha()
            .map_err(|source| ServerError::Reflection { target, source })?;
        routes.add_service(reflection_v1);
        routes.add_service(reflection_v1alpha);

        let mut served = services.clone();
        served.extend(&forwarded_names);
        served.extend([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
        let known = known_methods(&served);
        let exempt: Vec<&'static str> = if self.public_edge {
            self.public_services.iter().chain(&forwarded_names).copied().collect()
        } else {
            Vec::new()
        };
        let guarded = served.clone();
        let has_pages = self.pages.is_some();
        let auth = self.credential.map(|token| {
            let layer = InternalAuthLayer::new(token.expose(), &exempt);
            if has_pages { layer.guarding_only(&guarded) } else { layer }
        });
        let routes = if self.forwarded.is_empty() && self.pages.is_none() {
            routes.routes()
        } else {
            let mut router = routes.routes().into_axum_router();
            for (name, forward) in self.forwarded {
                router = router.route_service(&format!("/{name}/{{*method}}"), forward);
            }
            if let Some(pages) = self.pages {
                // The pages answer every path the gRPC services do not (their own not-found
                // page included), in place of gRPC's UNIMPLEMENTED.
                router = router.fallback_service(pages);
            }
            Routes::from(router)
        };
        Ok(BoundServer {
            target,
            local_addr,
            incoming,
            routes,
            ready_when: self.ready_when,
            public_edge: self.public_edge,
            http1: self.public_edge || has_pages,
            readiness,
            auth,
            drain_timeout: self.drain_timeout,
            drain_grace: self.drain_grace,
            workers: self.workers,
            known,
        })
    }
}

/// The methods of the named services, read from the descriptor sets of the contracts, of
/// health and of reflection: what the server's metrics label by name.
fn known_methods(services: &[&'static str]) -> fastbreak_telemetry::metrics::KnownMethods {
    use prost::Message as _;
    let sets = [fastbreak_proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET];
    // Reflection's descriptor sets are private to its crate; its one method is well known.
    let mut methods: Vec<(String, String)> =
        ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
            .into_iter()
            .filter(|name| services.contains(name))
            .map(|name| (name.to_owned(), "ServerReflectionInfo".to_owned()))
            .collect();
    for set in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(set) else { continue };
        for file in &set.file {
            for service in &file.service {
                let name = format!("{}.{}", file.package(), service.name());
                if services.contains(&name.as_str()) {
                    methods.extend(service.method.iter().map(|m| (name.clone(), m.name().to_owned())));
                }
            }
        }
    }
    fastbreak_telemetry::metrics::KnownMethods::new(methods)
}

/// The answers tonic gives a request it cannot read as one message (none, a cut one, a bad
/// compressed flag), as INVALID_ARGUMENT: the caller's mistake, where tonic says INTERNAL as if
/// the server had failed. (A message that does not decode is the codec's, see
/// `fastbreak_proto::codec`.)
fn caller_framing_errors<B>(mut response: http::Response<B>) -> http::Response<B> {
    const FRAMING: [&str; 4] = [
        "Missing request message.",
        "Unexpected EOF decoding stream.",
        "protocol error: received message with compressed-flag",
        "protocol error: received message with invalid compression flag",
    ];
    let headers = response.headers_mut();
    let internal = headers.get("grpc-status").is_some_and(|code| code == "13");
    if internal
        && let Some(message) = headers.get("grpc-message").and_then(|m| m.to_str().ok())
        && let Ok(message) = percent_encoding::percent_decode_str(message).decode_utf8()
        && FRAMING.iter().any(|known| message.starts_with(known))
    {
        let status = tonic::Status::invalid_argument(format!("invalid request: {message}"));
        headers.remove("grpc-message");
        let _ = status.add_header(headers);
    }
    response
}

/// Binds a listener for `target` (port 0 picks a free port).
pub async fn bind_listener(target: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { target, addr, source })
}

/// Sets what `grpc.health.v1` reports for every service of one server, and for the server as a
/// whole (the empty service name).
#[derive(Clone)]
pub struct Readiness {
    reporter: HealthReporter,
    services: Vec<&'static str>,
    /// When set, SERVING also needs it to hold true (see [`MeshServer::ready_when`]).
    gate: Option<tokio::sync::watch::Receiver<bool>>,
    /// Set once shutdown began: from then on the server is NOT_SERVING for good.
    draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Held across a check of `draining` and the statuses it leads to, so that a change of
    /// status never interleaves with the start of draining.
    changing: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// What the server knows of its dependencies, by name ("database": "SERVING", …), sent
    /// with the health check answers that ask for it (see [`INFO_HEADERS`]).
    dependencies: std::sync::Arc<std::sync::Mutex<Dependencies>>,
}

/// The dependencies' states, and the header value that tells them (made when one changes, not
/// for every health check).
#[derive(Default)]
struct Dependencies {
    states: std::collections::BTreeMap<String, String>,
    header: Option<http::HeaderValue>,
}

/// The metadata of a health check answer whose request asked for it (with
/// [`INFO_REQUEST_HEADER`]): the server's version, when it started (RFC 3339) and its
/// dependencies' states (`name=state` pairs joined by `; `), so that whoever watches its health
/// (the mesh's clients, and so the gateway) can tell them.
pub const INFO_HEADERS: [&str; 3] = ["x-fastbreak-version", "x-fastbreak-started", "x-fastbreak-dependencies"];

/// The request header (any value) that asks a health check for [`INFO_HEADERS`]. Orchestrators'
/// and load balancers' probes, which do not read them, are answered without them: under a
/// stream of probes, three more headers to encode cost more than the rest of the mesh's work.
pub const INFO_REQUEST_HEADER: &str = "x-fastbreak-info";

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").field("services", &self.services).finish()
    }
}

impl Readiness {
    /// Reports SERVING: the server's dependencies are reachable. Ignored once the server is
    /// draining: draining is one-way.
    pub async fn set_serving(&self) {
        let _changing = self.changing.lock().await;
        if self.is_draining() {
            return;
        }
        let gated = self.gate.as_ref().is_some_and(|gate| !*gate.borrow());
        self.set(if gated { ServingStatus::NotServing } else { ServingStatus::Serving }).await;
    }

    /// Reports NOT_SERVING for good: the server is shutting down.
    pub async fn begin_draining(&self) {
        let _changing = self.changing.lock().await;
        self.draining.store(true, std::sync::atomic::Ordering::SeqCst);
        self.set(ServingStatus::NotServing).await;
    }

    /// True once shutdown began.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Notes a dependency's state, told with every health check answer.
    pub fn set_dependency(&self, name: &str, state: &str) {
        let state: String = state.chars().filter(|c| !c.is_control() && *c != ';').take(200).collect();
        let mut deps = self.dependencies.lock().unwrap_or_else(|p| p.into_inner());
        deps.states.insert(name.to_owned(), state);
        let text = deps.states.iter().map(|(name, state)| format!("{name}={state}")).collect::<Vec<_>>().join("; ");
        deps.header = http::HeaderValue::from_str(&text).ok();
    }

    fn dependencies_header(&self) -> http::HeaderValue {
        let deps = self.dependencies.lock().unwrap_or_else(|p| p.into_inner());
        deps.header.clone().unwrap_or_else(|| http::HeaderValue::from_static(""))
    }

    /// Reports NOT_SERVING: a dependency is missing, or the server is draining.
    pub async fn set_not_serving(&self) {
        let _changing = self.changing.lock().await;
        self.set(ServingStatus::NotServing).await;
    }

    async fn set(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for service in &self.services {
            self.reporter.set_service_status(service, status).await;
        }
    }
}

/// A server with its listener bound, not yet taking calls.
pub struct BoundServer {
    target: &'static str,
    local_addr: SocketAddr,
    incoming: TcpIncoming,
    routes: Routes,
    ready_when: Option<tokio::sync::watch::Receiver<bool>>,
    public_edge: bool,
    http1: bool,
    readiness: Readiness,
    auth: Option<InternalAuthLayer>,
    drain_timeout: Duration,
    drain_grace: Duration,
    workers: Vec<Worker>,
    known: fastbreak_telemetry::metrics::KnownMethods,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer").field("target", &self.target).field("local_addr", &self.local_addr).finish()
    }
}

impl BoundServer {
    /// The address the listener is bound to (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The target's name.
    pub fn target(&self) -> &'static str {
        self.target
    }

    /// The handle that sets what health checks report.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves until `shutdown` completes; then reports NOT_SERVING (for good), keeps accepting
    /// calls for the drain grace so that peers notice first, stops accepting, and lets the
    /// calls in flight finish, for the drain timeout at most.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let target = self.target;
        let readiness = self.readiness.clone();
        let drain_timeout = self.drain_timeout;
        let drain_grace = self.drain_grace;
        tracing::info!(target_name = target, addr = %self.local_addr, "serving");
        let (trigger, draining_signal) = Draining::channel();
        // Each worker runs in a task of its own, watched: one that panics or returns before the
        // server drains fails the target.
        let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel::<(&'static str, String)>();
        let (workers, aborts): (Vec<_>, Vec<_>) = self
            .workers
            .into_iter()
            .map(|worker| {
                tracing::info!(target_name = target, worker = worker.name, "worker started");
                let running =
                    tokio::spawn(fastbreak_telemetry::with_target(target, (worker.run)(draining_signal.clone())));
                let abort = running.abort_handle();
                let (name, signal, failed) = (worker.name, draining_signal.clone(), failed_tx.clone());
                let watched = tokio::spawn(async move {
                    let ended = running.await;
                    if signal.is_draining() {
                        tracing::debug!(target_name = target, worker = name, "worker stopped");
                        if let Err(error) = ended
                            && error.is_panic()
                        {
                            tracing::error!(target_name = target, worker = name, "worker panicked while draining");
                        }
                        return;
                    }
                    let reason = match ended {
                        Ok(()) => "it stopped before the server drained".to_owned(),
                        Err(error) if error.is_panic() => {
                            let panic = error.into_panic();
                            let message = panic
                                .downcast_ref::<&str>()
                                .map(|m| (*m).to_owned())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".to_owned());
                            format!("it panicked: {message}")
                        }
                        Err(error) => error.to_string(),
                    };
                    let _ = failed.send((name, reason));
                });
                (watched, abort)
            })
            .unzip();
        drop(failed_tx);
        let abort_workers = move || aborts.iter().for_each(tokio::task::AbortHandle::abort);
        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let draining = async move {
            shutdown.await;
            readiness.begin_draining().await;
            trigger.drain();
            tracing::info!(
                target_name = target,
                grace_ms = drain_grace.as_millis() as u64,
                "NOT_SERVING; still accepting for the grace period"
            );
            tokio::time::sleep(drain_grace).await;
            tracing::info!(target_name = target, "stopped accepting; draining in-flight calls");
            let _ = draining_tx.send(());
        };
        if let Some(mut ready) = self.ready_when {
            let readiness = self.readiness.clone();
            tokio::spawn(async move {
                loop {
                    let now = *ready.borrow_and_update();
                    if readiness.is_draining() {
                        return;
                    }
                    if now {
                        readiness.set_serving().await
                    } else {
                        readiness.set_not_serving().await
                    }
                    if ready.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
        let info = InfoLayer {
            readiness: self.readiness.clone(),
            version: http::HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
            started: http::HeaderValue::from_str(
                &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .expect("a time is a valid header value"),
        };
        let layers = tower::ServiceBuilder::new()
            // Health check answers say the server's version, start and dependencies.
            .layer(info)
            // Telemetry first: every call, refused ones too, gets a span with its correlation
            // id and trace id, and is counted.
            .layer(ServerTelemetryLayer::new(target, self.known))
            // A request tonic cannot read as one message is the caller's mistake.
            .map_response(caller_framing_errors)
            // The public edge also speaks gRPC-Web (over HTTP/1.1 too), for browsers, whose
            // pages on other origins may call it (credentials are bearer tokens, never cookies).
            .option_layer(self.public_edge.then(cors))
            .option_layer(self.public_edge.then(tonic_web::GrpcWebLayer::new))
            // Then the internal credential: backends take calls from the mesh only.
            .option_layer(self.auth)
            .into_inner();
        let serving = tonic::transport::Server::builder()
            .accept_http1(self.http1)
            .layer(layers)
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(self.incoming, draining);
        tokio::pin!(serving);
        // Runs from the end of the grace; if serving ended early, from then (it is only awaited
        // after serving ended, for the workers).
        let deadline = async move {
            let _ = draining_rx.await;
            tokio::time::sleep(drain_timeout).await;
        };
        tokio::pin!(deadline);
        let (outcome, timed_out) = tokio::select! {
            outcome = &mut serving => (outcome.map_err(|source| ServerError::Serve { target, source }), false),
            () = &mut deadline => {
                tracing::warn!(
                    target_name = target,
                    timeout_ms = drain_timeout.as_millis() as u64,
                    "calls still in flight after the drain timeout; closing"
                );
                (Ok(()), true)
            }
            Some((worker, reason)) = failed_rx.recv() => {
                tracing::error!(target_name = target, worker, %reason, "worker failed; the target stops");
                abort_workers();
                return Err(ServerError::Worker { target, worker, reason });
            }
        };
        if timed_out || !draining_signal.is_draining() {
            // The drain timeout is spent, or serving failed before any shutdown (so nothing
            // will tell the workers to drain): the workers stop where they are.
            abort_workers();
            return outcome;
        }
        // Workers were told to drain with the calls; they get what is left of the drain timeout.
        let workers = futures::future::join_all(workers);
        tokio::select! {
            _ = workers => {}
            () = &mut deadline => {
                tracing::warn!(
                    target_name = target,
                    timeout_ms = drain_timeout.as_millis() as u64,
                    "workers still running after the drain timeout (the calls have finished); stopping them"
                );
                abort_workers();
            }
        }
        outcome
    }
}

/// Adds [`INFO_HEADERS`] to the answers of health checks that ask for them.
#[derive(Clone)]
struct InfoLayer {
    readiness: Readiness,
    version: http::HeaderValue,
    started: http::HeaderValue,
}

impl<S> tower::Layer<S> for InfoLayer {
    type Service = InfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InfoService { inner, info: std::sync::Arc::new(self.clone()) }
    }
}

/// See [`InfoLayer`].
#[derive(Clone)]
struct InfoService<S> {
    inner: S,
    /// Shared: the service is cloned for every call.
    info: std::sync::Arc<InfoLayer>,
}

static INFO_REQUEST: http::HeaderName = http::HeaderName::from_static(INFO_REQUEST_HEADER);

/// The names of [`INFO_HEADERS`], made once.
static INFO_NAMES: [http::HeaderName; 3] = [
    http::HeaderName::from_static(INFO_HEADERS[0]),
    http::HeaderName::from_static(INFO_HEADERS[1]),
    http::HeaderName::from_static(INFO_HEADERS[2]),
];

impl<S, B, R> tower_service::Service<http::Request<B>> for InfoService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = WithInfo<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let asked = request.headers().contains_key(&INFO_REQUEST)
            && request.uri().path().starts_with("/grpc.health.v1.Health/");
        let info = asked
            .then(|| [self.info.version.clone(), self.info.started.clone(), self.info.readiness.dependencies_header()]);
        WithInfo { call: self.inner.call(request), info }
    }
}

pin_project_lite::pin_project! {
    /// A call whose answer gets the server's info headers, if it is a health check.
    struct WithInfo<F> {
        #[pin]
        call: F,
        info: Option<[http::HeaderValue; 3]>,
    }
}

impl<F, R, E> Future for WithInfo<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.call.poll(cx))?;
        if let Some(values) = this.info.take() {
            let headers = response.headers_mut();
            for (name, value) in INFO_NAMES.iter().zip(values) {
                headers.insert(name.clone(), value);
            }
        }
        std::task::Poll::Ready(Ok(response))
    }
}

/// What browsers on any origin may send to the public edge and read from its answers.
fn cors() -> tower_http::cors::CorsLayer {
    use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([http::Method::POST, http::Method::OPTIONS])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
            HeaderName::from_static("x-correlation-id"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
            HeaderName::from_static("x-correlation-id"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}
