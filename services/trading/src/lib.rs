//! The trading service: the ledger, trades, holdings, portfolio and leaderboards.
//!
//! Invariants 2 and 3 live here: money moves only in balanced ledger transactions that commit
//! with the trade they settle, and a purchase happens completely or not at all, once per key.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
mod convert;
mod delivery;
mod domain;
mod error;
pub mod leaderboard;
pub mod ledger;
mod listing;
mod peers;
mod portfolio;
mod purchase;
mod recovery;
pub mod settings;
pub mod store;
mod trader;
pub mod worker;

use fastbreak_db::Database;
use std::sync::Arc;

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::trading::v1::trading_internal_service_server::TradingInternalServiceServer;
use fastbreak_proto::trading::v1::trading_service_server::TradingServiceServer;

pub use ledger::{Ledger, PaperLedger};
pub use settings::Settings;
pub use worker::TradingWorker;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "trading";

/// The services this target calls, by target name: user (wallets, opt-outs), risk (holds),
/// marketplace (listings, values), strategy (outcomes) and notification.
pub const PEERS: &[&str] = &["user", "risk", "marketplace", "strategy", "notification"];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50057;

/// The target's server with both of its gRPC services and its worker, on the paper ledger.
pub fn server(context: Context<Settings, Database>) -> MeshServer {
    server_with_ledger(context, Arc::new(PaperLedger))
}

/// The target's server on another ledger (a chain adapter).
pub fn server_with_ledger(context: Context<Settings, Database>, ledger: Arc<dyn Ledger>) -> MeshServer {
    let settings = Arc::new(context.settings);
    let trader = trader::Trader::new(context.database, settings.clone(), ledger.clone(), context.peers);
    let boards = leaderboard::Leaderboards::new(trader.clone());
    let api = api::TradingApi::new(trader.clone(), ledger, boards.clone());
    let server = MeshServer::new(TARGET)
        .add_public_service(TradingServiceServer::new(api.clone()))
        .add_internal_service(TradingInternalServiceServer::new(api));
    if settings.worker_enabled {
        let worker = TradingWorker::new(trader.on_background(), boards);
        server.add_worker("trading-worker", move |draining| worker.run(draining))
    } else {
        server
    }
}
