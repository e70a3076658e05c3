//! Cost per call of one target against a bare tonic server, both serving the same trivial unary
//! call (`grpc.health.v1.Health/Check`) over loopback, loaded by h2load (Debian's
//! nghttp2-client: 8 connections × 32 concurrent streams, pinned to core 0 while the servers
//! run on core 1, each on a runtime of its own).
//!
//! Each round sends the same number of requests to each server, one after the other, and prints
//! for each its throughput and the CPU time its threads spent per call; then the two ratios
//! (target ÷ bare throughput, and bare ÷ target CPU per call, which this machine's noise moves
//! far less). The medians over the rounds are the figures to read. Asserts nothing.
//!
//! The target logs as a target does unless told otherwise (`info`, JSON, written nowhere here);
//! `RUST_LOG` sets another filter. Run with
//! `cargo bench -p fastbreak-integration-tests --bench h2load` (needs `h2load` on PATH:
//! `apt-get install nghttp2-client`).

use std::net::SocketAddr;
use std::process::Command;

use fastbreak_config::Secret;
use fastbreak_integration_tests::h2load::{Length, h2load_for, thread_cpu_ns};
use fastbreak_mesh::MeshServer;
use tonic::transport::server::TcpIncoming;

/// Rounds, and requests per server per round, unless `H2LOAD_ROUNDS` or `H2LOAD_REQUESTS` say
/// otherwise (fewer for a run under a profiler).
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
const HEALTH: &str = "/grpc.health.v1.Health/Check";

/// Starts a server on a runtime of its own (one worker) whose threads are all named `name`, and
/// returns its address.
fn start<F>(name: &'static str, serve: F) -> SocketAddr
where
    F: FnOnce() -> futures::future::BoxFuture<'static, SocketAddr> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(name)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                tx.send(serve().await).unwrap();
                std::future::pending::<()>().await
            })
        })
        .unwrap();
    rx.recv().unwrap()
}

/// One server's figures for one round.
struct Figures {
    rps: f64,
    cpu_us_per_call: f64,
}

fn load(name: &str, addr: SocketAddr, body: &std::path::Path, requests: u64) -> Figures {
    let before = thread_cpu_ns(name);
    let load = h2load_for(Length::Requests(requests), addr, HEALTH, &[], body);
    let cpu = thread_cpu_ns(name) - before;
    Figures { rps: load.rps, cpu_us_per_call: cpu as f64 / 1000.0 / requests as f64 }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // Threads made from here on (the servers' runtimes) run on core 1 only.
    let pinned = Command::new("taskset").args(["-cp", "1", &std::process::id().to_string()]).output();
    if !pinned.is_ok_and(|o| o.status.success()) {
        eprintln!("note: could not pin to core 1 (taskset); figures will be noisier");
    }
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let telemetry_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _telemetry = telemetry_runtime.block_on(async { fastbreak_integration_tests::bench_telemetry_at(&filter) });

    // A gRPC frame holding an empty HealthCheckRequest.
    let body = std::env::temp_dir().join("fastbreak-h2load-health.bin");
    std::fs::write(&body, [0u8, 0, 0, 0, 0]).unwrap();

    let bare = start("bench-bare", || {
        Box::pin(async {
            let (reporter, health) = tonic_health::server::health_reporter();
            reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
            let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap().with_nodelay(Some(true));
            let addr = incoming.local_addr().unwrap();
            tokio::spawn(tonic::transport::Server::builder().add_service(health).serve_with_incoming(incoming));
            addr
        })
    });
    let target = start("bench-target", || {
        Box::pin(async {
            let server = MeshServer::new("bench")
                .with_credential(Secret::new("bench-internal-credential-0123456789abcdef".to_owned()))
                .bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let addr = server.local_addr();
            server.readiness().set_serving().await;
            tokio::spawn(server.serve(std::future::pending()));
            addr
        })
    });

    let (rounds, requests) = (setting("H2LOAD_ROUNDS", 6), setting("H2LOAD_REQUESTS", 150_000));
    println!("{requests} health checks per server per round, log filter {filter:?}");
    let (mut rps_ratios, mut cost_ratios) = (Vec::new(), Vec::new());
    let (mut bare_costs, mut target_costs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let b = load("bench-bare", bare, &body, requests);
        let t = load("bench-target", target, &body, requests);
        println!(
            "bare tonic: {:>6.0} req/s, {:>5.2} µs CPU per call   target: {:>6.0} req/s, {:>5.2} µs CPU per call   \
             ratios: throughput {:.2}, cost {:.2}",
            b.rps,
            b.cpu_us_per_call,
            t.rps,
            t.cpu_us_per_call,
            t.rps / b.rps,
            b.cpu_us_per_call / t.cpu_us_per_call
        );
        rps_ratios.push(t.rps / b.rps);
        cost_ratios.push(b.cpu_us_per_call / t.cpu_us_per_call);
        bare_costs.push(b.cpu_us_per_call);
        target_costs.push(t.cpu_us_per_call);
    }
    println!(
        "over {rounds} rounds: bare {:.2} µs CPU per call, target {:.2} µs (medians); \
         median ratios: throughput {:.2}, cost {:.2}",
        median(bare_costs),
        median(target_costs),
        median(rps_ratios),
        median(cost_ratios)
    );
}
