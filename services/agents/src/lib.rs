//! The agents service: the automation loop, its runs and its recorded decisions.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::agents::v1::agent_service_server::{AgentService, AgentServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "agents";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &["strategy", "scouting", "marketplace", "trading", "notification"];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50059;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct AgentApi;

impl AgentService for AgentApi {}

/// The target's server with all of its gRPC services, ready to bind. Built from its context
/// (database pool and peers), which its RPCs will use as they are built.
pub fn server(_context: Context<()>) -> MeshServer {
    MeshServer::new(TARGET).add_public_service(AgentServiceServer::new(AgentApi))
}
