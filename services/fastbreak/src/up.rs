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

/// `--fresh`: deletes the data folder, unless a PostgreSQL still runs from it (another `up`).
pub fn start_fresh(data_dir: &Path) -> Result<(), String> {
    if !data_dir.exists() {
        return Ok(());
    }
    let pid = data_dir.join("postgres/data/postmaster.pid");
    if pid.exists() {
        return Err(format!(
            "a PostgreSQL still runs from {} (another `fastbreak up`?); stop it first, or remove {} if none runs",
            data_dir.display(),
            pid.display()
        ));
    }
    std::fs::remove_dir_all(data_dir).map_err(|e| format!("cannot delete {}: {e}", data_dir.display()))
}

/// A secret kept in `path`: read when the file exists, else generated (64 random hex
/// characters) and written, readable by its owner only.
pub fn secret_file(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, secret.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(secret)
}

/// The operator credential `up` gives the gateway (and `status` reads), kept in the data folder.
pub fn operator_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("operator-token")
}
