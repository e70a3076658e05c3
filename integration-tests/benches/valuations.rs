//! Figures for scouting: `GetMomentValuation` per second at 16 concurrent callers, on a market
//! the simulator filled (two simulated weeks ingested first). Each valuation reads comparables
//! and games, computes, and stores the valuation with its factors. Prints them; asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench valuations`.

use std::sync::Arc;
use std::time::Duration;

use fastbreak_db::testing::TestDatabase;
use fastbreak_market_sim::{Config, Simulator};
use fastbreak_marketplace::store as market;
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{TestServer, closed_loop, internal};
use fastbreak_proto::scouting::v1::GetMomentValuationRequest;
use fastbreak_proto::scouting::v1::scouting_service_client::ScoutingServiceClient;
use futures::FutureExt;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let db = TestDatabase::create().await;
        let database = db.database();
        for source in ["simulator", "simulator-east"] {
            database
                .read(|conn| async move { market::ensure_source(conn, source, source, 500).await }.boxed())
                .await
                .unwrap();
        }
        let mut sim = Simulator::new(Config { seed: 8, ..Config::default() });
        for _ in 0..24 * 14 {
            let events: Vec<_> = sim.step().into_iter().map(|t| t.event).collect();
            fastbreak_marketplace::ingest::apply_batch(&database, Arc::new(events), None).await.unwrap();
        }
        let sold: Vec<uuid::Uuid> = database
            .read(|conn| {
                async move {
                    let filter = market::CatalogFilter::default();
                    let all = market::catalog(conn, &filter, None, 5_000).await?;
                    Ok(all.into_iter().filter(|m| m.last_sale_cents.is_some()).map(|m| m.id).collect())
                }
                .boxed()
            })
            .await
            .unwrap();
        println!("market: {} moments with sales after two simulated weeks", sold.len());
        let settings = fastbreak_scouting::Settings { worker_enabled: false, ..Default::default() };
        let server = TestServer::start(fastbreak_scouting::server(Context::new(database, settings))).await;
        let client = ScoutingServiceClient::new(server.channel().await);
        let sold = Arc::new(sold);
        for (label, seconds) in [("warm-up", 1), ("GetMomentValuation, 16 callers", 5)] {
            let (client, sold) = (client.clone(), sold.clone());
            let report = closed_loop(16, Duration::from_secs(seconds), move |caller, n| {
                let mut client = client.clone();
                let moment = sold[(caller * 7_919 + n * 104_729) % sold.len()];
                let request = GetMomentValuationRequest { moment_id: moment.to_string(), price_cents: Some(5_000) };
                async move { client.get_moment_valuation(internal(request)).await }
            })
            .await;
            println!("{label}: {}", report.summary());
        }
        server.stop().await.unwrap();
    });
}
