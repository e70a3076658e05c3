//! A failing or stalled source is reported and the others go on.

use fastbreak_marketplace::{FeedError, MarketFeed, SourceEvent, SourceInfo};
use fastbreak_proto::marketplace::v1::{ListMarketSourcesRequest, MarketSource, StreamListingEventsRequest};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::{eventually, simulator, spawn_with};

/// A marketplace that answers with errors, or never (stalls).
struct Broken {
    id: &'static str,
    stall: bool,
}

impl MarketFeed for Broken {
    fn name(&self) -> &str {
        self.id
    }

    fn sources(&self) -> Vec<SourceInfo> {
        vec![SourceInfo { id: self.id.to_owned(), display_name: "Broken".to_owned(), fee_bps: 100 }]
    }

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        let stall = self.stall;
        async move {
            if stall {
                futures::future::pending::<()>().await;
            }
            Err(FeedError("HTTP 503 from the marketplace API".to_owned()))
        }
        .boxed()
    }
}

async fn sources(app: &crate::App) -> Vec<MarketSource> {
    app.public.clone().list_market_sources(ListMarketSourcesRequest::default()).await.unwrap().into_inner().sources
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_and_stalled_sources_are_reported_while_the_others_go_on() {
    let app = spawn_with(vec![
        Box::new(Broken { id: "broken", stall: false }),
        Box::new(Broken { id: "stalled", stall: true }),
        simulator(13),
    ])
    .await;
    eventually("the broken sources are reported, and the simulator's first batch stored", || async {
        let all = sources(&app).await;
        let find = |id: &str| all.iter().find(|s| s.source_id == id).cloned();
        matches!((find("broken"), find("stalled")), (Some(b), Some(s)) if !b.healthy && !s.healthy)
            && find("simulator").is_some_and(|s| s.last_success_time.is_some())
    })
    .await;
    let all = sources(&app).await;
    let broken = all.iter().find(|s| s.source_id == "broken").unwrap();
    assert!(broken.last_error.contains("HTTP 503"), "{broken:?}");
    let stalled = all.iter().find(|s| s.source_id == "stalled").unwrap();
    assert!(stalled.last_error.contains("stalled"), "{stalled:?}");
    let simulated = all.iter().find(|s| s.source_id == "simulator").unwrap();
    assert!(simulated.healthy && simulated.last_success_time.is_some(), "{simulated:?}");

    // Events keep flowing from the healthy source.
    let mut stream = app
        .public
        .clone()
        .stream_listing_events(StreamListingEventsRequest { after_sequence: None, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message()).await;
    assert!(next.expect("an event while two sources are down").unwrap().is_some());
}

/// The simulator's stored position: (id salt, steps taken).
async fn simulator_position(database: &fastbreak_db::Database) -> Option<(u64, u64)> {
    let mut conn = database.conn().await.unwrap();
    let text = fastbreak_marketplace::store::feed_position(&mut conn, "simulator").await.unwrap()?;
    let value: serde_json::Value = serde_json::from_str(&text).expect("the position is JSON");
    let salt = value["id_salt"].as_str().and_then(|s| s.parse().ok()).expect("the position names its salt");
    Some((salt, value["steps"].as_u64().expect("the position counts its steps")))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_marketplace_continues_its_simulated_market_without_a_second_catalog() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use fastbreak_db::schema::moments;

    let database = fastbreak_db::testing::TestDatabase::create().await;
    let start = fastbreak_market_sim::Config::default().start;
    let serve = |feed: fastbreak_marketplace::SimulatorFeed| {
        let context = fastbreak_mesh::Context::new(database.database(), crate::test_settings());
        fastbreak_mesh::testing::TestServer::start(fastbreak_marketplace::server_with_feeds(
            context,
            vec![Box::new(feed)],
        ))
    };
    let tick = std::time::Duration::from_millis(20);
    let first = serve(fastbreak_marketplace::SimulatorFeed::with_salt(13, 1_111, start, tick)).await;
    eventually("the market opens and moves", || async {
        simulator_position(&database.database()).await.is_some_and(|(_, steps)| steps >= 5)
    })
    .await;
    first.stop().await.unwrap();
    let (salt, stopped_at) = simulator_position(&database.database()).await.unwrap();
    assert_eq!(salt, 1_111);

    // Started again as a new market would be (another salt, another start): it goes on with
    // the stored one.
    let later = start + chrono::Duration::days(40);
    let second = serve(fastbreak_marketplace::SimulatorFeed::with_salt(13, 2_222, later, tick)).await;
    eventually("the market goes on", || async {
        simulator_position(&database.database()).await.is_some_and(|(_, steps)| steps >= stopped_at + 5)
    })
    .await;
    second.stop().await.unwrap();
    let (salt, steps) = simulator_position(&database.database()).await.unwrap();
    assert_eq!(salt, 1_111, "the stored market's salt is kept");

    // The database holds exactly the moments of one market run for `steps` steps: its opening
    // catalog once, and no moment of a second market.
    let mut replay = fastbreak_market_sim::Simulator::new(fastbreak_market_sim::Config {
        seed: 13,
        id_salt: 1_111,
        start,
        ..Default::default()
    });
    let mut minted = std::collections::BTreeSet::new();
    for _ in 0..steps {
        for timed in replay.step() {
            if let fastbreak_market_sim::Event::MomentMinted(m) = timed.event {
                minted.insert(m.id);
            }
        }
    }
    let mut conn = database.database().conn().await.unwrap();
    let stored: std::collections::BTreeSet<uuid::Uuid> =
        moments::table.select(moments::id).load::<uuid::Uuid>(&mut conn).await.unwrap().into_iter().collect();
    println!(
        "stopped after {stopped_at} simulated hours, went on to {steps}: {} moments stored, {} minted by one market",
        stored.len(),
        minted.len()
    );
    assert_eq!(stored, minted, "one market's moments, each once");
}
