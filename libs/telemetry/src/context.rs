//! The context every call carries: the W3C trace context (`traceparent`) and the correlation id
//! (`x-correlation-id`), read from incoming calls and written into outgoing ones.

use std::future::Future;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header that carries the correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

// Header names read on every call, made once (a name given as text is parsed at each lookup).
pub(crate) static CORRELATION: HeaderName = HeaderName::from_static(CORRELATION_HEADER);
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

tokio::task_local! {
    static CORRELATION_ID: String;
    static DEADLINE: Option<tokio::time::Instant>;
    static TARGET: &'static str;
}

/// The FastBreak target whose work this is (the call it serves, or one of its workers), if
/// known: every span records it as `target`, and traces are exported per target by it.
pub fn current_target() -> Option<&'static str> {
    TARGET.try_with(|target| *target).ok()
}

/// Runs `future` as the work of `target`.
///
/// This and the other `with_*` functions wrap the future in its task-local scope directly (no
/// `async fn` around it, which would hold the future twice), in a type that can be named: every
/// call a server takes goes through three of them.
pub fn with_target<F: Future>(target: &'static str, future: F) -> TaskLocalFuture<&'static str, F> {
    TARGET.scope(target, future)
}

/// When the call being served must be answered by, if its caller set a deadline: the calls it
/// makes inherit it.
pub fn current_deadline() -> Option<tokio::time::Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok().flatten()
}

/// Runs `future` with `deadline` as the deadline of the calls it makes (or the one already in
/// force, if that is sooner: a deadline only ever shrinks).
pub fn with_deadline<F: Future>(deadline: tokio::time::Instant, future: F) -> TaskLocalFuture<Option<Instant>, F> {
    within_deadline(Some(deadline), future)
}

/// Like [`with_deadline`]; with no deadline, the one already in force (if any) holds.
pub fn within_deadline<F: Future>(deadline: Option<Instant>, future: F) -> TaskLocalFuture<Option<Instant>, F> {
    let deadline = match (deadline, current_deadline()) {
        (Some(deadline), Some(current)) => Some(current.min(deadline)),
        (deadline, current) => deadline.or(current),
    };
    DEADLINE.scope(deadline, future)
}

/// The timeout a gRPC request carries in `grpc-timeout`, if any.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<std::time::Duration> {
    use std::time::Duration;
    let value = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    let (number, unit) = value.split_at(value.len().checked_sub(1)?);
    if number.is_empty() || number.len() > 8 {
        return None;
    }
    let number: u64 = number.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(number.checked_mul(3600)?),
        "M" => Duration::from_secs(number.checked_mul(60)?),
        "S" => Duration::from_secs(number),
        "m" => Duration::from_millis(number),
        "u" => Duration::from_micros(number),
        "n" => Duration::from_nanos(number),
        _ => return None,
    })
}

/// Sets `grpc-timeout` in `headers` to `timeout` (in milliseconds, at least one), the way
/// [`grpc_timeout`] reads it; a value new on every call, so never indexed (see
/// [`per_call_value`]).
pub fn set_grpc_timeout(headers: &mut HeaderMap, timeout: std::time::Duration) {
    if let Some(value) = per_call_value(&format!("{}m", timeout.as_millis().max(1))) {
        headers.insert(GRPC_TIMEOUT.clone(), value);
    }
}

/// The correlation id of the call being served, if any.
pub fn current_correlation_id() -> Option<String> {
    CORRELATION_ID.try_with(Clone::clone).ok()
}

/// Runs `future` with `id` as the correlation id of the calls it makes.
pub fn with_correlation_id<F: Future>(id: String, future: F) -> TaskLocalFuture<String, F> {
    CORRELATION_ID.scope(id, future)
}

/// A new correlation id: unique, not secret. A random number drawn once per process, and a
/// counter, make it in the form of a UUID without asking the OS for randomness on every call.
pub fn new_correlation_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    uuid::Uuid::from_u64_pair(prefix, NEXT.fetch_add(1, Ordering::Relaxed)).to_string()
}

