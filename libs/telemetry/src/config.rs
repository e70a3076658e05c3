//! What telemetry reads from the environment.

use fastbreak_config::{LogFormat, Reader};

/// Telemetry settings of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The service name traces carry (`OTEL_SERVICE_NAME`, else "fastbreak-<targets>").
    pub service_name: String,
    /// Text or JSON lines (`FASTBREAK_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// The log filter (`RUST_LOG`), such as `info,fastbreak_mesh=debug`.
    pub filter: String,
    /// Where traces go (`OTEL_EXPORTER_OTLP_ENDPOINT`); none means no export.
    pub otlp_endpoint: Option<String>,
    /// The targets this process runs, when there are several and no `OTEL_SERVICE_NAME` was
    /// given: each one's spans are then exported as the service `fastbreak-<target>`, so that
    /// every target shows as its own service even when they share a process.
    pub targets: Vec<String>,
}

impl TelemetryConfig {
    /// Reads the settings, noting every problem in `reader`.
    pub fn read(reader: &mut Reader, default_service_name: &str) -> Self {
        let log_format =
            reader.optional("FASTBREAK_LOG_FORMAT", LogFormat::EXPECTED, LogFormat::parse).unwrap_or_default();
        let filter = reader
            .optional("RUST_LOG", "a log filter such as 'info' or 'info,fastbreak_mesh=debug'", |value| {
                tracing_subscriber::EnvFilter::try_new(value).ok().map(|_| value.to_owned())
            })
            .unwrap_or_else(|| "info".to_owned());
        let otlp_endpoint =
            reader.optional("OTEL_EXPORTER_OTLP_ENDPOINT", "an http(s) URL such as http://jaeger:4317", |value| {
                let uri: http::Uri = value.parse().ok()?;
                matches!(uri.scheme_str(), Some("http" | "https")).then(|| value.to_owned())
            });
        let service_name = reader
            .optional("OTEL_SERVICE_NAME", "a service name", |value| Some(value.to_owned()))
            .unwrap_or_else(|| default_service_name.to_owned());
        Self { service_name, log_format, filter, otlp_endpoint, targets: Vec::new() }
    }
}
