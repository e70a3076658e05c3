//! Purchases per second end to end (trading → risk → marketplace → ledger → outbox), with p50
//! and p99 latency, at 50 concurrent callers: spread over many users, then all on one hot
//! account; with the database transactions each purchase costs (PostgreSQL's own count for the
//! mesh's database, less what the idle mesh commits meanwhile) and what the database's busy
//! sessions were doing (sampled every 100 ms: running, waiting on a lock and which, or idle in
//! a transaction while a service works or waits on a peer). Beside them, the anchor: pgbench's
//! TPC-B on a database of its own on the same PostgreSQL cluster, in the same run, and the
//! ratio of purchases to its transactions. Prints figures; asserts only that the ledger still
//! balances.
//!
//! `cargo bench -p fastbreak-integration-tests --bench purchases`

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl as _;
use fastbreak_integration_tests::pgbench::{self, TpcB, TpcBRun};
use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{LoadReport, as_user, closed_loop};
use fastbreak_proto::trading::v1::PurchaseMomentRequest;
use fastbreak_trading::store as trading;
use futures::FutureExt;
use uuid::Uuid;

const CALLERS: usize = 50;
const RUN: Duration = Duration::from_secs(10);
const PRICE: i64 = 100;
const LISTINGS: usize = 20_000;

/// How long a PostgreSQL session may keep the counts of its last transactions to itself before
/// publishing them (15's PGSTAT_IDLE_INTERVAL is 10 s): the wait before the counters are read.
const SETTLE: Duration = Duration::from_secs(11);

/// How long the idle mesh's own transactions are counted for.
const IDLE: Duration = Duration::from_secs(5);

/// The aims: purchases at a quarter of TPC-B's transactions at least, p99 under 100 ms at 50
/// callers, 100 purchases a second at least on one hot account.
const AIM_RATIO: f64 = 0.25;
const AIM_P99_MS: f64 = 100.0;
const AIM_HOT: f64 = 100.0;

/// The transactions committed and rolled back in the mesh's database so far, as PostgreSQL
/// counts them (every statement outside an explicit transaction is one).
async fn transactions(mesh: &TradingMesh) -> (i64, Instant) {
    let count = mesh
        .pool
        .read(|conn| {
            async move {
                let count = diesel::select(diesel::dsl::sql::<BigInt>(
                    "(SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database())",
                ))
                .get_result::<i64>(conn)
                .await?;
                Ok(count)
            }
            .boxed()
        })
        .await
        .expect("the database's statistics");
    (count, Instant::now())
}

/// The mesh's database sessions that are not idle, counted by what they are doing: running,
/// waiting (`Lock:advisory`, `Lock:transactionid`, `IO:...`), or idle in a transaction (waiting
/// for its service).
const ACTIVITY: &str = "(SELECT coalesce(string_agg(what || '=' || n, ' '), '') FROM ( \
     SELECT CASE WHEN a.state LIKE 'idle in transaction%' THEN 'idle-in-transaction' \
     WHEN a.wait_event_type IS NULL THEN 'running' \
     WHEN a.wait_event = 'advisory' THEN 'Lock:advisory(' || coalesce((SELECT CASE \
         WHEN l.objid::bigint = (k.h & 4294967295) AND l.classid::bigint = ((k.h >> 32) & 4294967295) \
         THEN 'listing_events' ELSE 'another_key' END \
         FROM pg_locks l, (SELECT hashtextextended('listing_events', 0) AS h) AS k \
         WHERE l.pid = a.pid AND NOT l.granted AND l.locktype = 'advisory' LIMIT 1), '?') || ')' \
     ELSE a.wait_event_type || ':' || a.wait_event END AS what, count(*) AS n \
     FROM pg_stat_activity a WHERE a.datname = current_database() AND a.state <> 'idle' \
     AND a.pid <> pg_backend_pid() GROUP BY 1) AS busy)";

