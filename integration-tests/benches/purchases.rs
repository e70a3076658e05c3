//! Purchases per second end to end (trading → risk → marketplace → ledger → outbox), with p50
//! and p99 latency, at 50 concurrent callers: spread over many users, then all on one hot
//! account. Prints figures; asserts only that the ledger still balances.
//!
//! `cargo bench -p fastbreak-integration-tests --bench purchases`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{as_user, closed_loop};
use fastbreak_proto::trading::v1::PurchaseMomentRequest;
use fastbreak_trading::store as trading;
use futures::FutureExt;
use uuid::Uuid;

const CALLERS: usize = 50;
const RUN: Duration = Duration::from_secs(10);
const PRICE: i64 = 100;

async fn run(mesh: &TradingMesh, users: &[Uuid], label: &str) {
    let listings = Arc::new(mesh.list_market_moments(20_000, "simulator", PRICE).await);
    let next = Arc::new(AtomicUsize::new(0));
    let users = Arc::new(users.to_vec());
    let client = mesh.trading().await;
    let report = closed_loop(CALLERS, RUN, move |_, _| {
        let (listings, next, users, mut client) = (listings.clone(), next.clone(), users.clone(), client.clone());
        async move {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let listing = listings[n % listings.len()];
            let user = users[n % users.len()];
            let request = PurchaseMomentRequest {
                listing_id: listing.to_string(),
                max_price_cents: PRICE,
                idempotency_key: format!("bench-{n}"),
                ..Default::default()
            };
            client.purchase_moment(as_user(request, user)).await
        }
    })
    .await;
    println!("purchases, {label}: {}", report.summary());
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let _telemetry = fastbreak_integration_tests::bench_telemetry();
        let options = MeshOptions { pool: 24, ..MeshOptions::default() };
        let mesh = TradingMesh::start(options).await;
        let mut many = Vec::new();
        for _ in 0..200 {
            let (user, _) = mesh.funded_user(10_000_000).await;
            mesh.raise_limits(user).await;
            many.push(user);
        }
        run(&mesh, &many, "200 users").await;
        let (hot, _) = mesh.funded_user(100_000_000).await;
        mesh.raise_limits(hot).await;
        run(&mesh, &[hot], "one hot account").await;
        let total = mesh.pool.read(|conn| async move { trading::total_balance(conn).await }.boxed()).await.unwrap();
        assert_eq!(total, 0, "the ledger balances after the benchmark");
    });
}
