//! Every repository method, round-tripped through a real PostgreSQL.

use crate::common;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use fastbreak_agents::store::{self as agents, Decision, DecisionOutcome, RunState, RunTrigger};
use fastbreak_db::testing::TestDatabase;
use fastbreak_db::{PageRequest, Rarity, outbox};
use fastbreak_marketplace::store::{self as market, ListingState, MomentFilter, Sale};
use fastbreak_notification::store::{
    self as notifications, AttemptOutcome, Category, DeliveryAttempt, DeliveryState, DeliverySubject, Notification,
    Preferences, Priority, SystemAlert,
};
use fastbreak_risk::store::{
    self as risk, AlertKind, AlertSeverity, HoldFilter, HoldOrigin, HoldState, LimitChangeState, LimitKind,
    LimitValues, NewHold, NewRiskAlert, StopActor, Windows,
};
use fastbreak_scouting::catalog;
use fastbreak_scouting::store::{self as scouting, GameEvent, GameStats, Recommendation, Valuation, ValuationFactor};
use fastbreak_strategy::store::{self as strategies, Strategy, StrategyKind, StrategyOutcome, StrategyState};
use fastbreak_trading::store::{
    self as trading, AccountKind, Holding, IdempotencyClaim, LedgerTransactionKind, Trade, TradeKind, TradeOrigin,
    TradeState,
};
use fastbreak_user::store as users;
use uuid::Uuid;

#[tokio::test]
async fn users_wallets_and_tokens_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;

    let alice = common::user(conn, "alice").await;
    assert_eq!(users::find_user(conn, alice.id).await.unwrap().as_ref(), Some(&alice));
    let by_email = users::find_user_by_email(conn, &alice.email.to_uppercase()).await.unwrap();
    assert_eq!(by_email.map(|u| u.id), Some(alice.id), "email lookup ignores case");
    assert!(users::find_user(conn, Uuid::new_v4()).await.unwrap().is_none());

    let renamed = users::update_user_settings(conn, alice.id, Some("Alice B"), Some(true)).await.unwrap();
    assert_eq!((renamed.display_name.as_str(), renamed.leaderboard_opt_out), ("Alice B", true));
    let kept = users::update_user_settings(conn, alice.id, None, Some(false)).await.unwrap();
    assert_eq!((kept.display_name.as_str(), kept.leaderboard_opt_out), ("Alice B", false));

    let wallet = users::register_wallet(conn, alice.id, "0x00000000000000aa").await.unwrap();
    assert!(wallet.connected);
    assert_eq!(users::find_wallet(conn, alice.id).await.unwrap(), Some(wallet.clone()));
    assert_eq!(
        users::find_wallet_by_address(conn, "0x00000000000000aa").await.unwrap().map(|w| w.user_id),
        Some(alice.id)
    );
    let off = users::set_wallet_connected(conn, alice.id, false).await.unwrap();
    assert!(!off.connected);
    assert!(matches!(
        users::set_wallet_connected(conn, Uuid::new_v4(), true).await,
        Err(fastbreak_db::DatabaseError::NotFound(_))
    ));

    let now = common::now();
    let token = users::AccessToken {
        id: Uuid::new_v4(),
        user_id: alice.id,
        token_hash: "hash-1".to_owned(),
        label: "laptop".to_owned(),
        created_at: now,
        expires_at: now + Duration::days(30),
        revoked_at: None,
    };
    let stored = users::insert_access_token(conn, &token).await.unwrap();
    assert_eq!(stored.id, token.id);
    assert_eq!(users::find_valid_token(conn, "hash-1", now).await.unwrap().map(|t| t.id), Some(token.id));
    assert!(users::find_valid_token(conn, "hash-1", now + Duration::days(31)).await.unwrap().is_none(), "expired");
    let second = users::AccessToken {
        id: Uuid::new_v4(),
        token_hash: "hash-2".to_owned(),
        created_at: now + Duration::seconds(1),
        ..token.clone()
    };
    users::insert_access_token(conn, &second).await.unwrap();
    let page = users::list_access_tokens(conn, alice.id, PageRequest::first(1)).await.unwrap();
    assert_eq!(page.items.iter().map(|t| t.id).collect::<Vec<_>>(), [second.id]);
    let rest = users::list_access_tokens(conn, alice.id, PageRequest { size: 1, after: page.next }).await.unwrap();
    assert_eq!(rest.items.iter().map(|t| t.id).collect::<Vec<_>>(), [token.id]);
    assert!(rest.next.is_none());
    let revoked = users::revoke_access_token(conn, alice.id, token.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(users::find_valid_token(conn, "hash-1", now).await.unwrap().is_none(), "revoked");
}

fn strategy(user_id: Uuid) -> Strategy {
    let now = common::now();
    Strategy {
        id: Uuid::new_v4(),
        user_id,
        display_name: "Rookies".to_owned(),
        kind: StrategyKind::RookieRisers,
        state: StrategyState::Paused,
        parameters: serde_json::json!({"max_seasons_played": 1}),
        min_confidence: 0.7,
        min_discount_bps: 1000,
        max_price_cents: 5000,
        max_purchases_per_day: 3,
        template_id: Some("rookie-risers-starter".to_owned()),
        created_at: now,
        updated_at: now,
        priority: 50,
        scan_time: Some("09:30".to_owned()),
        scan_time_zone: Some("America/New_York".to_owned()),
        protections: serde_json::json!({"max_daily_loss_cents": 5000}),
        protections_reset_at: None,
    }
}

