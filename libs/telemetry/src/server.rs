//! The server side of telemetry: a tower layer that gives every incoming call a span carrying
//! its correlation id and trace id (continuing the caller's trace), makes the correlation id
//! available to the calls it makes, and records its metrics.
//!
//! It runs on every call a target takes, so it allocates little and boxes nothing: its future is
//! a named type, the metrics of each method are found once when the server starts, and header
//! names are made once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderName, HeaderValue, Request, Response};
use tokio::task::futures::TaskLocalFuture;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::{
    CORRELATION, correlation_id_of, extract_trace_context, grpc_timeout, new_correlation_id, per_call_value,
    trace_id_of, with_correlation_id, with_target, within_deadline,
};
use crate::metrics::{KnownMethods, MethodMetrics, ServedMethods, tonic_code::Code};

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Adds telemetry to every call a server takes.
#[derive(Debug, Clone)]
pub struct ServerTelemetryLayer {
    target: &'static str,
    methods: ServedMethods,
}

impl ServerTelemetryLayer {
    /// Telemetry for the server of `target`, which serves the `known` methods (metrics label
    /// every other path "unknown").
    pub fn new(target: &'static str, known: KnownMethods) -> Self {
        Self { target, methods: known.served_by(target) }
    }
}

impl<S> tower::Layer<S> for ServerTelemetryLayer {
    type Service = ServerTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTelemetry { inner, target: self.target, methods: self.methods.clone() }
    }
}

/// The service [`ServerTelemetryLayer`] makes.
#[derive(Debug, Clone)]
pub struct ServerTelemetry<S> {
    inner: S,
    target: &'static str,
    methods: ServedMethods,
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
        .get(&GRPC_STATUS)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .map_or(Code::OK, Code)
}

/// The call's span. Named and described as OpenTelemetry's RPC conventions say:
/// `package.Service/Method`, a server span, `rpc.*` attributes, and the status code once
/// answered. Every field known when it opens is given then: a field recorded later costs each
/// subscriber more.
macro_rules! rpc_span {
    ($level:expr, $target:expr, $service:expr, $method:expr, $address:expr, $correlation_id:expr) => {
        tracing::span!(
            $level,
            "rpc",
            otel.name = %format_args!("{}/{}", $service, $method),
            otel.kind = "server",
            target = $target,
            rpc.system = "grpc",
            rpc.service = $service,
            rpc.method = $method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = $address,
            correlation_id = %$correlation_id,
            trace_id = tracing::field::Empty,
        )
    };
}

/// The call a [`ServerTelemetry`] passes on, in the scopes of its target, correlation id and
/// deadline.
type Scoped<F> =
    TaskLocalFuture<&'static str, TaskLocalFuture<String, TaskLocalFuture<Option<tokio::time::Instant>, F>>>;

impl<S, B, ResBody> tower_service::Service<Request<B>> for ServerTelemetry<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Telemetered<Scoped<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let target = self.target;
        let path = request.uri().path();
        let metrics = Arc::clone(self.methods.of(path));
        // Health checks and reflection are polled by every peer, by orchestrators and by load
        // balancers: they are logged and traced only at debug, or they would bury the calls
        // that matter (and cost more than the check itself).
        let quiet = metrics.service.starts_with("grpc.");
        let (service, method) = (metrics.service, metrics.method);
        // Unknown paths are logged as sent (the span is short-lived); metrics use the labels.
        let unknown = (service == crate::metrics::UNKNOWN).then(|| split_path(path));
        let (span_service, span_method) = match &unknown {
            Some((service, method)) => (service.as_str(), method.as_str()),
            None => (service, method),
        };
        let address = match request.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => Some(host),
            None => request.uri().authority().map(http::uri::Authority::host),
        };
        let sent = correlation_id_of(request.headers());
        let correlation_id = sent.clone().unwrap_or_else(new_correlation_id);
        let span = if quiet {
            rpc_span!(tracing::Level::DEBUG, target, span_service, span_method, address, correlation_id)
        } else {
            rpc_span!(tracing::Level::INFO, target, span_service, span_method, address, correlation_id)
        };
        if !span.is_disabled() {
            let _ = span.set_parent(extract_trace_context(request.headers()));
            span.record("trace_id", trace_id_of(&span));
        }
        // A caller that sent a correlation id knows it; one that did not is told the one made
        // here, in the answer. The handler sees it in its metadata either way.
        let answer = match sent {
            Some(_) => None,
            None => {
                let value = per_call_value(&correlation_id);
                if let Some(value) = &value {
                    request.headers_mut().insert(CORRELATION.clone(), value.clone());
                }
                value
            }
        };

        let started = Instant::now();
        // The caller's deadline, for the calls this one makes on its behalf.
        let deadline = grpc_timeout(request.headers()).map(|timeout| tokio::time::Instant::now() + timeout);
        let call = with_target(
            target,
            with_correlation_id(correlation_id, within_deadline(deadline, self.inner.call(request))),
        );
        Telemetered { call, finish: Some(Finish { span, started, metrics, quiet, answer }) }
    }
}

pin_project_lite::pin_project! {
    /// A call under way, in its span; counted, timed and logged when it ends.
    pub struct Telemetered<F> {
        #[pin]
        call: F,
        finish: Option<Finish>,
    }
}

/// What [`Telemetered`] needs once the call ends.
struct Finish {
    span: tracing::Span,
    started: Instant,
    metrics: Arc<MethodMetrics>,
    quiet: bool,
    answer: Option<HeaderValue>,
}

impl<F, ResBody, E> Future for Telemetered<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let span = &this.finish.as_ref().expect("a call's telemetry is polled after it ended").span;
        let entered = span.enter();
        let outcome = ready!(this.call.poll(cx));
        drop(entered);
        let finish = this.finish.take().expect("a call's telemetry ends once");
        let elapsed = finish.started.elapsed();
        let _in_span = finish.span.enter();
        Poll::Ready(match outcome {
            Ok(mut response) => {
                let code = response_code(&response);
                finish.metrics.record(code, elapsed);
                if !finish.span.is_disabled() {
                    finish.span.record("rpc.grpc.status_code", code.0);
                }
                let latency_ms = elapsed.as_secs_f64() * 1000.0;
                if finish.quiet {
                    tracing::debug!(code = code.name(), latency_ms, "rpc finished");
                } else if code == Code::OK {
                    tracing::info!(code = code.name(), latency_ms, "rpc finished");
                } else if code.is_server_failure() {
                    tracing::warn!(code = code.name(), latency_ms, "rpc failed");
                } else {
                    // The caller's answer (not found, invalid, refused): the server is well.
                    tracing::info!(code = code.name(), latency_ms, "rpc answered with an error");
                }
                if let Some(value) = finish.answer {
                    response.headers_mut().insert(CORRELATION.clone(), value);
                }
                Ok(response)
            }
            Err(error) => {
                finish.metrics.record(Code(2), elapsed);
                tracing::warn!("rpc failed in transport");
                Err(error)
            }
        })
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
