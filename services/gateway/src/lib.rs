//! The gateway: the one public port — authentication, rate limits, correlation ids, routing to healthy backends, system health, reflection.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::{MeshServer, Peers};
use fastbreak_proto::gateway::v1::system_health_service_server::{SystemHealthService, SystemHealthServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "gateway";

/// The services this target calls, by target name: none until its RPCs are built (it will
/// call every backend); configuration asks only for the endpoints a target uses.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50051;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHealthApi;

impl SystemHealthService for SystemHealthApi {}

/// The target's server with all of its gRPC services, ready to bind.
pub fn server(_peers: Peers) -> MeshServer {
    MeshServer::new(TARGET).add_public_service(SystemHealthServiceServer::new(SystemHealthApi))
}
