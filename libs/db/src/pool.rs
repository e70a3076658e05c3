//! The pool every service reaches PostgreSQL through, and the one transaction helper every
//! write goes through.

use std::time::{Duration, Instant};

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::future::BoxFuture;

use crate::error::{DatabaseError, is_conflict};

/// The connection repositories run on.
pub type PgConnection = AsyncPgConnection;

/// A pooled connection.
pub type Connection = Object<AsyncPgConnection>;

/// How many times a transaction is tried when it conflicts with concurrent ones.
const TRANSACTION_ATTEMPTS: u32 = 10;

/// The pauses between attempts: exponential from 2ms up to 250ms, with jitter so that the
/// transactions that conflicted do not meet again at the same instant.
fn retry_pauses() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(250))
        .with_jitter()
        .with_max_times(TRANSACTION_ATTEMPTS as usize)
        .build()
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub max_size: usize,
    /// How long to wait for a free connection, or for a new one to open.
    pub timeout: Duration,
    /// How long one statement may run before PostgreSQL cancels it (set on every connection
    /// of the pool), so that a stuck query cannot hold locks and a connection forever.
    pub statement_timeout: Duration,
    /// Most connections open at once for background work (workers, stream followers), apart
    /// from the calls' pool: background work never waits behind callers for a connection,
    /// nor callers behind it.
    pub background_size: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            background_size: 4,
        }
    }
}

/// The handle to the database: a pool of connections to one PostgreSQL database for the
/// calls, and one of its own for background work ([`Database::background`]).
#[derive(Clone)]
pub struct Database {
    pool: Pool<AsyncPgConnection>,
    background: Pool<AsyncPgConnection>,
    addr: String,
    url: String,
    setup: String,
}

/// Opens a connection and runs `setup` on it.
async fn open(url: String, setup: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = crate::wire::establish(&url).await?;
    diesel::sql_query(&setup).execute(&mut conn).await.map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("addr", &self.addr).finish()
    }
}

/// Host, port and database of a URL, without credentials: what errors and logs may show.
pub fn redact_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

/// True when `url` looks like a PostgreSQL connection URL.
pub fn is_postgres_url(url: &str) -> bool {
    (url.starts_with("postgres://") || url.starts_with("postgresql://")) && url.len() > "postgres://".len()
}

