//! What every FastBreak server and client shares: the server builder (health, reflection,
//! a bound listener, graceful shutdown) and the health client used by probes.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod auth;
pub mod breaker;
pub mod bulkhead;
pub mod caller;
pub mod client;
pub mod context;
pub mod health;
pub mod idempotency;
pub mod money;
pub mod paging;
pub mod reflection;
pub mod retry;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod tail;
#[cfg(feature = "testing")]
pub mod testing;
pub mod worker;

pub use client::{EndpointReport, MadeHere, NotSent, PeerChannel, PeerError, PeerOptions, ServerInfo};
pub use context::{Context, Peer, Peers};
pub use idempotency::IdempotencyKey;
pub use retry::RetryPolicy;
pub use worker::Draining;

pub use health::{HealthCheckError, check_health, wait_serving};
pub use server::{BoundServer, GrpcService, MeshServer, Readiness, ServerError};
pub use shutdown::{process_stopping, shutdown_signal};
