//! The FastBreak data crate: it owns the whole PostgreSQL schema (embedded diesel migrations),
//! the typed models and repositories every service uses, the pool and the one transaction
//! helper every write goes through, and the private PostgreSQL cluster `fastbreak up` and the
//! tests run. No SQL is written outside this crate.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cluster;
pub mod error;
pub mod migrate;
pub mod pool;
pub mod repo;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use error::DatabaseError;
pub use pool::{Database, PgConnection, PoolOptions};
