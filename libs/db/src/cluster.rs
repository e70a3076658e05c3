//! A private PostgreSQL cluster run from the local PostgreSQL binaries, in a folder of its own:
//! what `fastbreak up` and the tests use when no `DATABASE_URL` is given.
//!
//! When the process runs as root, the server runs as the `postgres` system user, since
//! PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Why the private cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The PostgreSQL server binaries are not installed.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH nor in \
         /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: apt-get install postgresql; \
         macOS: brew install postgresql@15) or set DATABASE_URL to a server you run"
    )]
    BinariesNotFound,
    /// The folder named by `FASTBREAK_POSTGRES_BIN` lacks the server binaries.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found in {0} (FASTBREAK_POSTGRES_BIN); point it at the folder that holds them, unset it, or set DATABASE_URL to a server you run"
    )]
    BinariesNotFoundIn(PathBuf),
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error(
        "running as root, and PostgreSQL refuses to run as root, but there is no 'postgres' system user to run it as (create one, or run as another user)"
    )]
    NoPostgresUser,
    /// A command failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command that failed.
        command: String,
        /// Its output, or why it could not run.
        detail: String,
    },
    /// A file operation on the cluster folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io { path: path.to_owned(), source }
}

/// The PostgreSQL programs the cluster needs.
#[derive(Debug, Clone)]
pub struct PostgresBinaries {
    /// `initdb`.
    pub initdb: PathBuf,
    /// `pg_ctl`.
    pub pg_ctl: PathBuf,
}

impl PostgresBinaries {
    /// Finds `initdb` and `pg_ctl` in `FASTBREAK_POSTGRES_BIN` when it is set (there only), else
    /// on PATH, then in the newest `/usr/lib/postgresql/<v>/bin`.
    pub fn find() -> Result<Self, ClusterError> {
        if let Some(dir) = std::env::var_os("FASTBREAK_POSTGRES_BIN").filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            return Self::find_in(vec![dir.clone()], Path::new("/nonexistent"))
                .map_err(|_| ClusterError::BinariesNotFoundIn(dir));
        }
        let path: Vec<PathBuf> =
            std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect()).unwrap_or_default();
        Self::find_in(path, Path::new("/usr/lib/postgresql"))
    }

    /// Finds `initdb` and `pg_ctl` in `path`, then in the newest `<versions>/<v>/bin`.
    pub fn find_in(path: Vec<PathBuf>, versions: &Path) -> Result<Self, ClusterError> {
        let mut dirs = path;
        if let Ok(entries) = std::fs::read_dir(versions) {
            let mut versions: Vec<(u32, PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.0));
            dirs.extend(versions.into_iter().map(|(_, dir)| dir));
        }
        dirs.into_iter()
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
            .map(|dir| Self { initdb: dir.join("initdb"), pg_ctl: dir.join("pg_ctl") })
            .ok_or(ClusterError::BinariesNotFound)
    }
}

/// The system user the server runs as, when this process is root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn postgres_user() -> Result<Option<RunAs>, ClusterError> {
    if !running_as_root() {
        return Ok(None);
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => Ok(Some(RunAs { uid, gid })),
        _ => Err(ClusterError::NoPostgresUser),
    }
}

/// Settings of a private cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Keep data safe across crashes (fsync on). Off for throwaway test clusters.
    pub durable: bool,
    /// Most client connections.
    pub max_connections: u32,
    /// The port to listen on; a free one when `None`.
    pub port: Option<u16>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self { durable: true, max_connections: 100, port: None }
    }
}

/// A private PostgreSQL cluster in a folder: `<dir>/data` holds the data, `<dir>/postgres.log`
/// the server log, `<dir>/password` the superuser's generated password (readable by its owner
/// only), `<dir>/options` the options the running server was started with. It listens on
/// 127.0.0.1 only, on a free port, with password (SCRAM) authentication: another local user
/// cannot get a session.
pub struct PrivateCluster {
    dir: PathBuf,
    port: u16,
    binaries: PostgresBinaries,
    run_as: Option<RunAs>,
    stop_on_drop: bool,
    password: Option<String>,
    differences: Vec<String>,
}

