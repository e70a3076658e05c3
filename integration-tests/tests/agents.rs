//! The agents over real gRPC with every peer they use (strategy, scouting, marketplace,
//! trading with risk, user and notification): a listing event reaches the loop, a strategy
//! matches, scouting values the moment, and the agents buy or skip, recording why; a replayed
//! stream decides nothing twice.

use std::time::Duration;

use chrono::Utc;
use fastbreak_db::repo::market::{self, ListingEventKind};
use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::agents::v1::agent_service_client::AgentServiceClient;
use fastbreak_proto::agents::v1::{
    DecisionOutcome, DecisionReason, GetAutomationStatusRequest, GetDecisionRequest, ListAgentRunsRequest,
    ListDecisionsRequest, PauseAutomationRequest, ResumeAutomationRequest, RunState, RunTrigger, StartScanRequest,
};
use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::notification::v1::{ListNotificationsRequest, ListSystemAlertsRequest};
use fastbreak_proto::scouting::v1::scouting_internal_service_client::ScoutingInternalServiceClient;
use fastbreak_proto::scouting::v1::{GameEvent, IngestGameEventRequest, PlayerGameStats};
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::strategy::v1::{
    ActivateStrategyRequest, ArbitrageModeParameters, CreateStrategyRequest, DailyScan, PostGameSpikeParameters, Stat,
    StatTrigger, Strategy, StrategyRules, UpdateStrategyRequest,
};
use fastbreak_proto::trading::v1::{GetTradeRequest, TradeState};
use futures::FutureExt;
use tonic::transport::Channel;
use uuid::Uuid;

