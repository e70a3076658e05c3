//! `fastbreak up`: a private PostgreSQL in the data folder, migrated, and every target
//! SERVING; stopped cleanly, and reused on the next run.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, TARGETS, fastbreak};

/// Runs `fastbreak up` until it reports every target SERVING, checks a DB-backed target, then
/// stops it with SIGTERM; returns what it printed.
fn up_once(data_dir: &std::path::Path) -> Vec<String> {
    let mut command = Command::new(BIN);
    command
        .arg("up")
        .env_remove("DATABASE_URL")
        .env("FASTBREAK_DATA_DIR", data_dir)
        .env("FASTBREAK_METRICS_ADDR", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for name in TARGETS {
        command.env(format!("FASTBREAK_{}_LISTEN_ADDR", name.to_uppercase()), "127.0.0.1:0");
    }
    let mut child = command.spawn().unwrap();
    let mut lines = common::Lines::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines.seen.iter().any(|line: &String| line.starts_with("gateway: ")) {
        if lines.next_by(deadline, String::new).is_none() {
            panic!("up stopped early: {:#?}", lines.seen);
        }
    }
    let printed = lines.seen;
    let risk = printed.iter().find_map(|l| l.strip_prefix("risk listening on ")).expect("risk's address").to_owned();
    let health = fastbreak(&["health", "--addr", &risk]);
    assert!(health.status.success(), "risk serves from the private database");

    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "up did not exit within 30 s of SIGTERM: {printed:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{printed:#?}");
    printed
}

#[test]
fn up_runs_everything_on_a_private_database_that_persists_between_runs() {
    let data = tempfile::tempdir().unwrap();

    let first = up_once(data.path());
    assert!(first.iter().any(|l| l.starts_with("database: private PostgreSQL on 127.0.0.1:")), "{first:#?}");
    let applied = format!("database: applied {} migration(s)", fastbreak_db::migrate::known_versions().len());
    assert!(first.contains(&applied), "{first:#?}");
    assert!(first.iter().any(|l| l == "FastBreak is up: every target is SERVING"), "{first:#?}");
    let pg_data = data.path().join("postgres/data");
    assert!(pg_data.join("PG_VERSION").is_file(), "the cluster lives in the data folder");
    assert!(!pg_data.join("postmaster.pid").exists(), "the private PostgreSQL stopped with up");

    let second = up_once(data.path());
    assert!(second.iter().any(|l| l == "database: schema is current"), "the data was kept: {second:#?}");
}
