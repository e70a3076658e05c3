use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::{
    ArbitrageModeParameters, CreateStrategyRequest, DailyScan, ListStrategiesRequest, RookieRisersParameters, Stat,
    StatTrigger, Strategy, StrategyRules,
};
use tonic::Code;

use crate::{as_user, rules, spawn_app, spike, violated_fields};

#[tokio::test]
async fn every_violation_is_returned_at_once_and_nothing_is_created() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let strategy = Strategy {
        display_name: String::new(),
        rules: Some(StrategyRules {
            min_confidence: 1.5,
            min_discount_bps: 20_000,
            max_price_cents: 0,
            max_purchases_per_day: 0,
        }),
        parameters: Some(Parameters::RookieRisers(RookieRisersParameters {
            max_seasons_played: 9,
            min_performance_rise_percent: f64::NAN,
            rarities: vec![Rarity::Unspecified as i32, Rarity::Rare as i32, Rarity::Rare as i32],
            team_codes: vec!["LAKERS".into()],
        })),
        priority: 101,
        daily_scan: Some(DailyScan { time_of_day: "25:00".into(), time_zone: "Atlantis/Nowhere".into() }),
        ..Default::default()
    };
    let status = app.create(user, strategy).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "strategy.display_name",
            "strategy.rules.min_confidence",
            "strategy.rules.min_discount_bps",
            "strategy.rules.max_price_cents",
            "strategy.rules.max_purchases_per_day",
            "strategy.rookie_risers.rarities[0]",
            "strategy.rookie_risers.rarities[2]",
            "strategy.rookie_risers.max_seasons_played",
            "strategy.rookie_risers.min_performance_rise_percent",
            "strategy.rookie_risers.team_codes[0]",
            "strategy.priority",
            "strategy.daily_scan.time_of_day",
            "strategy.daily_scan.time_zone",
        ]
    );
    let listed =
        app.public.list_strategies(as_user(ListStrategiesRequest::default(), user)).await.unwrap().into_inner();
    assert!(listed.strategies.is_empty());
}

#[tokio::test]
async fn parameters_of_each_kind_are_checked() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let no_kind = Strategy { parameters: None, ..spike(&[], &[]) };
    assert_eq!(violated_fields(&app.create(user, no_kind).await.unwrap_err()), ["strategy.parameters"]);

    let mut triggers = spike(&["p1", "p1"], &[]);
    if let Some(Parameters::PostGameSpike(p)) = triggers.parameters.as_mut() {
        p.stat_triggers = vec![
            StatTrigger { stat: Stat::Unspecified as i32, at_least: 10 },
            StatTrigger { stat: Stat::Rebounds as i32, at_least: 0 },
        ];
        p.buy_window_minutes = 5000;
    }
    assert_eq!(
        violated_fields(&app.create(user, triggers).await.unwrap_err()),
        [
            "strategy.post_game_spike.stat_triggers[0].stat",
            "strategy.post_game_spike.buy_window_minutes",
            "strategy.post_game_spike.player_ids",
            "strategy.post_game_spike.stat_triggers[0].at_least",
        ]
    );

    let arbitrage = Strategy {
        parameters: Some(Parameters::ArbitrageMode(ArbitrageModeParameters {
            min_spread_bps: 0,
            buy_source_ids: vec![String::new()],
            relist_source_ids: vec![],
            auto_relist: true,
        })),
        ..spike(&[], &[])
    };
    assert_eq!(
        violated_fields(&app.create(user, arbitrage).await.unwrap_err()),
        ["strategy.arbitrage_mode.min_spread_bps", "strategy.arbitrage_mode.buy_source_ids[0]"]
    );
}

#[tokio::test]
async fn validate_only_answers_without_creating() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let request = CreateStrategyRequest { strategy: Some(spike(&[], &[])), validate_only: true };
    let checked = app.public.create_strategy(as_user(request, user)).await.unwrap().into_inner();
    assert_eq!(checked.display_name, "Big nights");
    assert_eq!(checked.priority, 50, "the default priority");
    let listed =
        app.public.list_strategies(as_user(ListStrategiesRequest::default(), user)).await.unwrap().into_inner();
    assert!(listed.strategies.is_empty());
}

#[tokio::test]
async fn a_strategy_needs_its_rules_and_a_known_template() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let status = app.create(user, Strategy { rules: None, ..spike(&[], &[]) }).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["strategy.rules"]);
    let status = app
        .create(user, Strategy { template_id: "no-such".into(), rules: Some(rules()), ..spike(&[], &[]) })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["strategy.template_id"]);
}

#[tokio::test]
async fn protections_name_each_bad_value_and_arbitrage_takes_only_its_pauses() {
    use fastbreak_proto::strategy::v1::{
        CooldownAfterLoss, DrawdownGuard, LosingStreakGuard, ManualApproval, StrategyProtections,
    };
    let mut app = spawn_app().await;
    let user = app.user().await;
    let bad = StrategyProtections {
        losing_streak: Some(LosingStreakGuard { losing_trades: 0, window_minutes: 60, pause_minutes: 60 }),
        drawdown: Some(DrawdownGuard { max_drawdown_bps: 500, window_minutes: 0, pause_minutes: 60 }),
        max_daily_loss_cents: -5,
        blocked_player_ids: vec!["lebron".into(), "lebron".into()],
        manual_approval: Some(ManualApproval { expire_after_minutes: 0 }),
        ..Default::default()
    };
    let status = app.create(user, Strategy { protections: Some(bad), ..spike(&[], &[]) }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "strategy.protections.losing_streak.losing_trades",
            "strategy.protections.drawdown.window_minutes",
            "strategy.protections.max_daily_loss_cents",
            "strategy.protections.blocked_player_ids",
            "strategy.protections.manual_approval.expire_after_minutes",
        ]
    );
    let arbitrage = Strategy {
        display_name: "Spreads".into(),
        rules: Some(rules()),
        parameters: Some(Parameters::ArbitrageMode(ArbitrageModeParameters {
            min_spread_bps: 500,
            auto_relist: true,
            ..Default::default()
        })),
        protections: Some(StrategyProtections {
            losing_streak: Some(LosingStreakGuard { losing_trades: 3, window_minutes: 60, pause_minutes: 60 }),
            blocked_set_names: vec!["Base Set".into()],
            manual_approval: Some(ManualApproval { expire_after_minutes: 10 }),
            cooldown_after_loss: Some(CooldownAfterLoss { minutes: 30, per_player: true }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let status = app.create(user, arbitrage.clone()).await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "strategy.protections.blocked_set_names",
            "strategy.protections.manual_approval",
            "strategy.protections.cooldown_after_loss.per_player"
        ]
    );
    let pauses_only = StrategyProtections {
        losing_streak: Some(LosingStreakGuard { losing_trades: 3, window_minutes: 60, pause_minutes: 60 }),
        ..Default::default()
    };
    let created = app.create(user, Strategy { protections: Some(pauses_only.clone()), ..arbitrage }).await.unwrap();
    assert_eq!(created.protections, Some(pauses_only));
}
