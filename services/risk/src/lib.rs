//! The risk service: budget limits, spending, holds, emergency stops and risk alerts.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::risk::v1::risk_internal_service_server::{RiskInternalService, RiskInternalServiceServer};
use fastbreak_proto::risk::v1::risk_service_server::{RiskService, RiskServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "risk";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50054;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct RiskApi;

impl RiskService for RiskApi {}

/// The internal API: what only other FastBreak services call. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct RiskInternalApi;

impl RiskInternalService for RiskInternalApi {}

/// The target's server with all of its gRPC services, ready to bind. Built from its context
/// (database pool and peers), which its RPCs will use as they are built.
pub fn server(_context: Context<()>) -> MeshServer {
    MeshServer::new(TARGET)
        .add_public_service(RiskServiceServer::new(RiskApi))
        .add_internal_service(RiskInternalServiceServer::new(RiskInternalApi))
}
