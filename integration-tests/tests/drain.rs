//! Shutdown: calls in flight finish, then the server stops; past the drain deadline it stops
//! anyway.

use std::time::{Duration, Instant};

use fastbreak_integration_tests::echo::{Seen, spawn_echo};
use fastbreak_integration_tests::{connect, internal_request};
use fastbreak_proto::risk::v1::GetHoldRequest;
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;

#[tokio::test(flavor = "multi_thread")]
async fn calls_in_flight_finish_before_the_server_stops() {
    let mut server = spawn_echo("drained", Duration::from_millis(700), Duration::from_secs(10)).await;
    let mut client = RiskInternalServiceClient::new(connect(server.addr).await);
    let in_flight = tokio::spawn(async move { client.get_hold(internal_request(GetHoldRequest::default())).await });
    tokio::time::timeout(Duration::from_secs(5), server.arrived.notified()).await.expect("the call reached the server");

    server.begin_shutdown();
    let answer = in_flight.await.unwrap().expect("the call in flight finished");
    assert_eq!(Seen::from_hold(answer.get_ref()).name, "drained");
    server.finished().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_outlasts_the_drain_deadline_does_not_hold_the_server() {
    let mut server = spawn_echo("stuck", Duration::from_secs(30), Duration::from_millis(300)).await;
    let mut client = RiskInternalServiceClient::new(connect(server.addr).await);
    let _stuck = tokio::spawn(async move { client.get_hold(internal_request(GetHoldRequest::default())).await });
    tokio::time::timeout(Duration::from_secs(5), server.arrived.notified()).await.expect("the call reached the server");

    let started = Instant::now();
    server.begin_shutdown();
    server.finished().await.expect("a clean stop");
    assert!(started.elapsed() < Duration::from_secs(3), "stopped at the deadline, after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn at_shutdown_the_server_reports_not_serving_first_and_keeps_accepting_for_the_grace() {
    use fastbreak_integration_tests::echo::DRAIN_GRACE;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let mut server = spawn_echo("graceful", Duration::ZERO, Duration::from_secs(5)).await;
    let addr = server.addr;
    let readiness = server.readiness.clone();
    let started = Instant::now();
    server.begin_shutdown();

    // A peer polling health learns NOT_SERVING at once...
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut health = HealthClient::new(connect(addr).await);
        let status = health.check(HealthCheckRequest::default()).await.unwrap().into_inner().status();
        if status == ServingStatus::NotServing {
            break;
        }
        assert!(Instant::now() < deadline, "never reported NOT_SERVING");
        tokio::task::yield_now().await;
    }
    // ...and nothing turns a draining server SERVING again (the database watch included).
    readiness.set_serving().await;
    let mut health = HealthClient::new(connect(addr).await);
    let status = health.check(HealthCheckRequest::default()).await.unwrap().into_inner().status();
    assert_eq!(status, ServingStatus::NotServing, "draining is one-way");

    // A call on a new connection during the grace is still served.
    assert!(started.elapsed() < DRAIN_GRACE / 2, "the checks above took too long for this test");
    let mut client = RiskInternalServiceClient::new(connect(addr).await);
    let answer = client.get_hold(internal_request(GetHoldRequest::default())).await.expect("served during the grace");
    assert_eq!(Seen::from_hold(answer.get_ref()).name, "graceful");

    server.finished().await.expect("a clean stop");
    assert!(started.elapsed() >= DRAIN_GRACE, "stopped accepting only after the grace: {:?}", started.elapsed());
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is closed after the drain");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_dies_fails_its_target_and_one_that_drains_does_not() {
    let server = fastbreak_mesh::MeshServer::new("workers")
        .add_worker("steady", |mut draining| async move { draining.wait().await })
        .add_worker("quitter", |_| async {});
    let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), bound.serve(std::future::pending())).await.unwrap();
    let error = served.expect_err("a worker that returns early fails the target").to_string();
    assert!(error.contains("workers") && error.contains("quitter"), "{error}");

    let server = fastbreak_mesh::MeshServer::new("steady")
        .with_drain_grace(Duration::ZERO)
        .add_worker("steady", |mut draining| async move { draining.wait().await });
    let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let stopped = bound.serve(tokio::time::sleep(Duration::from_millis(200))).await;
    assert!(stopped.is_ok(), "{stopped:?}");
}
