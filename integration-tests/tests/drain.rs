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
    tokio::time::sleep(Duration::from_millis(200)).await;

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
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    server.begin_shutdown();
    server.finished().await.expect("a clean stop");
    assert!(started.elapsed() < Duration::from_secs(3), "stopped at the deadline, after {:?}", started.elapsed());
}
