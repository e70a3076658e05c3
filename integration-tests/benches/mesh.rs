//! The cost of the mesh per call: the same unary call to the same handler over loopback, with
//! plain tonic on both sides, with the mesh's server layers (telemetry, credential check), and
//! with the mesh's client as well (health-aware endpoint choice, breaker, deadline, metadata).
//! Prints microseconds per call; asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench mesh`.

use std::time::{Duration, Instant};

use fastbreak_integration_tests::echo::{risk_channel, spawn_echo, test_peer_options};
use fastbreak_integration_tests::{connect, internal_request};
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::risk::v1::risk_internal_service_server::{RiskInternalService, RiskInternalServiceServer};
use fastbreak_proto::risk::v1::{GetHoldRequest, Hold};

const CALLS: u32 = 5_000;
const ROUNDS: usize = 3;

#[derive(Debug, Clone, Copy)]
struct Plain;

#[tonic::async_trait]
impl RiskInternalService for Plain {
    async fn get_hold(&self, _: tonic::Request<GetHoldRequest>) -> Result<tonic::Response<Hold>, tonic::Status> {
        Ok(tonic::Response::new(Hold { hold_id: "plain".to_owned(), ..Hold::default() }))
    }
}

async fn measure<F, Fut>(mut call: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..200 {
        call().await; // warm up
    }
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..CALLS {
            call().await;
        }
        best = best.min(started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
    }
    best
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let _telemetry = fastbreak_integration_tests::bench_telemetry();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RiskInternalServiceServer::new(Plain))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let plain_client = RiskInternalServiceClient::new(connect(plain_addr).await);
        let plain = measure(|| {
            let mut client = plain_client.clone();
            async move {
                client.get_hold(GetHoldRequest::default()).await.unwrap();
            }
        })
        .await;

        let mesh = spawn_echo("bench", Duration::ZERO, Duration::from_secs(1)).await;
        let server_only_client = RiskInternalServiceClient::new(connect(mesh.addr).await);
        let server_layers = measure(|| {
            let mut client = server_only_client.clone();
            async move {
                client.get_hold(internal_request(GetHoldRequest::default())).await.unwrap();
            }
        })
        .await;

        let channel = risk_channel(&[mesh.url()], test_peer_options());
        while channel.serving_endpoints() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mesh_client = RiskInternalServiceClient::new(channel);
        let both = measure(|| {
            let mut client = mesh_client.clone();
            async move {
                client.get_hold(GetHoldRequest::default()).await.unwrap();
            }
        })
        .await;

        println!("unary call over loopback, best of {ROUNDS} rounds of {CALLS} sequential calls:");
        println!("  plain tonic client and server:        {plain:>7.1} us/call");
        println!(
            "  plain client, mesh server layers:     {server_layers:>7.1} us/call  (+{:.1} us)",
            server_layers - plain
        );
        println!("  mesh client and mesh server layers:   {both:>7.1} us/call  (+{:.1} us)", both - plain);
    });
}
