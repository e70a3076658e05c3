//! The server side of telemetry: a tower layer that gives every incoming call a span carrying
//! its correlation id and trace id (continuing the caller's trace), makes the correlation id
//! available to the calls it makes, and records its metrics.

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::{
    CORRELATION_HEADER, correlation_id_of, extract_trace_context, grpc_timeout, new_correlation_id, trace_id_of,
    with_correlation_id, with_target, within_deadline,
};
use crate::metrics::{KnownMethods, record_call, tonic_code::Code};

/// Adds telemetry to every call a server takes.
#[derive(Debug, Clone)]
pub struct ServerTelemetryLayer {
    target: &'static str,
    known: KnownMethods,
}

impl ServerTelemetryLayer {
    /// Telemetry for the server of `target`, which serves the `known` methods (metrics label
    /// every other path "unknown").
    pub fn new(target: &'static str, known: KnownMethods) -> Self {
        Self { target, known }
    }
}

impl<S> tower::Layer<S> for ServerTelemetryLayer {
    type Service = ServerTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTelemetry { inner, target: self.target, known: self.known.clone() }
    }
}

/// The service [`ServerTelemetryLayer`] makes.
#[derive(Debug, Clone)]
pub struct ServerTelemetry<S> {
    inner: S,
    target: &'static str,
    known: KnownMethods,
}

/// Splits `/package.Service/Method` into its service and method.
pub fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_owned();
    let method = parts.next().unwrap_or_default().to_owned();
    (service, method)
}

/// The gRPC status code of a response as far as its headers tell: errors come back
/// trailers-only, with the status in the headers; a response without it carries its status in
/// the trailers, which tonic sets to OK for a successful answer.
pub fn response_code<B>(response: &Response<B>) -> Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .map_or(Code::OK, Code)
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for ServerTelemetry<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let target = self.target;
        let (service, method) = self.known.labels(request.uri().path());
        let correlation_id = correlation_id_of(request.headers()).unwrap_or_else(new_correlation_id);
        let header = HeaderValue::from_str(&correlation_id).ok();
        if let Some(value) = &header {
            // The handler sees the id in its metadata, generated here when the caller sent none.
            request.headers_mut().insert(CORRELATION_HEADER, value.clone());
        }
        let quiet = service.starts_with("grpc.");
        // Unknown paths are logged as sent (the span is short-lived); metrics use the labels.
        let (path_service, path_method) = if service == crate::metrics::UNKNOWN {
            split_path(request.uri().path())
        } else {
            (String::new(), String::new())
        };
        let span_service = if path_service.is_empty() { service } else { path_service.as_str() };
        let span_method = if path_method.is_empty() { method } else { path_method.as_str() };
        let address = match request.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => Some(host),
            None => request.uri().authority().map(http::uri::Authority::host),
        };
        // Named and described as OpenTelemetry's RPC conventions say: `package.Service/Method`,
        // a server span, `rpc.*` attributes, and the status code once answered. Every field
        // known now is given now: a field recorded later costs each subscriber more.
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format_args!("{span_service}/{span_method}"),
            otel.kind = "server",
            target = target,
            rpc.system = "grpc",
            rpc.service = span_service,
            rpc.method = span_method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = address,
            correlation_id = %correlation_id,
            trace_id = tracing::field::Empty,
        );
        if !span.is_disabled() {
            let _ = span.set_parent(extract_trace_context(request.headers()));
            span.record("trace_id", trace_id_of(&span));
        }

        let started = Instant::now();
        // The caller's deadline, for the calls this one makes on its behalf.
        let deadline = grpc_timeout(request.headers()).map(|timeout| tokio::time::Instant::now() + timeout);
        // The call runs in its scopes, made here, so that the future boxed below holds it once.
        let call = with_target(
            target,
            with_correlation_id(correlation_id, within_deadline(deadline, self.inner.call(request))),
        );
        let finished_span = span.clone();
        Box::pin(
            async move {
                let outcome = call.await;
                let elapsed = started.elapsed();
                match &outcome {
                    Ok(response) => {
                        let code = response_code(response);
                        finished_span.record("rpc.grpc.status_code", code.0);
                        record_call(target, service, method, code, elapsed);
                        let latency_ms = elapsed.as_secs_f64() * 1000.0;
                        finished_span.in_scope(|| {
                            if quiet {
                                tracing::debug!(code = code.name(), latency_ms, "rpc finished");
                            } else if code == Code::OK {
                                tracing::info!(code = code.name(), latency_ms, "rpc finished");
                            } else {
                                tracing::warn!(code = code.name(), latency_ms, "rpc failed");
                            }
                        });
                    }
                    Err(_) => {
                        record_call(target, service, method, Code(2), elapsed);
                        finished_span.in_scope(|| tracing::warn!("rpc failed in transport"));
                    }
                }
                outcome.map(|mut response| {
                    if let Some(value) = header {
                        response.headers_mut().insert(CORRELATION_HEADER, value);
                    }
                    response
                })
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/fastbreak.risk.v1.RiskService/GetBudgetLimits"),
            ("fastbreak.risk.v1.RiskService".to_owned(), "GetBudgetLimits".to_owned())
        );
        assert_eq!(split_path("/"), (String::new(), String::new()));
    }
}
