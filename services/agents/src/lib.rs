//! The agents service: the automation loop. It follows marketplace's listing stream (resumed
//! from a sequence kept in the database), matches each new or repriced listing against the
//! active strategies that could want it, asks scouting for a valuation, and per strategy skips
//! with a typed reason or buys through trading; every decision is stored with its reasons, the
//! rule that decided, the valuation and its weighted factors. A user can also start a scan.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
pub mod backtest;
mod domain;
mod engine;
mod error;
mod index;
mod listings;
mod peers;
mod protect;
pub mod settings;
pub mod store;
pub mod worker;

use fastbreak_db::Database;
use std::sync::Arc;

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::agents::v1::agent_internal_service_server::AgentInternalServiceServer;
use fastbreak_proto::agents::v1::agent_service_server::AgentServiceServer;

pub use settings::Settings;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "agents";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &["strategy", "scouting", "marketplace", "trading", "notification", "risk"];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50059;

/// The target's server with its service and the listing loop, ready to bind.
pub fn server(context: Context<Settings, Database>) -> MeshServer {
    let settings = Arc::new(context.settings);
    let engine = engine::Engine::new(context.database, settings.clone(), context.peers);
    let api = api::AgentApi::new(engine.clone());
    let server = MeshServer::new(TARGET)
        .add_public_service(AgentServiceServer::new(api.clone()))
        .add_internal_service(AgentInternalServiceServer::new(api));
    if settings.worker_enabled {
        let engine = engine.on_background();
        let listings = worker::ListingLoop::new(engine.clone());
        let games = worker::GameLoop::new(engine.clone());
        let scans = worker::ScanSchedule::new(engine.clone());
        let arbitrage = worker::ArbitrageLoop::new(engine);
        server
            .add_worker("arbitrage", move |draining| arbitrage.run(draining))
            .add_worker("listing-loop", move |draining| listings.run(draining))
            .add_worker("game-loop", move |draining| games.run(draining))
            .add_worker("daily-scans", move |draining| scans.run(draining))
    } else {
        server
    }
}
