//! Prometheus metrics of every RPC: calls by code, errors by code, latency; served as text on
//! the metrics port.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a call counter. Every value is one of a fixed set (the methods that exist, the
/// status codes), so the number of series is bounded whatever paths clients send, and
/// recording a call allocates nothing.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The target that served it.
    pub target: &'static str,
    /// The fully-qualified gRPC service, or "unknown".
    pub service: &'static str,
    /// The method, or "unknown".
    pub method: &'static str,
    /// The gRPC status code name, such as "OK" or "UNAVAILABLE".
    pub code: &'static str,
}

/// Labels of a latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// The target that served it.
    pub target: &'static str,
    /// The fully-qualified gRPC service, or "unknown".
    pub service: &'static str,
    /// The method, or "unknown".
    pub method: &'static str,
}

/// The label of every service and method not known to the server.
pub const UNKNOWN: &str = "unknown";

/// Paths are looked up on every call; the map is built once from the contracts and never grows,
/// so a fast hash (seeded per process) serves better than the default, which is made to resist
/// keys chosen to collide as they are inserted.
type PathMap<V> = std::collections::HashMap<String, V, foldhash::fast::RandomState>;

/// The methods a server serves, by path, with their labels; anything else is "unknown".
#[derive(Debug, Clone, Default)]
pub struct KnownMethods(std::sync::Arc<PathMap<(&'static str, &'static str)>>);

impl KnownMethods {
    /// Known methods from `(service, method)` pairs. Their names are interned once per
    /// process, so that labels are `&'static str`.
    pub fn new<I, S, M>(methods: I) -> Self
    where
        I: IntoIterator<Item = (S, M)>,
        S: AsRef<str>,
        M: AsRef<str>,
    {
        let map: PathMap<_> = methods
            .into_iter()
            .map(|(service, method)| {
                let (service, method) = (intern(service.as_ref()), intern(method.as_ref()));
                (format!("/{service}/{method}"), (service, method))
            })
            .collect();
        Self(std::sync::Arc::new(map))
    }

    /// The metrics of every known method as served by `target`, and of everything else.
    pub fn served_by(&self, target: &'static str) -> ServedMethods {
        let by_path = self
            .0
            .iter()
            .map(|(path, (service, method))| {
                (path.clone(), std::sync::Arc::new(MethodMetrics::new(target, service, method)))
            })
            .collect();
        let unknown = std::sync::Arc::new(MethodMetrics::new(target, UNKNOWN, UNKNOWN));
        ServedMethods { by_path: std::sync::Arc::new(by_path), unknown }
    }
}

/// The metrics of the methods one target serves, found by request path (see
/// [`KnownMethods::served_by`]).
#[derive(Debug, Clone)]
pub struct ServedMethods {
    by_path: std::sync::Arc<PathMap<std::sync::Arc<MethodMetrics>>>,
    unknown: std::sync::Arc<MethodMetrics>,
}

impl ServedMethods {
    /// The metrics a call to `path` is recorded in: its method's, or the "unknown" ones.
    pub fn of(&self, path: &str) -> &std::sync::Arc<MethodMetrics> {
        self.by_path.get(path).unwrap_or(&self.unknown)
    }
}

/// How many gRPC status codes there are (0 to 16).
const CODES: usize = 17;

/// One method's series, found once: recording a call counts and times it without hashing its
/// labels. The counters of a status code are made the first time a call ends with it, so the
/// exposition shows only the codes that happened.
#[derive(Debug)]
pub struct MethodMetrics {
    target: &'static str,
    /// The fully-qualified gRPC service, or "unknown".
    pub service: &'static str,
    /// The method, or "unknown".
    pub method: &'static str,
    calls: [OnceLock<Counter>; CODES],
    errors: [OnceLock<Counter>; CODES],
    latency: Histogram,
}

impl MethodMetrics {
    fn new(target: &'static str, service: &'static str, method: &'static str) -> Self {
        let latency = metrics().latency.get_or_create(&MethodLabels { target, service, method }).clone();
        Self {
            target,
            service,
            method,
            calls: std::array::from_fn(|_| OnceLock::new()),
            errors: std::array::from_fn(|_| OnceLock::new()),
            latency,
        }
    }

    /// Records one served call.
    pub fn record(&self, code: tonic_code::Code, elapsed: Duration) {
        // A code beyond the known ones is counted as UNKNOWN, as its name says.
        let index = usize::try_from(code.0).ok().filter(|&i| i < CODES).unwrap_or(2);
        let labels =
            || CallLabels { target: self.target, service: self.service, method: self.method, code: code.name() };
        let families = metrics();
        self.calls[index].get_or_init(|| families.calls.get_or_create(&labels()).clone()).inc();
        if index != 0 {
            self.errors[index].get_or_init(|| families.errors.get_or_create(&labels()).clone()).inc();
        }
        self.latency.observe(elapsed.as_secs_f64());
    }
}

/// A process-wide copy of `text` that lives forever; only ever called with names from the
/// contracts, so the set is bounded.
fn intern(text: &str) -> &'static str {
    static NAMES: OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(name) = names.get(text) {
        return name;
    }
    let name: &'static str = Box::leak(text.to_owned().into_boxed_str());
    names.insert(name);
    name
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    errors: Family<CallLabels, Counter>,
    latency: HistogramFamily,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("fastbreak");
        let calls = Family::<CallLabels, Counter>::default();
        let errors = Family::<CallLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register("rpc_server_calls", "gRPC calls served, by status code", calls.clone());
        registry.register("rpc_server_errors", "gRPC calls served that did not end OK, by status code", errors.clone());
        registry.register("rpc_server_latency_seconds", "Time to answer a gRPC call", latency.clone());
        Metrics { registry, calls, errors, latency }
    })
}

/// Every metric, in the Prometheus text format.
pub fn render() -> String {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &metrics().registry).is_err() {
        text.clear();
    }
    text
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render())
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// gRPC status codes, by number, without depending on tonic.
pub mod tonic_code {
    /// A gRPC status code.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Code(pub i32);

    impl Code {
        /// OK.
        pub const OK: Code = Code(0);

        /// Whether the code says the server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
        /// INTERNAL, UNAVAILABLE, DATA_LOSS), as OpenTelemetry's conventions for gRPC servers
        /// have it; the other codes answer the caller (a bad argument, nothing found, a
        /// precondition not met, a call cancelled), which is the server working as it should.
        pub fn is_server_failure(self) -> bool {
            matches!(self.0, 2 | 4 | 12 | 13 | 14 | 15) || !(0..=16).contains(&self.0)
        }

        /// The code's canonical name.
        pub fn name(self) -> &'static str {
            match self.0 {
                0 => "OK",
                1 => "CANCELLED",
                2 => "UNKNOWN",
                3 => "INVALID_ARGUMENT",
                4 => "DEADLINE_EXCEEDED",
                5 => "NOT_FOUND",
                6 => "ALREADY_EXISTS",
                7 => "PERMISSION_DENIED",
                8 => "RESOURCE_EXHAUSTED",
                9 => "FAILED_PRECONDITION",
                10 => "ABORTED",
                11 => "OUT_OF_RANGE",
                12 => "UNIMPLEMENTED",
                13 => "INTERNAL",
                14 => "UNAVAILABLE",
                15 => "DATA_LOSS",
                16 => "UNAUTHENTICATED",
                _ => "UNKNOWN",
            }
        }
    }
}
