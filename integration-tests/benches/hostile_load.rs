//! A victim's calls through the gateway, alone and then while hostile callers do their worst:
//! 1,000 listing streams from the first event, held across as many users as the per-user cap
//! asks (and one user trying past it), and an unauthenticated address sending request bodies
//! that never end and flooding sign-ins. Prints the victim's p50, p99 and errors side by side,
//! and whether any target left SERVING meanwhile.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench hostile_load` (needs
//! PostgreSQL, as the tests do). `HOSTILE_STREAMS` sets the streams (1,000), `HOSTILE_CALLS`
//! the victim's calls per phase (300), `HOSTILE_PARTS` which attacks run (`streams,bodies,flood`,
//! the default), to tell their costs apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fastbreak_integration_tests::TestMesh;
use fastbreak_integration_tests::attack::{bearer, gateway_from, healths, sign_in, sign_up, slow_body};
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::marketplace::v1::{ListListingsRequest, StreamListingEventsRequest};
use fastbreak_proto::user::v1::GetCurrentUserRequest;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The victim's calls: latencies of those answered, and the errors.
struct Calls {
    latencies: Vec<Duration>,
    errors: Vec<Code>,
}

impl Calls {
    fn at(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted.get(((sorted.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or_default()
    }
}

/// `count` calls, one after another, alternating a user-service read and a marketplace read.
async fn victim(gateway: Channel, token: &str, count: usize) -> Calls {
    let mut users = UserServiceClient::new(gateway.clone());
    let mut market = MarketplaceServiceClient::new(gateway);
    let mut calls = Calls { latencies: Vec::new(), errors: Vec::new() };
    for n in 0..count {
        let started = Instant::now();
        let outcome = if n % 2 == 0 {
            users.get_current_user(bearer(GetCurrentUserRequest {}, token)).await.map(|_| ())
        } else {
            let request = ListListingsRequest { page_size: 20, ..Default::default() };
            market.list_listings(bearer(request, token)).await.map(|_| ())
        };
        match outcome {
            Ok(()) => calls.latencies.push(started.elapsed()),
            Err(status) => calls.errors.push(status.code()),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    calls
}

#[tokio::main]
async fn main() {
    let parts = std::env::var("HOSTILE_PARTS").unwrap_or_else(|_| "streams,bodies,flood".to_owned());
    let streams = if parts.contains("streams") { setting("HOSTILE_STREAMS", 1_000) } else { 0 };
    let count = setting("HOSTILE_CALLS", 300);
    let per_user = fastbreak_mesh::tail::Limits::default().per_caller;
    let _telemetry = fastbreak_integration_tests::bench_telemetry_at("error");
    let mesh = TestMesh::spawn("all").await;
    let gateway = gateway_from(&mesh, "127.0.0.2").await;
    let victim_token = sign_up(gateway.clone(), "victim@example.com").await;
    let users = streams.div_ceil(per_user);
    println!("signing up {} stream holders ({per_user} streams each at most)", users + 1);
    let holders = gateway_from(&mesh, "127.0.0.1").await;
    let mut tokens = Vec::new();
    for n in 0..=users {
        tokens.push(sign_up(holders.clone(), &format!("holder-{n}@example.com")).await);
    }

    let alone = victim(gateway.clone(), &victim_token, count).await;

    // The attack: streams first, held until the end.
    let mut held = Vec::new();
    let mut refused_streams = Vec::new();
    let started = Instant::now();
    for (n, token) in tokens.iter().enumerate().filter(|_| streams > 0) {
        // The last user tries one past the cap.
        let wanted = if n == users { per_user + 1 } else { per_user.min(streams - held.len().min(streams)) };
        // Each holder from an address of its own, as separate clients would be.
        let channel = gateway_from(&mesh, &format!("127.0.1.{}", n % 250 + 1)).await;
        let mut market = MarketplaceServiceClient::new(channel);
        for _ in 0..wanted {
            let request = StreamListingEventsRequest { after_sequence: Some(0), ..Default::default() };
            match market.stream_listing_events(bearer(request, token)).await {
                Ok(stream) => held.push(stream.into_inner()),
                Err(status) => refused_streams.push(status.code()),
            }
        }
    }
    println!("{} streams open in {:?}; refused: {refused_streams:?}", held.len(), started.elapsed());
    let received = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = held
        .into_iter()
        .map(|mut stream| {
            let received = received.clone();
            tokio::spawn(async move {
                while let Ok(Some(_)) = stream.message().await {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Then the unauthenticated address: bodies that never end, and a sign-in flood.
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = gateway_from(&mesh, "127.0.0.3").await;
    let mut attacks = Vec::new();
    for _ in 0..if parts.contains("bodies") { 60 } else { 0 } {
        let (channel, stop) = (attacker.clone(), stop.clone());
        attacks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let path = "/fastbreak.user.v1.UserService/CreateUser";
                answers.push(slow_body(channel.clone(), path, None, 4_000_000, 1024 * 1024).await);
            }
            answers
        }));
    }
    for n in 0..if parts.contains("flood") { 100 } else { 0 } {
        let (mut users, stop) = (UserServiceClient::new(attacker.clone()), stop.clone());
        attacks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut attempt = 0;
            while !stop.load(Ordering::Relaxed) {
                attempt += 1;
                let answer = sign_in(&mut users, &format!("flood-{n}-{attempt}@example.com")).await;
                let code = answer.map_or_else(|s| s.code(), |_| Code::Ok);
                if code != Code::Unauthenticated {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                answers.push(code);
            }
            answers
        }));
    }
    // Every target's health, every 200 ms, while the victim calls.
    let watching = {
        let stop = stop.clone();
        let addrs = mesh.addrs().clone();
        tokio::spawn(async move {
            let mut not_serving = std::collections::BTreeMap::<&str, usize>::new();
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                rounds += 1;
                for (name, status) in healths(&addrs).await {
                    if status != ServingStatus::Serving {
                        *not_serving.entry(name).or_default() += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (rounds, not_serving)
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attacked = victim(gateway.clone(), &victim_token, count).await;
    stop.store(true, Ordering::Relaxed);
    let (rounds, not_serving) = watching.await.unwrap();
    let mut attack_answers = std::collections::BTreeMap::<String, usize>::new();
    for attack in attacks {
        for code in attack.await.unwrap() {
            *attack_answers.entry(format!("{code:?}")).or_default() += 1;
        }
    }
    println!();
    println!("{:<28} {:>10} {:>10} {:>8}", "victim", "p50", "p99", "errors");
    for (name, calls) in [("alone", &alone), ("under attack", &attacked)] {
        println!("{name:<28} {:>10.1?} {:>10.1?} {:>8}", calls.at(0.5), calls.at(0.99), calls.errors.len());
    }
    println!("attacks: {parts}");
    println!("victim errors under attack: {:?}", attacked.errors);
    println!(
        "p99 under attack / alone: {:.2}",
        attacked.at(0.99).as_secs_f64() / alone.at(0.99).as_secs_f64().max(1e-9)
    );
    println!("listing events the streams received: {}", received.load(Ordering::Relaxed));
    println!("the unauthenticated address's answers: {attack_answers:?}");
    println!("health rounds: {rounds}; NOT_SERVING seen: {not_serving:?}");
    for reader in readers {
        reader.abort();
    }
    let after = healths(mesh.addrs()).await;
    println!("after: {after:?}");
}
