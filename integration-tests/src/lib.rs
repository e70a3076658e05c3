//! Helpers for tests that boot the FastBreak mesh: the whole set of targets in-process, each on
//! its own port 0 listener, reached by real gRPC clients over real sockets.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fastbreak::serve::{ListenConfig, listen_variable, serve};
use fastbreak::targets::{self, Target};
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A running mesh: every target's address, and a handle that stops it on drop.
#[derive(Debug)]
pub struct TestMesh {
    addrs: BTreeMap<&'static str, SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), fastbreak_mesh::ServerError>>>,
}

impl TestMesh {
    /// Starts the given targets (`"all"` for every one), each on a free port of 127.0.0.1.
    pub async fn spawn(list: &str) -> Self {
        let chosen = targets::parse(list).expect("a valid target list");
        let vars: BTreeMap<String, String> = targets::ALL
            .iter()
            .map(|target| (listen_variable(target.name), "127.0.0.1:0".to_owned()))
            .collect();
        let config = ListenConfig::from_vars(&vars).expect("a valid listen configuration");
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
        Self { addrs, stop: Some(stop_tx), task: Some(task) }
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
    prost_types::FileDescriptorSet::decode(fastbreak_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes")
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
