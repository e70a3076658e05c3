//! The strategy service: collecting strategies, their templates and performance.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::MeshServer;
use fastbreak_proto::strategy::v1::strategy_internal_service_server::{
    StrategyInternalService, StrategyInternalServiceServer,
};
use fastbreak_proto::strategy::v1::strategy_service_server::{StrategyService, StrategyServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "strategy";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50053;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct StrategyApi;

impl StrategyService for StrategyApi {}

/// The internal API: what only other FastBreak services call. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct StrategyInternalApi;

impl StrategyInternalService for StrategyInternalApi {}

/// The target's server with all of its gRPC services, ready to bind.
pub fn server() -> MeshServer {
    MeshServer::new(TARGET)
        .add_public_service(StrategyServiceServer::new(StrategyApi))
        .add_internal_service(StrategyInternalServiceServer::new(StrategyInternalApi))
}
