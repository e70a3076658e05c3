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

type Signals = (tokio::sync::oneshot::Sender<()>, tokio::sync::oneshot::Receiver<()>);

/// A point a transaction stops at until the test lets it go: the transaction's side (taken by
/// its first attempt), the signal that it got there, and the test's sender that lets it go.
fn stop_point()
-> (std::sync::Mutex<Option<Signals>>, tokio::sync::oneshot::Receiver<()>, tokio::sync::oneshot::Sender<()>) {
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    (std::sync::Mutex::new(Some((reached_tx, go_rx))), reached_rx, go_tx)
}

/// The transaction at its stop point: says so, and waits until let go, or `most` at most.
async fn stop_at(signals: Option<Signals>, most: std::time::Duration) {
    let (reached, go) = signals.expect("the transaction's first attempt");
    reached.send(()).unwrap();
    let _ = tokio::time::timeout(most, go).await;
}

/// A purchase's admission locks the user's account and reads the purchases under way in one
/// round trip; one that waited for the lock must see the purchase its holder committed, or two
/// purchases could each reserve the same balance.
#[tokio::test(flavor = "multi_thread")]
async fn an_admission_that_waits_for_the_account_sees_the_purchase_its_holder_committed() {
    use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
    use diesel_async::RunQueryDsl;
    use fastbreak_trading::store::{self as trading, AccountKind, LedgerTransactionKind};
    use futures::FutureExt;
    use std::time::Duration;

    use crate::common;

    let db = TestDatabase::create().await;
    let database = db.database();
    let (user, moments) = {
        let mut conn = database.conn().await.unwrap();
        let user = common::user(&mut conn, "admitted").await;
        let account = trading::user_account(&mut conn, user.id).await.unwrap();
        let funding = trading::system_account(&mut conn, AccountKind::Funding).await.unwrap();
        trading::post_transaction(
            &mut conn,
            uuid::Uuid::new_v4(),
            LedgerTransactionKind::Deposit,
            "deposit",
            &[(funding.id, -1_000), (account.id, 1_000)],
        )
        .await
        .unwrap();
        common::player(&mut conn, "admitted-player").await;
        let mut moments = Vec::new();
        for serial in 1..=2 {
            let moment = common::moment(&mut conn, "admitted-player", serial, &common::address(9)).await;
            let listing = common::listing(&mut conn, &moment, 700).await;
            moments.push((moment.id, listing.id));
        }
        (user.id, moments)
    };
    let (first, second) = (moments[0], moments[1]);
    // The holder: locks the account, records a pending purchase of 700, and commits only once
    // told to.
    let (point, locked_rx, commit_tx) = stop_point();
    let holder = {
        let database = database.clone();
        tokio::spawn(async move {
            database
                .read_committed(move |conn| {
                    let taken = point.lock().unwrap().take();
                    async move {
                        let facts = trading::lock_for_admission(conn, user, "first", first.1).await?;
                        assert_eq!((facts.balance_cents, facts.pending_cents, facts.existing), (1_000, 0, None));
                        diesel::sql_query(
                            "INSERT INTO trades (id, user_id, kind, state, origin, moment_id, listing_id, \
                                                 price_cents, idempotency_key) \
                             VALUES (gen_random_uuid(), $1, 'purchase', 'pending', 'manual', $2, $3, $4, $5)",
                        )
                        .bind::<SqlUuid, _>(user)
                        .bind::<SqlUuid, _>(first.0)
                        .bind::<SqlUuid, _>(first.1)
                        .bind::<BigInt, _>(700)
                        .bind::<Text, _>("first")
                        .execute(conn)
                        .await?;
                        stop_at(taken, Duration::from_secs(30)).await;
                        Ok(())
                    }
                    .boxed()
                })
                .await
        })
    };
    locked_rx.await.unwrap();
    let waiter = {
        let database = database.clone();
        tokio::spawn(async move {
            database
                .read_committed(move |conn| {
                    async move { trading::lock_for_admission(conn, user, "second", second.1).await }.boxed()
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the second admission waits for the account's lock");
    commit_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let facts =
        tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("the lock is freed").unwrap().unwrap();
    assert_eq!(
        (facts.balance_cents, facts.pending_cents, facts.existing, facts.live_state),
        (1_000, 700, None, None),
        "the waiting admission sees the purchase of 700 committed while it waited"
    );
    // The same key and listing again: the admission names the purchase under way.
    let again = database
        .read_committed(move |conn| {
            async move { trading::lock_for_admission(conn, user, "first", first.1).await }.boxed()
        })
        .await
        .unwrap();
    assert!(again.existing.is_some(), "the key's purchase is found");
    assert_eq!(again.live_state, Some(trading::TradeState::Pending));
}

/// A user's first purchase opens the user's cash account under the lock.
#[tokio::test(flavor = "multi_thread")]
async fn an_admission_opens_the_account_of_a_user_who_has_none() {
    use fastbreak_trading::store as trading;
    use futures::FutureExt;

    let db = TestDatabase::create().await;
    let database = db.database();
    let user = {
        let mut conn = database.conn().await.unwrap();
        crate::common::user(&mut conn, "first-purchase").await.id
    };
    let listing = uuid::Uuid::new_v4();
    let facts = database
        .read_committed(move |conn| async move { trading::lock_for_admission(conn, user, "k", listing).await }.boxed())
        .await
        .unwrap();
    assert_eq!((facts.balance_cents, facts.pending_cents, facts.existing, facts.live_state), (0, 0, None, None));
    let mut conn = database.conn().await.unwrap();
    assert_eq!(trading::user_account(&mut conn, user).await.unwrap().balance_cents, 0);
}

/// A ledger entry's insert checks that its account exists (a key-share lock on the account)
/// and then moves the account's balance. An admission arriving between the two must neither
/// wait for the entry's transaction nor leave it waiting on the admission in turn: the two
/// once deadlocked (PostgreSQL broke the cycle after a second, and every purchase of the
/// account waited that second).
#[tokio::test(flavor = "multi_thread")]
async fn an_admission_between_a_ledger_entrys_key_check_and_its_balance_move_neither_waits_nor_deadlocks() {
    use diesel::sql_types::Uuid as SqlUuid;
    use diesel_async::RunQueryDsl;
    use fastbreak_trading::store::{self as trading, AccountKind, LedgerTransactionKind};
    use futures::FutureExt;
    use std::time::{Duration, Instant};

    let db = TestDatabase::create().await;
    let database = db.database();
    let (user, account, funding) = {
        let mut conn = database.conn().await.unwrap();
        let user = crate::common::user(&mut conn, "settling").await.id;
        let account = trading::user_account(&mut conn, user).await.unwrap().id;
        let funding = trading::system_account(&mut conn, AccountKind::Funding).await.unwrap().id;
        (user, account, funding)
    };
    let (point, checked_rx, admitted_tx) = stop_point();
    // The entry's transaction: its key check, then (once the admission is done, or after 3 s)
    // the entries that move the balance.
    let entries = {
        let database = database.clone();
        tokio::spawn(async move {
            database
                .read_committed(move |conn| {
                    let taken = point.lock().unwrap().take();
                    async move {
                        diesel::sql_query("SELECT 1 FROM ledger_accounts WHERE id = $1 FOR KEY SHARE")
                            .bind::<SqlUuid, _>(account)
                            .execute(conn)
                            .await?;
                        stop_at(taken, Duration::from_secs(3)).await;
                        trading::post_transaction(
                            conn,
                            uuid::Uuid::new_v4(),
                            LedgerTransactionKind::Deposit,
                            "deposit",
                            &[(funding, -500), (account, 500)],
                        )
                        .await
                    }
                    .boxed()
                })
                .await
        })
    };
    checked_rx.await.unwrap();
    let started = Instant::now();
    let listing = uuid::Uuid::new_v4();
    let facts = database
        .read_committed(move |conn| async move { trading::lock_for_admission(conn, user, "k", listing).await }.boxed())
        .await
        .unwrap();
    let waited = started.elapsed();
    admitted_tx.send(()).unwrap();
    entries.await.unwrap().unwrap();
    assert!(
        waited < Duration::from_secs(2),
        "the admission waited {waited:?} for a transaction that only checked the key"
    );
    assert_eq!(facts.balance_cents, 0, "the deposit was not committed when the admission read the balance");
    let mut conn = database.conn().await.unwrap();
    assert_eq!(trading::user_account(&mut conn, user).await.unwrap().balance_cents, 500);
}
