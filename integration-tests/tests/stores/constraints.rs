//! Each database constraint refuses what it must, whatever the code above it does.

use crate::common;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fastbreak_agents::store::{self as agents, Decision, DecisionOutcome, RunTrigger};
use fastbreak_db::DatabaseError;
use fastbreak_db::schema;
use fastbreak_db::testing::TestDatabase;
use fastbreak_risk::store::{self as risk, LimitValues, NewHold};
use fastbreak_trading::store::{self as trading, AccountKind, LedgerTransactionKind};
use fastbreak_user::store as users;
use uuid::Uuid;

#[track_caller]
fn refused_by<T: std::fmt::Debug>(result: Result<T, DatabaseError>, constraint: &str) {
    match result {
        Err(error) => assert_eq!(error.constraint(), Some(constraint), "refused, but not by {constraint}: {error}"),
        Ok(value) => panic!("{constraint} did not refuse: {value:?}"),
    }
}

#[tokio::test]
async fn a_user_balance_never_goes_negative() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    let account = trading::user_account(&mut conn, user.id).await.unwrap();
    let market = trading::system_account(&mut conn, AccountKind::Market).await.unwrap();
    let overdraw = trading::post_transaction(
        &mut conn,
        Uuid::new_v4(),
        LedgerTransactionKind::Purchase,
        "overdraw",
        &[(account.id, -1), (market.id, 1)],
    )
    .await;
    refused_by(overdraw, "ledger_accounts_user_balance_non_negative");
}

#[tokio::test]
async fn a_ledger_transaction_that_does_not_balance_is_refused_at_commit() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let user = common::user(&mut database.conn().await.unwrap(), "u").await;
    let result = database
        .transaction(|conn| {
            Box::pin(async move {
                let account = trading::user_account(conn, user.id).await?;
                let funding = trading::system_account(conn, AccountKind::Funding).await?;
                trading::post_transaction(
                    conn,
                    Uuid::new_v4(),
                    LedgerTransactionKind::Deposit,
                    "money from nowhere",
                    &[(funding.id, -100), (account.id, 150)],
                )
                .await
            })
        })
        .await;
    refused_by(result, "ledger_transactions_balanced");
    let mut conn = database.conn().await.unwrap();
    assert_eq!(trading::total_balance(&mut conn).await.unwrap(), 0, "nothing of it was kept");
}

#[tokio::test]
async fn ledger_entries_are_immutable_and_balances_move_only_through_them() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    let account = trading::user_account(&mut conn, user.id).await.unwrap();
    let funding = trading::system_account(&mut conn, AccountKind::Funding).await.unwrap();
    let deposit = trading::post_transaction(
        &mut conn,
        Uuid::new_v4(),
        LedgerTransactionKind::Deposit,
        "deposit",
        &[(funding.id, -500), (account.id, 500)],
    )
    .await
    .unwrap();
    let edit =
        diesel::update(schema::ledger_entries::table.filter(schema::ledger_entries::transaction_id.eq(deposit.id)))
            .set(schema::ledger_entries::amount_cents.eq(5000))
            .execute(&mut conn)
            .await
            .map_err(DatabaseError::from);
    refused_by(edit, "ledger_entries_immutable");
    let delete =
        diesel::delete(schema::ledger_entries::table.filter(schema::ledger_entries::transaction_id.eq(deposit.id)))
            .execute(&mut conn)
            .await
            .map_err(DatabaseError::from);
    refused_by(delete, "ledger_entries_immutable");
    let poke = diesel::update(schema::ledger_accounts::table.find(account.id))
        .set(schema::ledger_accounts::balance_cents.eq(1_000_000))
        .execute(&mut conn)
        .await
        .map_err(DatabaseError::from);
    refused_by(poke, "ledger_accounts_balance_through_entries");
}

#[tokio::test]
async fn a_moment_has_exactly_one_owner_and_one_holder() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    common::player(&mut conn, "p").await;
    let moment = common::moment(&mut conn, "p", 1, &common::address(1)).await;
    let no_owner = diesel::update(schema::moments::table.find(moment.id))
        .set(schema::moments::owner_address.eq(""))
        .execute(&mut conn)
        .await
        .map_err(DatabaseError::from);
    refused_by(no_owner, "moments_owner_address_format");
    let (a, b) = (common::user(&mut conn, "a").await, common::user(&mut conn, "b").await);
    for (user, expect_ok) in [(a.id, true), (b.id, false)] {
        let insert = diesel::insert_into(schema::holdings::table)
            .values((
                schema::holdings::moment_id.eq(moment.id),
                schema::holdings::user_id.eq(user),
                schema::holdings::cost_cents.eq(100),
            ))
            .execute(&mut conn)
            .await
            .map_err(DatabaseError::from);
        if expect_ok {
            insert.unwrap();
        } else {
            refused_by(insert, "holdings_pkey");
        }
    }
}