async fn channel(mesh: &TradingMesh, name: &str) -> Channel {
    let addr = mesh.addrs.iter().find(|(n, _)| *n == name).unwrap().1;
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

/// A funded user with an active post-game-spike strategy (20% discount, confidence 0.05) on a
/// play with five recent sales at 20.00 and eight of its moments listed at 20.00; (user, the
/// listings, the player, the strategy).
async fn setup(mesh: &TradingMesh) -> (Uuid, Vec<Uuid>, String, Strategy, StrategyServiceClient<Channel>) {
    let (user, _) = mesh.funded_user(50_000).await;
    let listings = mesh.list_market_moments(8, "simulator", 2_000).await;
    // Five of the play's moments sold lately at 20.00: scouting's comparables.
    let for_sales = listings.clone();
    let player = mesh
        .pool
        .read(move |conn| {
            async move {
                let mut player = String::new();
                for (i, listing) in for_sales.iter().take(5).enumerate() {
                    let found = market::find_listing(conn, *listing).await?.expect("a listing");
                    let moment = market::find_moment(conn, found.moment_id).await?.expect("a moment");
                    player = moment.player_id.clone();
                    market::record_sale(
                        conn,
                        &market::Sale {
                            id: Uuid::new_v4(),
                            moment_id: moment.id,
                            listing_id: None,
                            source_id: "simulator".to_owned(),
                            price_cents: 2_000,
                            seller_address: found.seller_address.clone(),
                            buyer_address: "0x00000000000000aa".to_owned(),
                            sold_at: Utc::now() - chrono::Duration::days(i as i64 + 1),
                        },
                    )
                    .await?;
                }
                Ok(player)
            }
            .boxed()
        })
        .await
        .unwrap();

    let mut strategies = StrategyServiceClient::new(channel(mesh, "strategy").await);
    let strategy = Strategy {
        display_name: "Bargains".into(),
        rules: Some(StrategyRules {
            min_confidence: 0.05,
            min_discount_bps: 2_000,
            max_price_cents: 5_000,
            max_purchases_per_day: 3,
        }),
        parameters: Some(Parameters::PostGameSpike(PostGameSpikeParameters {
            min_game_score: 40,
            buy_window_minutes: 360,
            player_ids: vec![player.clone()],
            rarities: vec![Rarity::Common as i32],
            stat_triggers: vec![StatTrigger { stat: Stat::Points as i32, at_least: 40 }],
        })),
        ..Default::default()
    };
    let created = strategies
        .create_strategy(as_user(CreateStrategyRequest { strategy: Some(strategy), validate_only: false }, user))
        .await
        .unwrap()
        .into_inner();
    strategies
        .activate_strategy(as_user(ActivateStrategyRequest { strategy_id: created.strategy_id.clone() }, user))
        .await
        .unwrap();

    (user, listings, player, created, strategies)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_event_is_bought_or_skipped_with_its_reasons_and_never_twice() {
    let mut mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, listings, player, created, mut strategies) = setup(&mesh).await;

    // Two price changes reach the stream: 10.00 (50% under fair value) and 19.50 (2.5% under).
    let (cheap, close) = (listings[5], listings[6]);
    mesh.pool
        .read_committed(move |conn| {
            async move {
                market::lock_listing_events(conn).await?;
                market::update_listing_price(conn, cheap, 1_000).await?;
                market::update_listing_price(conn, close, 1_950).await?;
                market::append_listing_events(
                    conn,
                    &[(ListingEventKind::PriceChanged, cheap, 1_000), (ListingEventKind::PriceChanged, close, 1_950)],
                )
                .await
            }
            .boxed()
        })
        .await
        .unwrap();

    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let decisions = loop {
        let found =
            agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.unwrap().into_inner().decisions;
        if found.len() >= 2 {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "two decisions within 30 s: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bought = decisions.iter().find(|d| d.listing_id == cheap.to_string()).expect("a decision on the cheap listing");
    assert_eq!(bought.outcome(), DecisionOutcome::Buy, "{bought:?}");
    assert_eq!((bought.reason(), bought.rule.as_str()), (DecisionReason::Bought, "all_rules_passed"));
    assert!(!bought.valuation_id.is_empty() && !bought.factors.is_empty(), "the valuation and its factors: {bought:?}");
    assert!(bought.fair_value_cents > 1_000 && bought.reasons[0].starts_with("Bought"), "{bought:?}");
    let trade = mesh
        .trading()
        .await
        .get_trade(as_user(GetTradeRequest { trade_id: bought.trade_id.clone() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(trade.state(), TradeState::Settled);
    assert_eq!(
        (trade.decision_id.as_str(), trade.strategy_id.as_str()),
        (bought.decision_id.as_str(), created.strategy_id.as_str())
    );
    assert_eq!(trade.valuation_id, bought.valuation_id);

    let skipped =
        decisions.iter().find(|d| d.listing_id == close.to_string()).expect("a decision on the close listing");
    assert_eq!(skipped.outcome(), DecisionOutcome::Skip, "{skipped:?}");
    assert_eq!((skipped.reason(), skipped.rule.as_str()), (DecisionReason::SmallDiscount, "min_discount_bps"));
    assert!(skipped.reasons[0].contains("below \"Bargains\"'s minimum of 20.0%"), "{:?}", skipped.reasons);
    let read = agents
        .get_decision(as_user(GetDecisionRequest { decision_id: skipped.decision_id.clone() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.decision_id, skipped.decision_id);
    let only_buys = agents
        .list_decisions(as_user(
            ListDecisionsRequest { outcome: DecisionOutcome::Buy.into(), ..Default::default() },
            user,
        ))
        .await
        .unwrap()
        .into_inner()
        .decisions;
    assert_eq!(only_buys.len(), 1);
    // Another user cannot read them.
    let stranger = mesh.database.create_user().await;
    let hidden =
        agents.get_decision(as_user(GetDecisionRequest { decision_id: bought.decision_id.clone() }, stranger)).await;
    assert_eq!(hidden.unwrap_err().code(), tonic::Code::NotFound);

    // The stream replayed from the start (a lost cursor): nothing is decided or bought twice.
    mesh.stop_target("agents").await;
    mesh.pool
        .read_committed(|conn| {
            async move {
                use diesel_async::RunQueryDsl;
                diesel::sql_query("UPDATE agent_cursors SET sequence = 0").execute(conn).await?;
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    mesh.start_target("agents").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let again =
        agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.unwrap().into_inner().decisions;
    assert_eq!(again.len(), 2, "no decision twice: {again:?}");

    // A scan by hand looks at the market's listings for the user's strategies; under a key, once.
    let scan = StartScanRequest { idempotency_key: "scan-1".into(), ..Default::default() };
    let run = agents.start_scan(as_user(scan.clone(), user)).await.unwrap().into_inner();
    assert_eq!(run.state(), RunState::Succeeded, "{run:?}");
    assert!(run.listings_evaluated >= 6, "{run:?}");
    let again = agents.start_scan(as_user(scan, user)).await.unwrap().into_inner();
    assert_eq!(again.run_id, run.run_id, "the same key answers the first run");

    // Paused, the user's automation decides nothing; resumed, it does again.
    let paused = agents
        .pause_automation(as_user(PauseAutomationRequest { reason: "on holiday".into() }, user))
        .await
        .unwrap()
        .into_inner();
    assert!(paused.paused && paused.reason == "on holiday");
    let before = agents
        .list_decisions(as_user(ListDecisionsRequest::default(), user))
        .await
        .unwrap()
        .into_inner()
        .decisions
        .len();
    let quiet = agents.start_scan(as_user(StartScanRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(quiet.decision_count, 0, "nothing decided while paused: {quiet:?}");
    let after = agents
        .list_decisions(as_user(ListDecisionsRequest::default(), user))
        .await
        .unwrap()
        .into_inner()
        .decisions
        .len();
    assert_eq!(before, after);
    let resumed = agents.resume_automation(as_user(ResumeAutomationRequest {}, user)).await.unwrap().into_inner();
    assert!(!resumed.paused);
    assert!(
        !agents.get_automation_status(as_user(GetAutomationStatusRequest {}, user)).await.unwrap().into_inner().paused
    );
    // A quiet game starts nothing; a 45-point game starts a run for the strategy that watches
    // the player, naming the event, over his listed moments.
    let mut scouting = ScoutingInternalServiceClient::new(channel(&mesh, "scouting").await);
    for (event_id, points) in [("quiet-night", 10), ("big-night", 45)] {
        let event = GameEvent {
            event_id: event_id.to_owned(),
            game_id: format!("game-{event_id}"),
            player_id: player.clone(),
            stats: Some(PlayerGameStats {
                game_time: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
                opponent_code: "LAL".to_owned(),
                minutes: 36,
                points,
                rebounds: 8,
                assists: 5,
                ..Default::default()
            }),
            r#final: true,
            ..Default::default()
        };
        scouting.ingest_game_event(internal(IngestGameEventRequest { event: Some(event) })).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let game_runs = loop {
        let runs =
            agents.list_agent_runs(as_user(ListAgentRunsRequest::default(), user)).await.unwrap().into_inner().runs;
        let game: Vec<_> = runs
            .into_iter()
            .filter(|r| r.trigger() == RunTrigger::GameEvent && r.state() != RunState::Running)
            .collect();
        if !game.is_empty() {
            break game;
        }
        assert!(tokio::time::Instant::now() < deadline, "a game-event run within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(game_runs.len(), 1, "only the big night triggers: {game_runs:?}");
    assert_eq!(game_runs[0].state(), RunState::Succeeded, "{:?}", game_runs[0]);
    assert!(game_runs[0].listings_evaluated >= 1 && game_runs[0].decision_count >= 1, "{:?}", game_runs[0]);
    let from_game = agents
        .list_decisions(as_user(
            ListDecisionsRequest { run_id: game_runs[0].run_id.clone(), ..Default::default() },
            user,
        ))
        .await
        .unwrap()
        .into_inner()
        .decisions;
    assert_eq!(from_game.len() as i32, game_runs[0].decision_count);

    // A daily scan at midnight UTC: its latest slot (today's) runs once, and not again after a
    // restart.
    let mut scheduled = created.clone();
    scheduled.daily_scan = Some(DailyScan { time_of_day: "00:00".into(), time_zone: "UTC".into() });
    strategies
        .update_strategy(as_user(
            UpdateStrategyRequest {
                strategy: Some(scheduled),
                update_mask: Some(prost_types::FieldMask { paths: vec!["daily_scan".into()] }),
                validate_only: false,
            },
            user,
        ))
        .await
        .unwrap();
    let scheduled_runs = |runs: Vec<fastbreak_proto::agents::v1::AgentRun>| {
        runs.into_iter().filter(|r| r.trigger() == RunTrigger::ScheduledScan).collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let runs =
            agents.list_agent_runs(as_user(ListAgentRunsRequest::default(), user)).await.unwrap().into_inner().runs;
        let found = scheduled_runs(runs);
        if found.iter().any(|r| r.state() == RunState::Succeeded) {
            assert_eq!(found.len(), 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the daily scan ran within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mesh.stop_target("agents").await;
    mesh.start_target("agents").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let runs = agents.list_agent_runs(as_user(ListAgentRunsRequest::default(), user)).await.unwrap().into_inner().runs;
    assert_eq!(scheduled_runs(runs).len(), 1, "a slot never runs twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_that_stays_down_is_recorded_and_alerts_the_user_and_the_operators() {
    let mut mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, listings, _, _, _) = setup(&mesh).await;
    // Scouting is down: the decision says the moment could not be valued, and the user hears.
    mesh.stop_target("scouting").await;
    let cheap = listings[5];
    mesh.pool
        .read_committed(move |conn| {
            async move {
                market::lock_listing_events(conn).await?;
                market::update_listing_price(conn, cheap, 1_000).await?;
                market::append_listing_events(conn, &[(ListingEventKind::PriceChanged, cheap, 1_000)]).await
            }
            .boxed()
        })
        .await
        .unwrap();
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let decision = loop {
        let found =
            agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.unwrap().into_inner().decisions;
        if let Some(decision) = found.into_iter().next() {
            break decision;
        }
        assert!(tokio::time::Instant::now() < deadline, "a decision within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(decision.outcome(), DecisionOutcome::Skip, "{decision:?}");
    assert_eq!(decision.reason(), DecisionReason::ServiceUnavailable);
    assert!(decision.data_incomplete && decision.reasons[0].contains("scouting could not be reached"), "{decision:?}");
    let mut notifications = NotificationServiceClient::new(channel(&mesh, "notification").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = notifications
            .list_notifications(as_user(ListNotificationsRequest::default(), user))
            .await
            .unwrap()
            .into_inner()
            .notifications;
        if found.iter().any(|n| n.title == "Your automation is held up") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the user is told: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Strategy is down: the listing loop cannot decide, keeps its place, and the operators hear
    // of it after three failures in a row; once strategy is back, the loop goes on by itself.
    mesh.stop_target("strategy").await;
    let close = listings[6];
    mesh.pool
        .read_committed(move |conn| {
            async move {
                market::lock_listing_events(conn).await?;
                market::update_listing_price(conn, close, 1_500).await?;
                market::append_listing_events(conn, &[(ListingEventKind::PriceChanged, close, 1_500)]).await
            }
            .boxed()
        })
        .await
        .unwrap();
    let mut operators = NotificationInternalServiceClient::new(channel(&mesh, "notification").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let alerts = operators
            .list_system_alerts(internal(ListSystemAlertsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .alerts;
        if alerts.iter().any(|a| a.source == "agents" && a.message.contains("listing stream")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the operators are told within 40 s: {alerts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    mesh.start_target("strategy").await;
    mesh.start_target("scouting").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found =
            agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.unwrap().into_inner().decisions;
        if found.iter().any(|d| d.listing_id == close.to_string()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the loop resumes by itself once strategy is back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_arbitrage_mode_strategy_buys_and_relists_an_opportunity_once() {
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, _) = mesh.funded_user(50_000).await;
    mesh.list_market_moments(0, "east", 1).await;
    // Two moments of one play: one listed at 10.00 on the simulator, the other at 20.00 on east.
    let listings = mesh.list_market_moments(2, "simulator", 1_000).await;
    let dear = listings[1];
    mesh.pool
        .read_committed(move |conn| {
            async move {
                use diesel_async::RunQueryDsl;
                diesel::sql_query("UPDATE listings SET source_id = 'east', price_cents = 2000 WHERE id = $1")
                    .bind::<diesel::sql_types::Uuid, _>(dear)
                    .execute(conn)
                    .await?;
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    let mut strategies = StrategyServiceClient::new(channel(&mesh, "strategy").await);
    let strategy = Strategy {
        display_name: "Spreads".into(),
        rules: Some(StrategyRules {
            min_confidence: 0.5,
            min_discount_bps: 0,
            max_price_cents: 5_000,
            max_purchases_per_day: 3,
        }),
        parameters: Some(Parameters::ArbitrageMode(ArbitrageModeParameters {
            min_spread_bps: 100,
            buy_source_ids: Vec::new(),
            relist_source_ids: Vec::new(),
            auto_relist: true,
        })),
        ..Default::default()
    };
    let created = strategies
        .create_strategy(as_user(CreateStrategyRequest { strategy: Some(strategy), validate_only: false }, user))
        .await
        .unwrap()
        .into_inner();
    strategies
        .activate_strategy(as_user(ActivateStrategyRequest { strategy_id: created.strategy_id.clone() }, user))
        .await
        .unwrap();
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let decision = loop {
        let found =
            agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.unwrap().into_inner().decisions;
        if let Some(decision) = found.into_iter().find(|d| d.listing_id == listings[0].to_string()) {
            break decision;
        }
        assert!(tokio::time::Instant::now() < deadline, "an arbitrage decision within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(decision.outcome(), DecisionOutcome::Buy, "{decision:?}");
    assert!(decision.reasons[0].contains("to relist on east"), "{:?}", decision.reasons);
    let trades = mesh
        .trading()
        .await
        .list_trades(as_user(fastbreak_proto::trading::v1::ListTradesRequest::default(), user))
        .await
        .unwrap()
        .into_inner()
        .trades;
    let relist = trades
        .iter()
        .find(|t| t.kind() == fastbreak_proto::trading::v1::TradeKind::SaleListing)
        .expect("the moment is relisted");
    assert_eq!(relist.source_id, "east");
    // Looked at again and again, the opportunity (now gone) is not acted on twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = agents.list_agent_runs(as_user(ListAgentRunsRequest::default(), user)).await.unwrap().into_inner().runs;
    assert_eq!(runs.iter().filter(|r| r.trigger() == RunTrigger::Arbitrage).count(), 1, "{runs:?}");
}
