//! The transaction helper under real contention.

use fastbreak_db::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn transactions_that_conflict_are_retried_until_both_succeed() {
    use fastbreak_trading::store::{self as trading, AccountKind, LedgerTransactionKind};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let db = TestDatabase::create().await;
    let database = db.database();
    let user_id = {
        let mut conn = database.conn().await.unwrap();
        let id = uuid::Uuid::new_v4();
        fastbreak_user::store::create_user(
            &mut conn,
            &fastbreak_user::store::NewUser { id, display_name: "c", email: "c@example.com", password_hash: "h" },
        )
        .await
        .unwrap();
        trading::user_account(&mut conn, id).await.unwrap();
        id
    };
    let attempts = Arc::new(AtomicU32::new(0));
    // Each deposit reads the balance, waits, then writes: two at once conflict under
    // SERIALIZABLE, and the helper runs the loser again.
    let deposit = |amount: i64| {
        let database = database.clone();
        let attempts = attempts.clone();
        async move {
            database
                .transaction(move |conn| {
                    let attempts = attempts.clone();
                    Box::pin(async move {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        let account = trading::user_account(conn, user_id).await?;
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        let funding = trading::system_account(conn, AccountKind::Funding).await?;
                        trading::post_transaction(
                            conn,
                            uuid::Uuid::new_v4(),
                            LedgerTransactionKind::Deposit,
                            "deposit",
                            &[(funding.id, -amount), (account.id, amount)],
                        )
                        .await
                    })
                })
                .await
        }
    };
    let (a, b) = tokio::join!(deposit(100), deposit(250));
    a.unwrap();
    b.unwrap();
    assert!(AtomicU32::load(&attempts, Ordering::SeqCst) >= 3, "the conflicting transaction was retried");
    let mut conn = database.conn().await.unwrap();
    assert_eq!(trading::user_account(&mut conn, user_id).await.unwrap().balance_cents, 350);
    assert_eq!(trading::total_balance(&mut conn).await.unwrap(), 0);
}
