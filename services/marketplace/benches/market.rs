//! Figures for the marketplace: listing events ingested per second from the simulator running
//! as fast as it can be stored, and listing events per second delivered to 10 concurrent
//! stream subscribers while ingestion goes on. Prints them; asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-marketplace --bench market`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastbreak_db::testing::TestDatabase;
use fastbreak_market_sim::{Config, Simulator};
use fastbreak_marketplace::store as market;
use fastbreak_marketplace::{SimulatorFeed, ingest};
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{TEST_CREDENTIAL, TestServer};
use fastbreak_proto::marketplace::v1::StreamListingEventsRequest;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use futures::FutureExt;

async fn last(database: &fastbreak_db::Database) -> i64 {
    database.read(|conn| market::last_listing_sequence(conn).boxed()).await.unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // Ingestion alone: simulated hours applied back to back.
        let db = TestDatabase::create().await;
        let database = db.database();
        let mut sim = Simulator::new(Config { seed: 5, ..Config::default() });
        for source in ["simulator", "simulator-east"] {
            database
                .read(|conn| async move { market::ensure_source(conn, source, source, 500).await }.boxed())
                .await
                .unwrap();
        }
        let started = Instant::now();
        let mut steps = 0;
        while started.elapsed() < Duration::from_secs(8) {
            let events: Vec<_> = sim.step().into_iter().map(|t| t.event).collect();
            ingest::apply_batch(&database, Arc::new(events), None).await.unwrap();
            steps += 1;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let events = last(&database).await;
        println!(
            "ingest: {events} listing events in {elapsed:.1} s = {:.0} events/s ({steps} simulated hours)",
            events as f64 / elapsed
        );

        // Ten subscribers reading the log from the start while the simulator keeps ingesting.
        let db = TestDatabase::create().await;
        let settings = fastbreak_marketplace::Settings { simulator_tick: Duration::ZERO, ..Default::default() };
        let feed = Box::new(SimulatorFeed::new(5, fastbreak_market_sim::Config::default().start, Duration::ZERO));
        let context = Context::new(db.database(), settings);
        let server = TestServer::start(fastbreak_marketplace::server_with_feeds(context, vec![feed])).await;
        tokio::time::sleep(Duration::from_secs(3)).await; // a backlog to read
        let channel = server.channel().await;
        let window = Duration::from_secs(5);
        let subscribers: Vec<_> = (0..10)
            .map(|_| {
                let channel = channel.clone();
                tokio::spawn(async move {
                    let mut client = MarketplaceServiceClient::new(channel);
                    let mut request =
                        tonic::Request::new(StreamListingEventsRequest { after_sequence: Some(0), ..Default::default() });
                    request.metadata_mut().insert("x-fastbreak-internal-token", TEST_CREDENTIAL.parse().unwrap());
                    let mut stream = client.stream_listing_events(request).await.unwrap().into_inner();
                    let started = Instant::now();
                    let mut received = 0_u64;
                    while started.elapsed() < window {
                        match tokio::time::timeout(window - started.elapsed(), stream.message()).await {
                            Ok(Ok(Some(_))) => received += 1,
                            _ => break,
                        }
                    }
                    received
                })
            })
            .collect();
        let mut total = 0;
        for s in subscribers {
            total += s.await.unwrap();
        }
        println!(
            "stream: {total} events delivered to 10 subscribers in {:.0} s = {:.0} events/s in all, {:.0} per subscriber",
            window.as_secs_f64(),
            total as f64 / window.as_secs_f64(),
            total as f64 / window.as_secs_f64() / 10.0
        );
        server.stop().await.unwrap();
    });
}
