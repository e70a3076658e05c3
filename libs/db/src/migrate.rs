//! The embedded migrations: apply them (safely, even from several processes at once), and tell
//! where a database stands.

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::DatabaseError;
use crate::pool::redact_url;

/// Every migration, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory lock key that serialises concurrent `migrate` runs ("fastbreak" in ASCII).
const MIGRATION_LOCK: i64 = 0x6661_7374_6272_6561;

/// A fingerprint of the migrations this build carries.
pub const MIGRATIONS_FINGERPRINT: &str = env!("FASTBREAK_MIGRATIONS_FINGERPRINT");

/// Where a database's schema stands against this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Migrations already applied, oldest first.
    pub applied: Vec<String>,
    /// Migrations of this build not yet applied, oldest first.
    pub pending: Vec<String>,
}

impl SchemaStatus {
    /// True when nothing is pending.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The version and full name of every migration this build carries, oldest first.
pub fn known_migrations() -> Vec<(String, String)> {
    let mut migrations: Vec<(String, String)> = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .expect("embedded migrations load")
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect();
    migrations.sort();
    migrations
}

/// The versions of every migration this build carries, oldest first.
pub fn known_versions() -> Vec<String> {
    known_migrations().into_iter().map(|(version, _)| version).collect()
}

async fn establish(url: &str) -> Result<AsyncPgConnection, DatabaseError> {
    crate::wire::establish(url)
        .await
        .map_err(|error| DatabaseError::Unreachable { addr: redact_url(url), reason: error.to_string() })
}

/// Applies every pending migration to the database at `url` and returns the versions applied
/// (none when it was current). Concurrent runs wait for each other on an advisory lock, so two
/// at once end with one correct schema. Needs a multi-threaded tokio runtime.
pub async fn run_pending_migrations(url: &str) -> Result<Vec<String>, DatabaseError> {
    let mut conn = establish(url).await?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut conn).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|error| DatabaseError::Migration(error.to_string()));
    let mut conn = harness.into_inner();
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(&mut conn).await?;
    applied
}

#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// Tells which migrations are applied and which are pending. Changes nothing, and runs on any
/// tokio runtime.
pub async fn schema_status(url: &str) -> Result<SchemaStatus, DatabaseError> {
    schema_status_on(&mut establish(url).await?).await
}

/// [`schema_status`] on a connection the caller already has (a pooled one, say).
pub async fn schema_status_on(conn: &mut AsyncPgConnection) -> Result<SchemaStatus, DatabaseError> {
    let rows: Vec<AppliedVersion> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(conn)
        .await
        .or_else(|error| match error {
            // The bookkeeping table does not exist: nothing is applied.
            diesel::result::Error::DatabaseError(_, ref info) if info.message().contains("does not exist") => {
                Ok(Vec::new())
            }
            other => Err(other),
        })?;
    let mut applied: Vec<String> = rows.into_iter().map(|row| row.version).collect();
    applied.sort();
    let pending = known_versions().into_iter().filter(|v| !applied.contains(v)).collect();
    Ok(SchemaStatus { applied, pending })
}

/// Fails with [`DatabaseError::SchemaBehind`] unless the schema on `conn` is at this build's
/// version.
pub async fn ensure_schema_current(conn: &mut AsyncPgConnection) -> Result<(), DatabaseError> {
    let status = schema_status_on(conn).await?;
    match <[String]>::first(&status.pending) {
        None => Ok(()),
        Some(first) => Err(DatabaseError::SchemaBehind { pending: status.pending.len(), first: first.clone() }),
    }
}

/// Creates database `name` on the server at `admin_url` unless it exists; true when created.
/// `name` must be lowercase letters, digits and underscores.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<bool, DatabaseError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(DatabaseError::InvalidName(format!(
            "invalid database name {name:?}: use lowercase letters, digits and _"
        )));
    }
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let mut conn = establish(admin_url).await?;
    let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result(&mut conn)
        .await?;
    if found.exists {
        return Ok(false);
    }
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    Ok(true)
}
