//! The gateway: the one public port. It authenticates clients' bearer tokens (through the
//! user service, with a short cache), rate-limits per user and per address, and forwards every
//! public backend service as raw gRPC frames to a SERVING endpoint of the backend that owns it;
//! internal services are not reachable through it. It serves reflection for the public
//! services, gRPC-Web on the same port, and `SystemHealthService` for operators. It is SERVING
//! only while it can reach the user service.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod bounds;
mod forward;
mod health;

pub use health::OPERATOR_TOKEN_HEADER;
pub mod settings;

use std::time::Duration;

use fastbreak_config::Secret;
use fastbreak_mesh::server::ForwardService;
use fastbreak_mesh::{MeshServer, Peers};
use fastbreak_proto::gateway::v1::system_health_service_server::SystemHealthServiceServer;
use prost::Message as _;

pub use settings::Settings;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "gateway";

/// The backends this target routes to, by target name.
pub const PEERS: &[&str] =
    &["user", "strategy", "risk", "marketplace", "scouting", "trading", "notification", "agents"];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50051;

/// Every public service of the contracts and the target that serves it: in package
/// `fastbreak.<target>.v1`, every service not named `…InternalService` (the gateway's own
/// excepted).
pub fn public_routes() -> Vec<(String, String)> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(fastbreak_proto::FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let mut routes = Vec::new();
    for file in &set.file {
        let package = file.package();
        let Some(target) = package.strip_prefix("fastbreak.").and_then(|p| p.strip_suffix(".v1")) else { continue };
        if target == TARGET || !PEERS.contains(&target) {
            continue;
        }
        for service in &file.service {
            if !service.name().ends_with("InternalService") {
                routes.push((format!("{package}.{}", service.name()), target.to_owned()));
            }
        }
    }
    routes
}

/// The paths (`/package.Service/Method`) of the contracts' server-streaming methods.
pub fn streaming_methods() -> std::collections::HashSet<String> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(fastbreak_proto::FILE_DESCRIPTOR_SET) else {
        return Default::default();
    };
    let mut paths = std::collections::HashSet::new();
    for file in &set.file {
        for service in &file.service {
            for method in service.method.iter().filter(|m| m.server_streaming()) {
                paths.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
            }
        }
    }
    paths
}

/// The target's server: its own health service and a forwarder per public backend service.
/// `operator` is what operators present to read the system's health (none: nobody may);
/// `internal` is the mesh's credential, with which a member in front of the gateway (the web
/// dashboard) may name the visitor it calls for, to be limited as that visitor.
pub fn server(
    peers: Peers,
    settings: Settings,
    operator: Option<Secret<String>>,
    internal: Option<Secret<String>>,
) -> MeshServer {
    let shared = forward::Forwarding::new(settings, peers.get("user"), streaming_methods(), internal);
    let tidy = shared.clone();
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let user = peers.get("user");
    let mut server = MeshServer::new(TARGET)
        .add_public_service(SystemHealthServiceServer::new(health::SystemHealthApi::new(peers.clone(), operator)))
        .ready_when(ready_rx)
        .add_worker("gateway-watch", move |mut draining| async move {
            // SERVING while the user service is (no authentication without it); rate-limit
            // state that limits no one is forgotten now and then.
            let mut rounds = 0u32;
            loop {
                let reachable = user.as_ref().is_some_and(|u| u.serving_endpoints() > 0);
                ready_tx.send_if_modified(|ready| std::mem::replace(ready, reachable) != reachable);
                rounds = rounds.wrapping_add(1);
                if rounds.is_multiple_of(600) {
                    tidy.tidy();
                }
                if draining.sleep(Duration::from_millis(100)).await {
                    return;
                }
            }
        });
    for (service, target) in public_routes() {
        let Some(backend) = peers.get(&target) else { continue };
        let forward = forward::Forward { shared: shared.clone(), backend };
        let name: &'static str = Box::leak(service.into_boxed_str());
        server = server.add_forwarded_service(name, ForwardService::new(forward));
    }
    server
}