#[tokio::test]
async fn idempotency_keys_are_unique() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    let insert_key = || {
        diesel::insert_into(schema::idempotency_keys::table).values((
            schema::idempotency_keys::user_id.eq(user.id),
            schema::idempotency_keys::key.eq("k"),
            schema::idempotency_keys::operation.eq("purchase"),
            schema::idempotency_keys::request_hash.eq("h"),
        ))
    };
    insert_key().execute(&mut conn).await.unwrap();
    refused_by(insert_key().execute(&mut conn).await.map_err(DatabaseError::from), "idempotency_keys_pkey");

    let insert_hold = || {
        diesel::insert_into(schema::holds::table).values((
            schema::holds::id.eq(Uuid::new_v4()),
            schema::holds::user_id.eq(user.id),
            schema::holds::amount_cents.eq(100),
            schema::holds::moment_id.eq(Uuid::new_v4()),
            schema::holds::idempotency_key.eq("k"),
            schema::holds::expires_at.eq(chrono::Utc::now()),
        ))
    };
    insert_hold().execute(&mut conn).await.unwrap();
    refused_by(insert_hold().execute(&mut conn).await.map_err(DatabaseError::from), "holds_idempotency_key_unique");
}

#[tokio::test]
async fn limits_are_positive() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    let expires = chrono::Utc::now() + chrono::Duration::minutes(5);
    for (limits, constraint) in [
        (LimitValues { daily_cents: Some(0), ..LimitValues::default() }, "budget_limit_changes_daily_positive"),
        (LimitValues { weekly_cents: Some(-5), ..LimitValues::default() }, "budget_limit_changes_weekly_positive"),
        (
            LimitValues { per_moment_cents: Some(0), ..LimitValues::default() },
            "budget_limit_changes_per_moment_positive",
        ),
        (
            LimitValues { reserve_cents: Some(-1), ..LimitValues::default() },
            "budget_limit_changes_reserve_non_negative",
        ),
        (
            LimitValues { emergency_threshold_cents: Some(0), ..LimitValues::default() },
            "budget_limit_changes_emergency_threshold_positive",
        ),
    ] {
        refused_by(
            risk::propose_limit_change(&mut conn, Uuid::new_v4(), user.id, &limits, "UTC", expires).await,
            constraint,
        );
    }
    let in_force = diesel::insert_into(schema::budget_limits::table)
        .values((schema::budget_limits::user_id.eq(user.id), schema::budget_limits::monthly_cents.eq(Some(0_i64))))
        .execute(&mut conn)
        .await
        .map_err(DatabaseError::from);
    refused_by(in_force, "budget_limits_monthly_positive");
}

#[tokio::test]
async fn limits_are_ordered_daily_weekly_monthly_total() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    let expires = chrono::Utc::now() + chrono::Duration::minutes(5);
    for limits in [
        LimitValues { daily_cents: Some(200), weekly_cents: Some(100), ..LimitValues::default() },
        LimitValues { weekly_cents: Some(500), monthly_cents: Some(400), ..LimitValues::default() },
        LimitValues { daily_cents: Some(900), total_cents: Some(800), ..LimitValues::default() },
    ] {
        refused_by(
            risk::propose_limit_change(&mut conn, Uuid::new_v4(), user.id, &limits, "UTC", expires).await,
            "budget_limit_changes_ordered",
        );
    }
    let ordered = LimitValues {
        daily_cents: Some(100),
        weekly_cents: Some(100),
        monthly_cents: Some(300),
        total_cents: Some(1000),
        ..LimitValues::default()
    };
    risk::propose_limit_change(&mut conn, Uuid::new_v4(), user.id, &ordered, "UTC", expires).await.unwrap();
    let in_force = diesel::insert_into(schema::budget_limits::table)
        .values((
            schema::budget_limits::user_id.eq(user.id),
            schema::budget_limits::daily_cents.eq(Some(10_i64)),
            schema::budget_limits::total_cents.eq(Some(5_i64)),
        ))
        .execute(&mut conn)
        .await
        .map_err(DatabaseError::from);
    refused_by(in_force, "budget_limits_ordered");
}

#[tokio::test]
async fn holds_are_positive_amounts() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    let hold = risk::place_hold(
        &mut conn,
        &NewHold {
            id: Uuid::new_v4(),
            user_id: user.id,
            amount_cents: 0,
            moment_id: Uuid::new_v4(),
            idempotency_key: "k",
            expires_at: chrono::Utc::now(),
            origin: risk::HoldOrigin::Manual,
        },
    )
    .await;
    refused_by(hold, "holds_amount_positive");
}

