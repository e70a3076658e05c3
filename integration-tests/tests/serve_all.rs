//! `serve --target all` in one process: every target answers health, reflection and every RPC
//! of its contract over a real socket.

use fastbreak_integration_tests::{TestMesh, contract_services, internal_request, target_names};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn every_target_reports_serving_for_itself_and_each_of_its_services() {
    let mesh = TestMesh::spawn("all").await;
    assert_eq!(mesh.addrs().len(), target_names().len());
    for service in contract_services() {
        let mut health = HealthClient::new(mesh.channel(&service.target).await);
        for name in ["", service.full_name.as_str()] {
            let status = health
                .check(HealthCheckRequest { service: name.to_owned() })
                .await
                .unwrap_or_else(|e| panic!("{}: health of {name:?}: {e}", service.target))
                .into_inner()
                .status();
            assert_eq!(status, ServingStatus::Serving, "{}: {name:?}", service.target);
        }
    }
    mesh.shutdown().await.expect("a clean stop");
}

#[tokio::test]
async fn health_answers_tell_the_servers_info_to_those_who_ask_and_made_correlation_ids_to_all() {
    let mesh = TestMesh::spawn("user").await;
    let mut health = HealthClient::new(mesh.channel("user").await);
    let check = |ask: bool, correlation: Option<&str>| {
        let mut request = tonic::Request::new(HealthCheckRequest::default());
        if ask {
            request.metadata_mut().insert(fastbreak_mesh::server::INFO_REQUEST_HEADER, "1".parse().unwrap());
        }
        if let Some(id) = correlation {
            request.metadata_mut().insert("x-correlation-id", id.parse().unwrap());
        }
        request
    };
    let [version, started, dependencies] = fastbreak_mesh::server::INFO_HEADERS;

    // A probe that does not ask gets the status alone, and the correlation id made for it.
    let plain = health.check(check(false, None)).await.expect("health answers");
    for name in [version, started, dependencies] {
        assert!(plain.metadata().get(name).is_none(), "{name} sent unasked: {:?}", plain.metadata());
    }
    let made = plain.metadata().get("x-correlation-id").expect("the id made for the call").to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");

    // One that asks (as the mesh's clients do) is told the version, the start and the database.
    let asked = health.check(check(true, Some("probe-7"))).await.expect("health answers");
    let text = |name: &str| asked.metadata().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(text(version), env!("CARGO_PKG_VERSION"));
    assert!(chrono::DateTime::parse_from_rfc3339(&text(started)).is_ok(), "{}", text(started));
    assert_eq!(text(dependencies), "database=SERVING");
    // A caller that sent its correlation id is not sent it back.
    assert!(asked.metadata().get("x-correlation-id").is_none(), "{:?}", asked.metadata());
    mesh.shutdown().await.expect("a clean stop");
}

/// Asks a server's reflection service (of the given version's generated module) to list its
/// services.
macro_rules! list_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection answers")
            .into_inner();
        let answer = answers.message().await.unwrap().expect("one answer");
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<String>>()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }};
}

#[tokio::test]
async fn reflection_lists_each_targets_own_services_in_v1_and_v1alpha() {
    let mesh = TestMesh::spawn("all").await;
    let services = contract_services();
    for target in target_names() {
        let v1 = list_services!(v1, mesh.channel(target).await);
        let v1alpha = list_services!(v1alpha, mesh.channel(target).await);
        for listed in [&v1, &v1alpha] {
            assert!(listed.contains(&"grpc.health.v1.Health".to_owned()), "{target}: {listed:?}");
            for service in services.iter().filter(|s| s.target == target) {
                assert!(
                    listed.contains(&service.full_name),
                    "{target} does not list {}: {listed:?}",
                    service.full_name
                );
            }
            for service in services.iter().filter(|s| s.target != target) {
                // The gateway lists every public service (it forwards them), never an internal one.
                let forwarded = target == "gateway" && !service.internal && service.target != "common";
                assert_eq!(
                    listed.contains(&service.full_name),
                    forwarded,
                    "{target} and {} of another target",
                    service.full_name
                );
            }
        }
    }
}