impl std::fmt::Debug for PrivateCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateCluster")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("stop_on_drop", &self.stop_on_drop)
            .finish()
    }
}

/// The options a server was started with, as written to `<dir>/options`.
fn describe(options: &ClusterOptions) -> Vec<String> {
    vec![
        format!("durable={}", options.durable),
        format!("max_connections={}", options.max_connections),
        format!("port={}", options.port.map_or("any".to_owned(), |p| p.to_string())),
    ]
}

impl PrivateCluster {
    /// Creates the cluster in `dir` if it does not exist yet, and starts it unless it is already
    /// running (then it is reused at its port). It is stopped when dropped unless
    /// [`PrivateCluster::keep_running`] is called.
    pub fn start(dir: &Path, options: &ClusterOptions) -> Result<Self, ClusterError> {
        let binaries = PostgresBinaries::find()?;
        let run_as = postgres_user()?;
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let dir = dir.canonicalize().map_err(io_error(dir))?;
        if let Some(user) = run_as {
            std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).map_err(io_error(&dir))?;
        }
        let mut cluster =
            Self { dir, port: 0, binaries, run_as, stop_on_drop: true, password: None, differences: Vec::new() };
        if !cluster.data_dir().join("PG_VERSION").is_file() {
            cluster.initdb(options)?;
        }
        cluster.password = cluster.read_password()?;
        if cluster.password.is_none() {
            tracing::warn!(
                dir = %cluster.dir.display(),
                "this cluster was made with trust authentication by an older FastBreak; remove the folder to recreate it with a password"
            );
        }
        match cluster.running_port() {
            Some(port) => {
                // Another handle (another `up` on the same folder) started it: it is theirs to
                // stop, and it runs with their options.
                cluster.port = port;
                cluster.stop_on_drop = false;
                let running = std::fs::read_to_string(cluster.dir.join("options")).unwrap_or_default();
                let running: Vec<&str> = running.lines().collect();
                cluster.differences = describe(options)
                    .into_iter()
                    .filter(|wanted| !running.contains(&wanted.as_str()))
                    .filter(|wanted| !(wanted == "port=any" && options.port.is_none()))
                    .map(|wanted| format!("asked for {wanted}, but the running server has {}", running.join(" ")))
                    .collect();
                for difference in &cluster.differences {
                    tracing::warn!(dir = %cluster.dir.display(), "reusing the running PostgreSQL: {difference}");
                }
            }
            None => cluster.launch(options)?,
        }
        Ok(cluster)
    }

    /// What the options asked for that the running server (started by another handle) does
    /// not have; empty when this handle started it, or when they agree.
    pub fn differences(&self) -> &[String] {
        &self.differences
    }

    /// True when the cluster wants a password (it was made by this version of FastBreak).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// True when this handle stops the server when dropped (it started it).
    pub fn stops_on_drop(&self) -> bool {
        self.stop_on_drop
    }

    fn read_password(&self) -> Result<Option<String>, ClusterError> {
        let path = self.dir.join("password");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ClusterError::Io { path, source: error }),
        }
    }

    /// Leaves the server running when this handle is dropped.
    pub fn keep_running(mut self) -> Self {
        self.stop_on_drop = false;
        self
    }

    /// The folder of the cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` on this cluster (with the password: a secret).
    pub fn url(&self, database: &str) -> String {
        match &self.password {
            Some(password) => format!("postgres://postgres:{password}@127.0.0.1:{}/{database}", self.port),
            None => format!("postgres://postgres@127.0.0.1:{}/{database}", self.port),
        }
    }

    fn command(&self, program: &Path) -> Command {
        match self.run_as {
            Some(_) => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn run(&self, mut command: Command, what: &str) -> Result<Output, ClusterError> {
        let output = command
            .output()
            .map_err(|error| ClusterError::Command { command: what.to_owned(), detail: error.to_string() })?;
        if output.status.success() {
            Ok(output)
        } else {
            let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if detail.is_empty() {
                detail = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            }
            Err(ClusterError::Command { command: what.to_owned(), detail })
        }
    }

    fn initdb(&self, options: &ClusterOptions) -> Result<(), ClusterError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        // A generated superuser password, readable by the cluster's owner only from the start.
        let password = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let path = self.dir.join("password");
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(password.as_bytes()))
            .map_err(io_error(&path))?;
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).map_err(io_error(&path))?;
        }
        let mut command = self.command(&self.binaries.initdb);
        command.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        command.arg(format!("--pwfile={}", path.display()));
        if !options.durable {
            command.arg("--no-sync");
        }
        let created = self.run(command, "initdb").map(|_| ());
        if created.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        created
    }

    /// The port of the server running on this data directory, if one is.
    fn running_port(&self) -> Option<u16> {
        let mut status = self.command(&self.binaries.pg_ctl);
        status.arg("status").arg("-D").arg(self.data_dir());
        let running = status.output().map(|o| o.status.success()).unwrap_or(false);
        if !running {
            return None;
        }
        // The fourth line of postmaster.pid is the port.
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn launch(&mut self, options: &ClusterOptions) -> Result<(), ClusterError> {
        let log = self.dir.join("postgres.log");
        let mut last_error = None;
        for _ in 0..3 {
            let port = match options.port {
                Some(port) => port,
                None => free_port().map_err(io_error(&self.dir))?,
            };
            let mut server_options = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections={}",
                options.max_connections
            );
            if !options.durable {
                // A client that stalls in the middle of signing in (a test whose runtime is
                // blocked while it drops its database) holds a backend only this long, not the
                // default minute that a DROP DATABASE would wait out.
                server_options.push_str(
                    " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c authentication_timeout=5s",
                );
            }
            let mut command = self.command(&self.binaries.pg_ctl);
            command.arg("start").arg("-D").arg(self.data_dir()).arg("-l").arg(&log).args([
                "-w",
                "-t",
                "60",
                "-o",
                &server_options,
            ]);
            match self.run(command, "pg_ctl start") {
                Ok(_) => {
                    self.port = port;
                    let path = self.dir.join("options");
                    let mut started = describe(options);
                    started.push(format!("port={port}"));
                    std::fs::write(&path, started.join("\n")).map_err(io_error(&path))?;
                    return Ok(());
                }
                Err(ClusterError::Command { command, detail }) => {
                    let tail = std::fs::read_to_string(&log)
                        .map(|text| {
                            text.lines()
                                .rev()
                                .take(5)
                                .collect::<Vec<_>>()
                                .into_iter()
                                .rev()
                                .collect::<Vec<_>>()
                                .join(" | ")
                        })
                        .unwrap_or_default();
                    last_error = Some(ClusterError::Command { command, detail: format!("{detail}; log: {tail}") });
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(other) => return Err(other),
            }
        }
        Err(last_error.expect("three attempts were made"))
    }

    /// Stops the server (fast shutdown: sessions are ended, data is kept).
    pub fn stop(&self) -> Result<(), ClusterError> {
        let mut command = self.command(&self.binaries.pg_ctl);
        command.arg("stop").arg("-D").arg(self.data_dir()).args(["-m", "fast", "-w", "-t", "60"]);
        self.run(command, "pg_ctl stop").map(|_| ())
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.stop_on_drop
            && let Err(error) = self.stop()
        {
            tracing::warn!(%error, dir = %self.dir.display(), "cannot stop the private PostgreSQL");
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_binaries_the_error_says_how_to_install_them_or_to_set_database_url() {
        let empty = std::env::temp_dir().join("fastbreak-no-postgres-here");
        let error = PostgresBinaries::find_in(vec![empty.clone()], &empty).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("apt-get install postgresql"), "{text}");
        assert!(text.contains("DATABASE_URL"), "{text}");
    }

    #[test]
    fn the_newest_versioned_directory_is_used() {
        let root = tempfile_dir();
        for version in ["13", "15"] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
            std::fs::write(bin.join("pg_ctl"), "").unwrap();
        }
        let found = PostgresBinaries::find_in(Vec::new(), &root).unwrap();
        assert_eq!(found.initdb, root.join("15/bin/initdb"));
        std::fs::remove_dir_all(root).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fastbreak-pg-bins-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
