//! Trading with its real peers (user, risk, marketplace, strategy, notification) over real
//! gRPC, against one fresh PostgreSQL database per test; crashes are fail points that panic the
//! call at a step, leaving whatever was done to the worker.

mod arbitrage;
mod conservation;
mod crashes;
mod leaderboards;
mod portfolio;
mod purchases;

use std::collections::BTreeSet;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use fastbreak_integration_tests::trading_mesh::TradingMesh;
use fastbreak_trading::store as trading;
use futures::FutureExt;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    key: String,
}

async fn count(mesh: &TradingMesh, sql: &'static str) -> i64 {
    mesh.pool
        .read(move |conn| async move { Ok(diesel::sql_query(sql).get_result::<Count>(conn).await?.count) }.boxed())
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

async fn keys(mesh: &TradingMesh, sql: &'static str) -> BTreeSet<String> {
    mesh.pool
        .read(move |conn| {
            async move { Ok(diesel::sql_query(sql).load::<Key>(conn).await?.into_iter().map(|k| k.key).collect()) }
                .boxed()
        })
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// Waits until nothing is left in flight: no pending trade, no placed hold, no undelivered
/// trading message (the workers finish what calls left behind).
async fn settle_down(mesh: &TradingMesh, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let pending = count(mesh, "SELECT count(*) AS count FROM trades WHERE state = 'pending'").await;
        let placed = count(mesh, "SELECT count(*) AS count FROM holds WHERE state = 'placed'").await;
        let outbox =
            count(mesh, "SELECT count(*) AS count FROM outbox WHERE topic LIKE 'trading.%' AND delivered_at IS NULL")
                .await;
        if pending == 0 && placed == 0 && outbox == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still in flight after {within:?}: {pending} pending trades, {placed} placed holds, {outbox} messages"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The invariants, read from the database: money is conserved, every held moment is owned by
/// its holder's wallet, every committed hold has one settled purchase and the reverse, no hold
/// is left placed, and no listing was taken by a user without a settled trade.
async fn audit(mesh: &TradingMesh) {
    let total = mesh.pool.read(|conn| async move { trading::total_balance(conn).await }.boxed()).await.unwrap();
    assert_eq!(total, 0, "the sum of every ledger account is zero");
    let deposits = count(
        mesh,
        "SELECT COALESCE(-sum(balance_cents), 0)::bigint AS count FROM ledger_accounts WHERE kind = 'funding'",
    )
    .await;
    let held = count(
        mesh,
        "SELECT COALESCE(sum(balance_cents), 0)::bigint AS count FROM ledger_accounts WHERE kind <> 'funding'",
    )
    .await;
    assert_eq!(held, deposits, "users, sellers and fees together hold exactly what was deposited");
    assert_eq!(
        count(
            mesh,
            "SELECT count(*) AS count FROM holdings h JOIN moments m ON m.id = h.moment_id
               JOIN wallets w ON w.user_id = h.user_id WHERE m.owner_address <> w.flow_address",
        )
        .await,
        0,
        "every held moment is owned by its holder's wallet"
    );
    assert_eq!(
        count(
            mesh,
            "SELECT count(*) AS count FROM moments m JOIN wallets w ON w.flow_address = m.owner_address
               LEFT JOIN holdings h ON h.moment_id = m.id AND h.user_id = w.user_id WHERE h.moment_id IS NULL",
        )
        .await,
        0,
        "every moment a user's wallet owns is one of their holdings"
    );
    let committed =
        keys(mesh, "SELECT user_id::text || '/' || idempotency_key AS key FROM holds WHERE state = 'committed'").await;
    let settled = keys(
        mesh,
        "SELECT user_id::text || '/' || idempotency_key AS key FROM trades WHERE kind = 'purchase' AND state = 'settled'",
    )
    .await;
    assert_eq!(committed, settled, "committed holds and settled purchases match one for one");
    assert_eq!(count(mesh, "SELECT count(*) AS count FROM holds WHERE state = 'placed'").await, 0, "no hold leaks");
    assert_eq!(
        count(
            mesh,
            "SELECT count(*) AS count FROM sales s JOIN wallets w ON w.flow_address = s.buyer_address
               LEFT JOIN trades t ON t.listing_id = s.listing_id AND t.kind = 'purchase' AND t.state = 'settled'
              WHERE t.id IS NULL",
        )
        .await,
        0,
        "no listing is taken by a user without a settled trade"
    );
    assert_eq!(
        count(
            mesh,
            "SELECT count(*) AS count FROM trades t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
              WHERE t.kind = 'purchase' AND t.state = 'failed' AND e.id IS NOT NULL",
        )
        .await,
        0,
        "a failed purchase leaves no trace in the ledger"
    );
}
