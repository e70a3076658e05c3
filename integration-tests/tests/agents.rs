//! The agents over real gRPC with every peer they use (strategy, scouting, marketplace,
//! trading with risk, user and notification): a listing event reaches the loop, a strategy
//! matches, scouting values the moment, and the agents buy or skip, recording why; a replayed
//! stream decides nothing twice.

use std::time::Duration;

use chrono::Utc;
use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_integration_tests::until;
use fastbreak_marketplace::store as market;
use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::agents::v1::agent_internal_service_client::AgentInternalServiceClient;
use fastbreak_proto::agents::v1::agent_service_client::AgentServiceClient;
use fastbreak_proto::agents::v1::{
    DecisionOutcome, DecisionReason, GetAutomationHealthRequest, GetAutomationStatusRequest, GetDecisionRequest,
    ListAgentRunsRequest, ListDecisionsRequest, PauseAutomationRequest, ResumeAutomationRequest, RunState, RunTrigger,
    StartScanRequest,
};
use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::notification::v1::{ListNotificationsRequest, ListSystemAlertsRequest};
use fastbreak_proto::scouting::v1::scouting_internal_service_client::ScoutingInternalServiceClient;
use fastbreak_proto::scouting::v1::{GameEvent, IngestGameEventRequest, PlayerGameStats, ValueListingRequest};
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::strategy::v1::{
    ActivateStrategyRequest, ArbitrageModeParameters, CreateStrategyRequest, DailyScan, PostGameSpikeParameters,
    RookieRisersParameters, Stat, StatTrigger, Strategy, StrategyRules, UpdateStrategyRequest,
};
use fastbreak_proto::trading::v1::{GetTradeRequest, TradeState};
use futures::FutureExt;
use tonic::transport::Channel;
use uuid::Uuid;

async fn channel(mesh: &TradingMesh, name: &str) -> Channel {
    let addr = mesh.addrs.iter().find(|(n, _)| *n == name).unwrap().1;
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

/// The user's decisions, asked for until `pick` finds what it wants in them (`within` at most).
async fn decided<T>(
    mesh: &TradingMesh,
    user: Uuid,
    what: &str,
    within: Duration,
    pick: impl Fn(Vec<fastbreak_proto::agents::v1::Decision>) -> Option<T>,
) -> T {
    let agents = AgentServiceClient::new(channel(mesh, "agents").await);
    until(what, within, || {
        let mut agents = agents.clone();
        let pick = &pick;
        async move {
            let found = agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.ok()?;
            pick(found.into_inner().decisions)
        }
    })
    .await
}

/// One of the user's trades, as trading answers the user.
async fn trade_of(mesh: &TradingMesh, user: Uuid, trade_id: &str) -> fastbreak_proto::trading::v1::Trade {
    let request = GetTradeRequest { trade_id: trade_id.to_owned() };
    mesh.trading().await.get_trade(as_user(request, user)).await.unwrap().into_inner()
}

/// The user's runs, asked for until `pick` finds what it wants in them (`within` at most).
async fn ran<T>(
    mesh: &TradingMesh,
    user: Uuid,
    what: &str,
    pick: impl Fn(Vec<fastbreak_proto::agents::v1::AgentRun>) -> Option<T>,
) -> T {
    let agents = AgentServiceClient::new(channel(mesh, "agents").await);
    until(what, Duration::from_secs(30), || {
        let mut agents = agents.clone();
        let pick = &pick;
        async move {
            let found = agents.list_agent_runs(as_user(ListAgentRunsRequest::default(), user)).await.ok()?;
            pick(found.into_inner().runs)
        }
    })
    .await
}

/// Waits (`within` at most) until the user has a notification that `wanted` accepts.
async fn user_told(
    mesh: &TradingMesh,
    user: Uuid,
    within: Duration,
    wanted: impl Fn(&fastbreak_proto::notification::v1::Notification) -> bool,
) {
    let notifications = NotificationServiceClient::new(channel(mesh, "notification").await);
    until("the user is told", within, || {
        let mut notifications = notifications.clone();
        let wanted = &wanted;
        async move {
            let found =
                notifications.list_notifications(as_user(ListNotificationsRequest::default(), user)).await.ok()?;
            found.into_inner().notifications.iter().any(wanted).then_some(())
        }
    })
    .await
}

/// Waits (`within` at most) until the operators' system alerts from the agents hold every one
/// of `texts`.
async fn operators_told(mesh: &TradingMesh, within: Duration, texts: &[&str]) {
    let operators = NotificationInternalServiceClient::new(channel(mesh, "notification").await);
    until("the operators are told", within, || {
        let mut operators = operators.clone();
        async move {
            let found = operators.list_system_alerts(internal(ListSystemAlertsRequest::default())).await.ok()?;
            let alerts = found.into_inner().alerts;
            let told = |text: &str| alerts.iter().any(|a| a.source == "agents" && a.message.contains(text));
            texts.iter().all(|text| told(text)).then_some(())
        }
    })
    .await
}

/// A funded user with an active post-game-spike strategy (20% discount, confidence 0.05) on a
/// play with five recent sales at 20.00 and eight of its moments listed at 20.00; (user, the
/// listings, the player, the strategy).
async fn setup(mesh: &TradingMesh) -> (Uuid, Vec<Uuid>, String, Strategy, StrategyServiceClient<Channel>) {
    setup_funded(mesh, 50_000).await
}

/// As `setup`, the user funded with `funds` cents.
async fn setup_funded(
    mesh: &TradingMesh,
    funds: i64,
) -> (Uuid, Vec<Uuid>, String, Strategy, StrategyServiceClient<Channel>) {
    let (user, _) = mesh.funded_user(funds).await;
    let listings = mesh.list_market_moments(8, "simulator", 2_000).await;
    // Five of the play's moments sold lately at 20.00 (scouting's comparables), and a standout
    // game an hour ago: the post-game-spike strategy's window is open.
    let player = mesh.record_sales(&listings[..5], 2_000).await;
    mesh.standout_game(&player).await;

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
    reprice(&mesh, &[(cheap, 1_000), (close, 1_950)]).await;

    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let decisions =
        decided(&mesh, user, "two decisions", Duration::from_secs(30), |found| (found.len() >= 2).then_some(found))
            .await;
    let bought = decisions.iter().find(|d| d.listing_id == cheap.to_string()).expect("a decision on the cheap listing");
    assert_eq!(bought.outcome(), DecisionOutcome::Buy, "{bought:?}");
    assert_eq!((bought.reason(), bought.rule.as_str()), (DecisionReason::Bought, "all_rules_passed"));
    assert!(!bought.valuation_id.is_empty() && !bought.factors.is_empty(), "the valuation and its factors: {bought:?}");
    assert!(bought.fair_value_cents > 1_000 && bought.reasons[0].starts_with("Bought"), "{bought:?}");
    let trade = trade_of(&mesh, user, &bought.trade_id).await;
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
    // A discount of more than half the 20% wanted is a near miss: the skip keeps the valuation's
    // factors, as a purchase does.
    assert!(!skipped.factors.is_empty() && !skipped.valuation_id.is_empty(), "{skipped:?}");
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
    let game_runs = ran(&mesh, user, "a game-event run", |runs| {
        let game: Vec<_> = runs
            .into_iter()
            .filter(|r| r.trigger() == RunTrigger::GameEvent && r.state() != RunState::Running)
            .collect();
        (!game.is_empty()).then_some(game)
    })
    .await;
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
    let found = ran(&mesh, user, "the daily scan ran", |runs| {
        let found = scheduled_runs(runs);
        found.iter().any(|r| r.state() == RunState::Succeeded).then_some(found)
    })
    .await;
    assert_eq!(found.len(), 1);
    mesh.stop_target("agents").await;
    mesh.start_target("agents").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let runs = agents.list_agent_runs(as_user(ListAgentRunsRequest::default(), user)).await.unwrap().into_inner().runs;
    assert_eq!(scheduled_runs(runs).len(), 1, "a slot never runs twice");
}

/// A purchase refused once does not stand in the way of a later decision on the listing: the
/// user adds funds, and a scan buys what the listing event could not afford.
#[tokio::test(flavor = "multi_thread")]
async fn a_listing_refused_for_want_of_funds_is_bought_by_a_later_scan() {
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, listings, _, created, _) = setup_funded(&mesh, 500).await;
    let cheap = listings[5];
    reprice(&mesh, &[(cheap, 1_000)]).await;
    let refused = decision_on(&mesh, user, &created, cheap).await;
    assert_eq!((refused.outcome(), refused.rule.as_str()), (DecisionOutcome::Refused, "trading"), "{refused:?}");

    mesh.trading()
        .await
        .deposit_funds(as_user(
            fastbreak_proto::trading::v1::DepositFundsRequest {
                amount_cents: 5_000,
                idempotency_key: "more-funds".into(),
            },
            user,
        ))
        .await
        .unwrap();
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let scan = StartScanRequest { strategy_id: created.strategy_id.clone(), ..Default::default() };
    let run = agents.start_scan(as_user(scan, user)).await.unwrap().into_inner();
    let decisions = agents
        .list_decisions(as_user(ListDecisionsRequest { run_id: run.run_id.clone(), ..Default::default() }, user))
        .await
        .unwrap()
        .into_inner()
        .decisions;
    let bought = decisions.iter().find(|d| d.listing_id == cheap.to_string()).expect("the scan decides on the listing");
    assert_eq!((bought.outcome(), bought.rule.as_str()), (DecisionOutcome::Buy, "all_rules_passed"), "{bought:?}");
    let buys = decisions.iter().filter(|d| d.outcome() == DecisionOutcome::Buy).count();
    assert_eq!(usize::try_from(run.purchase_count).unwrap(), buys, "{run:?}");
    let trade = trade_of(&mesh, user, &bought.trade_id).await;
    assert_eq!((trade.state(), trade.decision_id.as_str()), (TradeState::Settled, bought.decision_id.as_str()));
}

