//! The FastBreak data crate: the whole PostgreSQL schema (embedded diesel migrations) and who
//! owns each table ([`owners`]), the pool and the transaction helpers every write goes
//! through, the column and page types the services' stores share, the outbox mechanism, and
//! the private PostgreSQL cluster `fastbreak up` and the tests run. The queries themselves
//! belong to the services: each service's `store` queries only the tables it owns.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cluster;
pub mod columns;
pub mod error;
pub mod migrate;
pub mod outbox;
pub mod owners;
pub mod page;
pub mod pool;
pub mod prepared;
pub mod schema;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use columns::{Rarity, UnknownValue};
pub use error::DatabaseError;
pub use page::{Cursor, Page, PageRequest};
pub use pool::{Database, PgConnection, PoolOptions};
pub use prepared::{Reuse, Reused};
pub use status::OrStatus;
