//! The real binary against a real PostgreSQL: `fastbreak migrate`, and targets that wait for
//! their database.

mod common;

use std::process::{Command, Stdio};

use common::{BIN, Served};

use fastbreak_db::cluster::{ClusterOptions, PrivateCluster};
use fastbreak_db::testing::TestDatabase;

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
    let count = fastbreak_db::migrate::known_versions().len();
    assert_eq!(text.matches("pending ").count(), count, "{text}");
    assert!(text.contains(&format!("{count} migration(s) pending")), "{text}");

    let (code, text) = migrate(db.url(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("applied 2026-11-24-000001_users"), "{text}");
    assert!(text.contains(&format!("applied {count} migration(s)")), "{text}");
    assert!(!text.contains("postgres@"), "credentials are never printed: {text}");

    let (code, text) = migrate(db.url(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("nothing to apply"), "{text}");

    let (code, text) = migrate(db.url(), &["--status"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.matches("applied ").count(), count, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_migrate_processes_at_once_end_with_one_correct_schema() {
    let db = TestDatabase::create_empty().await;
    let spawn =
        || Command::new(BIN).arg("migrate").env("DATABASE_URL", db.url()).stdout(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let outputs = [String::from_utf8_lossy(&a.stdout).into_owned(), String::from_utf8_lossy(&b.stdout).into_owned()];
    let applied = format!("applied {} migration(s)", fastbreak_db::migrate::known_versions().len());
    assert_eq!(outputs.iter().filter(|o| o.contains(&applied)).count(), 1, "{outputs:?}");
    assert_eq!(outputs.iter().filter(|o| o.contains("nothing to apply")).count(), 1, "{outputs:?}");
    assert_eq!(migrate(db.url(), &["--status"]).0, 0);
}

#[test]
fn migrate_refuses_a_malformed_url_without_printing_it() {
    let (code, text) = migrate("mysql://root:hunter2@db/x", &[]);
    assert_eq!(code, 2);
    assert!(text.contains("DATABASE_URL") && !text.contains("hunter2"), "{text}");
}

#[test]
fn a_target_waits_for_its_database_and_serves_once_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // The cluster is made first (its password is generated then), and stopped at once.
    let dir = tempfile::tempdir().unwrap();
    let options = ClusterOptions { durable: false, port: Some(port), ..ClusterOptions::default() };
    let made = PrivateCluster::start(dir.path(), &options).unwrap().keep_running();
    let url = made.url("postgres");
    made.stop().unwrap();
    let served = Served::start("strategy", &[("DATABASE_URL", url.as_str())]);

    // Nothing listens at the database's address: strategy is NOT_SERVING and says why.
    served.wait_until("the database is reported unreachable", |s| s.log().contains("is unreachable"));
    let (ok, text) = served.health("strategy");
    assert!(!ok && text.contains("NOT_SERVING"), "{text}");
    assert!(served.log().contains(&format!("127.0.0.1:{port}/postgres")), "names the database: {}", served.log());
    assert!(!served.log().contains(url.split('@').next().unwrap()), "never shows the password: {}", served.log());

    // The server comes up, but unmigrated: still NOT_SERVING, saying to migrate.
    let cluster = PrivateCluster::start(dir.path(), &options).unwrap();
    served.wait_until("the schema is reported behind", |s| s.log().contains("run `fastbreak migrate`"));
    assert!(!served.health("strategy").0);

    // Migrated: SERVING without a restart.
    assert_eq!(migrate(&url, &[]).0, 0);
    served.wait_until("strategy is SERVING", |s| s.health("strategy").0);

    // Lost again: NOT_SERVING again.
    cluster.stop().unwrap();
    served.wait_until("strategy is NOT_SERVING after the database stopped", |s| !s.health("strategy").0);
}

/// A TCP relay to PostgreSQL that can be frozen: bytes stop flowing, connections stay open,
/// as with a database that hangs.
async fn freezable_relay(
    to: std::net::SocketAddr,
) -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let frozen = std::sync::Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let relay_frozen = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(to).await else { continue };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            for (mut from, mut into) in [(client_read, server_write), (server_read, client_write)] {
                let frozen = relay_frozen.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        while frozen.load(Ordering::SeqCst) {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        if into.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    });
    (addr, frozen)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_hangs_turns_its_targets_not_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let db = TestDatabase::create().await;
    let (host_port, rest) = db.url().rsplit_once('@').unwrap().1.split_once('/').unwrap();
    let (relay, frozen) = freezable_relay(host_port.parse().unwrap()).await;
    let url = db.url().replace(&format!("@{host_port}/{rest}"), &format!("@{relay}/{rest}"));
    let database = fastbreak_db::Database::connect_lazy(&url, &fastbreak_db::PoolOptions::default()).unwrap();

    let bound = fastbreak_mesh::MeshServer::new("watched").bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = bound.local_addr();
    tokio::spawn(fastbreak::database::watch(database, vec![bound.readiness()], std::future::pending()));
    tokio::spawn(bound.serve(std::future::pending()));

    let status_within = |wanted: ServingStatus, patience: std::time::Duration| async move {
        let deadline = std::time::Instant::now() + patience;
        let channel =
            tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut health = HealthClient::new(channel);
        loop {
            let status = health.check(HealthCheckRequest::default()).await.unwrap().into_inner().status();
            if status == wanted {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "still {status:?} after {patience:?}, wanted {wanted:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    status_within(ServingStatus::Serving, std::time::Duration::from_secs(10)).await;
    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    // The next check (every 2 s) gets no answer within its 3 s timeout.
    status_within(ServingStatus::NotServing, std::time::Duration::from_secs(10)).await;
    frozen.store(false, std::sync::atomic::Ordering::SeqCst);
    status_within(ServingStatus::Serving, std::time::Duration::from_secs(20)).await;
}

/// Callers holding every connection of the calls' pool, and background work holding every one
/// of its own, leave the health check its own connection: the database is reported reachable,
/// and a caller still waiting for a connection is told the service is busy, not that the
/// database is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_starved_pool_is_the_callers_resource_exhausted_not_a_lost_database() {
    let db = TestDatabase::create().await;
    let options = fastbreak_db::PoolOptions {
        max_size: 2,
        background_size: 1,
        timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let database = fastbreak_db::Database::connect_lazy(db.url(), &options).unwrap();
    let _calls = [database.conn().await.unwrap(), database.conn().await.unwrap()];
    let _background = database.background().conn().await.unwrap();
    let mut conn = None;
    let started = std::time::Instant::now();
    fastbreak::database::check(&database, &mut conn).await.expect("the database answers the health check");
    println!("health check with every pooled connection taken: {:?}", started.elapsed());
    assert!(conn.is_some(), "the check keeps its connection for the next one");
    fastbreak::database::check(&database, &mut conn).await.expect("and again, on the same connection");
    let waiting = database.read(|_| Box::pin(async { Ok(()) })).await.expect_err("no connection is free");
    let status = fastbreak_db::status::from_database(&waiting);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
}
