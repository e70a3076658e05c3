//! The gateway in front of real backends over real sockets: authentication, forwarding
//! (streams included), internal services kept out, replicas and outages, system health,
//! reflection, rate limits and gRPC-Web.

use std::net::SocketAddr;
use std::time::Duration;

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{TEST_CREDENTIAL, TestServer, free_addr};
use fastbreak_mesh::{Context, Peers};
use fastbreak_proto::gateway::v1::system_health_service_client::SystemHealthServiceClient;
use fastbreak_proto::gateway::v1::{GetSystemHealthRequest, ServingStatus};
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::marketplace::v1::{ListMarketSourcesRequest, StreamListingEventsRequest};
use fastbreak_proto::notification::v1::GetUnreadCountRequest;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::risk::v1::GetBudgetLimitsRequest;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::strategy::v1::ListStrategiesRequest;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::trading::v1::trading_service_client::TradingServiceClient;
use fastbreak_proto::trading::v1::{GetBalanceRequest, PurchaseMomentRequest};
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use fastbreak_proto::user::v1::{
    CreateAccessTokenRequest, CreateUserRequest, GetCurrentUserRequest, GetUserStatusRequest, RegisterWalletRequest,
    RevokeAccessTokenRequest,
};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

/// The operators' credential of the test gateway.
const OPERATOR: &str = "test-operator-credential-0123456789abcdef";

struct Front {
    mesh: TradingMesh,
    gateway: TestServer,
    /// A second replica of risk.
    risk_b: Option<TestServer>,
    risk_b_addr: SocketAddr,
}

async fn front(settings: fastbreak_gateway::Settings) -> Front {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    let risk_b_addr = free_addr();
    let risk_b = start_risk(&mesh, risk_b_addr).await;
    let mut peers = Peers::default();
    for (name, addr) in &mesh.addrs {
        let addrs = if *name == "risk" { vec![*addr, risk_b_addr] } else { vec![*addr] };
        peers.insert(name, mesh.peer(name, &addrs));
    }
    let server = fastbreak_gateway::server(
        peers,
        settings,
        Some(fastbreak_config::Secret::new(OPERATOR.to_owned())),
        Some(fastbreak_config::Secret::new(fastbreak_mesh::testing::TEST_CREDENTIAL.to_owned())),
    )
    .public_edge();
    let gateway = TestServer::start(server).await;
    // The gateway reports SERVING once it sees the user service.
    fastbreak_mesh::wait_serving(&gateway.addr().to_string(), "", Duration::from_secs(10)).await.expect("SERVING");
    Front { mesh, gateway, risk_b: Some(risk_b), risk_b_addr }
}

