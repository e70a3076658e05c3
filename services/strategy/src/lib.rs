//! The strategy service: strategies, templates and per-strategy performance.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
mod convert;
pub mod domain;
mod error;
pub mod store;

use fastbreak_db::Database;
use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::strategy::v1::strategy_internal_service_server::StrategyInternalServiceServer;
use fastbreak_proto::strategy::v1::strategy_service_server::StrategyServiceServer;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "strategy";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50053;

/// The target's server with all of its gRPC services, ready to bind. It has no settings of its
/// own.
pub fn server(context: Context<(), Database>) -> MeshServer {
    let api = api::StrategyApi::new(context.database);
    MeshServer::new(TARGET)
        .add_public_service(StrategyServiceServer::new(api.clone()))
        .add_internal_service(StrategyInternalServiceServer::new(api))
}
