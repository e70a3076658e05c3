//! What every FastBreak server and client shares: the server builder (health, reflection,
//! a bound listener, graceful shutdown) and the health client used by probes.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod health;
pub mod server;
pub mod shutdown;

pub use health::{HealthCheckError, check_health};
pub use server::{BoundServer, GrpcService, MeshServer, Readiness, ServerError};
pub use shutdown::shutdown_signal;
