//! The risk service: budget limits and their confirmed changes, spending, purchase holds (with a
//! reconciler that resolves expired ones by asking trading), emergency stops, suspicious
//! activity, and risk alerts (notified through notification, later if it is down).
//!
//! Invariant 1 lives here: every authorisation of a user runs under that user's lock, so holds
//! count against the limits one after another whatever the concurrency.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
mod authorize;
mod convert;
pub mod domain;
mod error;
pub mod settings;
pub mod store;
pub mod worker;

use fastbreak_db::Database;
use std::sync::Arc;

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::risk::v1::risk_internal_service_server::RiskInternalServiceServer;
use fastbreak_proto::risk::v1::risk_service_server::RiskServiceServer;

pub use settings::Settings;
pub use worker::RiskWorker;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "risk";

/// The services this target calls, by target name: trading (what became of an expired hold's
/// purchase) and notification (alerts). Neither is needed to authorise purchases.
pub const PEERS: &[&str] = &["trading", "notification"];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50054;

/// The target's server with both of its gRPC services and its worker, ready to bind.
pub fn server(context: Context<Settings, Database>) -> MeshServer {
    let wake = Arc::new(tokio::sync::Notify::new());
    let settings = Arc::new(context.settings);
    let api = api::RiskApi::new(context.database.clone(), settings.clone(), wake.clone());
    let enabled = settings.worker_enabled;
    let worker = RiskWorker::new(
        context.database.background(),
        settings,
        context.peers.get("trading"),
        context.peers.get("notification"),
        wake,
    );
    let server = MeshServer::new(TARGET)
        .add_public_service(RiskServiceServer::new(api.clone()))
        .add_internal_service(RiskInternalServiceServer::new(api));
    if enabled { server.add_worker("hold-reconciler", move |draining| worker.run(draining)) } else { server }
}
