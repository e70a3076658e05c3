//! One cheap authenticated RPC (`UserService/GetCurrentUser`) sent straight to the user
//! service (with the internal credential and the user's id, as the gateway would send it) and
//! through the gateway (with a bearer token), loaded alike by h2load: calls per second, p50 and
//! p99 latency of each, and their ratio, over alternating rounds. The anchor beside it: HAProxy
//! forwarding the direct calls to the same user service (HTTP/2 in clear text in and out, on
//! the same core), and its ratio. Then the latency the gateway adds at low load: one call at a
//! time over one connection, direct, through the gateway and through HAProxy. Asserts nothing.
//!
//! `cargo bench -p fastbreak-integration-tests --bench gateway` (needs `h2load`:
//! `apt-get install nghttp2-client`; and `haproxy` for the anchor, without which the rest is
//! printed).

use std::process::Command;

use fastbreak_db::testing::TestDatabase;
use fastbreak_integration_tests::h2load::{Load, h2load, h2load_serial};
use fastbreak_integration_tests::haproxy::Haproxy;
use fastbreak_mesh::testing::{TEST_CREDENTIAL, TestServer, as_user, internal, peer_channel};
use fastbreak_mesh::{Context, Peers};
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use fastbreak_proto::user::v1::{CreateAccessTokenRequest, CreateUserRequest, GetCurrentUserRequest};

/// Rounds of load (`GATEWAY_ROUNDS`, 0 to go straight to the calls one at a time, as a profile
/// under callgrind wants).
fn rounds() -> usize {
    std::env::var("GATEWAY_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4)
}

/// Calls made one at a time, for the latency at low load (`GATEWAY_SERIAL`).
fn serial() -> u64 {
    std::env::var("GATEWAY_SERIAL").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000)
}
/// The aim: the gateway keeps at least this share of the direct calls' throughput.
const AIM: f64 = 0.7;
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
        let gateway =
            TestServer::start(fastbreak_gateway::server(peers, gateway_settings, None, None).public_edge()).await;
        fastbreak_mesh::wait_serving(&gateway.addr().to_string(), "", std::time::Duration::from_secs(10))
            .await
            .unwrap();

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
        // HAProxy runs on this process's core, as the gateway does.
        let haproxy = match Haproxy::start(direct_addr) {
            Ok(haproxy) => Some(haproxy),
            Err(error) => {
                println!("no HAProxy anchor: {error}");
                None
            }
        };
        let haproxy_addr = haproxy.as_ref().map(Haproxy::addr);
        if let Some(addr) = haproxy_addr {
            // The anchor forwards the call as the service answers it (not some error of its own).
            let user_id = created.user_id.parse().expect("a user id");
            let mut through = UserServiceClient::new(fastbreak_integration_tests::connect(addr).await);
            let answered = through.get_current_user(as_user(GetCurrentUserRequest::default(), user_id)).await;
            assert_eq!(answered.expect("a call through HAProxy").into_inner().user_id, created.user_id);
        }
        let figures =
            |load: &Load| format!("{:>7.0} calls/s (p50 {:.2} ms, p99 {:.2} ms)", load.rps, load.p50_ms, load.p99_ms);
        let (mut ratios, mut anchor_ratios) = (Vec::new(), Vec::new());
        for _ in 0..rounds() {
            let (d, g, h) = tokio::task::spawn_blocking({
                let (body, direct_headers, gateway_headers) =
                    (body.clone(), direct_headers.clone(), gateway_headers.clone());
                move || {
                    let d = h2load(direct_addr, PATH, &direct_headers, &body);
                    let g = h2load(gateway_addr, PATH, &gateway_headers, &body);
                    let h = haproxy_addr.map(|addr| h2load(addr, PATH, &direct_headers, &body));
                    (d, g, h)
                }
            })
            .await
            .unwrap();
            let mut line =
                format!("direct: {}   through the gateway: {}   ratio {:.2}", figures(&d), figures(&g), g.rps / d.rps);
            if let Some(h) = h {
                line.push_str(&format!("   through HAProxy: {}   ratio {:.2}", figures(&h), h.rps / d.rps));
                anchor_ratios.push(h.rps / d.rps);
            }
            println!("{line}");
            ratios.push(g.rps / d.rps);
        }
        let median = |ratios: &mut Vec<f64>| {
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        };
        if !ratios.is_empty() {
            let mut line = format!(
                "over {} rounds: median ratio to direct, gateway {:.2} (aim ≥ {AIM})",
                ratios.len(),
                median(&mut ratios)
            );
            if !anchor_ratios.is_empty() {
                line.push_str(&format!(", HAProxy {:.2}", median(&mut anchor_ratios)));
            }
            println!("{line}");
        }

        let (d, g, h) = tokio::task::spawn_blocking(move || {
            let d = h2load_serial(serial(), direct_addr, PATH, &direct_headers, &body);
            let g = h2load_serial(serial(), gateway_addr, PATH, &gateway_headers, &body);
            let h = haproxy_addr.map(|addr| h2load_serial(serial(), addr, PATH, &direct_headers, &body));
            (d, g, h)
        })
        .await
        .unwrap();
        let latency = |load: &Load| format!("p50 {:.3} ms, p99 {:.3} ms", load.p50_ms, load.p99_ms);
        let added =
            |load: &Load| format!("p50 {:+.3} ms, p99 {:+.3} ms", load.p50_ms - d.p50_ms, load.p99_ms - d.p99_ms);
        println!(
            "one call at a time ({} calls over one connection): direct {}; through the gateway {} (adds {})",
            serial(),
            latency(&d),
            latency(&g),
            added(&g)
        );
        if let Some(h) = h {
            println!("one call at a time through HAProxy: {} (adds {})", latency(&h), added(&h));
        }
        drop(haproxy);
    });
}
