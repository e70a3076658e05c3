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
    };
    let telemetry = fastbreak_telemetry::init::init_with_writer(&config, std::io::sink, false).unwrap();

    let b = spawn_echo("otlp-b", Duration::ZERO, Duration::from_secs(5)).await;
    let a = spawn_relay("otlp-a", &[b.url()]).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let mut request = internal_request(GetUserStatusRequest::default());
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01").parse().unwrap());
    UserInternalServiceClient::new(connect(a.addr).await).get_user_status(request).await.expect("the chain answers");

    // Shutting telemetry down flushes what is buffered.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.unwrap();

    let exports = collector.0.lock().unwrap().clone();
    let spans: Vec<(String, String, String)> = exports
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
                let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                (service.clone(), span.name.clone(), id)
            })
        })
        .collect();
    let in_trace: Vec<&(String, String, String)> = spans.iter().filter(|(_, _, id)| id == trace_id).collect();
    assert!(
        in_trace.iter().filter(|(_, name, _)| name == "rpc").count() >= 2,
        "a server span in A and in B: {spans:#?}"
    );
    assert!(in_trace.iter().any(|(_, name, _)| name == "rpc.client"), "A's call to B: {spans:#?}");
    assert!(in_trace.iter().all(|(service, _, _)| service.contains("otlp-test")), "{spans:#?}");
}
