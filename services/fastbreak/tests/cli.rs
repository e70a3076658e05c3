//! The real `fastbreak` binary: `serve`, `health`, `--help`, configuration errors, SIGTERM.

mod common;

use std::process::Command;

use common::{BIN, Served, TARGETS, fastbreak, stdout};
use fastbreak_db::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn serve_all_answers_health_on_every_port_and_exits_0_on_sigterm() {
    let db = TestDatabase::create().await;
    let served = Served::start("all", &[("DATABASE_URL", db.url())]);
    let mut names: Vec<&str> = served.addrs.iter().map(|(name, _)| name.as_str()).collect();
    names.sort();
    let mut expected = TARGETS.to_vec();
    expected.sort();
    assert_eq!(names, expected);

    served.wait_serving();
    for (name, addr) in &served.addrs {
        let output = fastbreak(&["health", "--addr", addr]);
        assert!(output.status.success(), "{name} at {addr}: {}", stdout(&output));
        assert_eq!(stdout(&output).trim(), "SERVING");
    }
    let output =
        fastbreak(&["health", "--addr", served.addr("risk"), "--service", "fastbreak.risk.v1.RiskInternalService"]);
    assert!(output.status.success(), "{}", stdout(&output));

    let status = served.terminate();
    assert_eq!(status.code(), Some(0), "serve exits 0 after SIGTERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_fails_with_one_line_for_an_unknown_service() {
    let db = TestDatabase::create().await;
    let served = Served::start("strategy", &[("DATABASE_URL", db.url())]);
    let output = fastbreak(&["health", "--addr", served.addr("strategy"), "--service", "fastbreak.nope.v1.Nope"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.contains("does not serve \"fastbreak.nope.v1.Nope\""), "{text:?}");
}

#[test]
fn health_fails_with_one_line_against_a_closed_port() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let output = fastbreak(&["health", "--addr", &addr, "--timeout", "2s"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.contains(&format!("cannot connect to {addr}")), "{text:?}");
}

#[test]
fn serve_refuses_an_unknown_target_naming_the_valid_ones() {
    let output = fastbreak(&["serve", "--target", "risk,bank"]);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("unknown target \"bank\""), "{text}");
    assert!(text.contains("gateway"), "{text}");
}

#[test]
fn two_missing_variables_and_a_malformed_one_are_named_in_one_message_before_binding() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let output = Command::new(BIN)
        .args(["serve", "--target", "risk"])
        .env_clear()
        .env("FASTBREAK_RISK_LISTEN_ADDR", &listen)
        .env("FASTBREAK_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(text.matches("invalid configuration").count(), 1, "one message: {text}");
    assert!(text.contains("DATABASE_URL: missing"), "{text}");
    assert!(text.contains("FASTBREAK_INTERNAL_TOKEN: missing"), "{text}");
    assert!(text.contains("FASTBREAK_LOG_FORMAT: expected 'text' or 'json', got 'yaml'"), "{text}");
    assert!(stdout(&output).is_empty(), "nothing was bound: {}", stdout(&output));
    assert!(std::net::TcpListener::bind(&listen).is_ok(), "the port was never taken");
}

#[test]
fn secret_values_never_appear_in_any_output() {
    let output = Command::new(BIN)
        .args(["serve", "--target", "trading"])
        .env_clear()
        .env("DATABASE_URL", "mysql://root:hunter2-password@db/x")
        .env("FASTBREAK_INTERNAL_TOKEN", "short-secret-value")
        .env("FASTBREAK_RISK_ENDPOINTS", "risk:50054")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("DATABASE_URL") && text.contains("FASTBREAK_INTERNAL_TOKEN"), "{text}");
    assert!(
        text.contains("FASTBREAK_RISK_ENDPOINTS: expected a comma-separated list of http:// URLs (https is not supported: the mesh speaks plaintext gRPC inside its network), got 'risk:50054'"),
        "{text}"
    );
    assert!(!text.contains("hunter2") && !text.contains("short-secret-value"), "{text}");
}

