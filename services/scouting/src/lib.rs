//! The scouting service: players, their games and game events, and valuations of moments —
//! fair value, confidence, recommendation and risk, with the factors behind them as sentences.
//! Box scores come from the marketplace's feeds through the outbox (or `IngestGameEvent`); a
//! game re-values the player's listed moments. What valuing needs of the marketplace's catalog
//! comes through the outbox too, into scouting's own catalog (`catalog`).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
pub mod catalog;
mod convert;
/// The valuation model (free of I/O), shared with the agents' backtests.
pub use fastbreak_valuation as domain;
mod error;
pub mod settings;
pub mod store;
pub mod valuer;
pub mod worker;

use fastbreak_db::Database;
use std::sync::Arc;

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::scouting::v1::scouting_internal_service_server::ScoutingInternalServiceServer;
use fastbreak_proto::scouting::v1::scouting_service_server::ScoutingServiceServer;
use tokio::sync::watch;

pub use settings::Settings;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "scouting";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50056;

/// The target's server with both of its gRPC services and its box-score worker, ready to bind.
pub fn server(context: Context<Settings, Database>) -> MeshServer {
    let settings = Arc::new(context.settings);
    let (written, _) = watch::channel(0_u64);
    let (drain_tx, drain_rx) = watch::channel(false);
    let api = api::ScoutingApi::new(context.database.clone(), settings.clone(), written.clone(), drain_rx);
    let server = MeshServer::new(TARGET)
        .add_public_service(ScoutingServiceServer::new(api.clone()))
        .add_internal_service(ScoutingInternalServiceServer::new(api))
        .add_worker("stream-closer", move |mut draining| async move {
            draining.wait().await;
            let _ = drain_tx.send(true);
        });
    if settings.worker_enabled {
        let worker = worker::BoxScoreWorker::new(context.database.background(), settings, written);
        server.add_worker("box-scores", move |draining| worker.run(draining))
    } else {
        server
    }
}