/// The targets whose RPCs are built: every one of their RPCs answers something other than
/// UNIMPLEMENTED.
const BUILT: [&str; 9] =
    ["user", "strategy", "risk", "marketplace", "scouting", "notification", "trading", "gateway", "agents"];

#[tokio::test]
async fn every_rpc_of_every_contract_is_routed_and_answers_unless_unbuilt() {
    let mesh = TestMesh::spawn("all").await;
    let mut checked = 0;
    for service in contract_services() {
        let channel = mesh.channel(&service.target).await;
        for method in &service.methods {
            let path: http::uri::PathAndQuery = format!("/{}/{}", service.full_name, method.name()).parse().unwrap();
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            // An empty message is a valid encoding of every request type.
            let codec = tonic_prost::ProstCodec::<(), ()>::default();
            let status = if method.server_streaming() {
                grpc.server_streaming(internal_request(()), path, codec).await.map(|_| ())
            } else {
                grpc.unary(internal_request(()), path, codec).await.map(|_| ())
            }
            .err();
            let code = status.as_ref().map_or(tonic::Code::Ok, tonic::Status::code);
            if BUILT.contains(&service.target.as_str()) {
                assert_ne!(
                    code,
                    tonic::Code::Unimplemented,
                    "{}/{} is built: {status:?}",
                    service.full_name,
                    method.name()
                );
                assert_ne!(
                    code,
                    tonic::Code::Internal,
                    "{}/{} on an empty request: {status:?}",
                    service.full_name,
                    method.name()
                );
            } else {
                assert_eq!(
                    code,
                    tonic::Code::Unimplemented,
                    "{}/{} at {}: {status:?}",
                    service.full_name,
                    method.name(),
                    service.target
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 80, "only {checked} RPCs were checked");
}

#[tokio::test]
async fn the_built_public_rpcs_need_a_user_but_sign_up_sign_in_and_templates() {
    let open = ["CreateUser", "CreateAccessToken", "ListStrategyTemplates"];
    let mesh = TestMesh::spawn("all").await;
    let mut checked = 0;
    for service in contract_services().iter().filter(|s| !s.internal && BUILT.contains(&s.target.as_str())) {
        let channel = mesh.channel(&service.target).await;
        for method in service.methods.iter().filter(|m| !m.server_streaming()) {
            let path = format!("/{}/{}", service.full_name, method.name());
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let codec = tonic_prost::ProstCodec::<(), ()>::default();
            let code = grpc.unary(internal_request(()), path.parse().unwrap(), codec).await.err().map(|s| s.code());
            // The market's catalog and scouting's valuations are the same for every user.
            let market = ["fastbreak.marketplace.v1.MarketplaceService", "fastbreak.scouting.v1.ScoutingService"]
                .contains(&service.full_name.as_str());
            if open.contains(&method.name()) || market {
                assert_ne!(code, Some(tonic::Code::Unauthenticated), "{path} needs no user");
            } else {
                assert_eq!(code, Some(tonic::Code::Unauthenticated), "{path} without a user");
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} public RPCs checked");
}

#[tokio::test]
async fn a_target_not_started_is_not_served() {
    let mesh = TestMesh::spawn("risk").await;
    assert_eq!(mesh.addrs().keys().copied().collect::<Vec<_>>(), ["risk"]);
    let mut health = HealthClient::new(mesh.channel("risk").await);
    let missing = health
        .check(HealthCheckRequest { service: "fastbreak.trading.v1.TradingService".to_owned() })
        .await
        .expect_err("trading is not part of this process");
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

async fn call_empty(channel: tonic::transport::Channel, path: &str, request: tonic::Request<()>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(request, path.parse().unwrap(), tonic_prost::ProstCodec::<(), ()>::default())
        .await
        .expect_err("no RPC is implemented yet")
}

#[tokio::test]
async fn backends_refuse_calls_without_the_internal_credential() {
    let mesh = TestMesh::spawn("risk,user,gateway").await;
    let path = "/fastbreak.risk.v1.RiskInternalService/GetHold";
    let missing = call_empty(mesh.channel("risk").await, path, tonic::Request::new(())).await;
    assert_eq!(missing.code(), tonic::Code::Unauthenticated, "{missing:?}");
    assert!(missing.message().contains("x-fastbreak-internal-token"), "{missing:?}");

    let mut forged = tonic::Request::new(());
    forged.metadata_mut().insert("x-fastbreak-internal-token", "not-the-credential".parse().unwrap());
    let wrong = call_empty(mesh.channel("risk").await, path, forged).await;
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated, "{wrong:?}");

    let public = call_empty(
        mesh.channel("risk").await,
        "/fastbreak.risk.v1.RiskService/GetBudgetLimits",
        tonic::Request::new(()),
    )
    .await;
    assert_eq!(
        public.code(),
        tonic::Code::Unauthenticated,
        "backends' public services are reached through the gateway only"
    );

    let edge = call_empty(
        mesh.channel("gateway").await,
        "/fastbreak.risk.v1.RiskService/GetBudgetLimits",
        tonic::Request::new(()),
    )
    .await;
    assert_eq!(edge.code(), tonic::Code::Unauthenticated, "{edge:?}");
    assert!(
        edge.message().contains("access token"),
        "the gateway's public services ask clients for an access token, not the internal credential: {edge:?}"
    );

    // With the credential the call reaches the RPC, which names what the empty request lacks.
    let with = call_empty(mesh.channel("risk").await, path, internal_request(())).await;
    assert_eq!(with.code(), tonic::Code::InvalidArgument, "{with:?}");
}

#[tokio::test]
async fn random_paths_cannot_grow_the_metrics() {
    let mesh = TestMesh::spawn("user").await;
    let channel = mesh.channel("user").await;
    let callers: Vec<_> = (0..8)
        .map(|caller| {
            let channel = channel.clone();
            tokio::spawn(async move {
                for n in 0..1250 {
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await.unwrap();
                    let path = format!("/random.Service{caller}x{n}/Method{n}").parse().unwrap();
                    let codec = tonic_prost::ProstCodec::<(), ()>::default();
                    let status = grpc.unary(internal_request(()), path, codec).await.unwrap_err();
                    assert_eq!(status.code(), tonic::Code::Unimplemented);
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    let text = fastbreak_telemetry::metrics::render();
    assert!(!text.contains("random.Service"), "a client's path became a label");
    let unknown = text.lines().find(|l| {
        l.starts_with("fastbreak_rpc_server_calls_total{")
            && l.contains("target=\"user\"")
            && l.contains("service=\"unknown\"")
            && l.contains("code=\"UNIMPLEMENTED\"")
    });
    let count: f64 = unknown.expect("unknown paths are counted").rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 10_000.0, "{count}");
    let series = text.lines().filter(|l| l.starts_with("fastbreak_rpc_server_calls_total{")).count();
    assert!(series < 200, "{series} series");
}

#[tokio::test(flavor = "multi_thread")]
async fn system_health_at_the_gateway_tells_each_endpoints_version_uptime_and_database() {
    use fastbreak_proto::gateway::v1::system_health_service_client::SystemHealthServiceClient;
    use fastbreak_proto::gateway::v1::{GetSystemHealthRequest, ServingStatus};
    let mesh = TestMesh::spawn("all").await;
    let mut client = SystemHealthServiceClient::new(mesh.channel("gateway").await);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut request = tonic::Request::new(GetSystemHealthRequest {});
        request
            .metadata_mut()
            .insert("x-fastbreak-operator-token", fastbreak_integration_tests::TEST_OPERATOR_TOKEN.parse().unwrap());
        let health = client.get_system_health(request).await.unwrap().into_inner();
        let risk = health.services.iter().find(|s| s.service == "risk").expect("risk is listed");
        let endpoint = &risk.endpoints[0];
        let database = endpoint.dependencies.iter().find(|d| d.name == "database");
        if health.status() == ServingStatus::Serving && database.is_some_and(|d| d.state == "SERVING") {
            assert_eq!(health.services.len(), 8, "every backend: {health:?}");
            assert_eq!(endpoint.version, env!("CARGO_PKG_VERSION"));
            assert!(endpoint.start_time.is_some() && endpoint.uptime_seconds >= 0, "{endpoint:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "every backend SERVING with its database: {health:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
