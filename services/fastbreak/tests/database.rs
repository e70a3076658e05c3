//! The real binary against a real PostgreSQL: `fastbreak migrate`, and targets that wait for
//! their database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastbreak_db::cluster::{ClusterOptions, PrivateCluster};
use fastbreak_db::testing::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_fastbreak");

fn migrate(url: &str, args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN).arg("migrate").args(args).env("DATABASE_URL", url).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_applies_everything_once_and_reports_status() {
    let db = TestDatabase::create_empty().await;
    let (code, text) = migrate(db.url(), &["--status"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(text.matches("pending ").count(), 10, "{text}");
    assert!(text.contains("10 migration(s) pending"), "{text}");

    let (code, text) = migrate(db.url(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("applied 2026-11-24-000001_users"), "{text}");
    assert!(text.contains("applied 10 migration(s)"), "{text}");
    assert!(!text.contains("postgres@"), "credentials are never printed: {text}");

    let (code, text) = migrate(db.url(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("nothing to apply"), "{text}");

    let (code, text) = migrate(db.url(), &["--status"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.matches("applied ").count(), 10, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_migrate_processes_at_once_end_with_one_correct_schema() {
    let db = TestDatabase::create_empty().await;
    let spawn = || Command::new(BIN).arg("migrate").env("DATABASE_URL", db.url()).stdout(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let outputs = [String::from_utf8_lossy(&a.stdout).into_owned(), String::from_utf8_lossy(&b.stdout).into_owned()];
    assert_eq!(outputs.iter().filter(|o| o.contains("applied 10 migration(s)")).count(), 1, "{outputs:?}");
    assert_eq!(outputs.iter().filter(|o| o.contains("nothing to apply")).count(), 1, "{outputs:?}");
    assert_eq!(migrate(db.url(), &["--status"]).0, 0);
}

#[test]
fn migrate_refuses_a_malformed_url_without_printing_it() {
    let (code, text) = migrate("mysql://root:hunter2@db/x", &[]);
    assert_eq!(code, 2);
    assert!(text.contains("DATABASE_URL") && !text.contains("hunter2"), "{text}");
}

struct Served {
    child: Child,
    stderr: Arc<Mutex<String>>,
    addrs: Vec<(String, String)>,
}

impl Served {
    fn start(targets: &str, database_url: &str) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--target", targets])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in targets.split(',') {
            command.env(format!("FASTBREAK_{}_LISTEN_ADDR", name.to_uppercase()), "127.0.0.1:0");
        }
        let mut child = command.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addrs = Vec::new();
        while addrs.len() < targets.split(',').count() {
            let line = lines.next().unwrap().unwrap();
            let (name, addr) = line.split_once(" listening on ").unwrap();
            addrs.push((name.to_owned(), addr.to_owned()));
        }
        Self { child, stderr, addrs }
    }

    fn health(&self, target: &str) -> (bool, String) {
        let addr = &self.addrs.iter().find(|(name, _)| name == target).unwrap().1;
        let output = Command::new(BIN).args(["health", "--addr", addr]).output().unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn wait_until(&self, what: &str, mut condition: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !condition(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}; log:\n{}", self.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_target_waits_for_its_database_and_serves_once_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let served = Served::start("risk,gateway", &url);

    // Nothing listens at the database's address: risk is NOT_SERVING and says why.
    served.wait_until("the database is reported unreachable", |s| s.log().contains("is unreachable"));
    let (ok, text) = served.health("risk");
    assert!(!ok && text.contains("NOT_SERVING"), "{text}");
    assert!(served.log().contains(&format!("127.0.0.1:{port}/postgres")), "names the database: {}", served.log());
    assert!(served.health("gateway").0, "the gateway needs no database");

    // The server comes up, but unmigrated: still NOT_SERVING, saying to migrate.
    let dir = tempfile::tempdir().unwrap();
    let cluster = PrivateCluster::start(dir.path(), &ClusterOptions { durable: false, port: Some(port), ..ClusterOptions::default() }).unwrap();
    served.wait_until("the schema is reported behind", |s| s.log().contains("run `fastbreak migrate`"));
    assert!(!served.health("risk").0);

    // Migrated: SERVING without a restart.
    assert_eq!(migrate(&url, &[]).0, 0);
    served.wait_until("risk is SERVING", |s| s.health("risk").0);

    // Lost again: NOT_SERVING again.
    cluster.stop().unwrap();
    served.wait_until("risk is NOT_SERVING after the database stopped", |s| !s.health("risk").0);
}
