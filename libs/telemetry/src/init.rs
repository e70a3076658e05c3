//! Setting up logs and traces for a process.

use std::io::IsTerminal;

use fastbreak_config::LogFormat;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanProcessor};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::TelemetryConfig;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("cannot export traces to {endpoint}: {reason}")]
    Exporter {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("logging was already set up in this process")]
    AlreadyInitialised,
}

/// Telemetry of a running process; flushes the traces still buffered when shut down.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Flushes and stops trace export.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("trace export did not shut down cleanly: {error}");
        }
    }
}

/// A batching OTLP exporter to `endpoint`, run on the process's tokio runtime (where the gRPC
/// exporter can do its I/O).
fn batch(endpoint: &str) -> Result<BatchSpanProcessor<Tokio>, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.to_owned())
        .build()
        .map_err(|error| TelemetryError::Exporter { endpoint: endpoint.to_owned(), reason: error.to_string() })?;
    Ok(BatchSpanProcessor::builder(exporter, Tokio).build())
}

/// Sends each finished span to the exporter of the target named by its `target` attribute,
/// which exports as the service `fastbreak-<target>`; spans of no known target go to `rest`,
/// which exports as the process's service.
#[derive(Debug)]
struct ByTarget<P> {
    by_target: Vec<(String, P)>,
    rest: P,
}

impl<P: SpanProcessor> ByTarget<P> {
    fn all(&self) -> impl Iterator<Item = &P> {
        self.by_target.iter().map(|(_, p)| p).chain(std::iter::once(&self.rest))
    }
}

impl<P: SpanProcessor> SpanProcessor for ByTarget<P> {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        let target = span.attributes.iter().find(|kv| kv.key.as_str() == "target").map(|kv| kv.value.as_str());
        let processor = target
            .and_then(|target| self.by_target.iter().find(|(name, _)| *name == target))
            .map_or(&self.rest, |(_, p)| p);
        processor.on_end(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        // Every one is flushed, whatever the others answer; the first failure is told.
        let results: Vec<_> = self.all().map(SpanProcessor::force_flush).collect();
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        let results: Vec<_> = self.all().map(|p| p.shutdown_with_timeout(timeout)).collect();
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        let attributes = || resource.iter().map(|(k, v)| opentelemetry::KeyValue::new(k.clone(), v.clone()));
        for (target, processor) in &mut self.by_target {
            let own = opentelemetry_sdk::Resource::builder_empty()
                .with_attributes(attributes())
                .with_service_name(format!("fastbreak-{target}"))
                .build();
            processor.set_resource(&own);
        }
        self.rest.set_resource(resource);
    }
}

/// Sets up logging to standard error and tracing for this process. Must run inside a tokio
/// runtime (the OTLP exporter lives on it).
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let ansi = std::io::stderr().is_terminal();
    init_with_writer(config, std::io::stderr, ansi)
}

/// Like [`init`], writing logs to `writer` (tests capture them this way).
pub fn init_with_writer<W>(config: &TelemetryConfig, writer: W, ansi: bool) -> Result<Telemetry, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let mut builder = SdkTracerProvider::builder()
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build());
    if let Some(endpoint) = &config.otlp_endpoint {
        let process = batch(endpoint)?;
        if config.targets.is_empty() {
            builder = builder.with_span_processor(process);
        } else {
            // Several targets in this process: each exports as a service of its own.
            let mut by_target = Vec::with_capacity(config.targets.len());
            for target in &config.targets {
                by_target.push((target.clone(), batch(endpoint)?));
            }
            builder = builder.with_span_processor(ByTarget { by_target, rest: process });
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer("fastbreak");

    let filter = tracing_subscriber::EnvFilter::try_new(&config.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (text, json) = match config.log_format {
        LogFormat::Text => (Some(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(writer)), None),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(crate::fields::JsonSpanFields)
                    .event_format(crate::fields::JsonLines)
                    .with_writer(writer),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        // A span's `target` attribute is the FastBreak target that made it, not a module path.
        // Spans describe calls and work, not the code and threads that ran them: no source
        // locations, thread names or busy/idle times (timing every poll of every call's future
        // cost more than the rest of the span). Nothing reads OpenTelemetry's current context
        // (calls carry their trace from the tracing span), so entering a span does not set it.
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_target(false)
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_context_activation(false),
        )
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    Ok(Telemetry { provider })
}
