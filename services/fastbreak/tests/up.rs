//! `fastbreak up`: a private PostgreSQL in the data folder, migrated, and every target
//! SERVING; stopped cleanly, and reused on the next run.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, TARGETS, fastbreak};

/// `fastbreak up` on `data_dir`, every target on a free port, metrics off, its output piped.
fn up_command(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("up")
        .env_remove("DATABASE_URL")
        .env("FASTBREAK_DATA_DIR", data_dir)
        .env("FASTBREAK_METRICS_ADDR", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in TARGETS {
        command.env(format!("FASTBREAK_{}_LISTEN_ADDR", name.to_uppercase()), "127.0.0.1:0");
    }
    command
}

/// Runs `fastbreak up` until it reports every target SERVING, checks a DB-backed target, then
/// stops it with SIGTERM; returns what it printed.
fn up_once(data_dir: &std::path::Path, args: &[&str]) -> Vec<String> {
    let mut command = up_command(data_dir);
    command.args(args).stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut lines = common::Lines::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    // Up to the last "try this" command (or a line saying the demo could not be seeded).
    let done = |seen: &[String]| {
        seen.iter().filter(|l| l.trim_start().starts_with("grpcurl ")).count() == 3
            || seen.iter().any(|l| l.starts_with("demo: "))
    };
    while !done(&lines.seen) {
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

    let first = up_once(data.path(), &[]);
    assert!(first.iter().any(|l| l.starts_with("database: private PostgreSQL on 127.0.0.1:")), "{first:#?}");
    let applied = format!("database: applied {} migration(s)", fastbreak_db::migrate::known_versions().len());
    assert!(first.contains(&applied), "{first:#?}");
    assert!(first.iter().any(|l| l == "FastBreak is up: every target is SERVING"), "{first:#?}");
    let pg_data = data.path().join("postgres/data");
    assert!(pg_data.join("PG_VERSION").is_file(), "the cluster lives in the data folder");
    assert!(!pg_data.join("postmaster.pid").exists(), "the private PostgreSQL stopped with up");

    let token = |printed: &[String]| printed.iter().find_map(|l| l.strip_prefix("token: ").map(str::to_owned));
    assert!(token(&first).is_some(), "the demo user's token: {first:#?}");

    // Again on the same folder: the data is kept, and the demo user (seeded before) gets a new
    // token.
    let second = up_once(data.path(), &[]);
    assert!(second.iter().any(|l| l == "database: schema is current"), "the data was kept: {second:#?}");
    assert!(token(&second).is_some_and(|t| Some(&t) != token(&first).as_ref()), "{second:#?}");

    // --fresh starts over on an empty folder.
    let third = up_once(data.path(), &["--fresh"]);
    assert!(third.iter().any(|l| l.starts_with("data: starting over in ")), "{third:#?}");
    assert!(third.contains(&applied), "an empty database again: {third:#?}");
    assert!(token(&third).is_some(), "{third:#?}");
}

/// Runs `fastbreak up` with `env` (every target on a free port unless `env` says otherwise)
/// until it exits (60 s at most): (exit code, standard output, standard error).
fn up_failing(env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let data = tempfile::tempdir().unwrap();
    let mut command = up_command(data.path());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx.recv_timeout(Duration::from_secs(60)).expect("up exits within 60 s").unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn up_without_postgresql_stops_with_one_message_naming_it() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let (code, _, stderr) = up_failing(&[("FASTBREAK_POSTGRES_BIN", dir)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
    assert!(stderr.contains("PostgreSQL server binaries (initdb, pg_ctl) were not found in") && stderr.contains(dir));
}

#[tokio::test(flavor = "multi_thread")]
async fn up_with_a_port_in_use_or_a_failing_migration_stops_with_one_message_naming_it() {
    // A port already in use: the gateway's.
    let database = fastbreak_db::testing::TestDatabase::create().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let url = database.url().to_owned();
    let (code, _, stderr) = tokio::task::spawn_blocking({
        let (url, addr) = (url.clone(), addr.clone());
        move || up_failing(&[("DATABASE_URL", &url), ("FASTBREAK_GATEWAY_LISTEN_ADDR", &addr)])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("fastbreak up:")).collect();
    assert_eq!(errors.len(), 1, "one message: {stderr}");
    assert!(errors[0].contains("gateway") && errors[0].contains(&addr), "{stderr}");

    // A migration that fails: a table in the way of the first one.
    let empty = fastbreak_db::testing::TestDatabase::create_empty().await;
    {
        use diesel_async::{AsyncConnection, RunQueryDsl};
        let mut conn = diesel_async::AsyncPgConnection::establish(empty.url()).await.unwrap();
        diesel::sql_query("CREATE TABLE users (something_else integer)").execute(&mut conn).await.unwrap();
    }
    let url = empty.url().to_owned();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || up_failing(&[("DATABASE_URL", &url)])).await.unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
    assert!(stderr.starts_with("fastbreak up: cannot migrate the database:"), "{stderr}");
    assert!(stderr.contains("users"), "the cause is named: {stderr}");
}

/// A fresh `up`, as a newcomer runs it (the default tick of 5 s per simulated hour): the
/// market has open listings at once and the demo user's agents decide within a minute, and a
/// healthy start prints no warning (peers polled before they are up are expected).
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_up_shows_a_live_market_at_once_and_a_healthy_start_prints_no_warning() {
    use fastbreak_proto::agents::v1::ListDecisionsRequest;
    use fastbreak_proto::agents::v1::agent_service_client::AgentServiceClient;
    use fastbreak_proto::marketplace::v1::ListListingsRequest;
    use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;

    let data = tempfile::tempdir().unwrap();
    let mut command = up_command(data.path());
    command.env_remove("FASTBREAK_SIMULATOR_TICK").env_remove("RUST_LOG");
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let mut errors = common::Lines::new(child.stderr.take().unwrap());
    let mut lines = common::Lines::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut is_up = None;
    while lines.seen.iter().filter(|l| l.trim_start().starts_with("grpcurl ")).count() < 3 {
        let line =
            lines.next_by(deadline, String::new).unwrap_or_else(|| panic!("up stopped early: {:#?}", lines.seen));
        if line == "FastBreak is up: every target is SERVING" {
            is_up = Some(Instant::now());
        }
    }
    let is_up = is_up.expect("up says it is up");
    let find = |prefix: &str| lines.seen.iter().find_map(|l| l.strip_prefix(prefix).map(str::to_owned));
    let gateway = find("gateway: ").expect("the gateway's address");
    let token = find("token: ").expect("the demo user's token");

    let poll = Duration::from_millis(250);
    let market = MarketplaceServiceClient::new(common::channel(&gateway).await);
    fastbreak_mesh::testing::poll_until("open listings", Duration::from_secs(30), poll, || {
        let mut market = market.clone();
        let token = token.clone();
        async move {
            let page = market.list_listings(common::authed(ListListingsRequest::default(), &token)).await.ok()?;
            (!page.into_inner().listings.is_empty()).then_some(())
        }
    })
    .await;
    let listings_after = is_up.elapsed();
    let agents = AgentServiceClient::new(common::channel(&gateway).await);
    fastbreak_mesh::testing::poll_until("the demo user's first decisions", Duration::from_secs(120), poll, || {
        let mut agents = agents.clone();
        let token = token.clone();
        async move {
            let request = ListDecisionsRequest { page_size: 5, ..Default::default() };
            let page = agents.list_decisions(common::authed(request, &token)).await.ok()?;
            (!page.into_inner().decisions.is_empty()).then_some(())
        }
    })
    .await;
    let decisions_after = is_up.elapsed();
    println!(
        "a fresh up: SERVING with the demo seeded {:.1} s after start; open listings {:.1} s after \"is up\", the demo user's first decisions {:.1} s after",
        (is_up - started).as_secs_f64(),
        listings_after.as_secs_f64(),
        decisions_after.as_secs_f64()
    );

    // Everything it logged while starting and running, before it is asked to stop.
    let logged = errors.written();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let _ = child.wait();
    let warnings: Vec<&String> = logged.iter().filter(|l| l.contains(" WARN ") || l.contains("\"WARN\"")).collect();
    assert!(warnings.is_empty(), "a healthy start prints no warning: {warnings:#?}");
}
