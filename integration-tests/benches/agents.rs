//! The agents' listing loop under load: listing events evaluated per second, and decisions
//! written per second, with 100 users and 300 active strategies that all match every event
//! (the real strategy, scouting, marketplace, trading, risk, user and notification services,
//! one PostgreSQL). Each event is a repricing that every strategy skips for a small discount,
//! so the figures measure evaluation and recording, not purchases. Prints figures; asserts
//! only that every event got its 300 decisions.
//!
//! `cargo bench -p fastbreak-integration-tests --bench agents`

use std::time::{Duration, Instant};

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_marketplace::store::{self as market, ListingEventKind};
use fastbreak_mesh::testing::as_user;
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::strategy::v1::{
    ActivateStrategyRequest, CreateStrategyRequest, PostGameSpikeParameters, Strategy, StrategyRules,
};
use futures::FutureExt;
use uuid::Uuid;

const USERS: usize = 100;
const STRATEGIES_PER_USER: i32 = 3;
const EVENTS: i64 = 300;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn number(mesh: &TradingMesh, sql: &'static str) -> i64 {
    mesh.pool
        .read(move |conn| {
            async move {
                use diesel_async::RunQueryDsl;
                let found: Count = diesel::sql_query(sql).get_result(conn).await?;
                Ok(found.n)
            }
            .boxed()
        })
        .await
        .expect("a figure from the database")
}

/// The play's listings, five recent sales at 20.00 and a standout game: every strategy of the
/// player matches, values the moment and skips a small discount.
async fn seed(mesh: &TradingMesh) -> (String, Vec<Uuid>) {
    let listings = mesh.list_market_moments(10, "simulator", 2_000).await;
    let player = mesh.record_sales(&listings[..5], 2_000).await;
    mesh.standout_game(&player).await;
    (player, listings)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let _telemetry = fastbreak_integration_tests::bench_telemetry();
        let mesh = TradingMesh::start(MeshOptions { agents: true, pool: 16, ..MeshOptions::default() }).await;
        let (player, listings) = seed(&mesh).await;
        let addr = mesh.addrs.iter().find(|(n, _)| *n == "strategy").expect("strategy").1;
        let mut strategies = StrategyServiceClient::connect(format!("http://{addr}")).await.expect("strategy");
        for _ in 0..USERS {
            let user = mesh.database.create_user().await;
            for n in 0..STRATEGIES_PER_USER {
                let strategy = Strategy {
                    display_name: format!("Spike {n}"),
                    priority: n,
                    rules: Some(StrategyRules {
                        min_confidence: 0.05,
                        min_discount_bps: 3_000 + 1_000 * n,
                        max_price_cents: 5_000,
                        max_purchases_per_day: 3,
                    }),
                    parameters: Some(Parameters::PostGameSpike(PostGameSpikeParameters {
                        min_game_score: 30,
                        buy_window_minutes: 360,
                        player_ids: vec![player.clone()],
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                let created = strategies
                    .create_strategy(as_user(
                        CreateStrategyRequest { strategy: Some(strategy), validate_only: false },
                        user,
                    ))
                    .await
                    .expect("a strategy")
                    .into_inner();
                strategies
                    .activate_strategy(as_user(ActivateStrategyRequest { strategy_id: created.strategy_id }, user))
                    .await
                    .expect("the strategy is active");
            }
        }
        let before = number(&mesh, "SELECT coalesce(max(sequence), 0) AS n FROM listing_events").await;
        let started = Instant::now();
        let repriced = listings.clone();
        mesh.pool
            .read_committed(move |conn| {
                let repriced = repriced.clone();
                async move {
                    market::lock_listing_events(conn).await?;
                    let mut events = Vec::new();
                    for i in 0..EVENTS {
                        let listing = repriced[i as usize % repriced.len()];
                        let price = 1_900 + i % 50;
                        market::update_listing_price(conn, listing, price).await?;
                        events.push((ListingEventKind::PriceChanged, listing, price));
                    }
                    market::append_listing_events(conn, &events).await
                }
                .boxed()
            })
            .await
            .expect("the repricings are written");
        let last = before + EVENTS;
        loop {
            let cursor = number(
                &mesh,
                "SELECT coalesce(max(sequence), 0) AS n FROM agent_cursors WHERE stream = 'marketplace.listing_events'",
            )
            .await;
            if cursor >= last {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "the agents fell behind: {cursor} of {last}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let decisions = number(&mesh, "SELECT count(*) AS n FROM decisions WHERE event_sequence IS NOT NULL").await;
        let expected = EVENTS * i64::from(STRATEGIES_PER_USER) * USERS as i64;
        assert_eq!(decisions, expected, "every event decided for every strategy");
        println!(
            "agents, {USERS} users, {} strategies: {EVENTS} listing events in {elapsed:.2} s = {:.1} events/s; \
             {decisions} decisions = {:.0} decisions/s",
            USERS as i32 * STRATEGIES_PER_USER,
            EVENTS as f64 / elapsed,
            decisions as f64 / elapsed
        );
    });
}
