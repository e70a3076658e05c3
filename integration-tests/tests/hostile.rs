//! Hostile callers against the whole system in one process (`serve --target all`, the gateway
//! in front, over real sockets): streams past their caps and their lifetime, bodies that never
//! end, sign-in floods. Each attack is bounded; what is checked is that the attacker gets its
//! bounded share and everyone else their answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fastbreak_integration_tests::TestMesh;
use fastbreak_integration_tests::attack::{bearer, gateway_from, healths, sign_in, sign_up, slow_body};
use fastbreak_proto::marketplace::v1::StreamListingEventsRequest;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::user::v1::GetCurrentUserRequest;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

#[tokio::test(flavor = "multi_thread")]
async fn streams_are_capped_per_user_end_at_their_lifetime_and_leave_every_target_serving() {
    let mesh = TestMesh::spawn_with(
        "all",
        &[
            ("FASTBREAK_DATABASE_POOL_SIZE", "3"),
            ("FASTBREAK_STREAMS_PER_CALLER", "4"),
            ("FASTBREAK_STREAM_LIFETIME", "4s"),
        ],
    )
    .await;
    let gateway = gateway_from(&mesh, "127.0.0.1").await;
    let mut tokens = Vec::new();
    for n in 0..6 {
        tokens.push(sign_up(gateway.clone(), &format!("collector-{n}@example.com")).await);
    }
    let mut market = MarketplaceServiceClient::new(gateway.clone());
    let from_the_start = || StreamListingEventsRequest { after_sequence: Some(0), ..Default::default() };

    // One user: four streams from the first event, then no more.
    let opened = Instant::now();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(market.stream_listing_events(bearer(from_the_start(), &tokens[0])).await.expect("within the cap"));
    }
    let refused = market.stream_listing_events(bearer(from_the_start(), &tokens[0])).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.get_details_retry_info().is_some(), "a retry delay: {refused:?}");
    assert!(refused.message().contains("holds 4"), "{}", refused.message());
    // Four more users at their caps, every stream replaying from the first event.
    for token in &tokens[1..5] {
        for _ in 0..4 {
            held.push(market.stream_listing_events(bearer(from_the_start(), token)).await.expect("their own cap"));
        }
    }
    let mut streams: Vec<_> = held.into_iter().map(tonic::Response::into_inner).collect();

    // While they are held: every target serves, and another user's calls are answered.
    let mut users = UserServiceClient::new(gateway.clone());
    for _ in 0..20 {
        users.get_current_user(bearer(GetCurrentUserRequest {}, &tokens[5])).await.expect("the victim is answered");
    }
    for (name, status) in healths(mesh.addrs()).await {
        assert_eq!(status, ServingStatus::Serving, "{name}");
    }

    // No stream outlives its lifetime (none of them set a deadline): each ends saying how to
    // resume.
    for stream in &mut streams {
        let ended = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => return None,
                    Err(status) => return Some(status),
                }
            }
        })
        .await
        .expect("the stream ended within its lifetime");
        let ended = ended.expect("with a status");
        assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
        assert!(ended.message().contains("after_sequence"), "{}", ended.message());
    }
    let lived = opened.elapsed();
    println!("20 streams ended after {lived:?} (lifetime 4 s)");
    assert!(lived >= Duration::from_secs(3), "{lived:?}");
    // Their places are free again.
    market.stream_listing_events(bearer(from_the_start(), &tokens[0])).await.expect("a place is free again");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_never_end_are_cut_at_the_deadline_and_bounded_in_bytes_per_address() {
    let mesh = TestMesh::spawn_with(
        "all",
        &[
            // Long enough for a sign-up's password hash on a busy machine; a sign-up cut
            // short counts as a failed attempt, so a few are allowed.
            ("FASTBREAK_GATEWAY_MAX_DEADLINE", "5s"),
            ("FASTBREAK_SIGN_IN_FREE_FAILURES", "100"),
            ("FASTBREAK_GATEWAY_MAX_MESSAGE_BYTES", "1048576"),
            ("FASTBREAK_GATEWAY_BODY_BYTES_PER_ADDRESS", "2097152"),
        ],
    )
    .await;
    let token = sign_up(gateway_from(&mesh, "127.0.0.1").await, "victim@example.com").await;

    // Sixty unauthenticated sign-ups, each promising a large message and never ending it.
    let attacker = gateway_from(&mesh, "127.0.0.3").await;
    let started = Instant::now();
    let calls: Vec<_> = (0..60)
        .map(|_| {
            let channel = attacker.clone();
            tokio::spawn(slow_body(channel, "/fastbreak.user.v1.UserService/CreateUser", None, 1_000_000, 64 * 1024))
        })
        .collect();
    let mut codes = std::collections::BTreeMap::new();
    for call in calls {
        let code = tokio::time::timeout(Duration::from_secs(15), call)
            .await
            .expect("every slow body is answered within its deadline")
            .unwrap();
        *codes.entry(format!("{code:?}")).or_insert(0) += 1;
    }
    println!("60 unauthenticated slow bodies, answered in {:?}: {codes:?}", started.elapsed());
    assert_eq!(codes.keys().cloned().collect::<Vec<_>>(), ["DeadlineExceeded", "ResourceExhausted"], "{codes:?}");
    assert!(codes["DeadlineExceeded"] <= 2, "at most the address's sign-ins at once are read: {codes:?}");

    // An authenticated user's slow bodies: the address holds at most its bytes in flight.
    let user = gateway_from(&mesh, "127.0.0.4").await;
    let started = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (channel, token) = (user.clone(), Some(token.clone()));
            let path = "/fastbreak.strategy.v1.StrategyService/CreateStrategy";
            tokio::spawn(slow_body(channel, path, token, 1_000_000, 900 * 1024))
        })
        .collect();
    let mut codes = std::collections::BTreeMap::new();
    for call in calls {
        let code = tokio::time::timeout(Duration::from_secs(15), call).await.expect("answered in time").unwrap();
        *codes.entry(format!("{code:?}")).or_insert(0) += 1;
    }
    println!("4 authenticated slow bodies of 900 KiB, answered in {:?}: {codes:?}", started.elapsed());
    assert!(codes.get("ResourceExhausted").copied().unwrap_or(0) >= 1, "past the address's bytes: {codes:?}");
    assert_eq!(codes.values().sum::<i32>(), 4);
    assert!(codes.keys().all(|c| c == "ResourceExhausted" || c == "DeadlineExceeded"), "{codes:?}");
    // The victim is still answered.
    UserServiceClient::new(gateway_from(&mesh, "127.0.0.1").await)
        .get_current_user(bearer(GetCurrentUserRequest {}, &token))
        .await
        .expect("the victim is answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_flood_from_one_address_leaves_another_addresss_sign_ins_working() {
    let mesh = TestMesh::spawn("all").await;
    let victim = gateway_from(&mesh, "127.0.0.2").await;
    sign_up(victim.clone(), "victim@example.com").await;

    // Three hundred callers from one address, each trying random emails again and again
    // (pausing 20 ms after a refusal), until the victim is done.
    let attacker = gateway_from(&mesh, "127.0.0.1").await;
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..300)
        .map(|n| {
            let (mut users, stop) = (UserServiceClient::new(attacker.clone()), stop.clone());
            tokio::spawn(async move {
                let mut answers: Vec<(Code, String)> = Vec::new();
                let mut attempt = 0;
                while !stop.load(Ordering::Relaxed) {
                    attempt += 1;
                    let email = format!("guess-{n}-{attempt}@example.com");
                    let answer = sign_in(&mut users, &email)
                        .await
                        .map(|_| (Code::Ok, String::new()))
                        .unwrap_or_else(|s| (s.code(), s.message().to_owned()));
                    if answer.0 == Code::ResourceExhausted {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    answers.push(answer);
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut users = UserServiceClient::new(victim);
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let outcome = sign_in(&mut users, "victim@example.com").await.map(|_| ()).map_err(|s| s.code());
        outcomes.push((outcome, started.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    let mut codes = std::collections::BTreeMap::new();
    let mut first_words = std::collections::BTreeMap::new();
    for caller in flood {
        for (code, message) in caller.await.unwrap() {
            *codes.entry(format!("{code:?}")).or_insert(0) += 1;
            first_words.entry(format!("{code:?}")).or_insert(message);
        }
    }
    println!("the flood's first message of each code: {first_words:?}");
    println!("the victim's five sign-ins: {outcomes:?}");
    println!("the flood's answers: {codes:?}");
    assert!(outcomes.iter().all(|(outcome, _)| outcome.is_ok()), "{outcomes:?}");
    assert!(!codes.contains_key("Internal"), "{codes:?}");
    // The flood's own connection may be closed by the server (HTTP/2 bounds the streams it
    // must refuse on one connection): its calls in flight then fail as a transport error.
    let unknown = first_words.get("Unknown").map(String::as_str);
    assert!(unknown.is_none_or(|m| m == "transport error"), "{first_words:?}");
}
