//! The database as a dependency of the targets that serve from it: reachable, at this build's
//! schema version, or they report NOT_SERVING and say why, retrying with backoff.

use std::time::Duration;

use backon::BackoffBuilder;
use fastbreak_db::{Database, DatabaseError, PgConnection, migrate};
use fastbreak_mesh::Readiness;

/// How often a healthy database is checked again.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// How long one check may take: a database that does not answer within it counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks that the database answers and its schema is current: one query on `conn` (opened
/// first when there is none, outside the pools: a pool every caller holds is no reason to
/// report the database down), within [`CHECK_TIMEOUT`]. A connection that failed is dropped.
pub async fn check(database: &Database, conn: &mut Option<PgConnection>) -> Result<(), DatabaseError> {
    let checked = tokio::time::timeout(CHECK_TIMEOUT, async {
        if conn.is_none() {
            *conn = Some(database.dedicated().await?);
        }
        match conn.as_mut() {
            Some(open) => migrate::ensure_schema_current(open).await,
            None => Ok(()),
        }
    })
    .await;
    let outcome = checked.unwrap_or_else(|_| {
        Err(DatabaseError::Unreachable {
            addr: database.addr().to_owned(),
            reason: format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
        })
    });
    if outcome.is_err() {
        *conn = None;
    }
    outcome
}

/// Watches the database until `stop` completes: while it is reachable and current, every given
/// server reports SERVING (unless it is draining); while it is not, NOT_SERVING, with a log
/// line naming the database and the reason, retried with exponential backoff and jitter (0.2s
/// up to 10s).
pub async fn watch(database: Database, dependents: Vec<Readiness>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    tokio::select! {
        () = watch_forever(database, dependents) => {}
        () = &mut stop => tracing::debug!("database watch stopped"),
    }
}

async fn watch_forever(database: Database, dependents: Vec<Readiness>) {
    let backoff = || {
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut delays = backoff();
    let mut healthy: Option<bool> = None;
    let mut conn = None;
    loop {
        match check(&database, &mut conn).await {
            Ok(()) => {
                if healthy != Some(true) {
                    tracing::info!(database = database.addr(), "database reachable and current; serving");
                    for readiness in &dependents {
                        readiness.set_dependency("database", "SERVING");
                        readiness.set_serving().await;
                    }
                }
                healthy = Some(true);
                delays = backoff();
                tokio::time::sleep(CHECK_INTERVAL).await;
            }
            Err(error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(10));
                tracing::warn!(
                    database = database.addr(),
                    error = %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "database not ready; NOT_SERVING until it is"
                );
                for readiness in &dependents {
                    readiness.set_dependency("database", &format!("NOT_SERVING: {error}"));
                }
                if healthy != Some(false) {
                    for readiness in &dependents {
                        readiness.set_not_serving().await;
                    }
                }
                healthy = Some(false);
                tokio::time::sleep(delay).await;
            }
        }
    }
}
