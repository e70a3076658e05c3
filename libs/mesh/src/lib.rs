//! What every FastBreak server and client shares: the server builder (health, reflection,
//! a bound listener, graceful shutdown) and the health client used by probes.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod auth;
pub mod client;
pub mod health;
pub mod retry;
pub mod server;
pub mod shutdown;

pub use client::{PeerChannel, PeerError, PeerOptions};
pub use retry::RetryPolicy;

pub use health::{HealthCheckError, check_health, wait_serving};
pub use server::{BoundServer, GrpcService, MeshServer, Readiness, ServerError};
pub use shutdown::shutdown_signal;