#[tokio::test]
async fn wallet_addresses_are_flow_addresses() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    for bad in ["0x123", "0xZZZZZZZZZZZZZZZZ", "1234567890abcdef12", "0x00000000000000AA"] {
        refused_by(users::register_wallet(&mut conn, user.id, bad).await, "wallets_flow_address_format");
    }
    let other = common::user(&mut conn, "v").await;
    users::register_wallet(&mut conn, user.id, "0x00000000000000aa").await.unwrap();
    refused_by(users::register_wallet(&mut conn, other.id, "0x00000000000000aa").await, "wallets_flow_address_unique");
}

#[tokio::test]
async fn every_decision_has_reasons() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let user = common::user(&mut conn, "u").await;
    let run = agents::start_run(&mut conn, Uuid::new_v4(), user.id, RunTrigger::ManualScan).await.unwrap();
    let decision = |reasons: Vec<String>, outcome, trade_id| Decision {
        id: Uuid::new_v4(),
        run_id: run.id,
        user_id: user.id,
        strategy_id: Uuid::new_v4(),
        listing_id: Uuid::new_v4(),
        moment_id: Uuid::new_v4(),
        outcome,
        reasons,
        price_cents: 100,
        fair_value_cents: 100,
        confidence: 0.5,
        trade_id,
        created_at: common::now(),
        reason_code: "low_confidence".to_owned(),
        rule: "min_confidence".to_owned(),
        valuation_id: None,
        factors: serde_json::json!([]),
        data_incomplete: false,
        event_sequence: None,
        trigger_event: None,
        approval_expires_at: None,
    };
    refused_by(
        agents::insert_decision(&mut conn, &decision(vec!["waits".into()], DecisionOutcome::AwaitingApproval, None))
            .await,
        "decisions_awaiting_has_deadline",
    );
    refused_by(
        agents::insert_decision(&mut conn, &decision(vec![], DecisionOutcome::Skip, None)).await,
        "decisions_have_reasons",
    );
    refused_by(
        agents::insert_decision(&mut conn, &decision(vec![String::new()], DecisionOutcome::Skip, None)).await,
        "decisions_have_reasons",
    );
    refused_by(
        agents::insert_decision(&mut conn, &decision(vec!["cheap".into()], DecisionOutcome::Buy, None)).await,
        "decisions_buy_has_trade",
    );
}

#[tokio::test]
async fn a_moment_is_listed_once_per_marketplace_at_a_positive_price() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    common::player(&mut conn, "p").await;
    let moment = common::moment(&mut conn, "p", 1, &common::address(1)).await;
    common::listing(&mut conn, &moment, 100).await;
    let now = common::now();
    let again = fastbreak_marketplace::store::insert_listing(
        &mut conn,
        &fastbreak_marketplace::store::Listing {
            id: Uuid::new_v4(),
            moment_id: moment.id,
            source_id: "simulator".into(),
            price_cents: 90,
            seller_address: moment.owner_address.clone(),
            state: fastbreak_marketplace::store::ListingState::Active,
            created_at: now,
            updated_at: now,
        },
    )
    .await;
    refused_by(again, "listings_one_active_per_source");
    let free = fastbreak_marketplace::store::update_listing_price(&mut conn, Uuid::new_v4(), 0).await;
    assert!(matches!(free, Err(DatabaseError::NotFound(_))));
    let listing = fastbreak_marketplace::store::list_active_listings(&mut conn, Some(moment.id), None, None, 0, 1)
        .await
        .unwrap()
        .remove(0);
    refused_by(
        fastbreak_marketplace::store::update_listing_price(&mut conn, listing.id, 0).await,
        "listings_price_positive",
    );
}

#[tokio::test]
async fn parallel_tests_writing_the_same_keys_do_not_see_each_other() {
    // Two databases, as two tests running at once get: the same fixed ids and keys in both.
    let (first, second) = tokio::join!(TestDatabase::create(), TestDatabase::create());
    assert_ne!(first.name(), second.name());
    let id = Uuid::from_u128(42);
    let write = |db: fastbreak_db::Database, name: &'static str| async move {
        let mut conn = db.conn().await.unwrap();
        users::create_user(
            &mut conn,
            &users::NewUser { id, display_name: name, email: "same@example.com", password_hash: "h" },
        )
        .await
        .unwrap();
        let (hold, placed) = risk::place_hold(
            &mut conn,
            &NewHold {
                id,
                user_id: id,
                amount_cents: 100,
                moment_id: id,
                idempotency_key: "same-key",
                expires_at: chrono::Utc::now(),
                origin: risk::HoldOrigin::Automated,
            },
        )
        .await
        .unwrap();
        assert!(placed, "{name} saw a hold it did not place");
        (users::find_user(&mut conn, id).await.unwrap().unwrap().display_name, hold.id)
    };
    let (a, b) = tokio::join!(write(first.database(), "first"), write(second.database(), "second"));
    assert_eq!(a, ("first".to_owned(), id));
    assert_eq!(b, ("second".to_owned(), id));
}