async fn start_risk(mesh: &TradingMesh, addr: SocketAddr) -> TestServer {
    let pool =
        fastbreak_db::Database::connect_lazy(mesh.database.url(), &fastbreak_db::PoolOptions::default()).unwrap();
    let settings = fastbreak_risk::Settings { worker_enabled: false, ..Default::default() };
    TestServer::start_at(fastbreak_risk::server(Context::new(pool, settings)), addr).await
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Registers a user through the gateway and signs in: (user id, token).
async fn sign_up(gateway: Channel, email: &str) -> (String, String) {
    let mut users = UserServiceClient::new(gateway);
    let user = users
        .create_user(CreateUserRequest {
            display_name: "Collector".into(),
            email: email.into(),
            password: "correct horse battery staple".into(),
        })
        .await
        .expect("CreateUser is open")
        .into_inner();
    let token = users
        .create_access_token(CreateAccessTokenRequest {
            email: email.into(),
            password: "correct horse battery staple".into(),
            ..Default::default()
        })
        .await
        .expect("CreateAccessToken is open")
        .into_inner();
    (user.user_id, token.secret)
}

fn reason(status: &tonic::Status) -> (String, std::collections::HashMap<String, String>) {
    status.get_details_error_info().map(|i| (i.reason, i.metadata)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_reach_every_backend_as_their_user_and_nothing_else_gets_through() {
    let front = front(fastbreak_gateway::Settings::default()).await;
    let gateway = channel(front.gateway.addr()).await;
    let (alice, alice_token) = sign_up(gateway.clone(), "alice@example.com").await;
    let (bob, _) = sign_up(gateway.clone(), "bob@example.com").await;

    let me = UserServiceClient::new(gateway.clone())
        .get_current_user(bearer(GetCurrentUserRequest {}, &alice_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.user_id, alice);
    // A forged identity is stripped: alice's token, bob's id in the header, alice's data.
    let mut forged = bearer(GetCurrentUserRequest {}, &alice_token);
    forged.metadata_mut().insert("x-fastbreak-user-id", bob.parse().unwrap());
    forged.metadata_mut().insert("x-fastbreak-internal-token", TEST_CREDENTIAL.parse().unwrap());
    let me = UserServiceClient::new(gateway.clone()).get_current_user(forged).await.unwrap().into_inner();
    assert_eq!(me.user_id, alice, "the identity comes from the token only");
    // Without a token, or with a bad one: UNAUTHENTICATED.
    let none = UserServiceClient::new(gateway.clone()).get_current_user(GetCurrentUserRequest {}).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated);
    let bad = UserServiceClient::new(gateway.clone())
        .get_current_user(bearer(GetCurrentUserRequest {}, "fbt_not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::Unauthenticated);
    // Forged identity without a token: still UNAUTHENTICATED.
    let mut forged = Request::new(GetCurrentUserRequest {});
    forged.metadata_mut().insert("x-fastbreak-user-id", bob.parse().unwrap());
    forged.metadata_mut().insert("x-fastbreak-internal-token", TEST_CREDENTIAL.parse().unwrap());
    assert_eq!(
        UserServiceClient::new(gateway.clone()).get_current_user(forged).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Every landed backend answers through the gateway.
    RiskServiceClient::new(gateway.clone())
        .get_budget_limits(bearer(GetBudgetLimitsRequest {}, &alice_token))
        .await
        .unwrap();
    let balance = TradingServiceClient::new(gateway.clone())
        .get_balance(bearer(GetBalanceRequest {}, &alice_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.available_cents, 0);
    MarketplaceServiceClient::new(gateway.clone())
        .list_market_sources(bearer(ListMarketSourcesRequest::default(), &alice_token))
        .await
        .unwrap();
    NotificationServiceClient::new(gateway.clone())
        .get_unread_count(bearer(GetUnreadCountRequest {}, &alice_token))
        .await
        .unwrap();
    StrategyServiceClient::new(gateway.clone())
        .list_strategies(bearer(ListStrategiesRequest::default(), &alice_token))
        .await
        .unwrap();

    // Internal services are not there, with or without a credential.
    let mut internal = bearer(GetUserStatusRequest { user_id: alice.clone() }, &alice_token);
    internal.metadata_mut().insert("x-fastbreak-internal-token", TEST_CREDENTIAL.parse().unwrap());
    let refused = UserInternalServiceClient::new(gateway.clone()).get_user_status(internal).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");

    // Reflection lists the public services and none of the internal ones.
    let listed = list_services(gateway.clone()).await;
    for expected in [
        "fastbreak.user.v1.UserService",
        "fastbreak.risk.v1.RiskService",
        "fastbreak.trading.v1.TradingService",
        "fastbreak.gateway.v1.SystemHealthService",
    ] {
        assert!(listed.contains(&expected.to_owned()), "{expected} listed: {listed:?}");
    }
    assert!(!listed.iter().any(|s| s.contains("Internal")), "{listed:?}");
    reflection_knows_nothing_internal(gateway.clone()).await;
}

/// One reflection question to a server, its one answer (a refusal as an error response).
async fn reflect(
    channel: Channel,
    question: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> tonic_reflection::pb::v1::server_reflection_response::MessageResponse {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ErrorResponse, ServerReflectionRequest};
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(question) };
    let refused = |status: tonic::Status| {
        MessageResponse::ErrorResponse(ErrorResponse {
            error_code: status.code() as i32,
            error_message: status.message().to_owned(),
        })
    };
    let mut answers =
        match ServerReflectionClient::new(channel).server_reflection_info(tokio_stream::iter(vec![request])).await {
            Ok(answers) => answers.into_inner(),
            Err(status) => return refused(status),
        };
    match answers.message().await {
        Ok(answer) => answer.expect("an answer").message_response.expect("an answer"),
        Err(status) => refused(status),
    }
}

/// Every reflection method at the gateway (not only `list`) knows the public services and the
/// types they use, and nothing of the internal services.
async fn reflection_knows_nothing_internal(gateway: Channel) {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    // What a client of the public API needs is there.
    for symbol in ["fastbreak.user.v1.UserService", "fastbreak.user.v1.CreateUserRequest"] {
        match reflect(gateway.clone(), MessageRequest::FileContainingSymbol(symbol.into())).await {
            MessageResponse::FileDescriptorResponse(files) => {
                let text = files.file_descriptor_proto.iter().map(|f| String::from_utf8_lossy(f)).collect::<String>();
                assert!(text.contains("UserService"), "{symbol}");
                assert!(!text.contains("UserInternalService"), "{symbol}: the file names an internal service");
                assert!(!text.contains("AuthenticateAccessToken"), "{symbol}: the file names an internal method");
            }
            other => panic!("{symbol}: {other:?}"),
        }
    }
    // Internal services, their methods and the types only they use are unknown.
    for symbol in [
        "fastbreak.user.v1.UserInternalService",
        "fastbreak.user.v1.UserInternalService.AuthenticateAccessToken",
        "fastbreak.risk.v1.RiskInternalService",
        "fastbreak.risk.v1.RiskInternalService.EngageEmergencyStopForUser",
        "fastbreak.user.v1.AuthenticateAccessTokenRequest",
    ] {
        match reflect(gateway.clone(), MessageRequest::FileContainingSymbol(symbol.into())).await {
            MessageResponse::ErrorResponse(error) => assert_eq!(error.error_code, Code::NotFound as i32, "{symbol}"),
            other => panic!("{symbol} is described at the gateway: {other:?}"),
        }
    }
    // The files asked for by name carry no internal service either.
    match reflect(gateway.clone(), MessageRequest::FileByFilename("fastbreak/risk/v1/risk.proto".into())).await {
        MessageResponse::FileDescriptorResponse(files) => {
            let text = files.file_descriptor_proto.iter().map(|f| String::from_utf8_lossy(f)).collect::<String>();
            assert!(text.contains("RiskService") && !text.contains("RiskInternalService"), "risk.proto");
        }
        other => panic!("risk.proto: {other:?}"),
    }
}

async fn list_services(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn system_health(gateway: Channel) -> fastbreak_proto::gateway::v1::SystemHealth {
    let mut request = Request::new(GetSystemHealthRequest {});
    request.metadata_mut().insert("x-fastbreak-operator-token", OPERATOR.parse().unwrap());
    SystemHealthServiceClient::new(gateway).get_system_health(request).await.unwrap().into_inner()
}

fn service_status(health: &fastbreak_proto::gateway::v1::SystemHealth, name: &str) -> ServingStatus {
    health.services.iter().find(|s| s.service == name).map(|s| s.status()).unwrap_or(ServingStatus::Unspecified)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_down_is_routed_around_a_backend_down_fails_fast_and_recovery_is_automatic() {
    let mut front = front(fastbreak_gateway::Settings::default()).await;
    let gateway = channel(front.gateway.addr()).await;
    let (_, token) = sign_up(gateway.clone(), "carol@example.com").await;
    let mut risk = RiskServiceClient::new(gateway.clone());

    // Operators only: neither nothing nor the mesh's internal credential opens it.
    let anonymous =
        SystemHealthServiceClient::new(gateway.clone()).get_system_health(GetSystemHealthRequest {}).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let mut internal = Request::new(GetSystemHealthRequest {});
    internal.metadata_mut().insert("x-fastbreak-internal-token", TEST_CREDENTIAL.parse().unwrap());
    let internal = SystemHealthServiceClient::new(gateway.clone()).get_system_health(internal).await.unwrap_err();
    assert_eq!(internal.code(), Code::Unauthenticated);
    let health = system_health(gateway.clone()).await;
    assert_eq!(service_status(&health, "risk"), ServingStatus::Serving);
    let endpoint = &health.services.iter().find(|s| s.service == "risk").unwrap().endpoints[0];
    assert!(!endpoint.version.is_empty() && endpoint.start_time.is_some(), "version and start: {endpoint:?}");
    assert_eq!(health.services.iter().find(|s| s.service == "risk").unwrap().endpoints.len(), 2);

    // One replica of two stopped: every call still succeeds.
    front.mesh.stop_target("risk").await;
    for _ in 0..20 {
        risk.get_budget_limits(bearer(GetBudgetLimitsRequest {}, &token)).await.expect("the other replica answers");
    }

    // Both stopped: UNAVAILABLE naming risk, fast; the other backends carry on.
    front.risk_b.take().unwrap().stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let down = risk.get_budget_limits(bearer(GetBudgetLimitsRequest {}, &token)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "failed fast: {:?}", started.elapsed());
    assert_eq!(down.code(), Code::Unavailable);
    let (why, metadata) = reason(&down);
    assert_eq!((why.as_str(), metadata.get("service").map(String::as_str)), ("DEPENDENCY_UNAVAILABLE", Some("risk")));
    TradingServiceClient::new(gateway.clone())
        .get_balance(bearer(GetBalanceRequest {}, &token))
        .await
        .expect("trading is unaffected");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let health = system_health(gateway.clone()).await;
        if service_status(&health, "risk") != ServingStatus::Serving {
            assert_eq!(service_status(&health, "trading"), ServingStatus::Serving);
            let risk_health = health.services.iter().find(|s| s.service == "risk").unwrap();
            assert!(risk_health.endpoints.iter().all(|e| !e.detail.is_empty() && e.last_change_time.is_some()));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "GetSystemHealth shows risk down within seconds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Back up: everything recovers by itself.
    front.risk_b = Some(start_risk(&front.mesh, front.risk_b_addr).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if risk.get_budget_limits(bearer(GetBudgetLimitsRequest {}, &token)).await.is_ok()
            && service_status(&system_health(gateway.clone()).await, "risk") == ServingStatus::Serving
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "risk recovers through the gateway");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Without the user service the gateway cannot authenticate: it reports NOT_SERVING.
    front.mesh.stop_target("user").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut health = tonic_health::pb::health_client::HealthClient::new(gateway.clone());
        let status =
            health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
        if status.status() == tonic_health::pb::health_check_response::ServingStatus::NotServing {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the gateway turns NOT_SERVING without the user service");
        tokio::time::sleep(Duration::from_millis(100)).await;
    } // And SERVING again once the user service is back.
    front.mesh.start_target("user").await;
    fastbreak_mesh::wait_serving(&front.gateway.addr().to_string(), "", Duration::from_secs(10))
        .await
        .expect("the gateway is SERVING again with the user service back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_stream_flows_through_the_gateway() {
    let front = front(fastbreak_gateway::Settings::default()).await;
    let gateway = channel(front.gateway.addr()).await;
    let (_, token) = sign_up(gateway.clone(), "dave@example.com").await;
    UserServiceClient::new(gateway.clone())
        .register_wallet(bearer(RegisterWalletRequest { flow_address: "0x00000000000000d4".into() }, &token))
        .await
        .unwrap();
    let listing = front.mesh.list_market_moments(1, "simulator", 500).await[0];
    let mut trading = TradingServiceClient::new(gateway.clone());
    trading
        .deposit_funds(bearer(
            fastbreak_proto::trading::v1::DepositFundsRequest { amount_cents: 1_000, idempotency_key: "d".into() },
            &token,
        ))
        .await
        .unwrap();
    let bought = trading
        .purchase_moment(bearer(
            PurchaseMomentRequest {
                listing_id: listing.to_string(),
                max_price_cents: 500,
                idempotency_key: "k".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut stream = MarketplaceServiceClient::new(gateway.clone())
        .stream_listing_events(bearer(
            StreamListingEventsRequest { after_sequence: Some(0), ..Default::default() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let event = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event in time")
        .unwrap()
        .unwrap();
    assert_eq!(event.listing.as_ref().map(|l| l.listing_id.clone()), Some(bought.listing_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_answer_with_a_retry_delay_and_a_revoked_token_stops_working() {
    let settings = fastbreak_gateway::Settings {
        user_rate: 2,
        token_cache_ttl: Duration::from_millis(500),
        max_message_bytes: 1024,
        ..fastbreak_gateway::Settings::default()
    };
    let front = front(settings).await;
    let gateway = channel(front.gateway.addr()).await;
    let (_, token) = sign_up(gateway.clone(), "erin@example.com").await;
    let mut users = UserServiceClient::new(gateway.clone());
    let oversized = users
        .create_user(CreateUserRequest {
            display_name: "x".repeat(2_000),
            email: "big@example.com".into(),
            password: "p".repeat(20),
        })
        .await
        .unwrap_err();
    assert_eq!(oversized.code(), Code::ResourceExhausted, "a request over the gateway's maximum: {oversized:?}");
    let mut limited = None;
    for _ in 0..20 {
        if let Err(status) = users.get_current_user(bearer(GetCurrentUserRequest {}, &token)).await {
            limited = Some(status);
            break;
        }
    }
    let limited = limited.expect("the fifth call in a burst of two per second is refused");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited).0, "RATE_LIMITED");
    let retry = limited.get_details_retry_info().and_then(|r| r.retry_delay).expect("a retry delay");
    assert!(retry > Duration::ZERO && retry <= Duration::from_secs(1), "{retry:?}");

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let tokens = users
        .list_access_tokens(bearer(fastbreak_proto::user::v1::ListAccessTokensRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    users
        .revoke_access_token(bearer(
            RevokeAccessTokenRequest { token_id: tokens.access_tokens[0].token_id.clone() },
            &token,
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let revoked = users.get_current_user(bearer(GetCurrentUserRequest {}, &token)).await.unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated, "refused once the cache's 500 ms are over");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_web_call_over_http1_gets_its_answer() {
    let front = front(fastbreak_gateway::Settings::default()).await;
    let message = CreateUserRequest {
        display_name: "Browser".into(),
        email: "browser@example.com".into(),
        password: "correct horse battery staple".into(),
    }
    .encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    let head = format!(
        "POST /fastbreak.user.v1.UserService/CreateUser HTTP/1.1\r\nhost: {}\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\naccept: application/grpc-web+proto\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        front.gateway.addr(),
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(front.gateway.addr()).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_ascii_lowercase().contains("content-type: application/grpc-web"), "{text}");
    assert!(text.contains("grpc-status:0") || text.contains("grpc-status: 0"), "the trailers say OK: {text}");
    assert!(text.contains("browser@example.com"), "the created user comes back: {text}");
    // A page on another origin asks first (CORS preflight) and may go on.
    let preflight = format!(
        "OPTIONS /fastbreak.user.v1.UserService/GetCurrentUser HTTP/1.1\r\nhost: {}\r\norigin: https://app.example\r\naccess-control-request-method: POST\r\naccess-control-request-headers: authorization, content-type, x-grpc-web\r\nconnection: close\r\n\r\n",
        front.gateway.addr()
    );
    let mut socket = tokio::net::TcpStream::connect(front.gateway.addr()).await.unwrap();
    socket.write_all(preflight.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("access-control-allow-origin: *"), "{text}");
    assert!(text.contains("authorization"), "the bearer header may be sent: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mesh_member_in_front_may_name_its_visitors_address_and_nobody_else_may() {
    let settings = fastbreak_gateway::Settings { address_rate: 2, ..fastbreak_gateway::Settings::default() };
    let front = front(settings).await;
    let gateway = channel(front.gateway.addr()).await;
    let mut users = UserServiceClient::new(gateway);
    // Calls that name a visitor, without a token (refused as UNAUTHENTICATED when they pass the
    // address limit, as RESOURCE_EXHAUSTED when they do not).
    let call = |users: &mut UserServiceClient<Channel>, visitor: &'static str, credential: Option<&str>| {
        let mut request = Request::new(GetCurrentUserRequest {});
        request.metadata_mut().insert(fastbreak_mesh::auth::CLIENT_ADDRESS_HEADER, visitor.parse().unwrap());
        if let Some(credential) = credential {
            request.metadata_mut().insert(fastbreak_mesh::auth::INTERNAL_TOKEN_HEADER, credential.parse().unwrap());
        }
        let mut users = users.clone();
        async move { users.get_current_user(request).await.unwrap_err().code() }
    };
    // With the credential, each visitor has the address's burst of its own (2 a second, 4 at once).
    let mut codes = Vec::new();
    for visitor in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for _ in 0..4 {
            codes.push(call(&mut users, visitor, Some(TEST_CREDENTIAL)).await);
        }
    }
    assert!(codes.iter().all(|code| *code == Code::Unauthenticated), "12 calls over 3 visitors: {codes:?}");
    // Without it (or with a wrong one), the header is not believed: the caller's own address
    // runs out within a burst.
    let mut refused = 0;
    for (n, visitor) in ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"]
        .into_iter()
        .cycle()
        .take(10)
        .enumerate()
    {
        let credential = (n % 2 == 0).then_some("a-wrong-credential-that-is-long-enough-0000");
        if call(&mut users, visitor, credential).await == Code::ResourceExhausted {
            refused += 1;
        }
    }
    assert!(refused >= 5, "10 calls from one address that names others: {refused} refused");
}
