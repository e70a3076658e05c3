//! pgbench, PostgreSQL's own TPC-B-like benchmark, as the anchor that figures bound by the
//! database are read against: run on a fresh database of its own on a given cluster (the one a
//! mesh uses, with its settings), which is dropped afterwards.

use std::path::PathBuf;
use std::process::Command;

/// How pgbench is run.
#[derive(Debug, Clone, Copy)]
pub struct TpcBRun {
    /// Scale factor of `pgbench -i` (branches; 100,000 accounts each). Below the number of
    /// clients, the clients queue on the branches' rows rather than load the server.
    pub scale: u32,
    /// Concurrent clients (`-c`).
    pub clients: u32,
    /// pgbench's threads (`-j`).
    pub threads: u32,
    /// Seconds of load (`-T`).
    pub seconds: u32,
}

impl Default for TpcBRun {
    fn default() -> Self {
        Self { scale: 8, clients: 8, threads: 2, seconds: 10 }
    }
}

/// What a TPC-B run measured, and under which server settings.
#[derive(Debug, Clone)]
pub struct TpcB {
    /// How it was run.
    pub run: TpcBRun,
    /// Transactions per second (without the initial connection time).
    pub tps: f64,
    /// Mean latency of a transaction, in milliseconds.
    pub latency_ms: f64,
    /// The server's version and the settings that decide what a commit costs, as
    /// `name=value` pairs.
    pub settings: String,
}

impl TpcB {
    /// One line: the run, the settings and the figures.
    pub fn summary(&self) -> String {
        let TpcBRun { scale, clients, threads, seconds } = self.run;
        format!(
            "{:.0} tps, latency average {:.2} ms (pgbench TPC-B, scale {scale}, {clients} clients, {threads} threads, {seconds} s; {})",
            self.tps, self.latency_ms, self.settings
        )
    }
}

/// The settings printed beside the figures.
const SETTINGS: &str = "SELECT split_part(version(), ' ', 2) || ' ' || string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) \
     FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_connections')";

/// Runs TPC-B on a fresh database of the cluster that `admin_url` (a URL of the `postgres`
/// database, say, as a superuser) leads to: `pgbench -i`, then `pgbench -c -j -T`. Blocks for
/// the run's length and more.
pub fn tpcb(admin_url: &str, run: TpcBRun) -> Result<TpcB, String> {
    let name = format!("pgbench_{}", uuid::Uuid::new_v4().simple());
    psql(admin_url, &format!("CREATE DATABASE {name}"))?;
    let measured = measure(admin_url, &with_database(admin_url, &name), run);
    let dropped = psql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    let measured = measured?;
    dropped?;
    Ok(measured)
}

fn measure(admin: &str, url: &str, run: TpcBRun) -> Result<TpcB, String> {
    let settings = psql(admin, SETTINGS)?.trim().to_owned();
    output(client("pgbench", &["-i", "-q", "-s", &run.scale.to_string()], url), "pgbench -i")?;
    let (clients, threads, seconds) = (run.clients.to_string(), run.threads.to_string(), run.seconds.to_string());
    let text = output(client("pgbench", &["-c", &clients, "-j", &threads, "-T", &seconds], url), "pgbench")?;
    // "tps = 2345.678901 (without initial connection time)", "latency average = 3.410 ms".
    let number = |prefix: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("no {prefix:?} line in pgbench's output:\n{text}"))
    };
    Ok(TpcB { run, tps: number("tps = ")?, latency_ms: number("latency average = ")?, settings })
}

/// Runs one SQL command with psql; its unaligned output.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    output(client("psql", &["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], url), "psql")
}

/// A PostgreSQL client program with `args`, then `url` without its password (which goes in
/// `PGPASSWORD`, not on a command line every local user can read).
fn client(program: &str, args: &[&str], url: &str) -> Command {
    let mut command = Command::new(client_program(program));
    let (url, password) = without_password(url);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.args(args).arg(url);
    command
}

/// A client program from the folder of the server binaries the private clusters use (so that
/// client and server are one version), else from PATH.
fn client_program(name: &str) -> PathBuf {
    fastbreak_db::cluster::PostgresBinaries::find()
        .ok()
        .and_then(|binaries| binaries.initdb.parent().map(|dir| dir.join(name)))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `url` with its database (the last part of its path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (url, query) = url.split_once('?').map_or((url, None), |(url, query)| (url, Some(query)));
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// `postgres://user:password@host/db` as `postgres://user@host/db` and the password.
fn without_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_owned(), None) };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return (url.to_owned(), None) };
    match credentials.split_once(':') {
        Some((user, password)) => (format!("{scheme}://{user}@{host}"), Some(password.to_owned())),
        None => (url.to_owned(), None),
    }
}

fn output(mut command: Command, what: &str) -> Result<String, String> {
    let output = command.output().map_err(|error| format!("{what} cannot run: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{what} failed: {}{}", String::from_utf8_lossy(&output.stderr).trim(), stdout.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::{with_database, without_password};

    #[test]
    fn the_database_is_the_last_part_of_the_path() {
        assert_eq!(with_database("postgres://u:p@h:1/postgres", "other"), "postgres://u:p@h:1/other");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "b"), "postgres://u@h/b?sslmode=disable");
    }

    #[test]
    fn the_password_leaves_the_url() {
        assert_eq!(
            without_password("postgres://postgres:secret@127.0.0.1:5432/db"),
            ("postgres://postgres@127.0.0.1:5432/db".to_owned(), Some("secret".to_owned()))
        );
        assert_eq!(
            without_password("postgres://postgres@127.0.0.1/db"),
            ("postgres://postgres@127.0.0.1/db".to_owned(), None)
        );
    }
}