#[tokio::test]
async fn strategies_templates_and_performance_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    let user = common::user(conn, "sam").await;

    let templates = strategies::list_templates(conn).await.unwrap();
    assert_eq!(templates.len(), 3);
    assert!(templates.iter().any(|t| t.kind == StrategyKind::ArbitrageMode));

    let created = strategies::create_strategy(conn, &strategy(user.id)).await.unwrap();
    assert_eq!(strategies::find_strategy(conn, user.id, created.id).await.unwrap().as_ref(), Some(&created));
    assert!(strategies::find_strategy(conn, Uuid::new_v4(), created.id).await.unwrap().is_none(), "another user's");

    let mut changed = created.clone();
    changed.display_name = "Rookie risers".to_owned();
    changed.min_confidence = 0.8;
    let updated = strategies::update_strategy(conn, &changed).await.unwrap();
    assert_eq!((updated.display_name.as_str(), updated.min_confidence), ("Rookie risers", 0.8));

    let active = strategies::set_strategy_state(conn, user.id, created.id, StrategyState::Active).await.unwrap();
    assert_eq!(active.state, StrategyState::Active);
    let listed = strategies::list_strategies(conn, user.id, Some(StrategyState::Active), None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        strategies::list_strategies(conn, user.id, Some(StrategyState::Paused), None, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(strategies::list_active_strategies(conn, &Default::default(), 10, None).await.unwrap().len(), 1);

    let trade_id = Uuid::new_v4();
    let outcome = StrategyOutcome {
        strategy_id: created.id,
        trade_id,
        spent_cents: 2500,
        proceeds_cents: 0,
        realized_pnl_cents: 0,
        moment_id: None,
        occurred_at: common::now() - chrono::Duration::hours(2),
    };
    let performance = strategies::record_outcome(conn, &outcome).await.unwrap();
    assert_eq!((performance.purchase_count, performance.spent_cents), (1, 2500));
    let again = strategies::record_outcome(conn, &outcome).await.unwrap();
    assert_eq!((again.purchase_count, again.spent_cents), (1, 2500), "a trade counts once");
    assert_eq!(strategies::find_performance(conn, created.id).await.unwrap(), Some(again));

    // Outcomes are read back by the time they occurred, oldest first, and a reset of the
    // strategy's protections hides those before it.
    let sale = StrategyOutcome {
        trade_id: Uuid::new_v4(),
        spent_cents: 0,
        proceeds_cents: 2000,
        realized_pnl_cents: -500,
        moment_id: Some(Uuid::new_v4()),
        occurred_at: common::now() - chrono::Duration::hours(1),
        ..outcome.clone()
    };
    strategies::record_outcome(conn, &sale).await.unwrap();
    let since = common::now() - chrono::Duration::minutes(150);
    let (read, reset) = strategies::outcomes_since(conn, created.id, since, PageRequest::first(100)).await.unwrap();
    assert_eq!((read.items, reset), (vec![outcome.clone(), sale.clone()], None));
    let recent = common::now() - chrono::Duration::minutes(90);
    let recent = strategies::outcomes_since(conn, created.id, recent, PageRequest::first(100)).await.unwrap();
    assert_eq!(recent.0.items, vec![sale.clone()]);
    let (first, _) = strategies::outcomes_since(conn, created.id, since, PageRequest::first(1)).await.unwrap();
    assert_eq!(first.items, vec![outcome.clone()], "the oldest first");
    let rest = PageRequest { size: 1, after: first.next };
    let (second, _) = strategies::outcomes_since(conn, created.id, since, rest).await.unwrap();
    assert_eq!((second.items, second.next), (vec![sale.clone()], None));
    let reset = strategies::reset_protections(conn, user.id, created.id).await.unwrap();
    assert!(reset.protections_reset_at.is_some());
    let (read, at) = strategies::outcomes_since(conn, created.id, since, PageRequest::first(100)).await.unwrap();
    assert_eq!((read.items, at), (vec![], reset.protections_reset_at));
    assert!(strategies::reset_protections(conn, Uuid::new_v4(), created.id).await.is_err(), "only its owner");

    assert!(strategies::delete_strategy(conn, user.id, created.id).await.unwrap());
    assert!(!strategies::delete_strategy(conn, user.id, created.id).await.unwrap());
}

#[tokio::test]
async fn limits_holds_spending_stops_and_alerts_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    let user = common::user(conn, "rita").await;
    let now = common::now();

    assert!(risk::find_limits(conn, user.id).await.unwrap().is_none());
    let limits = LimitValues {
        daily_cents: Some(10_000),
        weekly_cents: Some(50_000),
        per_moment_cents: Some(5_000),
        ..LimitValues::default()
    };
    let change =
        risk::propose_limit_change(conn, Uuid::new_v4(), user.id, &limits, "Europe/Paris", now + Duration::minutes(10))
            .await
            .unwrap();
    assert_eq!((change.state, change.limits()), (LimitChangeState::Pending, limits));
    assert!(risk::find_limits(conn, user.id).await.unwrap().is_none(), "not in force before confirmation");
    let confirmed = risk::resolve_limit_change(conn, user.id, change.id, true, now).await.unwrap();
    assert_eq!(confirmed.state, LimitChangeState::Confirmed);
    let in_force = risk::find_limits(conn, user.id).await.unwrap().unwrap();
    assert_eq!((in_force.limits, in_force.time_zone.as_str()), (limits, "Europe/Paris"));
    assert_eq!(risk::find_limit_change(conn, user.id, change.id).await.unwrap(), Some(confirmed));

    let late = risk::propose_limit_change(
        conn,
        Uuid::new_v4(),
        user.id,
        &LimitValues::default(),
        "UTC",
        now + Duration::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(risk::find_pending_limit_change(conn, user.id, now).await.unwrap().map(|c| c.id), Some(late.id));
    assert!(
        risk::find_pending_limit_change(conn, user.id, now + Duration::minutes(2)).await.unwrap().is_none(),
        "an expired change is no longer pending"
    );
    let expired = risk::find_limit_change(conn, user.id, late.id).await.unwrap().unwrap();
    assert_eq!(expired.state, LimitChangeState::Expired);
    assert_eq!(
        risk::find_limits(conn, user.id).await.unwrap().map(|l| l.limits),
        Some(limits),
        "an expired change changes nothing"
    );

    let moment = Uuid::new_v4();
    let (hold, placed) = risk::place_hold(
        conn,
        &NewHold {
            id: Uuid::new_v4(),
            user_id: user.id,
            amount_cents: 3000,
            moment_id: moment,
            idempotency_key: "k1",
            expires_at: now,
            origin: HoldOrigin::Manual,
        },
    )
    .await
    .unwrap();
    assert!(placed);
    let (same, placed_again) = risk::place_hold(
        conn,
        &NewHold {
            id: Uuid::new_v4(),
            user_id: user.id,
            amount_cents: 3000,
            moment_id: moment,
            idempotency_key: "k1",
            expires_at: now,
            origin: HoldOrigin::Manual,
        },
    )
    .await
    .unwrap();
    assert_eq!((same.id, placed_again), (hold.id, false), "one hold per key");
    let windows = Windows {
        day: now - Duration::hours(1),
        week: now - Duration::hours(1),
        month: now - Duration::hours(1),
        hour: now - Duration::hours(1),
        balance: now - Duration::hours(1),
        burst: now - Duration::hours(1),
        history: now - Duration::days(7),
    };
    let figures = risk::figures(conn, user.id, &windows).await.unwrap();
    assert_eq!((figures.held, figures.spent_day, figures.burst_holds), (3000, 0, 1));
    let placed_filter = HoldFilter { state: Some(HoldState::Placed), created_before: None };
    assert_eq!(risk::list_holds(conn, placed_filter, PageRequest::first(10)).await.unwrap().items.len(), 1);
    assert_eq!(risk::expired_holds(conn, common::now() + Duration::seconds(1), 10).await.unwrap().len(), 1);
    let committed = risk::commit_hold(conn, hold.id).await.unwrap();
    assert_eq!(committed.state, HoldState::Committed);
    assert_eq!(
        risk::commit_hold(conn, hold.id).await.unwrap().state,
        HoldState::Committed,
        "committing twice is a no-op"
    );
    let figures = risk::figures(conn, user.id, &windows).await.unwrap();
    assert_eq!(
        (figures.held, figures.spent_day, figures.spent_total, figures.history_mean_cents),
        (0, 3000, 3000, 3000)
    );
    assert_eq!(
        risk::release_hold(conn, hold.id, "late").await.unwrap().state,
        HoldState::Committed,
        "a committed hold stays committed"
    );

    let (other, _) = risk::place_hold(
        conn,
        &NewHold {
            id: Uuid::new_v4(),
            user_id: user.id,
            amount_cents: 700,
            moment_id: moment,
            idempotency_key: "k2",
            expires_at: now,
            origin: HoldOrigin::Manual,
        },
    )
    .await
    .unwrap();
    let released = risk::release_hold(conn, other.id, "listing sold to someone else").await.unwrap();
    assert_eq!(
        (released.state, released.release_reason.as_deref()),
        (HoldState::Released, Some("listing sold to someone else"))
    );
    assert_eq!(risk::find_hold(conn, other.id).await.unwrap(), Some(released));
    assert_eq!(risk::figures(conn, user.id, &windows).await.unwrap().spent_week, 3000);
    assert_eq!(risk::record_refusal(conn, user.id).await.unwrap(), 1);
    assert_eq!(risk::record_refusal(conn, user.id).await.unwrap(), 2);
    risk::reset_refusals(conn, user.id).await.unwrap();
    assert_eq!(risk::record_refusal(conn, user.id).await.unwrap(), 1);
    risk::lock_user_risk(conn, user.id).await.unwrap();

    assert!(risk::find_emergency_stop(conn, user.id).await.unwrap().is_none());
    let (engaged, now_engaged) =
        risk::engage_emergency_stop(conn, user.id, StopActor::User, "going on holiday").await.unwrap();
    assert!(now_engaged && engaged.engaged && engaged.engaged_at.is_some());
    assert_eq!(engaged.engaged_by, Some(StopActor::User));
    let (again, engaged_again) =
        risk::engage_emergency_stop(conn, user.id, StopActor::System, "spending spike").await.unwrap();
    assert_eq!((again, engaged_again), (engaged.clone(), false), "engaging an engaged stop changes nothing");
    let off = risk::release_emergency_stop(conn, user.id, StopActor::Operator).await.unwrap().unwrap();
    assert!(!off.engaged && off.released_at.is_some() && off.engaged_at == engaged.engaged_at);
    assert_eq!(off.released_by, Some(StopActor::Operator));
    assert_eq!(risk::find_emergency_stop(conn, user.id).await.unwrap(), Some(off));
    let history: Vec<_> =
        risk::list_stop_events(conn, user.id).await.unwrap().into_iter().map(|e| (e.action, e.actor)).collect();
    assert_eq!(history, vec![("engaged".to_owned(), StopActor::User), ("released".to_owned(), StopActor::Operator)]);

    let new_alert = NewRiskAlert {
        id: Uuid::new_v4(),
        user_id: user.id,
        severity: AlertSeverity::Warning,
        kind: AlertKind::LimitApproached,
        limit_name: Some(LimitKind::Daily),
        message: "80% of the daily limit is used.",
        dedup_key: Some("daily:2026-11-25:80"),
    };
    let alert = risk::insert_risk_alert(conn, &new_alert).await.unwrap().unwrap();
    assert_eq!((alert.kind, alert.limit_name), (AlertKind::LimitApproached, Some(LimitKind::Daily)));
    assert!(
        risk::insert_risk_alert(conn, &NewRiskAlert { id: Uuid::new_v4(), ..new_alert }).await.unwrap().is_none(),
        "one alert per key"
    );
    assert_eq!(
        risk::list_risk_alerts(conn, user.id, true, PageRequest::first(10)).await.unwrap().items,
        vec![alert.clone()]
    );
    let claimed = risk::claim_alerts_to_notify(conn, common::now(), Duration::seconds(30), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|a| a.id).collect::<Vec<_>>(), vec![alert.id]);
    assert!(
        risk::claim_alerts_to_notify(conn, common::now(), Duration::seconds(30), 10).await.unwrap().is_empty(),
        "a claimed alert is leased"
    );
    risk::mark_alert_notified(conn, alert.id).await.unwrap();
    assert!(
        risk::claim_alerts_to_notify(conn, common::now() + Duration::minutes(5), Duration::seconds(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let acknowledged = risk::acknowledge_risk_alert(conn, user.id, alert.id).await.unwrap();
    assert!(acknowledged.acknowledged_at.is_some());
    assert!(risk::list_risk_alerts(conn, user.id, true, PageRequest::first(10)).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn players_events_and_valuations_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;

    let player = common::player(conn, "p-1").await;
    // Scouting knows the catalog's player once it has taken in the marketplace's message.
    assert_eq!(catalog::take_batch(conn).await.unwrap(), (1, 1));
    let seen = scouting::find_player(conn, "p-1").await.unwrap().expect("scouting sees the catalog's player");
    assert_eq!(
        (seen.id, seen.full_name, seen.team_code, seen.position, seen.seasons_played, seen.jersey_number),
        (
            player.id.clone(),
            player.full_name.clone(),
            player.team_code.clone(),
            player.position.clone(),
            player.seasons_played,
            player.jersey_number
        )
    );
    let traded = market::upsert_player(conn, &market::Player { team_code: "BOS".to_owned(), ..player }).await.unwrap();
    assert_eq!(traded.team_code, "BOS");

    let line = GameStats {
        game_id: "g-1".to_owned(),
        player_id: "p-1".to_owned(),
        game_at: Utc.with_ymd_and_hms(2026, 11, 20, 1, 0, 0).unwrap(),
        opponent_code: "NYK".to_owned(),
        minutes: 34,
        points: 28,
        rebounds: 17,
        assists: 4,
        steals: 1,
        blocks: 2,
        turnovers: 3,
    };
    assert_eq!(scouting::upsert_game_stats(conn, &line).await.unwrap(), line);
    let corrected = scouting::upsert_game_stats(conn, &GameStats { rebounds: 18, ..line.clone() }).await.unwrap();
    let after = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
    assert_eq!(scouting::recent_game_stats(conn, "p-1", after, 5).await.unwrap(), vec![corrected]);
    let before = Utc.with_ymd_and_hms(2026, 11, 19, 0, 0, 0).unwrap();
    assert!(scouting::recent_game_stats(conn, "p-1", before, 5).await.unwrap().is_empty(), "only games up to then");

    let before = common::now() - Duration::seconds(1);
    let event = GameEvent {
        id: "e-1".to_owned(),
        game_id: "g-1".to_owned(),
        player_id: "p-1".to_owned(),
        is_final: true,
        highlights: vec!["career_high_rebounds".to_owned()],
        occurred_at: common::now(),
        ingested_at: common::now(),
        sequence: 0,
    };
    assert!(scouting::insert_game_event(conn, &event).await.unwrap());
    assert!(!scouting::insert_game_event(conn, &event).await.unwrap(), "an event is recorded once");
    let since = scouting::game_events_since(conn, before, 10).await.unwrap();
    assert_eq!(
        since.iter().map(|e| (e.id.as_str(), e.highlights.clone())).collect::<Vec<_>>(),
        [("e-1", vec!["career_high_rebounds".to_owned()])]
    );
    let after = scouting::game_events_after(conn, 0, Some("p-1"), 10).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].0.sequence > 0, "the database numbers events");
    assert_eq!(after[0].1.as_ref().map(|s| s.rebounds), Some(18), "with the player's line");
    assert_eq!(scouting::last_game_event_sequence(conn).await.unwrap(), after[0].0.sequence);

    let moment = common::moment(conn, "p-1", 7, &common::address(1)).await;
    catalog::catch_up_on(conn).await.unwrap();
    let valued_at = common::now();
    let valuation = Valuation {
        id: Uuid::new_v4(),
        moment_id: moment.id,
        fair_value_cents: 4200,
        confidence: 0.82,
        recommendation: Recommendation::Buy,
        risk_score: 0.3,
        price_cents: Some(3500),
        discount_bps: Some(1667),
        model_version: "v1".to_owned(),
        computed_at: valued_at,
        valued_at,
    };
    let factors = vec![
        ValuationFactor {
            valuation_id: valuation.id,
            rank: 1,
            name: "recent_rebounds".to_owned(),
            weight: 0.6,
            impact_cents: 900,
            explanation: "Set a career high in rebounds last night.".to_owned(),
        },
        ValuationFactor {
            valuation_id: valuation.id,
            rank: 2,
            name: "serial_scarcity".to_owned(),
            weight: 0.4,
            impact_cents: 300,
            explanation: "Serial 7 of 1000 is a low serial.".to_owned(),
        },
    ];
    let (stored, stored_factors) = scouting::insert_valuation(conn, &valuation, &factors).await.unwrap();
    assert_eq!((stored.id, stored_factors.len()), (valuation.id, 2));
    let (latest, latest_factors) = scouting::latest_valuation(conn, moment.id).await.unwrap().unwrap();
    assert_eq!(latest.recommendation, Recommendation::Buy);
    assert_eq!(latest_factors, factors);
    assert!(scouting::latest_valuation(conn, Uuid::new_v4()).await.unwrap().is_none());
}

#[tokio::test]
async fn sources_moments_listings_sales_and_prices_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;

    let sources = market::list_market_sources(conn).await.unwrap();
    assert_eq!(sources.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["simulator"]);
    let failed = market::record_source_poll(conn, "simulator", Err("timeout after 5s")).await.unwrap();
    assert!(!failed.healthy && failed.last_error == "timeout after 5s");
    let healed = market::record_source_poll(conn, "simulator", Ok(())).await.unwrap();
    assert!(healed.healthy && healed.last_success_at.is_some() && healed.last_error.is_empty());

    common::player(conn, "p-2").await;
    let seller = common::address(2);
    let buyer = common::address(3);
    let moment = common::moment(conn, "p-2", 1, &seller).await;
    assert_eq!(market::find_moment(conn, moment.id).await.unwrap(), Some(moment.clone()));
    let found = market::search_moments(
        conn,
        &MomentFilter { query: Some("series 4".to_owned()), rarity: Some(Rarity::Common), ..MomentFilter::default() },
        10,
        None,
    )
    .await
    .unwrap();
    assert_eq!(found.iter().map(|m| m.id).collect::<Vec<_>>(), [moment.id]);
    assert!(
        market::search_moments(
            conn,
            &MomentFilter { rarity: Some(Rarity::Legendary), ..MomentFilter::default() },
            10,
            None
        )
        .await
        .unwrap()
        .is_empty()
    );

    let listing = common::listing(conn, &moment, 4000).await;
    assert_eq!(market::find_listing(conn, listing.id).await.unwrap(), Some(listing.clone()));
    assert_eq!(market::lock_listing(conn, listing.id).await.unwrap().map(|l| l.id), Some(listing.id));
    let cheaper = market::update_listing_price(conn, listing.id, 3500).await.unwrap();
    assert_eq!(cheaper.price_cents, 3500);
    assert_eq!(market::list_active_listings(conn, Some(moment.id), None, Some(3500), 0, 10).await.unwrap().len(), 1);
    assert!(market::list_active_listings(conn, Some(moment.id), None, Some(3000), 0, 10).await.unwrap().is_empty());

    let sold = market::close_listing(conn, listing.id, ListingState::Sold).await.unwrap();
    assert_eq!(sold.state, ListingState::Sold);
    assert!(
        market::close_listing(conn, listing.id, ListingState::Withdrawn).await.is_err(),
        "only active listings close"
    );
    assert!(market::transfer_moment(conn, moment.id, &seller, &buyer).await.unwrap());
    assert!(!market::transfer_moment(conn, moment.id, &seller, &buyer).await.unwrap(), "the seller no longer owns it");

    let day = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    for (price, minutes) in [(3500, 0), (5000, 10), (3000, 20)] {
        market::record_sale(
            conn,
            &Sale {
                id: Uuid::new_v4(),
                moment_id: moment.id,
                listing_id: None,
                source_id: "simulator".to_owned(),
                price_cents: price,
                seller_address: seller.clone(),
                buyer_address: buyer.clone(),
                sold_at: day + Duration::minutes(minutes),
            },
        )
        .await
        .unwrap();
    }
    let sales = market::list_sales(conn, moment.id, 10).await.unwrap();
    assert_eq!(sales.iter().map(|s| s.price_cents).collect::<Vec<_>>(), [3000, 5000, 3500]);
    let history = market::price_history(
        conn,
        moment.id,
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(history.len(), 1);
    let point = &history[0];
    assert_eq!(
        (point.open_cents, point.high_cents, point.low_cents, point.close_cents, point.sale_count),
        (3500, 5000, 3000, 3000, 3)
    );
}

#[tokio::test]
async fn ledger_trades_holdings_and_idempotency_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    let user = common::user(conn, "tom").await;

    let account = trading::user_account(conn, user.id).await.unwrap();
    assert_eq!(trading::user_account(conn, user.id).await.unwrap().id, account.id, "one account per user");
    let funding = trading::system_account(conn, AccountKind::Funding).await.unwrap();
    let market_account = trading::system_account(conn, AccountKind::Market).await.unwrap();
    // The ledger posts to the system accounts by the ids the schema gave them, without a read.
    for kind in [AccountKind::Funding, AccountKind::Market, AccountKind::Fees] {
        let stored = trading::system_account(conn, kind).await.unwrap();
        assert_eq!(trading::system_account_id(kind), Some(stored.id), "{kind:?}'s id");
    }
    assert_eq!(trading::system_account_id(AccountKind::UserCash), None);
    let deposit = trading::post_transaction(
        conn,
        Uuid::new_v4(),
        LedgerTransactionKind::Deposit,
        "paper deposit",
        &[(funding.id, -10_000), (account.id, 10_000)],
    )
    .await
    .unwrap();
    assert_eq!(
        trading::transaction_entries(conn, deposit.id)
            .await
            .unwrap()
            .iter()
            .map(|e| e.amount_cents)
            .collect::<Vec<_>>(),
        [-10_000, 10_000]
    );
    assert_eq!(trading::find_account(conn, account.id).await.unwrap().map(|a| a.balance_cents), Some(10_000));
    assert_eq!(trading::total_balance(conn).await.unwrap(), 0, "money is conserved");

    common::player(conn, "p-3").await;
    let moment = common::moment(conn, "p-3", 3, &common::address(9)).await;
    let trade = Trade {
        id: Uuid::new_v4(),
        user_id: user.id,
        kind: TradeKind::Purchase,
        state: TradeState::Pending,
        origin: TradeOrigin::Automated,
        moment_id: moment.id,
        listing_id: None,
        price_cents: 2500,
        fee_cents: 125,
        strategy_id: Some(Uuid::new_v4()),
        decision_id: Some(Uuid::new_v4()),
        reasoning: vec!["Fair value is 4,200 cents; the listing is 40% below.".to_owned()],
        idempotency_key: "decision-1".to_owned(),
        hold_id: None,
        ledger_transaction_id: None,
        failure_reason: None,
        created_at: common::now(),
        settled_at: None,
        valuation_id: None,
        factors: serde_json::json!([]),
        expected_value_cents: 0,
        source_id: "simulator".to_owned(),
        buyer_address: String::new(),
        max_price_cents: 2500,
        relist_source_id: String::new(),
        relist_price_cents: 0,
        request_hash: String::new(),
        failure_code: None,
        failure_details: None,
        realized_pnl_cents: 0,
    };
    assert_eq!(trading::insert_trade(conn, &trade).await.unwrap().id, trade.id);
    let purchase = trading::post_transaction(
        conn,
        Uuid::new_v4(),
        LedgerTransactionKind::Purchase,
        "bought",
        &[(account.id, -2500), (market_account.id, 2500)],
    )
    .await
    .unwrap();
    let settled = trading::settle_trade(conn, trade.id, purchase.id).await.unwrap();
    assert_eq!((settled.state, settled.ledger_transaction_id), (TradeState::Settled, Some(purchase.id)));
    assert!(trading::fail_trade(conn, trade.id, "late").await.is_err(), "a settled trade cannot fail");
    assert_eq!(trading::find_trade(conn, user.id, trade.id).await.unwrap(), Some(settled.clone()));
    assert_eq!(
        trading::find_trade_by_key(conn, user.id, "decision-1", TradeKind::Purchase).await.unwrap().map(|t| t.id),
        Some(trade.id)
    );
    assert_eq!(
        trading::list_trades(conn, user.id, Some(TradeKind::Purchase), PageRequest::first(10)).await.unwrap().items,
        vec![settled]
    );

    let pending = Trade {
        id: Uuid::new_v4(),
        idempotency_key: "decision-2".to_owned(),
        created_at: common::now() - Duration::minutes(5),
        ..trade.clone()
    };
    trading::insert_trade(conn, &pending).await.unwrap();
    assert_eq!(
        trading::list_pending_trades(conn, common::now(), 10).await.unwrap().iter().map(|t| t.id).collect::<Vec<_>>(),
        [pending.id]
    );
    let failed = trading::fail_trade(conn, pending.id, "the listing was withdrawn").await.unwrap();
    assert_eq!(failed.failure_reason.as_deref(), Some("the listing was withdrawn"));

    let holding = Holding {
        moment_id: moment.id,
        user_id: user.id,
        cost_cents: 2500,
        trade_id: Some(trade.id),
        acquired_at: common::now(),
        listing_id: None,
        value_cents: None,
        valued_at: None,
    };
    assert_eq!(trading::put_holding(conn, &holding).await.unwrap().cost_cents, 2500);
    assert_eq!(trading::list_holdings(conn, user.id, PageRequest::first(10)).await.unwrap().items.len(), 1);
    assert!(trading::remove_holding(conn, user.id, moment.id).await.unwrap());
    assert!(!trading::remove_holding(conn, user.id, moment.id).await.unwrap());

    assert_eq!(
        trading::claim_idempotency_key(conn, user.id, "buy-1", "purchase", "h1").await.unwrap(),
        IdempotencyClaim::New
    );
    assert_eq!(
        trading::claim_idempotency_key(conn, user.id, "buy-1", "purchase", "h1").await.unwrap(),
        IdempotencyClaim::InProgress
    );
    let answer = serde_json::json!({"trade_id": trade.id});
    trading::complete_idempotency_key(conn, user.id, "buy-1", &answer).await.unwrap();
    assert_eq!(
        trading::claim_idempotency_key(conn, user.id, "buy-1", "purchase", "h1").await.unwrap(),
        IdempotencyClaim::Completed(answer)
    );
    assert_eq!(
        trading::claim_idempotency_key(conn, user.id, "buy-1", "purchase", "other").await.unwrap(),
        IdempotencyClaim::Mismatch { operation: "purchase".to_owned() }
    );
    assert!(
        trading::complete_idempotency_key(conn, user.id, "buy-1", &serde_json::json!({})).await.is_err(),
        "the first answer stays"
    );
}

#[tokio::test]
async fn notifications_preferences_deliveries_and_alerts_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    let user = common::user(conn, "nina").await;

    let notification = Notification {
        id: Uuid::new_v4(),
        user_id: user.id,
        category: Category::Purchase,
        priority: Priority::High,
        title: "Bought a moment".to_owned(),
        body: "Bought serial 7 for $35.00.".to_owned(),
        idempotency_key: "trade-1".to_owned(),
        created_at: common::now(),
        read_at: None,
        links: serde_json::json!([{"kind": "trade", "id": "7"}]),
    };
    let (stored, created) = notifications::insert_notification(conn, &notification).await.unwrap();
    assert!(created && stored == notification);
    let (same, created_again) =
        notifications::insert_notification(conn, &Notification { id: Uuid::new_v4(), ..notification.clone() })
            .await
            .unwrap();
    assert_eq!((same.id, created_again), (notification.id, false), "one notification per key");
    assert_eq!(notifications::unread_count(conn, user.id).await.unwrap(), 1);
    assert_eq!(
        notifications::list_notifications(conn, user.id, true, None, PageRequest::first(10)).await.unwrap().items.len(),
        1
    );
    assert!(notifications::mark_read(conn, user.id, notification.id).await.unwrap().read_at.is_some());
    assert_eq!(notifications::unread_count(conn, user.id).await.unwrap(), 0);
    notifications::insert_notification(
        conn,
        &Notification { id: Uuid::new_v4(), idempotency_key: "trade-2".to_owned(), ..notification.clone() },
    )
    .await
    .unwrap();
    assert_eq!(notifications::mark_all_read(conn, user.id).await.unwrap(), 1);
    assert_eq!(
        notifications::list_notifications(conn, user.id, false, None, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    assert!(notifications::find_preferences(conn, user.id).await.unwrap().is_none());
    let preferences = Preferences {
        user_id: user.id,
        webhook_min_priority: Priority::Normal,
        webhook_url: Some("https://hooks.example.com/fb".to_owned()),
        muted_categories: vec!["system".to_owned()],
        webhook_secret: Some("s3cret".to_owned()),
        updated_at: common::now(),
    };
    let put = notifications::put_preferences(conn, &preferences).await.unwrap();
    assert_eq!(
        (put.webhook_min_priority, put.webhook_url.clone()),
        (Priority::Normal, preferences.webhook_url.clone())
    );
    assert_eq!(notifications::find_preferences(conn, user.id).await.unwrap(), Some(put));

    assert_eq!(
        notifications::list_notifications(conn, user.id, false, Some(Priority::Urgent), PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        0,
        "nothing urgent"
    );

    let url = "https://hooks.example.com/fb";
    let delivery =
        notifications::insert_delivery(conn, Uuid::new_v4(), DeliverySubject::Notification(notification.id), url)
            .await
            .unwrap();
    let worker = Uuid::new_v4();
    let lease = Duration::seconds(30);
    let claimed = notifications::claim_due_deliveries(conn, worker, common::now() + Duration::seconds(1), lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|d| d.id).collect::<Vec<_>>(), vec![delivery.id]);
    assert!(
        notifications::claim_due_deliveries(conn, Uuid::new_v4(), common::now() + Duration::seconds(1), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a leased delivery is not claimed twice"
    );
    let attempt = |n: i32, status: i32, error: &str| DeliveryAttempt {
        delivery_id: delivery.id,
        attempt: n,
        http_status: status,
        error: error.to_owned(),
        started_at: common::now(),
        duration_ms: 12,
    };
    let stranger =
        notifications::record_delivery_attempt(conn, Uuid::new_v4(), &attempt(1, 200, ""), AttemptOutcome::Delivered)
            .await
            .unwrap();
    assert!(stranger.is_none(), "only the lease holder records");
    let retry = notifications::record_delivery_attempt(
        conn,
        worker,
        &attempt(1, 503, "service unavailable"),
        AttemptOutcome::RetryAt(common::now() + Duration::seconds(30)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((retry.state, retry.attempt_count, retry.last_http_status), (DeliveryState::Pending, 1, 503));
    assert!(
        notifications::claim_due_deliveries(conn, worker, common::now(), lease, 10).await.unwrap().is_empty(),
        "not due before its retry time"
    );
    let later = common::now() + Duration::seconds(31);
    let expired =
        notifications::claim_due_deliveries(conn, worker, later, Duration::milliseconds(1), 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    let taken_over = notifications::claim_due_deliveries(conn, Uuid::new_v4(), later + Duration::seconds(1), lease, 10)
        .await
        .unwrap();
    assert_eq!(taken_over.len(), 1, "an expired lease is taken over");
    let done = notifications::record_delivery_attempt(conn, worker, &attempt(2, 200, ""), AttemptOutcome::Delivered)
        .await
        .unwrap();
    assert!(done.is_none(), "the worker whose lease expired records nothing");
    let listed =
        notifications::list_deliveries(conn, user.id, Some(notification.id), PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let attempts = notifications::list_delivery_attempts(conn, &[delivery.id]).await.unwrap();
    assert_eq!(
        attempts,
        vec![attempt(1, 503, "service unavailable")]
            .into_iter()
            .map(|a| DeliveryAttempt { started_at: attempts[0].started_at, ..a })
            .collect::<Vec<_>>()
    );

    let alert = SystemAlert {
        id: Uuid::new_v4(),
        severity: "critical".to_owned(),
        source: "agents".to_owned(),
        message: "Purchases have failed for 10 minutes: risk is unavailable.".to_owned(),
        correlation_id: "c-1".to_owned(),
        created_at: common::now(),
        dedup_key: Some("agents-risk-down".to_owned()),
    };
    assert_eq!(notifications::insert_system_alert(conn, &alert).await.unwrap(), (alert.clone(), true));
    let again =
        notifications::insert_system_alert(conn, &SystemAlert { id: Uuid::new_v4(), ..alert.clone() }).await.unwrap();
    assert_eq!(again, (alert.clone(), false), "one alert per key");
    assert_eq!(
        notifications::list_system_alerts(conn, None, PageRequest::first(10)).await.unwrap().items,
        vec![alert.clone()]
    );
    assert!(
        notifications::list_system_alerts(conn, Some(&["warning"]), PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn agent_runs_and_decisions_round_trip() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    let user = common::user(conn, "ana").await;

    let run = agents::start_run(conn, Uuid::new_v4(), user.id, RunTrigger::ListingEvent).await.unwrap();
    assert_eq!(run.state, RunState::Running);
    let decision = Decision {
        id: Uuid::new_v4(),
        run_id: run.id,
        user_id: user.id,
        strategy_id: Uuid::new_v4(),
        listing_id: Uuid::new_v4(),
        moment_id: Uuid::new_v4(),
        outcome: DecisionOutcome::Skip,
        reasons: vec!["Confidence 0.55 is below the strategy's 0.70.".to_owned()],
        price_cents: 3500,
        fair_value_cents: 3600,
        confidence: 0.55,
        trade_id: None,
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
    assert_eq!(agents::insert_decision(conn, &decision).await.unwrap(), decision);
    assert_eq!(agents::find_decision(conn, user.id, decision.id).await.unwrap(), Some(decision.clone()));
    let listed = agents::list_decisions(
        conn,
        user.id,
        Some(decision.strategy_id),
        Some(DecisionOutcome::Skip),
        PageRequest::first(10),
    )
    .await
    .unwrap();
    assert_eq!(listed.items, vec![decision.clone()]);
    assert!(
        agents::list_decisions(conn, user.id, None, Some(DecisionOutcome::Buy), PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let finished = agents::finish_run(conn, run.id, 4, 1, None).await.unwrap();
    assert_eq!(
        (finished.state, finished.listings_evaluated, finished.decision_count, finished.purchase_count),
        (RunState::Succeeded, 4, 1, 0)
    );
    assert!(agents::finish_run(conn, run.id, 4, 1, None).await.is_err(), "a run ends once");

    // A purchase waiting for approval expires at its deadline, not before, and only once.
    let deadline = common::now() + chrono::Duration::minutes(30);
    let waiting = Decision {
        id: Uuid::new_v4(),
        outcome: DecisionOutcome::AwaitingApproval,
        reasons: vec!["Waiting for your approval.".to_owned(), "Cheap.".to_owned()],
        reason_code: "awaiting_approval".to_owned(),
        rule: "protections.manual_approval".to_owned(),
        approval_expires_at: Some(deadline),
        ..decision.clone()
    };
    agents::insert_decision(conn, &waiting).await.unwrap();
    assert!(agents::expire_approvals(conn, deadline - chrono::Duration::seconds(1)).await.unwrap().is_empty());
    let expired = agents::expire_approvals(conn, deadline).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!((expired[0].outcome, expired[0].reason_code.as_str()), (DecisionOutcome::Skip, "approval_expired"));
    assert!(
        expired[0].reasons[0].starts_with("Expired: the purchase was not approved by "),
        "{:?}",
        expired[0].reasons
    );
    assert_eq!(&expired[0].reasons[1..], &waiting.reasons[..]);
    assert!(agents::expire_approvals(conn, deadline).await.unwrap().is_empty(), "once");
    // Once expired, neither a decline nor an approval ends it.
    let declined = Decision { outcome: DecisionOutcome::Skip, reason_code: "declined".into(), ..waiting.clone() };
    assert_eq!(agents::end_approval(conn, &declined, false).await.unwrap(), None);
    assert_eq!(
        agents::claim_approval(conn, user.id, waiting.id, deadline - chrono::Duration::minutes(1)).await.unwrap(),
        None
    );

    // Claimed for its approval, a purchase that waits is not declined or expired meanwhile; given
    // back, it can be declined; a claim left behind expires ten minutes after its deadline.
    let second = Decision { id: Uuid::new_v4(), ..waiting.clone() };
    agents::insert_decision(conn, &second).await.unwrap();
    let before = deadline - chrono::Duration::minutes(1);
    assert!(agents::claim_approval(conn, user.id, second.id, before).await.unwrap().is_some());
    assert_eq!(agents::claim_approval(conn, user.id, second.id, before).await.unwrap(), None, "one claim");
    let declined = Decision { id: second.id, ..declined.clone() };
    assert_eq!(agents::end_approval(conn, &declined, false).await.unwrap(), None, "not while claimed");
    assert!(agents::expire_approvals(conn, deadline).await.unwrap().is_empty(), "not while claimed");
    agents::release_approval(conn, second.id).await.unwrap();
    assert!(agents::claim_approval(conn, user.id, second.id, before).await.unwrap().is_some());
    let bought = Decision { outcome: DecisionOutcome::Buy, trade_id: Some(Uuid::new_v4()), ..second.clone() };
    assert_eq!(agents::end_approval(conn, &bought, true).await.unwrap().map(|d| d.outcome), Some(DecisionOutcome::Buy));
    let third = Decision { id: Uuid::new_v4(), ..waiting.clone() };
    agents::insert_decision(conn, &third).await.unwrap();
    agents::claim_approval(conn, user.id, third.id, before).await.unwrap();
    assert!(agents::expire_approvals(conn, deadline + chrono::Duration::minutes(9)).await.unwrap().is_empty());
    let stuck = agents::expire_approvals(conn, deadline + chrono::Duration::minutes(10)).await.unwrap();
    assert_eq!(stuck.iter().map(|d| d.id).collect::<Vec<_>>(), vec![third.id]);
    assert_eq!(agents::find_run(conn, user.id, run.id).await.unwrap(), Some(finished.clone()));
    let failed_run = agents::start_run(conn, Uuid::new_v4(), user.id, RunTrigger::ScheduledScan).await.unwrap();
    let failed =
        agents::finish_run(conn, failed_run.id, 0, 3, Some("risk unavailable after 3 attempts")).await.unwrap();
    assert_eq!(failed.state, RunState::Failed);
    assert_eq!(agents::list_runs(conn, user.id, PageRequest::first(10)).await.unwrap().items.len(), 2);
}

#[tokio::test]
async fn the_outbox_delivers_each_message_to_one_claimer() {
    let db = TestDatabase::create().await;
    let database = db.database();
    let first = outbox::enqueue(
        &mut database.conn().await.unwrap(),
        "notification.send",
        "trade-1",
        &serde_json::json!({"n": 1}),
    )
    .await
    .unwrap();
    outbox::enqueue(&mut database.conn().await.unwrap(), "notification.send", "trade-2", &serde_json::json!({"n": 2}))
        .await
        .unwrap();

    // Two deliverers claim at once, each in its own transaction: no message is taken twice.
    let claim = |database: fastbreak_db::Database| async move {
        database
            .transaction(|conn| {
                Box::pin(async move {
                    let claimed = outbox::claim_due(conn, "notification.send", common::now(), 1).await?;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    Ok(claimed.into_iter().map(|m| m.message_key).collect::<Vec<_>>())
                })
            })
            .await
            .unwrap()
    };
    let (a, b) = tokio::join!(claim(database.clone()), claim(database.clone()));
    let mut keys: Vec<String> = a.into_iter().chain(b).collect();
    keys.sort();
    assert_eq!(keys, ["trade-1", "trade-2"]);

    let mut conn = database.conn().await.unwrap();
    outbox::mark_failed(&mut conn, first.id, "notification unavailable", common::now() + Duration::minutes(1))
        .await
        .unwrap();
    let due = outbox::claim_due(&mut conn, "notification.send", common::now(), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|m| m.message_key.as_str()).collect::<Vec<_>>(),
        ["trade-2"],
        "trade-1 waits for its retry time"
    );
    outbox::mark_delivered(&mut conn, due[0].id).await.unwrap();
    assert!(
        outbox::claim_due(&mut conn, "notification.send", common::now() + Duration::minutes(2), 10)
            .await
            .unwrap()
            .iter()
            .all(|m| m.id == first.id)
    );
}

#[test]
fn types_that_hold_secrets_never_show_them_in_debug_output() {
    let now = common::now();
    let user = users::User {
        id: Uuid::new_v4(),
        display_name: "Ada".into(),
        email: "ada@example.com".into(),
        password_hash: "$argon2id$SECRET-HASH".into(),
        leaderboard_opt_out: false,
        created_at: now,
        updated_at: now,
    };
    let new_user = users::NewUser {
        id: user.id,
        display_name: "Ada",
        email: "ada@example.com",
        password_hash: "$argon2id$SECRET-HASH",
    };
    let token = users::AccessToken {
        id: Uuid::new_v4(),
        user_id: user.id,
        token_hash: "SECRET-TOKEN-DIGEST".into(),
        label: "laptop".into(),
        created_at: now,
        expires_at: now,
        revoked_at: None,
    };
    let preferences = Preferences {
        user_id: user.id,
        webhook_min_priority: Priority::High,
        webhook_url: Some("https://hooks.example.com".into()),
        muted_categories: vec![],
        webhook_secret: Some("whsec_SECRET".into()),
        updated_at: now,
    };
    for shown in [format!("{user:?}"), format!("{new_user:?}"), format!("{token:?}"), format!("{preferences:?}")] {
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
