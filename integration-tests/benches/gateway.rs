//! One cheap authenticated RPC (`UserService/GetCurrentUser`) sent straight to the user
//! service (with the internal credential and the user's id, as the gateway would send it) and
//! through the gateway (with a bearer token), loaded alike by h2load: calls per second, p50 and
//! p99 latency of each, and their ratio, over alternating rounds. Asserts nothing.
//!
//! `cargo bench -p fastbreak-integration-tests --bench gateway` (needs `h2load`:
//! `apt-get install nghttp2-client`).

use std::process::Command;

use fastbreak_db::testing::TestDatabase;
use fastbreak_integration_tests::h2load::h2load;
use fastbreak_mesh::testing::{TEST_CREDENTIAL, TestServer, internal, peer_channel};
use fastbreak_mesh::{Context, Peers};
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use fastbreak_proto::user::v1::{CreateAccessTokenRequest, CreateUserRequest};

const ROUNDS: usize = 4;
const PATH: &str = "/fastbreak.user.v1.UserService/GetCurrentUser";

fn main() {
    let pinned = Command::new("taskset").args(["-cp", "1", &std::process::id().to_string()]).output();
    if !pinned.is_ok_and(|o| o.status.success()) {
        eprintln!("note: could not pin to core 1 (taskset); figures will be noisier");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let _telemetry = fastbreak_integration_tests::bench_telemetry();
        let database = TestDatabase::create().await;
        let settings = fastbreak_user::Settings {
            password_hashing: fastbreak_user::settings::PasswordCost { memory_kib: 64, iterations: 1 },
            ..Default::default()
        };
        let user = TestServer::start(fastbreak_user::server(Context::new(database.database(), settings))).await;
        let mut peers = Peers::default();
        peers.insert("user", peer_channel("user", &[user.addr()]));
        let gateway_settings = fastbreak_gateway::Settings {
            user_rate: 1_000_000,
            address_rate: 1_000_000,
            ..fastbreak_gateway::Settings::default()
        };
        let gateway = TestServer::start(
            fastbreak_gateway::server(peers, gateway_settings, None).public_edge(),
        )
        .await;
        fastbreak_mesh::wait_serving(&gateway.addr().to_string(), "", std::time::Duration::from_secs(10)).await.unwrap();

        let mut users = UserServiceClient::new(user.channel().await);
        let created = users
            .create_user(internal(CreateUserRequest {
                display_name: "Bench".into(),
                email: "bench@example.com".into(),
                password: "correct horse battery staple".into(),
            }))
            .await
            .unwrap()
            .into_inner();
        let token = users
            .create_access_token(internal(CreateAccessTokenRequest {
                email: "bench@example.com".into(),
                password: "correct horse battery staple".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .secret;

        // A gRPC frame holding an empty GetCurrentUserRequest.
        let body = std::env::temp_dir().join("fastbreak-h2load-empty.bin");
        std::fs::write(&body, [0u8, 0, 0, 0, 0]).unwrap();
        let direct_headers = vec![
            format!("x-fastbreak-internal-token: {TEST_CREDENTIAL}"),
            format!("x-fastbreak-user-id: {}", created.user_id),
        ];
        let gateway_headers = vec![format!("authorization: Bearer {token}")];
        let (direct_addr, gateway_addr) = (user.addr(), gateway.addr());
        let mut ratios = Vec::new();
        for _ in 0..ROUNDS {
            let (d, g) = tokio::task::spawn_blocking({
                let (body, direct_headers, gateway_headers) = (body.clone(), direct_headers.clone(), gateway_headers.clone());
                move || (h2load(direct_addr, PATH, &direct_headers, &body), h2load(gateway_addr, PATH, &gateway_headers, &body))
            })
            .await
            .unwrap();
            println!(
                "direct: {:>7.0} calls/s (p50 {:.2} ms, p99 {:.2} ms)   through the gateway: {:>7.0} calls/s (p50 {:.2} ms, p99 {:.2} ms)   ratio {:.2}",
                d.rps, d.p50_ms, d.p99_ms, g.rps, g.p50_ms, g.p99_ms, g.rps / d.rps
            );
            ratios.push(g.rps / d.rps);
        }
        ratios.sort_by(f64::total_cmp);
        println!("over {ROUNDS} rounds: median ratio {:.2}", ratios[ratios.len() / 2]);
    });
}
