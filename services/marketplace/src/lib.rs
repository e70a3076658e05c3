//! The marketplace service: the catalog of moments, listings, sales, price history, arbitrage
//! across marketplaces, and a resumable stream of listing events, fed by market sources (the
//! built-in simulator by default, or NBA Top Shot's marketplace on Flow) that are ingested in
//! the background.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
pub mod box_scores;
pub mod chain_check;
mod convert;
mod domain;
mod error;
pub mod feed;
pub mod flow_feed;
pub mod ingest;
pub mod sales_feed;
pub mod settings;
pub mod store;
pub mod topshot_api;

use fastbreak_db::Database;
use std::sync::Arc;
use std::time::Duration;

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::marketplace::v1::marketplace_internal_service_server::MarketplaceInternalServiceServer;
use fastbreak_proto::marketplace::v1::marketplace_service_server::MarketplaceServiceServer;
use tokio::sync::watch;

pub use feed::{FeedError, MarketFeed, SimulatorFeed, SourceEvent, SourceInfo};
pub use settings::Settings;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "marketplace";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50055;

/// The target's server with the feeds its settings name (`FASTBREAK_MARKET`: the simulator by
/// default, NBA Top Shot's marketplace on Flow, or both).
pub fn server(context: Context<Settings, Database>) -> MeshServer {
    let mut feeds: Vec<Box<dyn MarketFeed>> = Vec::new();
    if context.settings.simulator {
        // A new market opens now; one stored in the database goes on instead (see the feed).
        let (seed, tick) = (context.settings.simulator_seed, context.settings.simulator_tick);
        feeds.push(Box::new(SimulatorFeed::new(seed, chrono::Utc::now(), tick)));
    }
    if let Some(config) = &context.settings.flow {
        match flow_feed::FlowFeed::new(config.clone()) {
            Ok(feed) => feeds.push(Box::new(feed)),
            Err(error) => tracing::error!(%error, "the Flow feed cannot start"),
        }
        if let Some(base) = &context.settings.nba_live_data {
            feeds.push(Box::new(box_scores::BoxScoreFeed::new(base, Duration::from_secs(60), config.timeout)));
        }
        if context.settings.topshot_sales {
            feeds.push(Box::new(sales_feed::SalesFeed::new(&config.graphql_url, 100, config.poll, config.timeout)));
        }
    }
    server_with_feeds(context, feeds)
}

/// The target's server ingesting `feeds`, one worker each.
pub fn server_with_feeds(context: Context<Settings, Database>, feeds: Vec<Box<dyn MarketFeed>>) -> MeshServer {
    let settings = Arc::new(context.settings);
    let (published, _) = watch::channel(0_u64);
    let (drain_tx, drain_rx) = watch::channel(false);
    let api = api::MarketplaceApi::new(context.database.clone(), settings.clone(), published.clone(), drain_rx);
    let mut server = MeshServer::new(TARGET)
        .add_public_service(MarketplaceServiceServer::new(api.clone()))
        .add_internal_service(MarketplaceInternalServiceServer::new(api))
        // Streams end when the server drains, so that draining does not wait for subscribers.
        .add_worker("stream-closer", move |mut draining| async move {
            draining.wait().await;
            let _ = drain_tx.send(true);
        });
    // Listing events appended by any process (another replica's ingest, an operator's tool)
    // wake this process's stream followers at once, not at their next poll.
    let (database, woken) = (context.database.background(), published.clone());
    server = server.add_worker("listing-event-listener", move |mut draining| async move {
        let heard = || {
            woken.send_modify(|n| *n += 1);
            true
        };
        tokio::select! {
            listened = database.listen(store::LISTING_EVENTS_CHANNEL, heard) => {
                if let Err(error) = listened {
                    tracing::warn!(%error, "listing events cannot be listened for; streams poll for them");
                }
            }
            () = draining.wait() => {}
        }
    });
    if settings.ingest_enabled {
        for feed in feeds {
            let ingest = ingest::Ingest::new(context.database.background(), feed, settings.clone(), published.clone());
            server = server.add_worker("market-ingest", move |draining| ingest.run(draining));
        }
    }
    server
}
