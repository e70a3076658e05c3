//! A stand-in for Jaeger where none can be pulled: it receives OTLP traces over gRPC (port 4317)
//! and answers the part of Jaeger's query API the compose tests read (port 16686):
//! `GET /api/traces/<trace id>` gives the trace's spans with their operation names, parents and
//! services, in Jaeger's JSON shape; `GET /api/services` the services seen.
//!
//! `otlp-sink [--otlp 0.0.0.0:4317] [--http 0.0.0.0:16686]`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::get;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// A span as kept: (trace id, span id, parent span id, name, service).
type Kept = (String, String, String, String, String);

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<Kept>>>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().map_err(|_| tonic::Status::internal("poisoned"))?;
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                kept.push((
                    hex(&span.trace_id),
                    hex(&span.span_id),
                    hex(&span.parent_span_id),
                    span.name,
                    service.clone(),
                ));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn trace(State(sink): State<Sink>, Path(id): Path<String>) -> axum::Json<serde_json::Value> {
    let spans: Vec<Kept> = sink.0.lock().map(|k| k.iter().filter(|s| s.0 == id).cloned().collect()).unwrap_or_default();
    let mut processes = BTreeMap::new();
    for span in &spans {
        let next = format!("p{}", processes.len() + 1);
        processes.entry(span.4.clone()).or_insert(next);
    }
    let json_spans: Vec<serde_json::Value> = spans
        .iter()
        .map(|(trace, span, parent, name, service)| {
            let references = if parent.is_empty() {
                serde_json::json!([])
            } else {
                serde_json::json!([{ "refType": "CHILD_OF", "traceID": trace, "spanID": parent }])
            };
            serde_json::json!({
                "traceID": trace,
                "spanID": span,
                "operationName": name,
                "references": references,
                "processID": processes[service],
            })
        })
        .collect();
    let processes: BTreeMap<String, serde_json::Value> =
        processes.into_iter().map(|(service, id)| (id, serde_json::json!({ "serviceName": service }))).collect();
    let data = if spans.is_empty() {
        serde_json::json!([])
    } else {
        serde_json::json!([{ "traceID": id, "spans": json_spans, "processes": processes }])
    };
    axum::Json(serde_json::json!({ "data": data }))
}

async fn services(State(sink): State<Sink>) -> axum::Json<serde_json::Value> {
    let mut names: Vec<String> = sink.0.lock().map(|k| k.iter().map(|s| s.4.clone()).collect()).unwrap_or_default();
    names.sort();
    names.dedup();
    axum::Json(serde_json::json!({ "data": names }))
}

fn flag(name: &str, default: &str) -> SocketAddr {
    let args: Vec<String> = std::env::args().collect();
    let value = args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default, String::as_str);
    value.parse().unwrap_or_else(|_| panic!("{name}: expected HOST:PORT, got {value:?}"))
}

#[tokio::main]
async fn main() {
    let (otlp, http) = (flag("--otlp", "0.0.0.0:4317"), flag("--http", "0.0.0.0:16686"));
    let sink = Sink::default();
    let app = axum::Router::new()
        .route("/", get(|| async { "otlp-sink: traces at /api/traces/<id>\n" }))
        .route("/api/services", get(services))
        .route("/api/traces/{id}", get(trace))
        .with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind(http).await.expect("the HTTP port");
    println!("otlp-sink: OTLP on {otlp}, query API on {http}");
    let web = tokio::spawn(async move { axum::serve(listener, app).await });
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink))
        .serve(otlp)
        .await
        .expect("the OTLP port");
    let _ = web.await;
}
