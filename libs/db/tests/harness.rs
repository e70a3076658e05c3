//! The private cluster, the per-test databases and the migrations, against a real PostgreSQL.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fastbreak_db::migrate::{known_versions, run_pending_migrations, schema_status};
use fastbreak_db::schema;
use fastbreak_db::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_test_database_is_fully_migrated() {
    let db = TestDatabase::create().await;
    let status = schema_status(db.url()).await.unwrap();
    assert!(status.is_current(), "pending: {:?}", status.pending);
    assert_eq!(status.applied, known_versions());
    assert_eq!(
        known_versions().len(),
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap().count()
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

macro_rules! check_tables {
    ($conn:expr, $($table:ident),+ $(,)?) => {{
        let mut checked = 0;
        $(
            // Every column diesel knows exists (the select fails otherwise)...
            schema::$table::table
                .select(schema::$table::all_columns)
                .limit(0)
                .execute($conn)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", stringify!($table)));
            // ...and diesel knows every column the database has.
            let sql = diesel::debug_query::<diesel::pg::Pg, _>(
                &schema::$table::table.select(schema::$table::all_columns),
            )
            .to_string();
            let known = sql.split(" FROM ").next().unwrap().matches("\".\"").count() as i64;
            let actual: Count = diesel::sql_query(format!(
                "SELECT count(*) AS count FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{}'",
                stringify!($table)
            ))
            .get_result($conn)
            .await
            .unwrap();
            assert_eq!(known, actual.count, "{}: schema.rs and the database disagree", stringify!($table));
            checked += 1;
        )+
        checked
    }};
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_matches_the_database() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    let checked = fastbreak_db::for_all_tables!(check_tables, conn);
    let tables: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name <> '__diesel_schema_migrations'",
    )
    .get_result(conn)
    .await
    .unwrap();
    assert_eq!(checked, tables.count, "every table of the database is in schema.rs");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrating_twice_in_a_row_applies_nothing_the_second_time() {
    let db = TestDatabase::create().await;
    let empty = db.cluster_url("postgres");
    let name = format!("twice_{}", uuid::Uuid::new_v4().simple());
    create_empty(&empty, &name).await;
    let url = db.cluster_url(&name);
    assert_eq!(run_pending_migrations(&url).await.unwrap(), known_versions());
    assert!(run_pending_migrations(&url).await.unwrap().is_empty());
    assert!(schema_status(&url).await.unwrap().is_current());
    drop_db(&empty, &name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrating_twice_at_once_ends_with_one_correct_schema() {
    let db = TestDatabase::create().await;
    let empty = db.cluster_url("postgres");
    let name = format!("race_{}", uuid::Uuid::new_v4().simple());
    create_empty(&empty, &name).await;
    let url = db.cluster_url(&name);
    let (a, b) = tokio::join!(run_pending_migrations(&url), run_pending_migrations(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    // One run applied everything, the other found nothing left to do.
    let mut applied = [a.len(), b.len()];
    applied.sort();
    assert_eq!(applied, [0, known_versions().len()]);
    assert!(schema_status(&url).await.unwrap().is_current());
    drop_db(&empty, &name).await;
}

async fn create_empty(admin_url: &str, name: &str) {
    use diesel_async::AsyncConnection;
    let mut admin = diesel_async::AsyncPgConnection::establish(admin_url).await.unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
}

async fn drop_db(admin_url: &str, name: &str) {
    use diesel_async::AsyncConnection;
    let mut admin = diesel_async::AsyncPgConnection::establish(admin_url).await.unwrap();
    diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
}

#[tokio::test]
async fn conflicts_are_told_by_their_sqlstate_not_by_the_words_of_the_message() {
    let db = TestDatabase::create().await;
    let database = db.database();

    // A deadlock (40P01) in words other than English is still a deadlock: tried again.
    let (attempts, outcome) = attempts_when_the_first_runs(
        &database,
        "DO $$ BEGIN RAISE EXCEPTION 'Verklemmung entdeckt' USING ERRCODE = '40P01'; END $$",
    )
    .await;
    outcome.expect("the deadlock is tried again and the second attempt succeeds");
    assert_eq!(attempts, 2);

    // A serialization failure likewise.
    let (attempts, outcome) = attempts_when_the_first_runs(
        &database,
        "DO $$ BEGIN RAISE EXCEPTION 'échec de sérialisation' USING ERRCODE = '40001'; END $$",
    )
    .await;
    outcome.expect("tried again");
    assert_eq!(attempts, 2);

    // The English words with another code are not a deadlock: returned at once, not retried.
    let (attempts, outcome) = attempts_when_the_first_runs(
        &database,
        "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'P0001'; END $$",
    )
    .await;
    let error = outcome.expect_err("raised");
    assert_eq!(attempts, 1, "not tried again: {error}");
    assert!(!error.is_transient(), "{error:?}");
    assert!(
        error.to_string().contains("P0001: deadlock detected"),
        "the code and the server's words are kept: {error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_transactions_that_deadlock_are_both_done() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let db = TestDatabase::create().await;
    let database = db.database();
    database
        .read(|conn| {
            Box::pin(async move {
                diesel::sql_query("CREATE TABLE deadlock_pair (id int PRIMARY KEY, n int NOT NULL)")
                    .execute(conn)
                    .await?;
                diesel::sql_query("INSERT INTO deadlock_pair VALUES (1, 0), (2, 0)").execute(conn).await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    // Each locks one row, waits until the other has locked the other row, then asks for it:
    // PostgreSQL breaks the deadlock by failing one of them (40P01), which is run again.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let attempts = Arc::new(AtomicU32::new(0));
    let update = |first: i32, second: i32| {
        let (database, barrier, attempts) = (database.clone(), barrier.clone(), attempts.clone());
        async move {
            database
                .read_committed(move |conn| {
                    let (barrier, attempts) = (barrier.clone(), attempts.clone());
                    Box::pin(async move {
                        let attempt = attempts.fetch_add(1, Ordering::SeqCst);
                        let bump = |id: i32| format!("UPDATE deadlock_pair SET n = n + 1 WHERE id = {id}");
                        diesel::sql_query(bump(first)).execute(conn).await?;
                        if attempt < 2 {
                            barrier.wait().await;
                        }
                        diesel::sql_query(bump(second)).execute(conn).await?;
                        Ok(())
                    })
                })
                .await
        }
    };
    let (a, b) = tokio::join!(update(1, 2), update(2, 1));
    a.expect("the first is done");
    b.expect("the second is done");
    assert_eq!(AtomicU32::load(&attempts, Ordering::SeqCst), 3, "the one PostgreSQL failed was run once more");
    let total = database
        .read(|conn| {
            Box::pin(async move {
                #[derive(diesel::QueryableByName)]
                struct Total {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    total: i64,
                }
                let row: Total =
                    diesel::sql_query("SELECT sum(n)::bigint AS total FROM deadlock_pair").get_result(conn).await?;
                Ok(row.total)
            })
        })
        .await
        .unwrap();
    assert_eq!(total, 4, "each transaction bumped both rows once");
}

#[tokio::test]
async fn a_statement_that_runs_too_long_is_cancelled_by_the_transaction_timeout() {
    let db = TestDatabase::create().await;
    let options = fastbreak_db::PoolOptions {
        max_size: 2,
        statement_timeout: std::time::Duration::from_millis(200),
        ..fastbreak_db::PoolOptions::default()
    };
    let database = fastbreak_db::Database::connect_lazy(db.url(), &options).unwrap();
    let started = std::time::Instant::now();
    let outcome = database
        .transaction(|conn| {
            Box::pin(async move {
                diesel::sql_query("SELECT pg_sleep(5)").execute(conn).await?;
                Ok(())
            })
        })
        .await;
    let error = outcome.expect_err("the statement is cancelled");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "cancelled at the timeout: {:?}", started.elapsed());
    assert!(!error.is_transient(), "{error}");
    // Told by its SQLSTATE (57014, query_canceled), with the server's own words kept.
    let fastbreak_db::DatabaseError::Cancelled { code, message } = &error else {
        panic!("not told as cancelled: {error:?}")
    };
    assert_eq!((code.as_str(), message.as_str()), ("57014", "canceling statement due to statement timeout"));

    // Reads outside a transaction too.
    let started = std::time::Instant::now();
    let read = database
        .read(|conn| {
            Box::pin(async move {
                diesel::sql_query("SELECT pg_sleep(5)").execute(conn).await?;
                Ok(())
            })
        })
        .await;
    assert!(
        matches!(&read, Err(fastbreak_db::DatabaseError::Cancelled { code, .. }) if code == "57014"),
        "the read is cancelled: {read:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "cancelled at the timeout: {:?}", started.elapsed());
}

#[tokio::test]
async fn an_exhausted_pool_is_told_apart_from_an_unreachable_server() {
    let db = TestDatabase::create().await;
    let options = fastbreak_db::PoolOptions {
        max_size: 1,
        timeout: std::time::Duration::from_millis(200),
        ..fastbreak_db::PoolOptions::default()
    };
    let database = fastbreak_db::Database::connect_lazy(db.url(), &options).unwrap();
    let held = database.conn().await.unwrap();
    let Err(exhausted) = database.conn().await else { panic!("the only connection is held") };
    assert!(matches!(exhausted, fastbreak_db::DatabaseError::PoolExhausted { size: 1 }), "{exhausted:?}");
    assert!(!exhausted.is_transient());
    drop(held);

    let nowhere = fastbreak_db::Database::connect_lazy("postgres://u:p@127.0.0.1:1/none", &options).unwrap();
    let Err(unreachable) = nowhere.conn().await else { panic!("nothing listens on port 1") };
    assert!(matches!(unreachable, fastbreak_db::DatabaseError::Unreachable { .. }), "{unreachable:?}");
    assert!(unreachable.is_transient());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_cluster_wants_its_password_and_a_second_handle_neither_stops_it_nor_hides_differences() {
    use diesel_async::AsyncConnection;
    use fastbreak_db::cluster::{ClusterOptions, PrivateCluster};

    let dir = std::env::temp_dir().join(format!("fastbreak-cluster-{}", uuid::Uuid::new_v4().simple()));
    let options = ClusterOptions { durable: false, max_connections: 20, port: None };
    let first = tokio::task::spawn_blocking({
        let (dir, options) = (dir.clone(), options.clone());
        move || PrivateCluster::start(&dir, &options).unwrap()
    })
    .await
    .unwrap();
    assert!(first.stops_on_drop() && first.differences().is_empty());

    let url = first.url("postgres");
    diesel_async::AsyncPgConnection::establish(&url).await.expect("the generated password lets the owner in");
    let no_password = format!("postgres://postgres@127.0.0.1:{}/postgres", first.port());
    let refused = diesel_async::AsyncPgConnection::establish(&no_password).await;
    assert!(refused.is_err(), "a session without the password is refused");
    let wrong = format!("postgres://postgres:guess@127.0.0.1:{}/postgres", first.port());
    assert!(diesel_async::AsyncPgConnection::establish(&wrong).await.is_err());
    assert!(
        !format!("{first:?}").contains(url.split(':').nth(2).unwrap().split('@').next().unwrap()),
        "Debug hides the password"
    );

    // Another handle on the same folder (a second `up`) reuses the server, says what differs,
    // and leaves it running when it goes.
    let second = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || PrivateCluster::start(&dir, &ClusterOptions { durable: true, max_connections: 50, port: None }).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(second.port(), first.port());
    assert!(!second.stops_on_drop());
    let differences = second.differences().join("; ");
    assert!(differences.contains("durable=true") && differences.contains("max_connections=50"), "{differences}");
    drop(second);
    diesel_async::AsyncPgConnection::establish(&url).await.expect("still running after the second handle went");

    tokio::task::spawn_blocking(move || drop(first)).await.unwrap();
    assert!(diesel_async::AsyncPgConnection::establish(&url).await.is_err(), "the first handle stopped it");
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `sql` on the transaction's first attempt only and counts the attempts.
async fn attempts_when_the_first_runs(
    database: &fastbreak_db::Database,
    sql: &'static str,
) -> (u32, Result<(), fastbreak_db::DatabaseError>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let attempts = Arc::new(AtomicU32::new(0));
    let outcome = database
        .read_committed(|conn| {
            let attempts = attempts.clone();
            Box::pin(async move {
                if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                    diesel::sql_query(sql).execute(conn).await?;
                }
                Ok(())
            })
        })
        .await;
    (AtomicU32::load(&attempts, Ordering::SeqCst), outcome)
}

#[tokio::test]
async fn text_the_database_cannot_store_is_the_callers_invalid_argument() {
    use futures::FutureExt as _;
    let db = TestDatabase::create().await;
    let error = db
        .database()
        .read(|conn| {
            async move {
                diesel::sql_query("SELECT $1::text AS t")
                    .bind::<diesel::sql_types::Text, _>("a\0b")
                    .execute(conn)
                    .await?;
                Ok(())
            }
            .boxed()
        })
        .await
        .expect_err("PostgreSQL text holds no NUL");
    assert!(matches!(error, fastbreak_db::DatabaseError::UnstorableValue { .. }), "{error:?}");
    let status = fastbreak_db::status::from_database(&error);
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("UTF-8 without NUL"), "{}", status.message());
}

/// The prepared statements of the connection whose SQL starts with `start`.
async fn prepared(conn: &mut diesel_async::AsyncPgConnection, start: &str) -> i64 {
    let found: Count =
        diesel::sql_query("SELECT count(*) AS count FROM pg_prepared_statements WHERE starts_with(statement, $1)")
            .bind::<diesel::sql_types::Text, _>(start)
            .get_result(conn)
            .await
            .unwrap();
    found.count
}

/// Diesel prepares an `UPDATE` and a `sql_query` again on every call (a round trip more, and
/// the server parses and plans it again); marked `reused`, each is prepared once on its
/// connection and run again from there, with its own values each time.
#[tokio::test(flavor = "multi_thread")]
async fn a_reused_statement_is_prepared_once_per_connection_and_runs_with_each_calls_values() {
    use fastbreak_db::Reuse as _;
    use schema::outbox;

    let db = TestDatabase::create().await;
    let mut conn = db.database().conn().await.unwrap();
    let ids: Vec<i64> = diesel::insert_into(outbox::table)
        .values(vec![
            (outbox::topic.eq("t"), outbox::message_key.eq("a"), outbox::payload.eq(serde_json::json!({}))),
            (outbox::topic.eq("t"), outbox::message_key.eq("b"), outbox::payload.eq(serde_json::json!({}))),
        ])
        .returning(outbox::id)
        .get_results(&mut conn)
        .await
        .unwrap();
    for (attempts, id) in [(3, ids[0]), (5, ids[1]), (7, ids[0])] {
        diesel::update(outbox::table.find(id)).set(outbox::attempts.eq(attempts)).execute(&mut conn).await.unwrap();
    }
    assert_eq!(prepared(&mut conn, "UPDATE \"outbox\"").await, 0, "an unmarked update is not kept prepared");
    for (attempts, id) in [(11, ids[0]), (13, ids[1]), (17, ids[0])] {
        diesel::update(outbox::table.find(id))
            .set(outbox::attempts.eq(attempts))
            .reused()
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(prepared(&mut conn, "UPDATE \"outbox\"").await, 1, "one prepared statement for the three calls");
    let attempts: Vec<i32> = outbox::table.order(outbox::id).select(outbox::attempts).load(&mut conn).await.unwrap();
    assert_eq!(attempts, vec![17, 13], "each call ran with its own values");
    // A query of text alone, with a result: the same.
    for n in [1i64, 2, 3] {
        let found: Count = diesel::sql_query("SELECT $1::bigint AS count")
            .bind::<diesel::sql_types::BigInt, _>(n)
            .reused()
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(found.count, n);
    }
    assert_eq!(prepared(&mut conn, "SELECT $1::bigint").await, 1);
}
