//! Helpers for tests that boot the FastBreak mesh: the whole set of targets in-process, each on
//! its own port 0 listener, reached by real gRPC clients over real sockets.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod attack;
pub mod echo;
pub mod fuzz;
pub mod h2load;
pub mod haproxy;
pub mod pgbench;
pub mod proxy;
pub mod trading_mesh;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fastbreak::config::{ServeConfig, listen_variable};
use fastbreak::serve::serve;
use fastbreak::targets::{self, Target};
use fastbreak_config::Reader;
use fastbreak_db::testing::TestDatabase;
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// Telemetry for benchmarks: real, as in production, with logs at warn (the per-call info
/// line is off) written nowhere.
pub fn bench_telemetry() -> fastbreak_telemetry::Telemetry {
    bench_telemetry_at("warn")
}

/// Like [`bench_telemetry`], with the log filter `filter` (`info` is what a target runs with
/// unless told otherwise).
pub fn bench_telemetry_at(filter: &str) -> fastbreak_telemetry::Telemetry {
    logs(filter, fastbreak_config::LogFormat::Json, std::io::sink).expect("telemetry is set up once")
}

/// Logs of the targets a test starts, to the test process's standard error, once per process:
/// at `warn` (or as `RUST_LOG` says), so that a failing test shows what its services warned
/// of (the runner shows a passing test's output only when asked).
pub fn test_logs() {
    static LOGS: std::sync::OnceLock<Option<fastbreak_telemetry::Telemetry>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        // A test that set up logging of its own keeps it.
        logs(&filter, fastbreak_config::LogFormat::Text, std::io::stderr).ok()
    });
}

/// This process's telemetry, without trace export: logs filtered by `filter`, in `format`, to
/// `writer`.
fn logs<W: std::io::Write + 'static>(
    filter: &str,
    format: fastbreak_config::LogFormat,
    writer: fn() -> W,
) -> Result<fastbreak_telemetry::Telemetry, fastbreak_telemetry::TelemetryError> {
    let config = fastbreak_telemetry::TelemetryConfig {
        service_name: "test".into(),
        log_format: format,
        filter: filter.into(),
        otlp_endpoint: None,
        targets: Vec::new(),
    };
    fastbreak_telemetry::init::init_with_writer(&config, writer, false)
}

/// The internal credential of test meshes (the one the mesh's test servers use).
pub const TEST_TOKEN: &str = fastbreak_mesh::testing::TEST_CREDENTIAL;

/// The operators' credential of test meshes (for the gateway's system health).
pub const TEST_OPERATOR_TOKEN: &str = "test-operator-credential-0123456789abcdef";

/// A running mesh: every target's address, and a handle that stops it on drop.
#[derive(Debug)]
pub struct TestMesh {
    addrs: BTreeMap<&'static str, SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), fastbreak_mesh::ServerError>>>,
    _database: TestDatabase,
}

impl TestMesh {
    /// Starts the given targets (`"all"` for every one), each on a free port of 127.0.0.1,
    /// on a fresh database, and waits until every one reports SERVING.
    pub async fn spawn(list: &str) -> Self {
        Self::spawn_with(list, &[]).await
    }

