//! Throughput of one target against a bare tonic server, both serving the same trivial unary
//! call (`grpc.health.v1.Health/Check`) over loopback, loaded by h2load (Debian's
//! nghttp2-client: 8 connections × 32 concurrent streams, pinned to core 0 while the servers
//! run on core 1). Prints requests per second and the mean latency of each, and their ratio,
//! alternating runs so that both see the same machine; the median ratio is the figure to read.
//! Asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench h2load` (needs `h2load` on PATH:
//! `apt-get install nghttp2-client`).

use std::process::Command;

use fastbreak_config::Secret;
use fastbreak_integration_tests::h2load::h2load;
use fastbreak_mesh::MeshServer;
use tonic::transport::server::TcpIncoming;

const ROUNDS: usize = 6;
const HEALTH: &str = "/grpc.health.v1.Health/Check";

fn main() {
    // Threads made from here on (the servers' runtime) run on core 1 only.
    let pinned = Command::new("taskset").args(["-cp", "1", &std::process::id().to_string()]).output();
    if !pinned.is_ok_and(|o| o.status.success()) {
        eprintln!("note: could not pin to core 1 (taskset); figures will be noisier");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let _telemetry = fastbreak_integration_tests::bench_telemetry();

        // A gRPC frame holding an empty HealthCheckRequest.
        let body = std::env::temp_dir().join("fastbreak-h2load-health.bin");
        std::fs::write(&body, [0u8, 0, 0, 0, 0]).unwrap();

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap().with_nodelay(Some(true));
        let bare = incoming.local_addr().unwrap();
        tokio::spawn(tonic::transport::Server::builder().add_service(health).serve_with_incoming(incoming));

        let server = MeshServer::new("bench")
            .with_credential(Secret::new("bench-internal-credential-0123456789abcdef".to_owned()))
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mesh = server.local_addr();
        server.readiness().set_serving().await;
        tokio::spawn(server.serve(std::future::pending()));

        let (mut bare_runs, mut mesh_runs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (b, m) = tokio::task::spawn_blocking({
                let body = body.clone();
                move || (h2load(bare, HEALTH, &[], &body), h2load(mesh, HEALTH, &[], &body))
            })
            .await
            .unwrap();
            println!(
                "bare tonic: {:>8.0} req/s (mean {:.2} ms)   target: {:>8.0} req/s (mean {:.2} ms)   ratio {:.2}",
                b.rps,
                b.mean_ms,
                m.rps,
                m.mean_ms,
                m.rps / b.rps
            );
            bare_runs.push(b.rps);
            mesh_runs.push(m.rps);
        }
        let mut ratios: Vec<f64> = mesh_runs.iter().zip(&bare_runs).map(|(m, b)| m / b).collect();
        ratios.sort_by(f64::total_cmp);
        let best = |runs: &[f64]| runs.iter().copied().fold(0.0, f64::max);
        println!(
            "over {ROUNDS} rounds: median ratio {:.2}; best bare {:.0} req/s, best target {:.0} req/s",
            ratios[ratios.len() / 2],
            best(&bare_runs),
            best(&mesh_runs)
        );
    });
}
