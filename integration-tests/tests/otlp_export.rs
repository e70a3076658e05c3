//! With an OTLP endpoint set, the spans of one request through two services reach the collector
//! as one trace, named after the service.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastbreak_config::LogFormat;
use fastbreak_integration_tests::echo::{spawn_echo, spawn_relay};
use fastbreak_integration_tests::{connect, internal_request};
use fastbreak_proto::user::v1::GetUserStatusRequest;
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use fastbreak_telemetry::TelemetryConfig;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

/// A stand-in for Jaeger's OTLP receiver: it keeps what it is sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_through_two_services_is_one_exported_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let config = TelemetryConfig {
        service_name: "otlp-test".to_owned(),
        log_format: LogFormat::Text,
        filter: "info".to_owned(),
        otlp_endpoint: Some(format!("http://{collector_addr}")),
        targets: Vec::new(),
    };
    let telemetry = fastbreak_telemetry::init::init_with_writer(&config, std::io::sink, false).unwrap();

    let b = spawn_echo("otlp-b", Duration::ZERO, Duration::from_secs(5)).await;
    let a = spawn_relay("otlp-a", &[b.url()]).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let mut request = internal_request(GetUserStatusRequest::default());
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01").parse().unwrap());
    UserInternalServiceClient::new(connect(a.addr).await).get_user_status(request).await.expect("the chain answers");
    // A health check, like those A makes of B all along, continuing a trace: not traced.
    let mut check = tonic::Request::new(tonic_health::pb::HealthCheckRequest::default());
    check.metadata_mut().insert("traceparent", format!("00-{trace_id}-c7ad6b7169203332-01").parse().unwrap());
    tonic_health::pb::health_client::HealthClient::new(connect(a.addr).await).check(check).await.expect("A answers");

    // Shutting telemetry down flushes what is buffered.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.unwrap();

    let exports = collector.0.lock().unwrap().clone();
    // (service, span name, trace id, kind, attributes as "key=value")
    type Seen = (String, String, String, i32, Vec<String>);
    let spans: Vec<Seen> = exports
        .iter()
        .flat_map(|export| export.resource_spans.iter())
        .flat_map(|resource| {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            resource.scope_spans.iter().flat_map(|scope| scope.spans.iter()).map(move |span| {
                use opentelemetry_proto::tonic::common::v1::any_value::Value;
                let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                let attributes = span
                    .attributes
                    .iter()
                    .map(|kv| {
                        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Value::StringValue(s)) => s.clone(),
                            Some(Value::IntValue(i)) => i.to_string(),
                            other => format!("{other:?}"),
                        };
                        format!("{}={value}", kv.key)
                    })
                    .collect();
                (service.clone(), span.name.clone(), id, span.kind, attributes)
            })
        })
        .collect();
    let in_trace: Vec<&Seen> = spans.iter().filter(|s| s.2 == trace_id).collect();
    // Spans follow OpenTelemetry's RPC conventions: `package.Service/Method`, server and client
    // kinds (2 and 3), `rpc.*` attributes with the status code, and the server's address.
    // A serves GetUserStatus and, for it, calls B's GetHold.
    let (a_name, b_name) =
        ("fastbreak.user.v1.UserInternalService/GetUserStatus", "fastbreak.risk.v1.RiskInternalService/GetHold");
    let server = |name: &str| {
        *in_trace.iter().find(|s| s.1 == name && s.3 == 2).unwrap_or_else(|| panic!("{name}'s server span: {spans:#?}"))
    };
    for (span, service, method) in [
        (server(a_name), "fastbreak.user.v1.UserInternalService", "GetUserStatus"),
        (server(b_name), "fastbreak.risk.v1.RiskInternalService", "GetHold"),
    ] {
        for attribute in [
            "rpc.system=grpc".to_owned(),
            format!("rpc.service={service}"),
            format!("rpc.method={method}"),
            "rpc.grpc.status_code=0".to_owned(),
        ] {
            assert!(span.4.contains(&attribute), "{attribute}: {span:#?}");
        }
        assert!(span.4.iter().any(|a| a.starts_with("server.address=127.0.0.1")), "{span:#?}");
    }
    let client =
        in_trace.iter().find(|s| s.1 == b_name && s.3 == 3).unwrap_or_else(|| panic!("A's call to B: {spans:#?}"));
    for attribute in ["rpc.system=grpc", "rpc.method=GetHold", "server.address=127.0.0.1", "rpc.grpc.status_code=0"] {
        assert!(client.4.iter().any(|a| a == attribute), "{attribute}: {client:#?}");
    }
    assert!(in_trace.iter().all(|s| s.0.contains("otlp-test")), "{spans:#?}");
    // Health checks (and reflection) are traced only at debug: peers and probes poll them.
    let checks: Vec<&Seen> = spans.iter().filter(|s| s.1.starts_with("grpc.")).collect();
    assert!(checks.is_empty(), "health checks were traced: {checks:#?}");
}
