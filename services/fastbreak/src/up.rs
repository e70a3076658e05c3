//! `fastbreak up`: the whole system on one machine. Without `DATABASE_URL`, a private
//! PostgreSQL cluster in the data folder (kept between runs), migrated; then every target.

use std::path::{Path, PathBuf};

use fastbreak_db::cluster::{ClusterOptions, PrivateCluster};
use fastbreak_db::migrate;

/// The database `up` serves from: a private cluster it started, or the one configured.
pub struct UpDatabase {
    /// The URL the targets use.
    pub url: String,
    /// The private cluster, stopped when this is dropped; `None` with `DATABASE_URL`.
    pub cluster: Option<PrivateCluster>,
}

impl std::fmt::Debug for UpDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpDatabase")
            .field("url", &fastbreak_db::pool::redact_url(&self.url))
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// The data folder: `FASTBREAK_DATA_DIR`, or `.fastbreak` in the working directory.
pub fn data_dir(configured: Option<&str>) -> PathBuf {
    configured.map_or_else(|| PathBuf::from(".fastbreak"), PathBuf::from)
}

/// Starts (or reuses) the private cluster in `<data_dir>/postgres` and makes sure its
/// `fastbreak` database exists.
pub async fn private_database(data_dir: &Path) -> Result<UpDatabase, String> {
    let dir = data_dir.join("postgres");
    let cluster = tokio::task::spawn_blocking(move || PrivateCluster::start(&dir, &ClusterOptions::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    migrate::create_database_if_missing(&cluster.url("postgres"), "fastbreak").await.map_err(|e| e.to_string())?;
    Ok(UpDatabase { url: cluster.url("fastbreak"), cluster: Some(cluster) })
}

/// Applies pending migrations; returns a line saying what was done.
pub async fn migrate(url: &str) -> Result<String, String> {
    let applied = migrate::run_pending_migrations(url).await.map_err(|e| e.to_string())?;
    Ok(if applied.is_empty() {
        "schema is current".to_owned()
    } else {
        format!("applied {} migration(s)", applied.len())
    })
}
