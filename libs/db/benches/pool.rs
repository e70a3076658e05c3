//! Figures for the data crate: how long a fresh test database takes, and the pool's throughput
//! on a simple read and a simple write. Prints them; asserts nothing (machines are noisy).
//!
//! Run with `cargo bench -p fastbreak-db --bench pool`.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fastbreak_db::schema::users;
use fastbreak_db::testing::TestDatabase;
use fastbreak_db::{Database, PoolOptions};
use uuid::Uuid;

const CONCURRENCY: usize = 8;
const PER_TASK: usize = 500;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // The first database also starts the shared cluster if it is not running.
        let started = Instant::now();
        let first = TestDatabase::create().await;
        println!("first test database (cluster start if needed): {:>8.1} ms", ms(started.elapsed()));
        let mut samples = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let db = TestDatabase::create().await;
            samples.push(started.elapsed());
            drop(db);
        }
        samples.sort();
        println!(
            "fresh migrated test database (20 runs): median {:.1} ms, min {:.1} ms, max {:.1} ms",
            ms(samples[10]), ms(samples[0]), ms(samples[19])
        );

        let database = Database::connect_lazy(first.url(), &PoolOptions { max_size: CONCURRENCY, ..PoolOptions::default() }).unwrap();
        let user = Uuid::new_v4();
        insert_user(&mut database.conn().await.unwrap(), user, "bench@example.com").await.unwrap();

        let reads = run(&database, move |database| async move {
            let mut conn = database.conn().await.unwrap();
            let _: String = users::table.find(user).select(users::email).first(&mut conn).await.unwrap();
        })
        .await;
        println!("pool read  (find user by id, {CONCURRENCY} tasks x {PER_TASK}): {reads:>8.0} ops/s");

        let writes = run(&database, move |database| async move {
            let id = Uuid::new_v4();
            let email = format!("{id}@example.com");
            database
                .transaction(|conn| {
                    let email = email.clone();
                    Box::pin(async move {
                        insert_user(conn, id, &email).await?;
                        Ok(())
                    })
                })
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        })
        .await;
        println!("pool write (insert a user in a serializable transaction, {CONCURRENCY} tasks x {PER_TASK}): {writes:>8.0} ops/s");

        // Every task updates the same row: serializable transactions conflict, the helper retries
        // them, and some give up after ten attempts. Hot rows are for advisory locks instead.
        static GAVE_UP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let hot = run(&database, move |database| async move {
            let outcome = database
                .transaction(|conn| Box::pin(async move {
                    diesel::update(users::table.find(user)).set(users::leaderboard_opt_out.eq(true)).execute(conn).await?;
                    Ok(())
                }))
                .await;
            if let Err(fastbreak_db::DatabaseError::SerializationConflict { .. }) = outcome {
                GAVE_UP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                outcome.unwrap();
            }
        })
        .await;
        let gave_up = std::sync::atomic::AtomicU64::load(&GAVE_UP, std::sync::atomic::Ordering::Relaxed);
        println!(
            "pool write (serializable update of ONE shared row, {CONCURRENCY} tasks x {PER_TASK}): {hot:>8.0} attempts/s, {gave_up} of {} gave up after 10 tries",
            CONCURRENCY * PER_TASK
        );

    });
}

/// A user row, written the way the user service's store writes one.
async fn insert_user(
    conn: &mut fastbreak_db::PgConnection,
    id: Uuid,
    email: &str,
) -> Result<(), fastbreak_db::DatabaseError> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::display_name.eq("bench"),
            users::email.eq(email),
            users::password_hash.eq("h"),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

async fn run<F, Fut>(database: &Database, op: F) -> f64
where
    F: Fn(Database) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let database = database.clone();
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    op(database.clone()).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (CONCURRENCY * PER_TASK) as f64 / started.elapsed().as_secs_f64()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