impl Database {
    /// Builds the pools for `url`. No connection is made until one is needed.
    pub fn connect_lazy(url: &str, options: &PoolOptions) -> Result<Self, DatabaseError> {
        // Every connection gets the statement timeout when it opens: a stuck query, in a
        // transaction or not, cannot hold locks and a connection forever.
        let setup =
            format!("SET statement_timeout = {}", options.statement_timeout.as_millis().clamp(1, i32::MAX as u128));
        let pool = |size: usize| {
            let mut config = diesel_async::pooled_connection::ManagerConfig::<AsyncPgConnection>::default();
            let limit = setup.clone();
            config.custom_setup = Box::new(move |url| Box::pin(open(url.to_owned(), limit.clone())));
            // A connection handed out again is not asked `SELECT 1` first (a round trip on every
            // checkout, ten in a purchase): one the server or the network closed is known to be
            // broken and is replaced, and a call on one that fails unseen fails as any call does.
            config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
            Pool::builder(manager)
                .max_size(size.max(1))
                .wait_timeout(Some(options.timeout))
                .create_timeout(Some(options.timeout))
                .recycle_timeout(Some(options.timeout))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|error| DatabaseError::Pool(error.to_string()))
        };
        Ok(Self {
            pool: pool(options.max_size)?,
            background: pool(options.background_size)?,
            addr: redact_url(url),
            url: url.to_owned(),
            setup,
        })
    }

    /// Calls `heard` for every notification committed on `channel` (LISTEN/NOTIFY), on a
    /// connection of its own, until `heard` returns false (see [`crate::wire::listen`]).
    pub async fn listen(&self, channel: &str, heard: impl Fn() -> bool) -> Result<(), DatabaseError> {
        crate::wire::listen(&self.url, channel, heard).await.map_err(DatabaseError::Pool)
    }

    /// The same database through the background pool: for workers and stream followers, so
    /// that callers holding every connection of the calls' pool never stall them (and they
    /// never take a caller's connection).
    pub fn background(&self) -> Self {
        Self { pool: self.background.clone(), ..self.clone() }
    }

    /// A connection of its own, outside both pools (for a health check that must answer
    /// whatever the pools are doing).
    pub async fn dedicated(&self) -> Result<AsyncPgConnection, DatabaseError> {
        open(self.url.clone(), self.setup.clone())
            .await
            .map_err(|error| DatabaseError::Unreachable { addr: self.addr.clone(), reason: error.to_string() })
    }

    /// Where the database is (host:port/name), for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Takes a connection from the pool.
    pub async fn conn(&self) -> Result<Connection, DatabaseError> {
        self.pool.get().await.map_err(|error| self.pool_error(error))
    }

    fn pool_error(&self, error: PoolError) -> DatabaseError {
        let reason = match error {
            PoolError::Backend(diesel_async::pooled_connection::PoolError::ConnectionError(e)) => e.to_string(),
            PoolError::Backend(diesel_async::pooled_connection::PoolError::QueryError(e)) => {
                return DatabaseError::from(e);
            }
            // Every connection is open and busy: the server is fine, this process is overloaded.
            // With fewer open, the wait was for a new connection to a server that does not answer.
            PoolError::Timeout(deadpool::managed::TimeoutType::Wait) => {
                let status = self.pool.status();
                if status.size >= status.max_size {
                    return DatabaseError::PoolExhausted { size: status.max_size };
                }
                "timed out waiting for a connection to open".to_owned()
            }
            PoolError::Timeout(kind) => format!("timed out opening a connection ({kind:?})"),
            other => other.to_string(),
        };
        DatabaseError::Unreachable { addr: self.addr.clone(), reason }
    }

    /// Runs `work` in a serializable transaction on one connection. A transaction that fails to serialize
    /// against concurrent ones or deadlocks (SQLSTATE 40001, 40P01) is tried again, up to ten times in all, with a
    /// growing, jittered pause; any other error rolls back and is returned at once.
    ///
    /// `work` may run more than once, so it must not have effects outside the transaction.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, DatabaseError>
    where
        T: Send,
        F: for<'c> Fn(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send + Sync,
    {
        self.retrying(true, work).await
    }

    /// Runs `work` in a READ COMMITTED transaction, for work whose correctness rests on the
    /// locks it takes: an explicit lock as its first statement (such as a user's risk lock),
    /// after which every statement sees what the previous holder committed (a serializable
    /// snapshot, taken before the lock was granted, would not); or the row lock of a
    /// conditional UPDATE, which re-checks its condition once the row is free (so concurrent
    /// transitions of one row are decided one after another, without the false conflicts
    /// serializable isolation reports between rows that share index pages). A deadlock is tried
    /// again like a conflict.
    pub async fn read_committed<T, F>(&self, work: F) -> Result<T, DatabaseError>
    where
        T: Send,
        F: for<'c> Fn(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send + Sync,
    {
        self.retrying(false, work).await
    }

    async fn retrying<T, F>(&self, serializable: bool, work: F) -> Result<T, DatabaseError>
    where
        T: Send,
        F: for<'c> Fn(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send + Sync,
    {
        let started = Instant::now();
        let mut conn = self.conn().await?;
        let mut pauses = retry_pauses();
        for attempt in 1..=TRANSACTION_ATTEMPTS {
            let builder = conn.build_transaction();
            let mut builder = if serializable { builder.serializable() } else { builder.read_committed() };
            let outcome = builder.run(async |conn| work(conn).await).await;
            match outcome {
                Err(error) if is_conflict(&error) && attempt < TRANSACTION_ATTEMPTS => {
                    tracing::debug!(attempt, %error, "transaction conflicted; retrying");
                    tokio::time::sleep(pauses.next().unwrap_or(Duration::from_millis(250))).await;
                }
                Err(error) if is_conflict(&error) => {
                    return Err(DatabaseError::SerializationConflict { attempts: attempt });
                }
                other => {
                    tracing::trace!(elapsed_ms = started.elapsed().as_millis() as u64, attempt, "transaction done");
                    return other;
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Runs read-only `work` on one connection, outside any explicit transaction.
    pub async fn read<T, F>(&self, work: F) -> Result<T, DatabaseError>
    where
        T: Send,
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send,
    {
        let mut conn = self.conn().await?;
        work(&mut conn).await
    }

    /// Runs `work` on one connection, outside any explicit transaction: each statement is
    /// committed on its own (autocommit). For a write that is one statement, or whose
    /// statements stand alone.
    pub async fn autocommit<T, F>(&self, work: F) -> Result<T, DatabaseError>
    where
        T: Send,
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send,
    {
        self.read(work).await
    }

    /// The pool's current size and idle connections, for metrics.
    pub fn status(&self) -> (usize, usize) {
        let status = self.pool.status();
        (status.size, status.available)
    }
}

impl From<diesel::ConnectionError> for DatabaseError {
    fn from(error: diesel::ConnectionError) -> Self {
        DatabaseError::Unreachable { addr: "the server".to_owned(), reason: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_to_host_port_and_name() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/fastbreak?sslmode=disable"), "db:5432/fastbreak");
        assert_eq!(redact_url("postgres://db/fastbreak"), "db/fastbreak");
        assert!(is_postgres_url("postgresql://x/y"));
        assert!(!is_postgres_url("mysql://x/y"));
        assert!(!is_postgres_url("postgres://"));
    }
}
