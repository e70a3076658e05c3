//! The test harness: one private PostgreSQL cluster shared by the test processes of a run (and
//! kept between runs while the migrations do not change), and a fresh, migrated database per
//! test, created from a migrated template so that it takes milliseconds.
//!
//! The cluster lives in `<tmp>/fastbreak-test-pg/<migrations fingerprint>`. Each process that
//! uses it holds a shared lock on `users.lock`; the last one to leave stops the server. A
//! process that dies leaves the server running for the next one to reuse, never a second one.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::cluster::{ClusterOptions, PrivateCluster};
use crate::migrate::{MIGRATIONS_FINGERPRINT, run_pending_migrations};
use crate::pool::{Database, PoolOptions};

const TEMPLATE: &str = "fastbreak_template";
const CREATE_LOCK: i64 = 0x6662_5f74_6573_7473;

static LEASE: Mutex<Weak<Lease>> = Mutex::new(Weak::new());

/// This process's use of the shared test cluster.
#[derive(Debug)]
struct Lease {
    cluster: PrivateCluster,
    dir: PathBuf,
    users: Option<File>,
}

fn open_lock(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()))
}

impl Lease {
    fn acquire() -> Result<Self, String> {
        let dir = std::env::temp_dir().join("fastbreak-test-pg").join(MIGRATIONS_FINGERPRINT);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let start = open_lock(&dir.join("start.lock"));
        start.lock().map_err(|e| format!("start.lock: {e}"))?;
        let users = open_lock(&dir.join("users.lock"));
        users.lock_shared().map_err(|e| format!("users.lock: {e}"))?;
        let options = ClusterOptions { durable: false, max_connections: 300, port: None };
        let cluster = PrivateCluster::start(&dir.join("cluster"), &options).map_err(|e| e.to_string())?.keep_running();
        let ready = dir.join("template.ready");
        if !ready.is_file() {
            build_template(&cluster)?;
            std::fs::write(&ready, MIGRATIONS_FINGERPRINT).map_err(|e| format!("{}: {e}", ready.display()))?;
        }
        drop(start);
        Ok(Self { cluster, dir, users: Some(users) })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let start = open_lock(&self.dir.join("start.lock"));
        if start.lock().is_err() {
            return;
        }
        drop(self.users.take());
        let users = open_lock(&self.dir.join("users.lock"));
        if users.try_lock().is_ok() {
            // Nobody else uses the cluster: stop it; its data and template stay for next time.
            if let Err(error) = self.cluster.stop() {
                eprintln!("cannot stop the test PostgreSQL: {error}");
            }
        }
    }
}

/// Creates the migrated template database, on a runtime of its own (migrations need a
/// multi-threaded one, whatever runtime the test uses).
fn build_template(cluster: &PrivateCluster) -> Result<(), String> {
    let admin_url = cluster.url("postgres");
    let template_url = cluster.url(TEMPLATE);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut admin = AsyncPgConnection::establish(&admin_url).await.map_err(|e| e.to_string())?;
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
            diesel::sql_query(format!("CREATE DATABASE {TEMPLATE}"))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
            run_pending_migrations(&template_url).await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        })
    })
    .join()
    .map_err(|_| "building the template database panicked".to_owned())?
}

fn shared_lease() -> Result<Arc<Lease>, String> {
    let mut slot = LEASE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(lease) = slot.upgrade() {
        return Ok(lease);
    }
    let lease = Arc::new(Lease::acquire()?);
    *slot = Arc::downgrade(&lease);
    Ok(lease)
}

/// A fresh database, migrated, for one test; dropped when this is dropped.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    lease: Option<Arc<Lease>>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("url", &crate::pool::redact_url(&self.url))
            .finish()
    }
}

impl TestDatabase {
    /// Creates the database, starting the shared test cluster if needed. Panics with the reason
    /// when PostgreSQL cannot be had: a test that needs it never skips.
    pub async fn create() -> Self {
        Self::create_from(Some(TEMPLATE)).await
    }

    /// Creates an empty database: no schema at all (for tests of migrations themselves).
    pub async fn create_empty() -> Self {
        Self::create_from(None).await
    }

    async fn create_from(template: Option<&str>) -> Self {
        let lease = tokio::task::spawn_blocking(|| std::thread::spawn(shared_lease).join())
            .await
            .expect("the lease task runs")
            .expect("acquiring the lease does not panic")
            .unwrap_or_else(|error| panic!("cannot start the test PostgreSQL: {error}"));
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = lease.cluster.url("postgres");
        let mut admin = AsyncPgConnection::establish(&admin_url).await.unwrap_or_else(|error| {
            panic!("cannot connect to the test PostgreSQL at {}: {error}", crate::pool::redact_url(&admin_url))
        });
        // Copies of one template are made one at a time: PostgreSQL refuses a copy while another
        // session is connected to the template.
        diesel::sql_query(format!("SELECT pg_advisory_lock({CREATE_LOCK})")).execute(&mut admin).await.unwrap();
        let template = template.unwrap_or("template0");
        let created =
            diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}")).execute(&mut admin).await;
        diesel::sql_query(format!("SELECT pg_advisory_unlock({CREATE_LOCK})")).execute(&mut admin).await.unwrap();
        created.unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
        let url = lease.cluster.url(&name);
        Self { name, url, admin_url, lease: Some(lease) }
    }

    /// The database's connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of another database on the same cluster (for tests that create their own).
    pub fn cluster_url(&self, database: &str) -> String {
        self.lease.as_ref().expect("held until drop").cluster.url(database)
    }

    /// Creates a user (every user-owned row needs one) and returns its id.
    pub async fn create_user(&self) -> uuid::Uuid {
        use crate::schema::users;
        use diesel::ExpressionMethods as _;
        let id = uuid::Uuid::new_v4();
        let email = format!("{}@example.com", id.simple());
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test database {}: {error}", self.name));
        diesel::insert_into(users::table)
            .values((
                users::id.eq(id),
                users::display_name.eq("Test user"),
                users::email.eq(&email),
                users::password_hash.eq("not a hash"),
            ))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|error| panic!("cannot create a test user: {error}"));
        id
    }

    /// A pool on the database, small enough for many tests at once.
    pub fn database(&self) -> Database {
        Database::connect_lazy(&self.url, &PoolOptions { max_size: 4, ..PoolOptions::default() })
            .expect("a valid test URL")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&admin_url).await.ok()?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
        drop(self.lease.take());
    }
}