/// A header value that is new on every call (a correlation id, a `traceparent`), marked for
/// HPACK as never indexed. An indexed one would enter the connection's header table only to push
/// out the values that do repeat (`grpc-status`, the health answer's headers), and every later
/// value would first be compared with each one still there: under load that cost more than all
/// the rest of a call's telemetry.
pub fn per_call_value(text: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The correlation id in `headers`, if it is a sensible one (1 to 128 visible ASCII characters).
pub fn correlation_id_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(&CORRELATION)?.to_str().ok()?;
    let valid = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| value.to_owned())
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Some(value)) = (HeaderName::from_bytes(key.as_bytes()), per_call_value(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// The trace context an incoming call carries.
pub fn extract_trace_context(headers: &HeaderMap) -> opentelemetry::Context {
    if !headers.contains_key(&TRACEPARENT) {
        // Nothing to continue: the span starts a trace of its own.
        return opentelemetry::Context::new();
    }
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The trace id of a span, as 32 hex digits (all zeros when tracing is not set up).
pub fn trace_id_of(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

/// Writes the current span's trace context and the current correlation id (a new one when
/// there is none) into the headers of an outgoing call; returns the correlation id sent.
pub fn inject_outgoing(headers: &mut HeaderMap) -> String {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    let id = current_correlation_id().unwrap_or_else(new_correlation_id);
    if let Some(value) = per_call_value(&id) {
        headers.insert(CORRELATION_HEADER, value);
    }
    id
}

/// The current call's trace context (a `traceparent`) and correlation id, for work it leaves to
/// be done later (an outbox message), so that the work continues the call's trace.
pub fn carried_context() -> (Option<String>, Option<String>) {
    let mut headers = HeaderMap::new();
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(&mut headers));
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (traceparent, current_correlation_id())
}

/// Runs `future` as work a call left behind: in `span`, continuing the trace of `traceparent`
/// (when it is one), with `correlation_id` (or a new one) as the correlation id of the calls it
/// makes.
pub async fn resume_carried<F: Future>(
    span: tracing::Span,
    traceparent: Option<&str>,
    correlation_id: Option<String>,
    future: F,
) -> F::Output {
    if let Some(value) = traceparent.and_then(|v| HeaderValue::from_str(v).ok()) {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", value);
        let _ = span.set_parent(extract_trace_context(&headers));
    }
    let id = correlation_id.unwrap_or_else(new_correlation_id);
    tracing::Instrument::instrument(with_correlation_id(id, future), span).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_made_here_are_unique_and_look_like_uuids() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_correlation_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
    }

    #[test]
    fn values_new_on_every_call_are_never_indexed_by_hpack() {
        let mut headers = HeaderMap::new();
        let id = inject_outgoing(&mut headers);
        let correlation = headers.get(CORRELATION_HEADER).expect("the correlation id is sent");
        assert_eq!(correlation.to_str().unwrap(), id);
        assert!(correlation.is_sensitive());
        assert!(per_call_value("1500m").unwrap().is_sensitive());
        assert!(per_call_value("not\na value").is_none());
    }

    #[test]
    fn a_timeout_set_is_read_back_in_whole_milliseconds() {
        use std::time::Duration;
        let mut headers = HeaderMap::new();
        set_grpc_timeout(&mut headers, Duration::from_micros(2500));
        assert_eq!(grpc_timeout(&headers), Some(Duration::from_millis(2)));
        set_grpc_timeout(&mut headers, Duration::ZERO);
        assert_eq!(grpc_timeout(&headers), Some(Duration::from_millis(1)));
        assert!(headers.get("grpc-timeout").unwrap().is_sensitive());
    }

    #[test]
    fn a_request_without_traceparent_starts_a_trace_of_its_own() {
        let context = extract_trace_context(&HeaderMap::new());
        assert!(!context.span().span_context().is_valid());
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        let continued = extract_trace_context(&headers);
        assert_eq!(continued.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