/// Samples what the database's sessions do every 100 ms until `stop`; the mean count of
/// sessions in each state, most first.
async fn sample_activity(pool: fastbreak_db::Database, stop: tokio::sync::watch::Receiver<bool>) -> Vec<(String, f64)> {
    let (mut totals, mut samples) = (HashMap::<String, f64>::new(), 0u32);
    while !*stop.borrow() {
        let sample = pool
            .read(|conn| {
                async move { Ok(diesel::select(diesel::dsl::sql::<Text>(ACTIVITY)).get_result::<String>(conn).await?) }
                    .boxed()
            })
            .await;
        if let Ok(sample) = sample {
            samples += 1;
            for (what, n) in sample.split_whitespace().filter_map(|pair| pair.rsplit_once('=')) {
                *totals.entry(what.to_owned()).or_default() += n.parse::<f64>().unwrap_or(0.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut means: Vec<(String, f64)> =
        totals.into_iter().map(|(what, total)| (what, total / f64::from(samples.max(1)))).collect();
    means.sort_by(|a, b| b.1.total_cmp(&a.1));
    means
}

/// What one run measured.
struct Run {
    load: LoadReport,
    /// Database transactions per successful purchase.
    transactions: f64,
    /// The mean number of the database's sessions in each state while loaded, most first.
    activity: Vec<(String, f64)>,
}

impl Run {
    fn print(&self, label: &str) {
        println!(
            "purchases, {label}: {}; {:.1} database transactions per purchase",
            self.load.summary(),
            self.transactions
        );
        let activity: Vec<String> = self.activity.iter().take(6).map(|(what, n)| format!("{what} {n:.1}")).collect();
        println!("  database sessions busy, on average: {}", activity.join(", "));
    }
}

/// One run's load, with the database transactions per successful purchase and what the
/// database's sessions were doing.
async fn run(mesh: &TradingMesh, users: &[Uuid], listings: Vec<Uuid>, idle_rate: f64) -> Run {
    // Said before the load starts, so that a profiler can be started on it (see "Profiling" in docs/testing.md).
    eprintln!("loading: {} users, {CALLERS} callers, {} s", users.len(), RUN.as_secs());
    let listings = Arc::new(listings);
    let next = Arc::new(AtomicUsize::new(0));
    let users = Arc::new(users.to_vec());
    let client = mesh.trading().await;
    let before = transactions(mesh).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(sample_activity(mesh.pool.clone(), stopped));
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
    let _ = stop.send(true);
    let activity = sampler.await.expect("the sampler does not panic");
    tokio::time::sleep(SETTLE).await;
    let after = transactions(mesh).await;
    let idle = idle_rate * after.1.duration_since(before.1).as_secs_f64();
    let per_purchase = ((after.0 - before.0) as f64 - idle) / report.calls.max(1) as f64;
    Run { load: report, transactions: per_purchase, activity }
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
        let (hot, _) = mesh.funded_user(100_000_000).await;
        mesh.raise_limits(hot).await;
        let many_listings = mesh.list_market_moments(LISTINGS, "simulator", PRICE).await;
        let hot_listings = mesh.list_market_moments(LISTINGS, "simulator", PRICE).await;

        // The anchor, while the mesh idles (its sessions publish their last counts meanwhile).
        let admin = mesh.database.cluster_url("postgres");
        let started = Instant::now();
        let anchor =
            tokio::task::spawn_blocking(move || pgbench::tpcb(&admin, TpcBRun::default())).await.expect("pgbench");
        if let Some(left) = SETTLE.checked_sub(started.elapsed()) {
            tokio::time::sleep(left).await;
        }
        let idle_start = transactions(&mesh).await;
        tokio::time::sleep(IDLE).await;
        let idle_end = transactions(&mesh).await;
        let idle_rate = (idle_end.0 - idle_start.0) as f64 / idle_end.1.duration_since(idle_start.1).as_secs_f64();

        let spread = run(&mesh, &many, many_listings, idle_rate).await;
        spread.print("200 users");
        let hot = run(&mesh, &[hot], hot_listings, idle_rate).await;
        hot.print("one hot account");
        println!("(the idle mesh commits {idle_rate:.0} transactions/s of its own, taken off the counts above)");
        report(anchor.as_ref(), &spread.load, &hot.load);

        let total = mesh.pool.read(|conn| async move { trading::total_balance(conn).await }.boxed()).await.unwrap();
        assert_eq!(total, 0, "the ledger balances after the benchmark");
    });
}

/// The anchor and the purchases beside it, against the aims.
fn report(anchor: Result<&TpcB, &String>, spread: &LoadReport, hot: &LoadReport) {
    let p99 = spread.quantile(0.99).as_secs_f64() * 1000.0;
    let verdict = |met: bool| if met { "met" } else { "not met" };
    match anchor {
        Ok(anchor) => {
            println!("anchor, on the same PostgreSQL cluster: {}", anchor.summary());
            let (spread_ratio, hot_ratio) = (spread.rate() / anchor.tps, hot.rate() / anchor.tps);
            println!(
                "purchases/s ÷ TPC-B tps: 200 users {:.0} / {:.0} = {spread_ratio:.2} (aim ≥ {AIM_RATIO}: {}); one hot account {:.0} / {:.0} = {hot_ratio:.2}",
                spread.rate(),
                anchor.tps,
                verdict(spread_ratio >= AIM_RATIO),
                hot.rate(),
                anchor.tps,
            );
        }
        Err(error) => println!("anchor: pgbench could not be run, so there is no ratio: {error}"),
    }
    println!(
        "p99 at {CALLERS} callers, 200 users: {p99:.1} ms (aim < {AIM_P99_MS} ms: {}); one hot account: {:.0} purchases/s (aim ≥ {AIM_HOT}/s: {})",
        verdict(p99 < AIM_P99_MS),
        hot.rate(),
        verdict(hot.rate() >= AIM_HOT),
    );
}