/// A listing event decided late is judged as the market stood at the event: the sales recorded
/// after it do not count, however long the agents took to reach it.
#[tokio::test(flavor = "multi_thread")]
async fn a_listing_event_decided_late_is_valued_as_the_market_stood_at_the_event() {
    let mut mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, listings, _, created, _) = setup(&mesh).await;
    mesh.stop_target("agents").await;
    let cheap = listings[5];
    reprice(&mesh, &[(cheap, 1_000)]).await;
    // After the event, while the agents are away, the play sells five times at 3.00.
    mesh.record_sales_at(&listings[..5], 300, |_| Utc::now()).await;
    // Valued now, the listing is no bargain any more ...
    let mut scouting = ScoutingInternalServiceClient::new(channel(&mesh, "scouting").await);
    let now = scouting
        .value_listing(internal(ValueListingRequest { listing_id: cheap.to_string(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert!(now.fair_value_cents < 1_000, "the later sales bring its value under the price: {now:?}");

    // ... but the agents, back, judge it at its event, from the sales before it, and buy.
    mesh.start_target("agents").await;
    let decision = decision_on(&mesh, user, &created, cheap).await;
    assert_eq!(
        (decision.outcome(), decision.rule.as_str()),
        (DecisionOutcome::Buy, "all_rules_passed"),
        "{decision:?}"
    );
    assert!(decision.fair_value_cents > 1_000, "{decision:?}");
    // Its valuation says the instant it valued at: the event's, before it was computed.
    let id = Uuid::parse_str(&decision.valuation_id).unwrap();
    let (valuation, _) = mesh
        .pool
        .read(move |conn| async move { fastbreak_scouting::store::find_valuation(conn, id).await }.boxed())
        .await
        .unwrap()
        .expect("the decision's valuation is stored");
    assert!(valuation.valued_at < valuation.computed_at, "{valuation:?}");
    assert_eq!(valuation.fair_value_cents, decision.fair_value_cents);
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
            async move { market::reprice_listings(conn, &[(cheap, 1_000)]).await.map(drop) }.boxed()
        })
        .await
        .unwrap();
    let decision = decided(&mesh, user, "a decision", Duration::from_secs(30), |found| found.into_iter().next()).await;
    assert_eq!(decision.outcome(), DecisionOutcome::Skip, "{decision:?}");
    assert_eq!(decision.reason(), DecisionReason::ServiceUnavailable);
    assert!(decision.data_incomplete && decision.reasons[0].contains("scouting could not be reached"), "{decision:?}");
    user_told(&mesh, user, Duration::from_secs(10), |n| n.title == "Your automation is held up").await;
    // Strategy is down: the listing loop cannot decide, keeps its place, and the operators hear
    // of it after three failures in a row; once strategy is back, the loop goes on by itself.
    mesh.stop_target("strategy").await;
    let close = listings[6];
    mesh.pool
        .read_committed(move |conn| {
            async move { market::reprice_listings(conn, &[(close, 1_500)]).await.map(drop) }.boxed()
        })
        .await
        .unwrap();
    operators_told(&mesh, Duration::from_secs(40), &["listing stream"]).await;
    mesh.start_target("strategy").await;
    mesh.start_target("scouting").await;
    decided(&mesh, user, "the loop resumes by itself once strategy is back", Duration::from_secs(30), |found| {
        found.iter().any(|d| d.listing_id == close.to_string()).then_some(())
    })
    .await;
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
    let decision = decided(&mesh, user, "an arbitrage decision", Duration::from_secs(30), |found| {
        found.into_iter().find(|d| d.listing_id == listings[0].to_string())
    })
    .await;
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

/// A strategy, created and activated for `user`.
async fn active_strategy(strategies: &mut StrategyServiceClient<Channel>, user: Uuid, strategy: Strategy) -> Strategy {
    let created = strategies
        .create_strategy(as_user(CreateStrategyRequest { strategy: Some(strategy), validate_only: false }, user))
        .await
        .unwrap()
        .into_inner();
    strategies
        .activate_strategy(as_user(ActivateStrategyRequest { strategy_id: created.strategy_id.clone() }, user))
        .await
        .unwrap();
    created
}

#[derive(diesel::QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// One number from the test database.
async fn count(mesh: &TradingMesh, sql: &'static str, users: &[Uuid]) -> i64 {
    let users = users.to_vec();
    mesh.pool
        .read(move |conn| {
            let users = users.clone();
            async move {
                use diesel_async::RunQueryDsl;
                let found: Count = diesel::sql_query(sql)
                    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(users)
                    .get_result(conn)
                    .await?;
                Ok(found.n)
            }
            .boxed()
        })
        .await
        .unwrap()
}

/// Rows of one text column, `text`, from the test database.
async fn texts(mesh: &TradingMesh, sql: &'static str, users: &[Uuid]) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    let users = users.to_vec();
    mesh.pool
        .read(move |conn| {
            let users = users.clone();
            async move {
                use diesel_async::RunQueryDsl;
                let found: Vec<Text> = diesel::sql_query(sql)
                    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(users)
                    .load(conn)
                    .await?;
                Ok(found.into_iter().map(|t| t.text).collect())
            }
            .boxed()
        })
        .await
        .unwrap()
}

/// Waits until the market is quiet (no listing event for 2 s) and the agents have followed its
/// listing stream to the end; the last sequence.
async fn market_followed(mesh: &TradingMesh, within: Duration) -> i64 {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = (-1, tokio::time::Instant::now());
    loop {
        let newest =
            count(mesh, "SELECT coalesce(max(sequence), 0) AS n FROM listing_events WHERE $1 IS NOT NULL", &[]).await;
        let cursor = count(
            mesh,
            "SELECT coalesce(max(sequence), 0) AS n FROM agent_cursors \
             WHERE stream = 'marketplace.listing_events' AND $1 IS NOT NULL",
            &[],
        )
        .await;
        if newest != last.0 {
            last = (newest, tokio::time::Instant::now());
        }
        if newest > 0 && cursor >= newest && last.1.elapsed() > Duration::from_secs(2) {
            return newest;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agents follow the market to its end within {within:?}: {cursor} of {newest}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_market_day_buys_only_what_fits_within_the_limits_and_decides_every_listing_once() {
    let mut mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let mut strategies = StrategyServiceClient::new(channel(&mesh, "strategy").await);
    // Three collectors, each with 30.00 a day and 12.00 a moment.
    let mut users = Vec::new();
    for _ in 0..3 {
        let (user, _) = mesh.funded_user(50_000).await;
        mesh.set_limits(user, 3_000, 1_200).await;
        users.push(user);
    }
    let rules = |min_discount_bps| StrategyRules {
        min_confidence: 0.2,
        min_discount_bps,
        max_price_cents: 4_000,
        max_purchases_per_day: 20,
    };
    let spike = |priority, min_discount_bps| Strategy {
        display_name: "Standout games".into(),
        priority,
        rules: Some(rules(min_discount_bps)),
        parameters: Some(Parameters::PostGameSpike(PostGameSpikeParameters {
            min_game_score: 25,
            buy_window_minutes: 4_320,
            ..Default::default()
        })),
        ..Default::default()
    };
    let rookies = |priority, min_discount_bps| Strategy {
        display_name: "Young players".into(),
        priority,
        rules: Some(rules(min_discount_bps)),
        parameters: Some(Parameters::RookieRisers(RookieRisersParameters {
            max_seasons_played: 3,
            min_performance_rise_percent: 0.0,
            ..Default::default()
        })),
        ..Default::default()
    };
    let mut made = Vec::new();
    made.push(active_strategy(&mut strategies, users[0], spike(1, 500)).await);
    made.push(active_strategy(&mut strategies, users[1], rookies(1, 200)).await);
    made.push(active_strategy(&mut strategies, users[2], spike(2, 300)).await);
    made.push(active_strategy(&mut strategies, users[2], rookies(1, 300)).await);

    // A market day and a half: 36 simulated hours, as fast as the market ingests them.
    let started = std::time::Instant::now();
    mesh.start_simulator(36).await;
    let newest = market_followed(&mesh, Duration::from_secs(120)).await;
    let considered = count(
        &mesh,
        "SELECT count(*) AS n FROM listing_events WHERE kind IN ('created', 'price_changed') AND $1 IS NOT NULL",
        &[],
    )
    .await;
    let decided = count(
        &mesh,
        "SELECT count(*) AS n FROM decisions WHERE user_id = ANY($1) AND event_sequence IS NOT NULL",
        &users,
    )
    .await;
    let reasons = texts(
        &mesh,
        "SELECT concat(reason_code, ' ', count(*)) AS text FROM decisions WHERE user_id = ANY($1) \
         GROUP BY reason_code ORDER BY reason_code",
        &users,
    )
    .await;
    println!(
        "a market day: {newest} listing events, {considered} listings offered, {decided} decisions in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        reasons.join(", ")
    );

    // Every listing offered (listed or repriced) has exactly one decision per strategy.
    assert!(considered > 50, "the simulated day lists moments: {considered}");
    assert_eq!(decided, considered * 4, "one decision per listing offered and strategy");
    let undecided = count(
        &mesh,
        "SELECT count(*) AS n FROM listing_events e CROSS JOIN strategies s \
         WHERE s.user_id = ANY($1) AND e.kind IN ('created', 'price_changed') \
         AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.strategy_id = s.id AND d.event_sequence = e.sequence)",
        &users,
    )
    .await;
    assert_eq!(undecided, 0, "every listing offered is decided for every strategy");
    let unexplained = count(
        &mesh,
        "SELECT count(*) AS n FROM decisions WHERE user_id = ANY($1) \
         AND (reason_code = '' OR rule = '' OR reasons[1] IS NULL OR reasons[1] = '')",
        &users,
    )
    .await;
    assert_eq!(unexplained, 0, "every decision has its reason code, rule and sentence");
    // A skip keeps the valuation's factors only when it was a near miss (a discount of half the
    // strategy's minimum, a confidence within 0.1 of its minimum); the others keep their reason,
    // rule, sentence and valuation id.
    let heavy = count(
        &mesh,
        "SELECT count(*) AS n FROM decisions d JOIN strategies s ON s.id = d.strategy_id \
         WHERE d.user_id = ANY($1) AND d.outcome = 'skip' AND d.factors <> '[]'::jsonb AND NOT ( \
           d.fair_value_cents > d.price_cents \
           AND (d.fair_value_cents - d.price_cents) * 20000 >= s.min_discount_bps::bigint * d.fair_value_cents \
           AND d.confidence >= s.min_confidence - 0.1)",
        &users,
    )
    .await;
    assert_eq!(heavy, 0, "only near misses keep their factors");

    // The agents bought, and only what fits: the strategy's price, discount and confidence, its
    // kind (a standout game of 25 or more, or a player in his first three seasons), and a trade
    // settled at the decided price.
    let bought =
        count(&mesh, "SELECT count(*) AS n FROM decisions WHERE outcome = 'buy' AND user_id = ANY($1)", &users).await;
    assert!(bought > 0, "the agents buy on a market day");
    let unfit = texts(
        &mesh,
        "SELECT concat_ws(' ', s.kind, d.price_cents, d.fair_value_cents, d.confidence, p.seasons_played, \
                t.state, t.price_cents, d.reasons::text) AS text \
         FROM decisions d JOIN strategies s ON s.id = d.strategy_id \
         JOIN moments m ON m.id = d.moment_id JOIN players p ON p.id = m.player_id \
         LEFT JOIN trades t ON t.id = d.trade_id \
         WHERE d.outcome = 'buy' AND d.user_id = ANY($1) AND ( \
           d.price_cents > s.max_price_cents OR d.confidence < s.min_confidence \
           OR (d.fair_value_cents - d.price_cents) * 10000 < s.min_discount_bps::bigint * d.fair_value_cents \
           OR (s.kind = 'rookie_risers' AND p.seasons_played > 3) \
           OR (s.kind = 'post_game_spike' AND NOT EXISTS (SELECT 1 FROM player_game_stats g \
               WHERE g.player_id = p.id AND g.points + g.rebounds + g.assists + g.steals + g.blocks >= 25)) \
           OR t.state IS DISTINCT FROM 'settled' OR t.price_cents > d.price_cents)",
        &users,
    )
    .await;
    assert!(unfit.is_empty(), "every purchase fits its strategy, at no more than the decided price: {unfit:#?}");
    // No purchase breaks a limit: 12.00 a moment, 30.00 in all, per user; one per listing.
    let over_moment = count(
        &mesh,
        "SELECT count(*) AS n FROM trades WHERE user_id = ANY($1) AND kind = 'purchase' AND state = 'settled' \
         AND price_cents > 1200",
        &users,
    )
    .await;
    assert_eq!(over_moment, 0, "no moment above the per-moment limit");
    let over_day = count(
        &mesh,
        "SELECT count(*) AS n FROM (SELECT user_id FROM trades WHERE user_id = ANY($1) AND kind = 'purchase' \
         AND state = 'settled' GROUP BY user_id HAVING sum(price_cents) > 3000) over",
        &users,
    )
    .await;
    assert_eq!(over_day, 0, "no user above the daily limit");
    let twice = count(
        &mesh,
        "SELECT count(*) AS n FROM (SELECT listing_id FROM trades WHERE user_id = ANY($1) AND kind = 'purchase' \
         AND state = 'settled' GROUP BY listing_id HAVING count(*) > 1) twice",
        &users,
    )
    .await;
    assert_eq!(twice, 0, "no listing bought twice");

    // The same events delivered again (the cursor lost): nothing is decided or bought again.
    let trades = count(&mesh, "SELECT count(*) AS n FROM trades WHERE user_id = ANY($1)", &users).await;
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
    market_followed(&mesh, Duration::from_secs(60)).await;
    let again = count(
        &mesh,
        "SELECT count(*) AS n FROM decisions WHERE user_id = ANY($1) AND event_sequence IS NOT NULL",
        &users,
    )
    .await;
    assert_eq!(again, decided, "a replayed day decides nothing twice");
    let trades_again = count(&mesh, "SELECT count(*) AS n FROM trades WHERE user_id = ANY($1)", &users).await;
    assert_eq!(trades_again, trades, "a replayed day buys nothing twice");
}

/// The newest listing event's sequence.
async fn newest_listing_event(mesh: &TradingMesh) -> i64 {
    count(mesh, "SELECT coalesce(max(sequence), 0) AS n FROM listing_events WHERE $1 IS NOT NULL", &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn purchases_wait_for_trading_to_return_and_a_restart_mid_stream_misses_no_event() {
    // Small batches, so that the agents can be stopped in the middle of the stream.
    let options = MeshOptions { agents: true, agents_batch: 10, ..MeshOptions::default() };
    let mut mesh = TradingMesh::start(options).await;
    let (user, listings, _, created, _) = setup(&mesh).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);

    // Trading is down when a bargain comes: the agents retry, then hold the listing undecided.
    mesh.stop_target("trading").await;
    let cheap = listings[5];
    mesh.pool
        .read_committed(move |conn| {
            async move { market::reprice_listings(conn, &[(cheap, 1_000)]).await.map(drop) }.boxed()
        })
        .await
        .unwrap();
    // The user hears, and after three tries in a row, the operators.
    user_told(&mesh, user, Duration::from_secs(30), |n| {
        n.title == "Your automation is held up" && n.body.contains("trading could not be reached")
    })
    .await;
    // The purchase held up, and the stream that cannot go past it.
    operators_told(
        &mesh,
        Duration::from_secs(40),
        &["trading could not be reached", "cannot follow the listing stream"],
    )
    .await;
    let decisions =
        agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.unwrap().into_inner().decisions;
    assert!(decisions.is_empty(), "nothing is decided while trading is away: {decisions:?}");

    // Trading is back: the bargain is bought, once.
    mesh.start_target("trading").await;
    let bought =
        decided(&mesh, user, "the held listing is decided once trading is back", Duration::from_secs(30), |found| {
            found.into_iter().find(|d| d.listing_id == cheap.to_string())
        })
        .await;
    assert_eq!(bought.outcome(), DecisionOutcome::Buy, "{bought:?}");
    let purchases = count(
        &mesh,
        "SELECT count(*) AS n FROM trades WHERE user_id = ANY($1) AND kind = 'purchase' AND state = 'settled'",
        &[user],
    )
    .await;
    assert_eq!(purchases, 1, "one purchase, however often it was tried");
    // Operators see the runs that failed while trading was away, and where the streams are.
    let health = AgentInternalServiceClient::new(channel(&mesh, "agents").await)
        .get_automation_health(internal(GetAutomationHealthRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(health.recent_failures.iter().any(|r| r.failure_reason.contains("trading")), "{health:?}");
    let listing_stream = health.streams.iter().find(|s| s.stream == "marketplace.listing_events");
    assert!(listing_stream.is_some_and(|s| s.sequence > 0), "{health:?}");
    assert!(
        health.last_hour.iter().any(|c| c.trigger() == RunTrigger::ListingEvent && c.state() == RunState::Failed),
        "{health:?}"
    );

    // 200 repricings; the agents are stopped while they work through them and started again:
    // every event is decided exactly once.
    let before = newest_listing_event(&mesh).await;
    let repriced: Vec<Uuid> = listings[..5].to_vec();
    mesh.pool
        .read_committed(move |conn| {
            let repriced = repriced.clone();
            async move {
                let prices: Vec<_> = (0..200_i64).map(|i| (repriced[i as usize % repriced.len()], 1_900 + i)).collect();
                market::reprice_listings(conn, &prices).await.map(drop)
            }
            .boxed()
        })
        .await
        .unwrap();
    let strategy = Uuid::parse_str(&created.strategy_id).unwrap();
    let decided_since = |mesh: &TradingMesh| {
        let pool = mesh.pool.clone();
        async move {
            pool.read(move |conn| {
                async move {
                    use diesel::prelude::*;
                    use diesel_async::RunQueryDsl;
                    use fastbreak_db::schema::decisions;
                    let found: Vec<Option<i64>> = decisions::table
                        .filter(decisions::strategy_id.eq(strategy))
                        .filter(decisions::event_sequence.gt(before))
                        .select(decisions::event_sequence)
                        .order(decisions::event_sequence)
                        .load(conn)
                        .await?;
                    Ok(found.into_iter().flatten().collect::<Vec<i64>>())
                }
                .boxed()
            })
            .await
            .unwrap()
        }
    };
    until("the agents work through the repricings", Duration::from_secs(30), || async {
        (decided_since(&mesh).await.len() >= 5).then_some(())
    })
    .await;
    mesh.stop_target("agents").await;
    let at_stop = decided_since(&mesh).await.len();
    assert!(at_stop < 200, "stopped in the middle of the stream: {at_stop} of 200 decided");
    mesh.start_target("agents").await;
    market_followed(&mesh, Duration::from_secs(60)).await;
    let decided = decided_since(&mesh).await;
    let expected: Vec<i64> = (before + 1..=before + 200).collect();
    assert_eq!(decided, expected, "every repricing decided exactly once across the restart");
    // The user's decisions on listing events gather in a run an hour, not a run an event.
    let runs = count(
        &mesh,
        "SELECT count(*) AS n FROM agent_runs WHERE user_id = ANY($1) AND trigger = 'listing_event'",
        &[user],
    )
    .await;
    assert!((1..=2).contains(&runs), "{runs} listing-event runs for 200 and more events");
    println!("stopped after {at_stop} of 200 repricings; after the restart all 200 were decided, once each");
}

/// Five moments of a new player in a play of their own, listed at `price`, the first `sold` of
/// them sold lately at `price` (scouting's comparables); their listings.
async fn valued_play(mesh: &TradingMesh, play: &'static str, sold: usize, price: i64) -> Vec<Uuid> {
    let listings = mesh.list_market_moments(5, "simulator", price).await;
    let moved = listings.clone();
    mesh.pool
        .read_committed(move |conn| {
            let moved = moved.clone();
            async move {
                use diesel_async::RunQueryDsl;
                // A play of its own: its sales are its moments' only comparables.
                diesel::sql_query(
                    "UPDATE moments SET set_name = $1, play_category = $1 \
                     WHERE id IN (SELECT moment_id FROM listings WHERE id = ANY($2))",
                )
                .bind::<diesel::sql_types::Text, _>(play)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(moved)
                .execute(conn)
                .await?;
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    mesh.record_sales(&listings[..sold], price).await;
    listings
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_competing_for_one_budget_are_taken_by_expected_return() {
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, _) = mesh.funded_user(50_000).await;
    mesh.raise_limits(user).await;
    // Two plays, one selling at 10.00 and one at 20.00. Each listing is priced at its fair
    // value, except the small play's most valuable moment, at 70% of it (43% back), and the
    // large play's, at 40% (150% back) but dearer: first in the market's order is the small.
    let small = valued_play(&mesh, "Small Play", 3, 1_000).await;
    let large = valued_play(&mesh, "Large Play", 3, 2_000).await;
    let mut scouting = ScoutingInternalServiceClient::new(channel(&mesh, "scouting").await);
    let mut fair = std::collections::HashMap::new();
    for listing in small.iter().chain(&large) {
        let valuation = scouting
            .value_listing(internal(ValueListingRequest { listing_id: listing.to_string(), ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        fair.insert(*listing, valuation.fair_value_cents);
    }
    let best = |listings: &[Uuid]| *listings.iter().max_by_key(|l| fair[*l]).unwrap();
    let (cheap, better) = (best(&small), best(&large));
    let mut prices: Vec<(Uuid, i64)> = fair.iter().map(|(l, f)| (*l, *f)).collect();
    for (listing, price) in &mut prices {
        if *listing == cheap {
            *price = fair[listing] * 7 / 10;
        } else if *listing == better {
            *price = fair[listing] * 4 / 10;
        }
    }
    let (cheap_price, better_price) = (fair[&cheap] * 7 / 10, fair[&better] * 4 / 10);
    assert!(cheap_price < better_price, "the small play's bargain is the cheaper: {cheap_price} < {better_price}");
    mesh.pool
        .read_committed(move |conn| {
            let prices = prices.clone();
            async move {
                for (listing, price) in prices {
                    market::update_listing_price(conn, listing, price).await?;
                }
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    // A strategy with room for one purchase a day.
    let mut strategies = StrategyServiceClient::new(channel(&mesh, "strategy").await);
    let strategy = Strategy {
        display_name: "One a day".into(),
        rules: Some(StrategyRules {
            min_confidence: 0.05,
            min_discount_bps: 1_000,
            max_price_cents: 5_000,
            max_purchases_per_day: 1,
        }),
        parameters: Some(Parameters::RookieRisers(RookieRisersParameters {
            max_seasons_played: 3,
            min_performance_rise_percent: 0.0,
            ..Default::default()
        })),
        ..Default::default()
    };
    active_strategy(&mut strategies, user, strategy).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let run = agents.start_scan(as_user(StartScanRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!((run.state(), run.purchase_count), (RunState::Succeeded, 1), "{run:?}");
    let decisions = agents
        .list_decisions(as_user(ListDecisionsRequest { run_id: run.run_id.clone(), ..Default::default() }, user))
        .await
        .unwrap()
        .into_inner()
        .decisions;
    let of = |listing: Uuid| decisions.iter().find(|d| d.listing_id == listing.to_string()).expect("a decision");
    assert_eq!(of(better).outcome(), DecisionOutcome::Buy, "the best return is taken first: {:?}", of(better));
    assert_eq!(of(cheap).reason(), DecisionReason::DailyCap, "the cheaper one waits: {:?}", of(cheap));
}

/// New prices for listings, as one batch of listing events.
async fn reprice(mesh: &TradingMesh, prices: &[(Uuid, i64)]) {
    let prices = prices.to_vec();
    mesh.pool
        .read_committed(move |conn| {
            let prices = prices.clone();
            async move { market::reprice_listings(conn, &prices).await.map(drop) }.boxed()
        })
        .await
        .unwrap();
}

/// The decision of `strategy` on `listing`, once it is made.
async fn decision_on(
    mesh: &TradingMesh,
    user: Uuid,
    strategy: &Strategy,
    listing: Uuid,
) -> fastbreak_proto::agents::v1::Decision {
    let what = format!("a decision of \"{}\" on listing {listing}", strategy.display_name);
    decided(mesh, user, &what, Duration::from_secs(30), |found| {
        found.into_iter().find(|d| d.strategy_id == strategy.strategy_id && d.listing_id == listing.to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protection_pauses_only_its_strategy_after_a_real_loss_says_why_and_lifts_on_reset() {
    use fastbreak_proto::strategy::v1::strategy_internal_service_client::StrategyInternalServiceClient;
    use fastbreak_proto::strategy::v1::{
        CooldownAfterLoss, GetStrategyPerformanceRequest, ListStrategyOutcomesRequest, ResetStrategyProtectionsRequest,
        StrategyProtections,
    };
    use fastbreak_proto::trading::v1::{PurchaseMomentRequest, SellMomentRequest};
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, listings, player, plain, mut strategies) = setup(&mesh).await;
    // Over "Bargains" (priority 50): "Careful" (90) pauses an hour after any loss, and
    // "Not him" (95) never buys the player.
    let careful = active_strategy(
        &mut strategies,
        user,
        Strategy {
            display_name: "Careful".into(),
            priority: 90,
            protections: Some(StrategyProtections {
                cooldown_after_loss: Some(CooldownAfterLoss { minutes: 60, per_player: false }),
                ..Default::default()
            }),
            ..plain.clone()
        },
    )
    .await;
    let not_him = active_strategy(
        &mut strategies,
        user,
        Strategy {
            display_name: "Not him".into(),
            priority: 95,
            protections: Some(StrategyProtections { blocked_player_ids: vec![player.clone()], ..Default::default() }),
            ..plain.clone()
        },
    )
    .await;

    // "Careful" buys at 10.00; the player is blocked for "Not him", which says so.
    reprice(&mesh, &[(listings[5], 1_000)]).await;
    let first = decision_on(&mesh, user, &careful, listings[5]).await;
    assert_eq!(first.outcome(), DecisionOutcome::Buy, "{first:?}");
    let blocked = decision_on(&mesh, user, &not_him, listings[5]).await;
    assert_eq!(
        (blocked.reason(), blocked.rule.as_str()),
        (DecisionReason::Protection, "protections.blocked_player_ids")
    );
    assert!(blocked.reasons[0].contains("never buys"), "{:?}", blocked.reasons);

    // The user sells that moment at 6.00 and another collector buys it: a real loss, counted
    // for the strategy that bought the moment.
    let trading = mesh.trading().await;
    let bought = trade_of(&mesh, user, &first.trade_id).await;
    let sale = SellMomentRequest {
        moment_id: bought.moment_id.clone(),
        price_cents: 600,
        source_id: String::new(),
        idempotency_key: "sell-at-a-loss".into(),
    };
    let listed = trading.clone().sell_moment(as_user(sale, user)).await.unwrap().into_inner();
    let (collector, _) = mesh.funded_user(10_000).await;
    let purchase = PurchaseMomentRequest {
        listing_id: listed.listing_id.clone(),
        max_price_cents: 600,
        idempotency_key: "buy-the-loss".into(),
        ..Default::default()
    };
    trading.clone().purchase_moment(as_user(purchase, collector)).await.unwrap();
    let outcomes = StrategyInternalServiceClient::new(channel(&mesh, "strategy").await);
    let since = Some(fastbreak_mesh::status::timestamp(Utc::now() - chrono::Duration::hours(1)));
    let loss = until("the loss reaches the strategy", Duration::from_secs(30), || {
        let mut outcomes = outcomes.clone();
        let request =
            ListStrategyOutcomesRequest { strategy_id: careful.strategy_id.clone(), since, ..Default::default() };
        async move {
            let listed = outcomes.list_strategy_outcomes(internal(request)).await.ok()?.into_inner();
            listed.outcomes.into_iter().find(|o| o.realized_pnl_cents < 0)
        }
    })
    .await;
    assert_eq!(loss.moment_id, bought.moment_id);
    let request = GetStrategyPerformanceRequest { strategy_id: careful.strategy_id.clone() };
    let performance = strategies.get_strategy_performance(as_user(request, user)).await.unwrap().into_inner();
    assert_eq!((performance.sale_count, performance.realized_pnl_cents), (1, loss.realized_pnl_cents));

    // The next bargain: "Careful" is paused by its cooldown and says until when; "Bargains",
    // without protections, buys it.
    reprice(&mesh, &[(listings[6], 1_000)]).await;
    let paused = decision_on(&mesh, user, &careful, listings[6]).await;
    assert_eq!(paused.outcome(), DecisionOutcome::Skip, "{paused:?}");
    assert_eq!(
        (paused.reason(), paused.rule.as_str()),
        (DecisionReason::Protection, "protections.cooldown_after_loss")
    );
    assert!(paused.reasons[0].contains("is paused until") && paused.reasons[0].contains("a cooldown of 60 minutes"));
    let other = decision_on(&mesh, user, &plain, listings[6]).await;
    assert_eq!(other.outcome(), DecisionOutcome::Buy, "only the protected strategy is paused: {other:?}");
    user_told(&mesh, user, Duration::from_secs(10), |n| {
        n.title == "A strategy paused by its protections" && n.body.contains("\"Careful\" is paused until")
    })
    .await;

    // Reset by the user, the protections let "Careful" buy again.
    let reset = ResetStrategyProtectionsRequest { strategy_id: careful.strategy_id.clone() };
    strategies.reset_strategy_protections(as_user(reset, user)).await.unwrap();
    reprice(&mesh, &[(listings[7], 1_000)]).await;
    let lifted = decision_on(&mesh, user, &careful, listings[7]).await;
    assert_eq!(lifted.outcome(), DecisionOutcome::Buy, "{lifted:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_manual_approval_a_purchase_waits_and_is_bought_only_once_approved() {
    use fastbreak_proto::agents::v1::{ApproveDecisionRequest, DeclineDecisionRequest};
    use fastbreak_proto::strategy::v1::{ManualApproval, StrategyProtections};
    use fastbreak_proto::trading::v1::ListTradesRequest;
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, listings, _player, created, mut strategies) = setup(&mesh).await;
    let mut approving = created.clone();
    approving.protections = Some(StrategyProtections {
        manual_approval: Some(ManualApproval { expire_after_minutes: 30 }),
        ..Default::default()
    });
    strategies
        .update_strategy(as_user(
            UpdateStrategyRequest {
                strategy: Some(approving),
                update_mask: Some(prost_types::FieldMask { paths: vec!["protections".into()] }),
                validate_only: false,
            },
            user,
        ))
        .await
        .unwrap();
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let trades = || async {
        let listed = mesh.trading().await.list_trades(as_user(ListTradesRequest::default(), user)).await;
        listed.unwrap().into_inner().trades.len()
    };
    let before = trades().await;

    // Three bargains: each waits for approval, with a deadline, and nothing is bought.
    reprice(&mesh, &[(listings[5], 1_000), (listings[6], 1_000), (listings[7], 1_000)]).await;
    let mut waiting = Vec::new();
    for listing in &listings[5..8] {
        let decision = decision_on(&mesh, user, &created, *listing).await;
        assert_eq!(decision.outcome(), DecisionOutcome::AwaitingApproval, "{decision:?}");
        assert_eq!(
            (decision.reason(), decision.rule.as_str()),
            (DecisionReason::AwaitingApproval, "protections.manual_approval")
        );
        let deadline = decision.approval_expire_time.expect("a deadline").seconds;
        let expected = (Utc::now() + chrono::Duration::minutes(30)).timestamp();
        assert!((expected - 60..=expected).contains(&deadline), "30 minutes from the decision: {deadline}");
        assert!(decision.reasons[0].starts_with("Waiting for your approval until"), "{:?}", decision.reasons);
        assert!(decision.trade_id.is_empty());
        waiting.push(decision);
    }
    assert_eq!(trades().await, before, "nothing bought before approval");
    user_told(&mesh, user, Duration::from_secs(10), |n| {
        n.title == "A purchase waits for your approval" && n.body.contains(&waiting[0].decision_id)
    })
    .await;

    // Approved: bought at most at its price. Approved again: the same answer.
    let approve = |decision: &fastbreak_proto::agents::v1::Decision| ApproveDecisionRequest {
        decision_id: decision.decision_id.clone(),
    };
    let stranger = mesh.database.create_user().await;
    let hidden = agents.approve_decision(as_user(approve(&waiting[0]), stranger)).await.unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound, "another user's decision");
    let bought = agents.approve_decision(as_user(approve(&waiting[0]), user)).await.unwrap().into_inner();
    assert_eq!((bought.outcome(), bought.reason()), (DecisionOutcome::Buy, DecisionReason::Bought), "{bought:?}");
    assert!(bought.reasons[0].starts_with("Bought on your approval at"), "{:?}", bought.reasons);
    let trade = trade_of(&mesh, user, &bought.trade_id).await;
    assert_eq!(
        (trade.state(), trade.price_cents, trade.decision_id.as_str()),
        (TradeState::Settled, 1_000, bought.decision_id.as_str())
    );
    let again = agents.approve_decision(as_user(approve(&waiting[0]), user)).await.unwrap().into_inner();
    assert_eq!(again.trade_id, bought.trade_id);
    let late = DeclineDecisionRequest { decision_id: waiting[0].decision_id.clone() };
    assert_eq!(agents.decline_decision(as_user(late, user)).await.unwrap_err().code(), tonic::Code::FailedPrecondition);

    // Declined: skipped, and no longer approvable.
    let decline = DeclineDecisionRequest { decision_id: waiting[1].decision_id.clone() };
    let declined = agents.decline_decision(as_user(decline, user)).await.unwrap().into_inner();
    assert_eq!((declined.outcome(), declined.reason()), (DecisionOutcome::Skip, DecisionReason::Declined));
    let refused = agents.approve_decision(as_user(approve(&waiting[1]), user)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("Declined by you"), "{}", refused.message());

    // Its 30 minutes run out (the deadline moved into the past): it expires, and cannot be
    // approved.
    let third = Uuid::parse_str(&waiting[2].decision_id).unwrap();
    mesh.pool
        .read_committed(move |conn| {
            async move {
                use diesel_async::RunQueryDsl;
                diesel::sql_query(
                    "UPDATE decisions SET approval_expires_at = now() - interval '1 second' WHERE id = $1",
                )
                .bind::<diesel::sql_types::Uuid, _>(third)
                .execute(conn)
                .await?;
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    let expired = agents.approve_decision(as_user(approve(&waiting[2]), user)).await.unwrap_err();
    assert_eq!(expired.code(), tonic::Code::FailedPrecondition);
    // Expired by this call, or by the agents' expiry pass just before it: either way it says so.
    assert!(expired.message().to_lowercase().contains("expired"), "{}", expired.message());
    let read = agents
        .get_decision(as_user(GetDecisionRequest { decision_id: waiting[2].decision_id.clone() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((read.outcome(), read.reason()), (DecisionOutcome::Skip, DecisionReason::ApprovalExpired));
    assert_eq!(trades().await, before + 1, "only the approved purchase was made");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_protection_trips_on_its_scripted_losses_and_only_its_strategy_is_paused() {
    use fastbreak_proto::strategy::v1::strategy_internal_service_client::StrategyInternalServiceClient;
    use fastbreak_proto::strategy::v1::{
        CooldownAfterLoss, DrawdownGuard, LosingStreakGuard, RecordStrategyOutcomeRequest, StrategyProtections,
    };
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, listings, _player, plain, mut strategies) = setup(&mesh).await;
    let mut outcomes = StrategyInternalServiceClient::new(channel(&mesh, "strategy").await);
    // A strategy over "Bargains" with one protection, and its losses, `(minutes ago, profit)`.
    let moment = Uuid::new_v4().to_string();
    let mut guarded = Vec::new();
    let cases: [(&str, i32, StrategyProtections, &[(i64, i64)], &str); 4] = [
        (
            "Streak",
            91,
            StrategyProtections {
                losing_streak: Some(LosingStreakGuard { losing_trades: 3, window_minutes: 60, pause_minutes: 240 }),
                ..Default::default()
            },
            // Three losses within the hour, a gain between them.
            &[(100, -100), (80, -100), (70, 500), (50, -100)],
            "protections.losing_streak",
        ),
        (
            "Drawdown",
            92,
            StrategyProtections {
                // 10% of a budget of $50.00 × 3 a day: a fall of $15.00.
                drawdown: Some(DrawdownGuard { max_drawdown_bps: 1_000, window_minutes: 120, pause_minutes: 60 }),
                ..Default::default()
            },
            &[(40, 1_000), (30, -1_200), (20, -1_400)],
            "protections.drawdown",
        ),
        (
            "Daily",
            93,
            StrategyProtections { max_daily_loss_cents: 2_000, ..Default::default() },
            &[(1, -1_500), (0, -600)],
            "protections.max_daily_loss_cents",
        ),
        (
            "This player",
            94,
            StrategyProtections {
                cooldown_after_loss: Some(CooldownAfterLoss { minutes: 30, per_player: true }),
                ..Default::default()
            },
            // A loss on another moment of the listing's player.
            &[(10, -300)],
            "protections.cooldown_after_loss",
        ),
    ];
    let listed = listings[0];
    let players_moment = mesh
        .pool
        .read(move |conn| async move { market::find_listing(conn, listed).await }.boxed())
        .await
        .unwrap()
        .expect("the listing")
        .moment_id
        .to_string();
    // The day's losses must fall on the day the agents judge them: not across midnight (UTC).
    let to_midnight = 86_400 - Utc::now().timestamp().rem_euclid(86_400);
    if to_midnight < 180 {
        tokio::time::sleep(Duration::from_secs(u64::try_from(to_midnight).unwrap_or(0) + 1)).await;
    }
    let now = Utc::now();
    for (name, priority, protections, losses, rule) in cases {
        let strategy =
            Strategy { display_name: name.into(), priority, protections: Some(protections), ..plain.clone() };
        let created = active_strategy(&mut strategies, user, strategy).await;
        for (minutes_ago, pnl) in losses {
            // The day's losses no earlier than its midnight.
            let at = (now - chrono::Duration::minutes(*minutes_ago))
                .max(now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc());
            let sale = RecordStrategyOutcomeRequest {
                strategy_id: created.strategy_id.clone(),
                trade_id: Uuid::new_v4().to_string(),
                proceeds_cents: 1_000,
                realized_pnl_cents: *pnl,
                moment_id: if name == "This player" { players_moment.clone() } else { moment.clone() },
                occur_time: Some(fastbreak_mesh::status::timestamp(at)),
                ..Default::default()
            };
            outcomes.record_strategy_outcome(internal(sale)).await.unwrap();
        }
        guarded.push((created, rule));
    }

    // A bargain: each protected strategy skips it, naming its protection and until when; the
    // strategy without protections buys it.
    reprice(&mesh, &[(listings[5], 1_000)]).await;
    for (strategy, rule) in &guarded {
        let decision = decision_on(&mesh, user, strategy, listings[5]).await;
        assert_eq!(
            (decision.outcome(), decision.reason()),
            (DecisionOutcome::Skip, DecisionReason::Protection),
            "{decision:?}"
        );
        assert_eq!(decision.rule, *rule, "{decision:?}");
        assert!(
            decision.reasons[0].contains("is paused") && decision.reasons[0].contains("until"),
            "{:?}",
            decision.reasons
        );
    }
    let bought = decision_on(&mesh, user, &plain, listings[5]).await;
    assert_eq!(bought.outcome(), DecisionOutcome::Buy, "only the protected strategies are paused: {bought:?}");
    for (strategy, _) in &guarded {
        let name = strategy.display_name.clone();
        user_told(&mesh, user, Duration::from_secs(10), move |n| {
            n.title == "A strategy paused by its protections" && n.body.contains(&format!("\"{name}\" is paused"))
        })
        .await;
    }

    // A streak whose pause ran out lifts by its own rule: another collector's strategy with
    // three losses about five hours ago goes on to trading.
    let (other, _) = mesh.funded_user(50_000).await;
    let lapsed = Strategy {
        display_name: "Lapsed".into(),
        protections: Some(StrategyProtections {
            losing_streak: Some(LosingStreakGuard { losing_trades: 3, window_minutes: 60, pause_minutes: 240 }),
            ..Default::default()
        }),
        ..plain.clone()
    };
    let lapsed = active_strategy(&mut strategies, other, lapsed).await;
    // Within the 300 minutes the streak looks back, its pause over 50 minutes ago.
    for minutes_ago in [298, 294, 290] {
        let sale = RecordStrategyOutcomeRequest {
            strategy_id: lapsed.strategy_id.clone(),
            trade_id: Uuid::new_v4().to_string(),
            proceeds_cents: 1_000,
            realized_pnl_cents: -100,
            moment_id: moment.clone(),
            occur_time: Some(fastbreak_mesh::status::timestamp(now - chrono::Duration::minutes(minutes_ago))),
            ..Default::default()
        };
        outcomes.record_strategy_outcome(internal(sale)).await.unwrap();
    }
    reprice(&mesh, &[(listings[6], 1_000)]).await;
    let decision = decision_on(&mesh, other, &lapsed, listings[6]).await;
    assert!(
        matches!(decision.outcome(), DecisionOutcome::Buy | DecisionOutcome::Refused)
            && decision.reason() != DecisionReason::Protection,
        "the pause ran out at the last loss plus 240 minutes: {decision:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backtest_replays_a_season_on_paper_and_stores_its_report() {
    use fastbreak_proto::agents::v1::{
        BacktestState, BacktestView, GetBacktestRequest, ListBacktestsRequest, RunBacktestRequest,
    };
    use fastbreak_proto::trading::v1::ListTradesRequest;
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, _) = mesh.funded_user(50_000).await;
    let (stranger, _) = mesh.funded_user(50_000).await;
    // The user's budget: $30 a moment at most (the periods far above any run's spending).
    mesh.set_limits(user, 100_000_000, 3_000).await;
    let mut strategies = StrategyServiceClient::new(channel(&mesh, "strategy").await);
    let kind = |name: &str, min_discount_bps| Strategy {
        display_name: name.into(),
        rules: Some(StrategyRules {
            min_confidence: 0.3,
            min_discount_bps,
            max_price_cents: 50_000,
            max_purchases_per_day: 4,
        }),
        parameters: Some(Parameters::RookieRisers(RookieRisersParameters {
            max_seasons_played: 3,
            min_performance_rise_percent: 0.0,
            ..Default::default()
        })),
        ..Default::default()
    };
    let bargains = active_strategy(&mut strategies, user, kind("Bargains", 1_500)).await;
    let deep = active_strategy(&mut strategies, user, kind("Deep discounts", 3_000)).await;
    let theirs = active_strategy(&mut strategies, stranger, kind("Theirs", 1_500)).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let ask = |ids: Vec<&str>, days, hold_days| RunBacktestRequest {
        strategy_ids: ids.into_iter().map(str::to_owned).collect(),
        seed: 11,
        days,
        starting_balance_cents: 200_000,
        hold_days,
    };

    // Bad input is named, field by field; another user's strategy is not the caller's.
    let id = bargains.strategy_id.as_str();
    let bad = agents.run_backtest(as_user(ask(vec![id, id, "nope"], 0, 61), user)).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    for field in ["strategy_ids[1]", "strategy_ids[2]", "days", "hold_days"] {
        assert!(bad.message().contains(field), "{field} named: {}", bad.message());
    }
    let foreign = agents.run_backtest(as_user(ask(vec![&theirs.strategy_id], 5, 3), user)).await.unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::InvalidArgument);
    assert!(foreign.message().contains("strategy_ids[0]"), "{}", foreign.message());

    // A run answers at once, running; one of the user's runs at a time.
    let trades = mesh.trading().await.list_trades(as_user(ListTradesRequest::default(), user)).await.unwrap();
    let trades_before = trades.into_inner().trades.len();
    let started =
        agents.run_backtest(as_user(ask(vec![&bargains.strategy_id, &deep.strategy_id], 60, 5), user)).await.unwrap();
    let started = started.into_inner();
    assert_eq!(started.state(), BacktestState::Running);
    let busy = agents.run_backtest(as_user(ask(vec![&deep.strategy_id], 5, 3), user)).await.unwrap_err();
    assert_eq!(busy.code(), tonic::Code::FailedPrecondition, "{busy:?}");
    let reader = agents.clone();
    let get = |id: String, who: Uuid| {
        let mut agents = reader.clone();
        async move { agents.get_backtest(as_user(GetBacktestRequest { backtest_id: id, view: 0 }, who)).await }
    };
    let hidden = get(started.backtest_id.clone(), stranger).await.unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    let done = until("the backtest finishes", Duration::from_secs(120), || async {
        let found = get(started.backtest_id.clone(), user).await.ok()?.into_inner();
        (found.state() != BacktestState::Running).then_some(found)
    })
    .await;
    assert_eq!(done.state(), BacktestState::Succeeded, "{}", done.failure_reason);
    assert_eq!(done.days_done, 60);
    let names: Vec<&str> = done.strategies.iter().map(|l| l.display_name.as_str()).collect();
    assert_eq!(names, ["Bargains", "Deep discounts"]);
    let baselines: Vec<&str> = done.baselines.iter().map(|l| l.display_name.as_str()).collect();
    assert_eq!(baselines, ["buy every listing under fair value", "hold nothing"]);
    assert!(done.strategies[0].purchases > 0, "{:?}", done.strategies[0]);
    assert!(done.strategies[0].purchases >= done.strategies[1].purchases, "a deeper discount buys less");
    let report: serde_json::Value = serde_json::from_str(&done.report_json).unwrap();
    let trade = &report["strategies"][0]["trades"][0];
    assert!(trade["reasons"][0].as_str().unwrap().starts_with("Bought: listed at"), "{trade}");
    assert!(!trade["factors"].as_array().unwrap().is_empty());
    assert!(done.chart_svg.starts_with("<svg"));
    // Views: the figures alone, with the chart, or with the report; a view that does not exist
    // is named.
    let viewed = |view: i32| {
        let (mut agents, backtest_id) = (reader.clone(), started.backtest_id.clone());
        async move { agents.get_backtest(as_user(GetBacktestRequest { backtest_id, view }, user)).await }
    };
    for (view, chart, report) in [
        (BacktestView::Basic, "", ""),
        (BacktestView::Chart, done.chart_svg.as_str(), ""),
        (BacktestView::Report, "", done.report_json.as_str()),
        (BacktestView::Full, done.chart_svg.as_str(), done.report_json.as_str()),
    ] {
        let seen = viewed(view.into()).await.unwrap().into_inner();
        assert_eq!((seen.chart_svg.as_str(), seen.report_json.as_str()), (chart, report), "{view:?}");
        assert_eq!((&seen.strategies, &seen.baselines), (&done.strategies, &done.baselines), "{view:?}");
        assert_eq!(seen.budget_limits, done.budget_limits, "{view:?}");
    }
    let unknown = viewed(99).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument, "{unknown:?}");
    assert!(unknown.message().contains("view"), "{}", unknown.message());
    // The user's budget limits, as risk gives them, held every ledger: no moment above $30.
    assert_eq!(report["budget_limits"]["per_moment_cents"], 3_000, "{}", report["budget_limits"]);
    assert_eq!(report["budget_limits"]["time_zone"], "UTC");
    let ledgers = report["strategies"].as_array().unwrap().iter().chain(report["baselines"].as_array().unwrap());
    let mut refused = 0;
    for ledger in ledgers {
        for trade in ledger["trades"].as_array().unwrap() {
            assert!(trade["price_cents"].as_i64().unwrap() <= 3_000, "{}: {trade}", ledger["name"]);
        }
        refused += ledger["skips"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["reason"] == "risk_refused" && s["rule"] == "risk")
            .map(|s| s["count"].as_u64().unwrap())
            .sum::<u64>();
    }
    assert!(refused > 0, "dearer moments were refused by the per-moment limit");

    // On paper only: the user's money and trades are untouched, and no decision is stored.
    let trades = mesh.trading().await.list_trades(as_user(ListTradesRequest::default(), user)).await.unwrap();
    assert_eq!(trades.into_inner().trades.len(), trades_before);
    let decisions = agents.list_decisions(as_user(ListDecisionsRequest::default(), user)).await.unwrap();
    assert!(decisions.into_inner().decisions.is_empty());

    // The same seed again: the same report. Listed newest first, a page at a time.
    let again = agents
        .run_backtest(as_user(ask(vec![&bargains.strategy_id, &deep.strategy_id], 60, 5), user))
        .await
        .unwrap()
        .into_inner();
    let again = until("the second backtest finishes", Duration::from_secs(120), || async {
        let found = get(again.backtest_id.clone(), user).await.ok()?.into_inner();
        (found.state() == BacktestState::Succeeded).then_some(found)
    })
    .await;
    assert_eq!(again.report_json, done.report_json);
    assert_eq!(again.chart_svg, done.chart_svg);
    let page = agents
        .list_backtests(as_user(ListBacktestsRequest { page_size: 1, page_token: String::new() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.backtests.len(), 1);
    assert_eq!(page.backtests[0].backtest_id, again.backtest_id);
    assert!(page.backtests[0].report_json.is_empty(), "lists carry no report");
    let next = agents
        .list_backtests(as_user(ListBacktestsRequest { page_size: 1, page_token: page.next_page_token }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.backtests[0].backtest_id, done.backtest_id);
    let theirs = agents.list_backtests(as_user(ListBacktestsRequest::default(), stranger)).await.unwrap();
    assert!(theirs.into_inner().backtests.is_empty());
}

/// A backtest holds its ledgers to the deployment's rules for suspicious activity, as its risk
/// service applies them: here two refusals in a row pause a ledger (ten by default).
#[tokio::test(flavor = "multi_thread")]
async fn a_backtest_pauses_a_ledger_by_the_deployments_rules_for_suspicious_activity() {
    use fastbreak_proto::agents::v1::BacktestState;
    let mut options = MeshOptions { agents: true, ..MeshOptions::default() };
    options.risk.suspicion.refusals_in_a_row = 2;
    let mesh = TradingMesh::start(options).await;
    let (user, mut season) = season_to_backtest(&mesh).await;
    // No moment may cost more than a cent: every purchase the strategy chooses is refused.
    mesh.set_limits(user, 100_000_000, 1).await;
    season.days = 10;
    let agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let started = agents.clone().run_backtest(as_user(season, user)).await.unwrap().into_inner();
    let done = ended(&agents, user, &started.backtest_id).await;
    assert_eq!(done.state(), BacktestState::Succeeded, "{}", done.failure_reason);
    let report: serde_json::Value = serde_json::from_str(&done.report_json).unwrap();
    let ledger = &report["strategies"][0];
    let paused = ledger["paused"]["reason"].as_str().unwrap_or_else(|| panic!("the ledger is paused: {ledger}"));
    assert!(paused.starts_with("2 purchases in a row were refused"), "{paused}");
}

/// One seed, one user, the simulated market at full speed: a backtest's replay decides every
/// listing event exactly as the live agents did. The live market is the simulator stepped as
/// fast as it goes, each event taken in by marketplace's ingest at its own simulated instant;
/// the agents follow it through the mesh (marketplace's stream, scouting's valuations and box
/// scores, strategy, notification), the backtest replays the same seed and start alone. The
/// strategy asks for approval, so neither buys: a purchase would take its listing off the live
/// market, which the simulator replayed alone does not know.
#[tokio::test(flavor = "multi_thread")]
async fn a_backtest_decides_every_listing_event_exactly_as_the_live_agents_did() {
    use fastbreak_market_sim::{Config, Event, Simulator};
    use fastbreak_proto::strategy::v1::{ManualApproval, StrategyProtections};
    const SEED: u64 = 5;
    const DAYS: u32 = 1;
    let mut mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    mesh.stop_target("agents").await;

    // The market, stepped at full speed on its own clock: a season that opened days ago.
    let start = Utc::now() - chrono::Duration::days(i64::from(DAYS) + 2);
    let config = Config { seed: SEED, start, ..fastbreak_agents::backtest::season(SEED) };
    let mut simulator = Simulator::new(config.clone());
    let mut listed: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut moments: std::collections::HashMap<Uuid, String> = std::collections::HashMap::new();
    mesh.pool
        .read_committed(move |conn| {
            let sources = config.marketplaces.clone();
            async move {
                for source in &sources {
                    market::ensure_source(conn, &source.id, &source.id, source.fee_bps).await?;
                }
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    for _ in 0..DAYS * 24 {
        let timed = simulator.step();
        for t in &timed {
            match &t.event {
                Event::MomentMinted(m) => {
                    moments.insert(m.id, m.player_id.clone());
                }
                Event::Listed(l) => *listed.entry(moments[&l.moment_id].clone()).or_default() += 1,
                _ => {}
            }
        }
        let (stamps, events): (Vec<_>, Vec<_>) = timed.into_iter().map(|t| (t.at, t.event)).unzip();
        fastbreak_marketplace::ingest::apply_stamped_batch(
            &mesh.pool,
            std::sync::Arc::new(events),
            Some(std::sync::Arc::new(stamps)),
            None,
        )
        .await
        .unwrap();
    }
    // Scouting takes in every box score before the agents start.
    until("scouting has every box score", Duration::from_secs(60), || async {
        let left = count(
            &mesh,
            "SELECT count(*) AS n FROM outbox WHERE topic = 'game_final' AND delivered_at IS NULL AND $1 IS NOT NULL",
            &[],
        )
        .await;
        (left == 0).then_some(())
    })
    .await;

    // One user's strategy: after a good game, the three most listed players, with approval.
    let mut players: Vec<(usize, String)> = listed.into_iter().map(|(p, n)| (n, p)).collect();
    players.sort_by(|a, b| b.cmp(a));
    let (user, _) = mesh.funded_user(100_000).await;
    let mut strategies = StrategyServiceClient::new(channel(&mesh, "strategy").await);
    let strategy = Strategy {
        display_name: "After a good game".into(),
        rules: Some(StrategyRules {
            min_confidence: 0.1,
            min_discount_bps: 500,
            max_price_cents: 1_000_000,
            max_purchases_per_day: 50,
        }),
        parameters: Some(Parameters::PostGameSpike(PostGameSpikeParameters {
            min_game_score: 10,
            buy_window_minutes: 4_320,
            player_ids: players.iter().take(3).map(|(_, p)| p.clone()).collect(),
            ..Default::default()
        })),
        protections: Some(StrategyProtections {
            manual_approval: Some(ManualApproval { expire_after_minutes: 1_440 }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let strategy = active_strategy(&mut strategies, user, strategy).await;

    // The live agents follow the market to its end.
    mesh.start_target("agents").await;
    market_followed(&mesh, Duration::from_secs(120)).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let runs = agents
        .list_agent_runs(as_user(ListAgentRunsRequest { page_size: 100, ..Default::default() }, user))
        .await
        .unwrap()
        .into_inner()
        .runs;
    let of_listings: std::collections::HashSet<String> =
        runs.into_iter().filter(|r| r.trigger() == RunTrigger::ListingEvent).map(|r| r.run_id).collect();
    let mut live = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = agents
            .list_decisions(as_user(ListDecisionsRequest { page_size: 100, page_token, ..Default::default() }, user))
            .await
            .unwrap()
            .into_inner();
        live.extend(page.decisions.into_iter().filter(|d| of_listings.contains(&d.run_id)));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }

    // The replay of the same seed and start, for the same strategy.
    let plan = fastbreak_agents::backtest::Plan {
        seed: SEED,
        start,
        days: DAYS,
        starting_cents: 100_000,
        hold_days: 0,
        strategies: vec![strategy.clone()],
        limits: None,
        suspicion: fastbreak_limits::Suspicion::default(),
    };
    let mut replayed = Vec::new();
    fastbreak_agents::backtest::replay_decisions(&plan, |k, d| {
        if k == 0 {
            replayed.push(d.clone());
        }
    })
    .await;

    // Decision by decision: the listing and its price, the outcome, why, by which rule, the
    // valuation's figures and every reason but the approval's deadline.
    type Seen = (String, i64, String, String, String, i64, String, Vec<String>);
    let deadline = |reasons: &[String]| -> Vec<String> {
        reasons.iter().filter(|r| !r.starts_with("Waiting for your approval until")).cloned().collect()
    };
    let mut live: Vec<Seen> = live
        .iter()
        .map(|d| {
            let outcome = format!("{:?}", d.outcome()).to_lowercase();
            let reason = d.reason().as_str_name().trim_start_matches("DECISION_REASON_").to_ascii_lowercase();
            let confidence = format!("{:.6}", d.confidence);
            (
                d.listing_id.clone(),
                d.price_cents,
                outcome,
                reason,
                d.rule.clone(),
                d.fair_value_cents,
                confidence,
                deadline(&d.reasons),
            )
        })
        .collect();
    let mut replayed: Vec<Seen> = replayed
        .iter()
        .map(|d| {
            let outcome = format!("{:?}", d.outcome).to_lowercase().replace('_', "");
            let confidence = format!("{:.6}", d.confidence);
            (
                d.listing_id.to_string(),
                d.price_cents,
                outcome,
                d.reason_code.clone(),
                d.rule.clone(),
                d.fair_value_cents,
                confidence,
                deadline(&d.reasons),
            )
        })
        .collect();
    live.sort();
    replayed.sort();
    let waiting = live.iter().filter(|d| d.2 == "awaitingapproval").count();
    println!(
        "{} listing events decided live, {} replayed; {waiting} chosen (awaiting approval)",
        live.len(),
        replayed.len()
    );
    assert!(live.len() >= 20 && waiting >= 1, "enough decisions to compare: {live:#?}");
    for (a, b) in live.iter().zip(&replayed) {
        assert_eq!(a, b, "the live decision, then the replayed one");
    }
    assert_eq!(live.len(), replayed.len());
}

/// A backtest of `user` once it no longer runs (within a minute).
async fn ended(agents: &AgentServiceClient<Channel>, user: Uuid, id: &str) -> fastbreak_proto::agents::v1::Backtest {
    use fastbreak_proto::agents::v1::{BacktestState, GetBacktestRequest};
    until("the backtest ends", Duration::from_secs(60), || {
        let mut agents = agents.clone();
        let request = GetBacktestRequest { backtest_id: id.to_owned(), ..Default::default() };
        async move {
            let found = agents.get_backtest(as_user(request, user)).await.ok()?.into_inner();
            (found.state() != BacktestState::Running).then_some(found)
        }
    })
    .await
}

/// A user with a strategy to backtest, in `mesh`.
async fn season_to_backtest(mesh: &TradingMesh) -> (Uuid, fastbreak_proto::agents::v1::RunBacktestRequest) {
    let (user, _) = mesh.funded_user(50_000).await;
    let mut strategies = StrategyServiceClient::new(channel(mesh, "strategy").await);
    let rules = StrategyRules {
        min_confidence: 0.3,
        min_discount_bps: 1_500,
        max_price_cents: 50_000,
        max_purchases_per_day: 4,
    };
    let strategy = Strategy {
        display_name: "Season long".into(),
        rules: Some(rules),
        parameters: Some(Parameters::RookieRisers(RookieRisersParameters {
            max_seasons_played: 3,
            ..Default::default()
        })),
        ..Default::default()
    };
    let strategy = active_strategy(&mut strategies, user, strategy).await;
    let season = fastbreak_proto::agents::v1::RunBacktestRequest {
        strategy_ids: vec![strategy.strategy_id.clone()],
        seed: 3,
        days: 120,
        starting_balance_cents: 100_000,
        hold_days: 7,
    };
    (user, season)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backtest_cancelled_by_its_user_stops_and_frees_its_slot() {
    use fastbreak_proto::agents::v1::{BacktestState, CancelBacktestRequest, GetBacktestRequest, RunBacktestRequest};
    let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
    let (user, season) = season_to_backtest(&mesh).await;
    let (stranger, _) = mesh.funded_user(50_000).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let cancel = |id: &str| CancelBacktestRequest { backtest_id: id.to_owned() };

    // Cancelled by its user: it ends CANCELLED at once, keeps how far it got, and goes no further.
    let started = agents.run_backtest(as_user(season.clone(), user)).await.unwrap().into_inner();
    let missing = agents.cancel_backtest(as_user(cancel(&started.backtest_id), stranger)).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "another user's backtest is not found");
    let bad = agents.cancel_backtest(as_user(cancel("nope"), user)).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("backtest_id"), "{}", bad.message());
    let cancelled = agents.cancel_backtest(as_user(cancel(&started.backtest_id), user)).await.unwrap().into_inner();
    assert_eq!(cancelled.state(), BacktestState::Cancelled);
    assert!(cancelled.failure_reason.starts_with("cancelled by you at "), "{}", cancelled.failure_reason);
    assert!(cancelled.end_time.is_some());
    let again = agents.cancel_backtest(as_user(cancel(&started.backtest_id), user)).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("already ended (cancelled)"), "{}", again.message());
    let get = GetBacktestRequest { backtest_id: started.backtest_id.clone(), ..Default::default() };
    let later = agents.get_backtest(as_user(get, user)).await.unwrap().into_inner();
    assert_eq!(later.state(), BacktestState::Cancelled);
    assert!(later.days_done < 120 && later.report_json.is_empty(), "it stopped: day {}", later.days_done);

    // The replays stop: with both slots taken by cancelled seasons that went on, a short
    // backtest would wait for a whole season; it runs at once instead.
    let second = agents.run_backtest(as_user(season.clone(), user)).await.unwrap().into_inner();
    agents.cancel_backtest(as_user(cancel(&second.backtest_id), user)).await.unwrap();
    let short =
        agents.run_backtest(as_user(RunBacktestRequest { days: 2, ..season }, user)).await.unwrap().into_inner();
    let began = std::time::Instant::now();
    let done = ended(&agents, user, &short.backtest_id).await;
    assert_eq!(done.state(), BacktestState::Succeeded, "{}", done.failure_reason);
    assert!(began.elapsed() < Duration::from_secs(8), "it waited {:?} for a slot", began.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backtest_past_its_deadline_is_stopped_and_fails_saying_so() {
    use fastbreak_proto::agents::v1::BacktestState;
    let mesh = TradingMesh::start(MeshOptions {
        agents: true,
        backtest_deadline: Duration::from_secs(1),
        ..MeshOptions::default()
    })
    .await;
    let (user, season) = season_to_backtest(&mesh).await;
    let mut agents = AgentServiceClient::new(channel(&mesh, "agents").await);
    let long = agents.run_backtest(as_user(season, user)).await.unwrap().into_inner();
    let stopped = ended(&agents, user, &long.backtest_id).await;
    assert_eq!(stopped.state(), BacktestState::Failed, "{stopped:?}");
    assert!(
        stopped.failure_reason.contains("took longer than the 1 s a backtest may run"),
        "{}",
        stopped.failure_reason
    );
    assert!(stopped.days_done < 120 && stopped.report_json.is_empty());
}