#[test]
fn every_subcommand_says_what_it_does() {
    for (args, phrase) in [
        (vec!["--help"], "runs any set of its gRPC services"),
        (vec!["serve", "--help"], "Serve one or more targets"),
        (vec!["health", "--help"], "exit 0 only when it is SERVING"),
        (vec!["migrate", "--help"], "Apply the pending database migrations"),
        (vec!["up", "--help"], "Run the whole system on this machine"),
    ] {
        let output = fastbreak(&args);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains(phrase), "{args:?}: {}", stdout(&output));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_port_serves_prometheus_text_with_rpc_counts() {
    let db = TestDatabase::create().await;
    let served = Served::start("strategy", &[("DATABASE_URL", db.url())]);
    served.wait_serving();
    let addr = served.metrics_addr.clone().expect("metrics are on");
    let body = http_get(&addr, "/metrics");
    assert!(body.contains("fastbreak_rpc_server_calls_total{"), "{body}");
    assert!(body.contains("service=\"grpc.health.v1.Health\",method=\"Check\",code=\"OK\""), "{body}");
    assert!(body.contains("fastbreak_rpc_server_latency_seconds_bucket{"), "{body}");
}

/// A bare HTTP/1.1 GET, to keep an HTTP client out of the dependencies.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_tells_watchers_not_serving_then_drains_and_exits_0() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let db = TestDatabase::create().await;
    let mut served = Served::start("strategy", &[("DATABASE_URL", db.url()), ("FASTBREAK_DRAIN_TIMEOUT", "1s")]);
    served.wait_serving();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", served.addr("strategy")))
        .unwrap()
        .connect()
        .await
        .unwrap();
    // A Watch is a call that stays in flight until the server ends it.
    let mut watch =
        HealthClient::new(channel).watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    let started = std::time::Instant::now();
    served.sigterm();
    let update =
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.message()).await.expect("an update").unwrap();
    assert_eq!(update.map(|u| u.status()), Some(ServingStatus::NotServing), "the call in flight hears the drain");
    let status = tokio::task::spawn_blocking(move || served.wait_exit()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the drain timeout bounded the wait: {:?}",
        started.elapsed()
    );
}

/// A peer's warnings tell news, not a start: a peer that comes up within the start-up grace
/// is never a warning; one still down after it is, once; one that served and stops is, at
/// once. (The gateway alone, its user peer a health server started here, the others never.)
#[tokio::test(flavor = "multi_thread")]
async fn peers_starting_late_are_quiet_and_peers_that_stop_or_never_come_are_warned_of() {
    let reserve = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let user_port = reserve();
    let user_addr = user_port.local_addr().unwrap();
    // A port that refuses every connection: bound, never listening.
    let never = tokio::net::TcpSocket::new_v4().unwrap();
    never.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let never_addr = never.local_addr().unwrap();
    let mut env = vec![("FASTBREAK_PEER_STARTUP_GRACE".to_owned(), "3s".to_owned())];
    for peer in fastbreak_gateway::PEERS {
        let addr = if *peer == "user" { user_addr } else { never_addr };
        env.push((format!("FASTBREAK_{}_ENDPOINTS", peer.to_uppercase()), format!("http://{addr}")));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The grace counts from the peer channels' making, after this.
    let started = std::time::Instant::now();
    let served = Served::start("gateway", &env);

    // The user peer comes up a moment later, well within the grace.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (stop_user, stopped) = tokio::sync::oneshot::channel::<()>();
    user_port.set_nonblocking(true).unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(tokio::net::TcpListener::from_std(user_port).unwrap());
    let user = tokio::spawn(tonic::transport::Server::builder().add_service(health).serve_with_incoming_shutdown(
        incoming,
        async {
            let _ = stopped.await;
        },
    ));
    served.wait_until("the user peer is SERVING", |s| s.log().contains("endpoint SERVING peer=user"));
    let never_up: Vec<&str> = fastbreak_gateway::PEERS.iter().copied().filter(|p| *p != "user").collect();
    served.wait_until("every peer never up is warned of after the grace", |s| {
        let log = s.log();
        never_up.iter().all(|peer| {
            log.lines().any(|l| {
                l.contains(&format!("peer={peer} ")) && l.contains("still not serving after the start-up grace")
            })
        })
    });
    let log = served.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        !warnings.iter().any(|l| l.contains("peer=user")),
        "a peer up within the grace is no warning: {warnings:#?}"
    );
    for peer in &never_up {
        let told = warnings
            .iter()
            .filter(|l| {
                l.contains(&format!("peer={peer} ")) && l.contains("still not serving after the start-up grace")
            })
            .count();
        assert_eq!(told, 1, "{peer}, never up, is warned of once after the grace: {warnings:#?}");
    }
    assert!(
        warnings.iter().all(|l| l.contains("still not serving after the start-up grace")),
        "nothing else is a warning: {warnings:#?}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(3), "not before the grace is over");

    // The user peer stops: that is news at once.
    let _ = stop_user.send(());
    let _ = user.await;
    served.wait_until("the stopped peer is warned of", |s| {
        s.log().lines().any(|l| l.contains(" WARN ") && l.contains("endpoint not serving peer=user"))
    });
    drop(never);
}
