//! The long fuzzing run through the gateway: random well-formed and malformed requests to every
//! public RPC of the whole mesh (in this process), by default 100,000 of them. Prints the seed,
//! the tally (answers by code, transport errors, every kind of INTERNAL/UNKNOWN answer with a
//! request that replays it) and the process's resident memory before and after the run.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench fuzz`; `FUZZ_REQUESTS` (or the
//! first argument) sets the number of requests, `FASTBREAK_FUZZ_SEED` the seed, `FUZZ_CONCURRENCY`
//! the requests in flight (32). Needs PostgreSQL, as the tests do. Exits 1 on a finding.

use std::time::{Duration, Instant};

use fastbreak_integration_tests::TestMesh;
use fastbreak_integration_tests::fuzz::{self, Client};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; a number among the arguments is the request count.
    let requests =
        std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or_else(|| setting("FUZZ_REQUESTS", 100_000));
    let concurrency = setting("FUZZ_CONCURRENCY", 32) as usize;
    let seed = fuzz::seed(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    );
    println!("fuzz seed {seed} (FASTBREAK_FUZZ_SEED={seed} replays it), {requests} requests, {concurrency} in flight");
    let _telemetry = fastbreak_integration_tests::bench_telemetry_at("error");
    let mesh = TestMesh::spawn("all").await;
    // Enough client addresses and users that the gateway's rate limits rarely answer instead.
    let client = Client::connect(mesh.addr("gateway"), 32, 16).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = fuzz::resident_kib();
    let started = Instant::now();
    let tally = fuzz::run(&client, seed, requests, concurrency).await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = fuzz::resident_kib();
    println!("{tally}in {took:.1?} ({:.0} requests/s)", tally.sent as f64 / took.as_secs_f64());
    println!("resident memory: {before} KiB before, {after} KiB after 5 s of settling");
    let not_serving = fuzz::not_serving(mesh.addrs()).await;
    println!("not SERVING after the run: {not_serving:?}");
    if !not_serving.is_empty() || !tally.findings.is_empty() {
        std::process::exit(1);
    }
}
