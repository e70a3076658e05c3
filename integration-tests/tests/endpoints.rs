//! A peer channel over several endpoints: it follows their health, breaks circuits, fails
//! fast with UNAVAILABLE naming the peer, and recovers without a restart.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fastbreak_integration_tests::echo::{Seen, risk_channel, spawn_echo, test_peer_options};
use fastbreak_integration_tests::proxy::HoldingProxy;
use fastbreak_mesh::client::MISSED_CHECKS_TO_FAIL;
use fastbreak_mesh::{PeerChannel, RetryPolicy};
use fastbreak_proto::risk::v1::GetHoldRequest;
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;

async fn who(channel: &PeerChannel) -> Result<String, tonic::Status> {
    let hold = RiskInternalServiceClient::new(channel.clone()).get_hold(GetHoldRequest::default()).await?.into_inner();
    Ok(Seen::from_hold(&hold).name)
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let check = || std::future::ready(condition().then_some(()));
    fastbreak_mesh::testing::poll_until(what, Duration::from_secs(10), Duration::from_millis(20), check).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_follow_health_fail_fast_when_none_serve_and_recover_without_a_restart() {
    let b1 = spawn_echo("b1", Duration::ZERO, Duration::from_secs(5)).await;
    let b2 = spawn_echo("b2", Duration::ZERO, Duration::from_secs(5)).await;
    let channel = risk_channel(&[b1.url(), b2.url()], test_peer_options());
    wait_for("both endpoints are SERVING", || channel.serving_endpoints() == 2).await;

    let mut answered = BTreeSet::new();
    for _ in 0..10 {
        answered.insert(who(&channel).await.unwrap());
    }
    assert_eq!(answered, BTreeSet::from(["b1".to_owned(), "b2".to_owned()]), "calls are spread over both");

    // b1 says it is NOT_SERVING: every call goes to b2.
    b1.readiness.set_not_serving().await;
    wait_for("b1 is seen as NOT_SERVING", || channel.serving_endpoints() == 1).await;
    for _ in 0..20 {
        assert_eq!(who(&channel).await.unwrap(), "b2");
    }

    // b2 is killed as well: calls fail with UNAVAILABLE naming the peer, at once.
    b2.shutdown().await.unwrap();
    wait_for("b2 is seen as gone", || channel.serving_endpoints() == 0).await;
    let started = Instant::now();
    let status = who(&channel).await.expect_err("no endpoint can take the call");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("no healthy endpoint of risk"), "{status:?}");
    assert!(started.elapsed() < Duration::from_millis(500), "failed fast: {:?}", started.elapsed());

    // b1 comes back: calls succeed again, same channel, no restart.
    b1.readiness.set_serving().await;
    wait_for("b1 is SERVING again", || channel.serving_endpoints() == 1).await;
    assert_eq!(who(&channel).await.unwrap(), "b1");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_unanswered_health_check_keeps_an_endpoint_in_and_several_in_a_row_take_it_out() {
    let b1 = spawn_echo("b1", Duration::ZERO, Duration::from_secs(5)).await;
    let proxy = HoldingProxy::start(b1.addr).await;
    // Checks every 300 ms, each given 300 ms: a check held is seen missed for 600 ms before the
    // next one is missed too.
    let mut options = test_peer_options();
    options.health_interval = Duration::from_millis(300);
    let channel = risk_channel(&[proxy.url()], options);
    wait_for("the endpoint is SERVING", || channel.serving_endpoints() == 1).await;
    assert_eq!(who(&channel).await.unwrap(), "b1");
    let changed_at = channel.endpoints()[0].changed_at;

    // A busy server: one check goes unanswered in time, then it answers again. It stays in.
    proxy.hold();
    wait_for("a health check went unanswered", || channel.endpoints()[0].missed_checks == 1).await;
    assert_eq!(channel.serving_endpoints(), 1, "one late answer keeps it in: {:?}", channel.endpoints());
    proxy.release();
    wait_for("the server answers again", || channel.endpoints()[0].missed_checks == 0).await;
    let report = &channel.endpoints()[0];
    assert!(report.serving && report.changed_at == changed_at, "its health never changed: {report:?}");
    assert_eq!(who(&channel).await.unwrap(), "b1");

    // A hung server: checks go unanswered in a row. It is out, and calls fail fast naming the
    // peer, until it answers again.
    proxy.hold();
    wait_for("the endpoint is taken out", || channel.serving_endpoints() == 0).await;
    let report = channel.endpoints()[0].clone();
    assert!(report.missed_checks >= MISSED_CHECKS_TO_FAIL, "{report:?}");
    assert_eq!((report.detail.as_str(), report.unreachable), ("health check timed out", true), "{report:?}");
    let status = who(&channel).await.expect_err("no endpoint serves");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("health check timed out"), "{status:?}");
    proxy.release();
    wait_for("the endpoint is back", || channel.serving_endpoints() == 1).await;
    assert_eq!(who(&channel).await.unwrap(), "b1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_keeps_failing_is_taken_out_by_its_circuit_breaker() {
    let b1 = spawn_echo("b1", Duration::ZERO, Duration::from_secs(5)).await;
    let b2 = spawn_echo("b2", Duration::ZERO, Duration::from_secs(5)).await;
    // A cooldown long enough that a loaded machine cannot reach its end during the 30 calls.
    let mut options = test_peer_options();
    options.breaker_cooldown = Duration::from_millis(1500);
    let channel = risk_channel(&[b1.url(), b2.url()], options);
    wait_for("both endpoints are SERVING", || channel.serving_endpoints() == 2).await;

    // b1 reports SERVING but answers every call with UNAVAILABLE.
    b1.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut failures = 0;
    for _ in 0..20 {
        if who(&channel).await.is_err() {
            failures += 1;
        }
    }
    assert!(failures <= 3, "the breaker opened after 3 failures, not {failures}");
    for _ in 0..10 {
        assert_eq!(who(&channel).await.unwrap(), "b2", "b1's breaker is open");
    }

    // After the cooldown one trial call goes to b1; it works now, so b1 is back.
    b1.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let mut answered = BTreeSet::new();
    for _ in 0..10 {
        answered.insert(who(&channel).await.unwrap());
    }
    assert!(answered.contains("b1"), "b1 takes calls again: {answered:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_outlives_its_deadline_fails_with_deadline_exceeded() {
    let slow = spawn_echo("slow", Duration::from_secs(3), Duration::from_secs(5)).await;
    let mut options = test_peer_options();
    options.call_timeout = Duration::from_millis(300);
    let channel = risk_channel(&[slow.url()], options);
    wait_for("the endpoint is SERVING", || channel.serving_endpoints() == 1).await;
    let started = Instant::now();
    let status = who(&channel).await.expect_err("too slow");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("risk"), "{status:?}");
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_calls_are_retried_on_unavailable_until_the_peer_returns() {
    let b1 = spawn_echo("b1", Duration::ZERO, Duration::from_secs(5)).await;
    b1.readiness.set_not_serving().await;
    let channel = risk_channel(&[b1.url()], test_peer_options());
    wait_for("b1 is seen as NOT_SERVING", || channel.serving_endpoints() == 0).await;

    let readiness = b1.readiness.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        readiness.set_serving().await;
    });
    let policy = RetryPolicy::new(
        10,
        Duration::from_millis(100),
        Duration::from_millis(300),
        tower::retry::budget::TpsBudget::new(Duration::from_secs(10), 10, 1.0),
    );
    let mut attempts = 0;
    let answer = policy
        .call_idempotent(|| {
            attempts += 1;
            who(&channel)
        })
        .await
        .expect("the retries outlast the outage");
    assert_eq!(answer, "b1");
    assert!(attempts > 1, "it was retried ({attempts} attempts)");

    // Calls that are not UNAVAILABLE are never retried.
    let mut attempts = 0;
    let refused = policy
        .call_idempotent(|| {
            attempts += 1;
            async { Err::<(), _>(tonic::Status::failed_precondition("daily limit")) }
        })
        .await;
    assert_eq!((refused.unwrap_err().code(), attempts), (tonic::Code::FailedPrecondition, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_whose_own_dependency_is_down_keeps_its_breaker_closed() {
    let b1 = spawn_echo("b1", Duration::ZERO, Duration::from_secs(5)).await;
    let b2 = spawn_echo("b2", Duration::ZERO, Duration::from_secs(5)).await;
    let mut options = test_peer_options();
    options.breaker_cooldown = Duration::from_secs(30);
    let channel = risk_channel(&[b1.url(), b2.url()], options);
    wait_for("both endpoints are SERVING", || channel.serving_endpoints() == 2).await;

    // b1 is healthy but says its database is down: that is not b1's fault.
    b1.dependency_down.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut from_b1 = 0;
    for _ in 0..20 {
        if let Err(status) = who(&channel).await {
            assert_eq!(status.code(), tonic::Code::Unavailable);
            from_b1 += 1;
        }
    }
    assert!(from_b1 >= 8, "b1 kept getting its share of calls ({from_b1} of 20): its breaker stayed closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callers_own_short_deadline_does_not_open_the_breaker() {
    let slow = spawn_echo("slow", Duration::from_millis(300), Duration::from_secs(5)).await;
    let mut options = test_peer_options();
    options.breaker_cooldown = Duration::from_secs(30);
    let channel = risk_channel(&[slow.url()], options);
    wait_for("the endpoint is SERVING", || channel.serving_endpoints() == 1).await;
    for _ in 0..5 {
        let mut request = tonic::Request::new(GetHoldRequest::default());
        request.set_timeout(Duration::from_millis(30));
        let status = RiskInternalServiceClient::new(channel.clone()).get_hold(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    }
    assert_eq!(who(&channel).await.unwrap(), "slow", "the endpoint is still in: a patient call gets through");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outgoing_call_inherits_what_is_left_of_the_incoming_deadline() {
    use fastbreak_integration_tests::{connect, internal_request};
    use fastbreak_proto::user::v1::GetUserStatusRequest;
    use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;

    let b = spawn_echo("b", Duration::ZERO, Duration::from_secs(5)).await;
    // The relay's own call timeout to b is 2 s (test_peer_options).
    let a = fastbreak_integration_tests::echo::spawn_relay("a", &[b.url()]).await;
    let mut client = UserInternalServiceClient::new(connect(a.addr).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let mut request = internal_request(GetUserStatusRequest::default());
        request.set_timeout(Duration::from_millis(400));
        match client.get_user_status(request).await {
            Ok(answer) => break answer.into_inner(),
            // The relay's first health check of b may still be out.
            Err(status) => {
                assert!(tokio::time::Instant::now() < deadline, "the relay never answered: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let b_timeout = answer.user_id.rsplit('|').next().unwrap().to_owned();
    let millis: u64 = b_timeout.trim_end_matches('m').parse().unwrap_or_else(|_| panic!("b saw {b_timeout:?}"));
    // 400 ms from the client, less what a took and its margin, plus the grace it tells b of:
    // less than the client gave a.
    assert!(millis < 400, "b was given {millis} ms, not the relay's own 2 s nor more than the client gave");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_all_fit_inside_one_deadline() {
    let b1 = spawn_echo("b1", Duration::ZERO, Duration::from_secs(5)).await;
    let channel = risk_channel(&[b1.url()], test_peer_options());
    wait_for("b1 is SERVING", || channel.serving_endpoints() == 1).await;
    b1.dependency_down.store(true, std::sync::atomic::Ordering::SeqCst);
    let policy = RetryPolicy::new(
        20,
        Duration::from_millis(100),
        Duration::from_secs(1),
        tower::retry::budget::TpsBudget::new(Duration::from_secs(10), 100, 10.0),
    )
    .with_overall_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let mut attempts = 0;
    let outcome = policy
        .call_idempotent(|| {
            attempts += 1;
            who(&channel)
        })
        .await;
    assert_eq!(outcome.unwrap_err().code(), tonic::Code::Unavailable);
    assert!(attempts > 1, "it was retried");
    assert!(started.elapsed() < Duration::from_millis(600), "gave up at the deadline: {:?}", started.elapsed());
}
