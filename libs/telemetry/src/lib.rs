//! One telemetry setup for every FastBreak binary: logs (text on a terminal, JSON lines when
//! asked), `RUST_LOG` filtering, OTLP trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! W3C `traceparent` and `x-correlation-id` carried across every call, and Prometheus metrics of
//! every RPC.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod config;
pub mod context;
pub mod fields;
pub mod init;
pub mod metrics;
pub mod server;

pub use config::TelemetryConfig;
pub use context::{
    CORRELATION_HEADER, carried_context, current_correlation_id, current_target, inject_outgoing, per_call_value,
    resume_carried, with_correlation_id, with_target,
};
pub use init::{Telemetry, TelemetryError, init};
pub use server::ServerTelemetryLayer;
