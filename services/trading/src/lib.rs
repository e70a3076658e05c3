//! The trading service: the ledger, trades, holdings, portfolio and leaderboards.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::trading::v1::trading_internal_service_server::{
    TradingInternalService, TradingInternalServiceServer,
};
use fastbreak_proto::trading::v1::trading_service_server::{TradingService, TradingServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "trading";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &["user", "risk", "marketplace", "strategy", "notification"];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50057;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct TradingApi;

impl TradingService for TradingApi {}

/// The internal API: what only other FastBreak services call. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct TradingInternalApi;

impl TradingInternalService for TradingInternalApi {}

/// The target's server with all of its gRPC services, ready to bind. Built from its context
/// (database pool and peers), which its RPCs will use as they are built.
pub fn server(_context: Context<()>) -> MeshServer {
    MeshServer::new(TARGET)
        .add_public_service(TradingServiceServer::new(TradingApi))
        .add_internal_service(TradingInternalServiceServer::new(TradingInternalApi))
}