    /// Like [`TestMesh::spawn`], with these variables set too (or instead of the test's own).
    pub async fn spawn_with(list: &str, extra: &[(&str, &str)]) -> Self {
        test_logs();
        let chosen = targets::parse(list).expect("a valid target list");
        let database = TestDatabase::create().await;
        let mut vars: BTreeMap<String, String> =
            targets::ALL.iter().map(|target| (listen_variable(target.name), "127.0.0.1:0".to_owned())).collect();
        vars.insert("DATABASE_URL".to_owned(), database.url().to_owned());
        vars.insert("FASTBREAK_INTERNAL_TOKEN".to_owned(), TEST_TOKEN.to_owned());
        vars.insert("FASTBREAK_OPERATOR_TOKEN".to_owned(), TEST_OPERATOR_TOKEN.to_owned());
        vars.insert("FASTBREAK_METRICS_ADDR".to_owned(), "off".to_owned());
        vars.insert("FASTBREAK_DRAIN_GRACE".to_owned(), "100ms".to_owned());
        for target in &chosen {
            for peer in target.peers {
                vars.insert(format!("FASTBREAK_{}_ENDPOINTS", peer.to_uppercase()), "http://127.0.0.1:1".to_owned());
            }
        }
        vars.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        let config =
            ServeConfig::read(Reader::new(vars), &chosen, &fastbreak::targets::ALL).expect("a valid configuration");
        let (bound_tx, mut bound_rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let count = chosen.len();
        let task = tokio::spawn(async move {
            serve(
                &chosen,
                &config,
                |server| {
                    let _ = bound_tx.send((server.target(), server.local_addr()));
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        });
        let mut addrs = BTreeMap::new();
        while addrs.len() < count {
            let (name, addr) = bound_rx.recv().await.expect("every target binds");
            addrs.insert(name, addr);
        }
        for (name, addr) in &addrs {
            fastbreak_mesh::wait_serving(&addr.to_string(), "", std::time::Duration::from_secs(20))
                .await
                .unwrap_or_else(|why| panic!("{name} at {addr} never became SERVING: {why}"));
        }
        Self { addrs, stop: Some(stop_tx), task: Some(task), _database: database }
    }

    /// The address a target listens on.
    pub fn addr(&self, target: &str) -> SocketAddr {
        *self.addrs.get(target).unwrap_or_else(|| panic!("target {target} is not running"))
    }

    /// The running targets and their addresses.
    pub fn addrs(&self) -> &BTreeMap<&'static str, SocketAddr> {
        &self.addrs
    }

    /// A channel to a target.
    pub async fn channel(&self, target: &str) -> Channel {
        connect(self.addr(target)).await
    }

    /// Stops every target, letting in-flight calls finish, and returns how serving ended.
    pub async fn shutdown(mut self) -> Result<(), fastbreak_mesh::ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("running").await.expect("the serving task does not panic")
    }
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request carrying the mesh's internal credential.
pub use fastbreak_mesh::testing::internal as internal_request;

/// Opens a channel to an address.
pub async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URL")
        .connect()
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {addr}: {error}"))
}

/// The decoded descriptor set of every FastBreak contract.
pub fn descriptor_set() -> prost_types::FileDescriptorSet {
    prost_types::FileDescriptorSet::decode(fastbreak_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes")
}

/// A gRPC service of a contract, with its methods.
#[derive(Debug, Clone)]
pub struct ContractService {
    /// The target that serves it (the package's second part, such as "risk").
    pub target: String,
    /// Its fully-qualified name, such as "fastbreak.risk.v1.RiskService".
    pub full_name: String,
    /// True for internal services (named `*InternalService`).
    pub internal: bool,
    /// Its methods.
    pub methods: Vec<prost_types::MethodDescriptorProto>,
}

/// Every service of every FastBreak contract.
pub fn contract_services() -> Vec<ContractService> {
    descriptor_set()
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.iter().map(move |service| ContractService {
                target: package.split('.').nth(1).unwrap_or_default().to_owned(),
                full_name: format!("{package}.{}", service.name()),
                internal: service.name().ends_with("InternalService"),
                methods: service.method.clone(),
            })
        })
        .collect()
}

/// The target of every service, for checks that every target was covered.
pub fn target_names() -> Vec<&'static str> {
    targets::ALL.iter().map(|target: &Target| target.name).collect()
}

/// Asks `check` every 20 ms until it answers `Some`, and returns that; panics naming `what`
/// when `within` passes first.
pub async fn until<T, F, Fut>(what: &str, within: std::time::Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fastbreak_mesh::testing::poll_until(what, within, std::time::Duration::from_millis(20), check).await
}
