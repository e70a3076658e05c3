use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::{
    ArbitrageModeParameters, DailyScan, DeleteStrategyRequest, GetStrategyPerformanceRequest, GetStrategyRequest,
    ListStrategiesRequest, ListStrategyTemplatesRequest, PauseStrategyRequest, RecordStrategyOutcomeRequest,
    StrategyKind, StrategyState, UpdateStrategyRequest,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

use crate::{as_user, internal, spawn_app, spike, violated_fields};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

#[tokio::test]
async fn a_strategy_is_created_paused_then_activated_paused_and_deleted() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let mut given = spike(&["p1"], &[]);
    given.daily_scan = Some(DailyScan { time_of_day: "09:30".into(), time_zone: "America/New_York".into() });
    given.priority = 80;
    let created = app.create(user, given).await.unwrap();
    assert_eq!(created.state(), StrategyState::Paused);
    assert_eq!((created.kind(), created.priority), (StrategyKind::PostGameSpike, 80));
    assert_eq!(created.daily_scan.as_ref().unwrap().time_zone, "America/New_York");
    assert_eq!(created.user_id, user.to_string());

    app.activate(user, &created).await;
    let again = app
        .public
        .activate_strategy(as_user(
            fastbreak_proto::strategy::v1::ActivateStrategyRequest { strategy_id: created.strategy_id.clone() },
            user,
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(again.get_details_error_info().unwrap().reason, "INVALID_STATE");

    let request = PauseStrategyRequest { strategy_id: created.strategy_id.clone() };
    let paused = app.public.pause_strategy(as_user(request, user)).await.unwrap().into_inner();
    assert_eq!(paused.state(), StrategyState::Paused);

    let request = DeleteStrategyRequest { strategy_id: created.strategy_id.clone() };
    app.public.delete_strategy(as_user(request.clone(), user)).await.unwrap();
    let gone = app.public.delete_strategy(as_user(request, user)).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn an_update_changes_only_the_masked_fields() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let created = app.create(user, spike(&[], &[])).await.unwrap();
    let mut change = created.clone();
    change.display_name = "Renamed".into();
    change.rules.as_mut().unwrap().min_confidence = 0.9;
    change.rules.as_mut().unwrap().max_price_cents = 1;
    let request = UpdateStrategyRequest {
        strategy: Some(change.clone()),
        update_mask: mask(&["rules.min_confidence"]),
        validate_only: false,
    };
    let updated = app.public.update_strategy(as_user(request, user)).await.unwrap().into_inner();
    assert_eq!(updated.display_name, "Big nights");
    assert_eq!(updated.rules.as_ref().unwrap().min_confidence, 0.9);
    assert_eq!(updated.rules.as_ref().unwrap().max_price_cents, 5000);

    let request = UpdateStrategyRequest {
        strategy: Some(change.clone()),
        update_mask: mask(&["display_name"]),
        validate_only: true,
    };
    let previewed = app.public.update_strategy(as_user(request, user)).await.unwrap().into_inner();
    assert_eq!(previewed.display_name, "Renamed");
    let stored = app
        .public
        .get_strategy(as_user(GetStrategyRequest { strategy_id: created.strategy_id.clone() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.display_name, "Big nights", "validate_only changes nothing");

    let mut other_kind = change.clone();
    other_kind.parameters =
        Some(Parameters::ArbitrageMode(ArbitrageModeParameters { min_spread_bps: 500, ..Default::default() }));
    let request = UpdateStrategyRequest {
        strategy: Some(other_kind),
        update_mask: mask(&["arbitrage_mode", "colour"]),
        validate_only: false,
    };
    let status = app.public.update_strategy(as_user(request, user)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask", "update_mask"]);

    let mut invalid = change;
    invalid.rules.as_mut().unwrap().min_discount_bps = -5;
    invalid.rules.as_mut().unwrap().max_price_cents = 0;
    let request =
        UpdateStrategyRequest { strategy: Some(invalid), update_mask: mask(&["rules"]), validate_only: false };
    let status = app.public.update_strategy(as_user(request, user)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["strategy.rules.min_discount_bps", "strategy.rules.max_price_cents"]);
}

#[tokio::test]
async fn another_users_strategy_is_not_found_for_any_call() {
    let mut app = spawn_app().await;
    let owner = app.user().await;
    let stranger = app.user().await;
    let created = app.create(owner, spike(&[], &[])).await.unwrap();
    let id = created.strategy_id.clone();
    let get =
        app.public.get_strategy(as_user(GetStrategyRequest { strategy_id: id.clone() }, stranger)).await.unwrap_err();
    let update = app
        .public
        .update_strategy(as_user(
            UpdateStrategyRequest { strategy: Some(created.clone()), update_mask: None, validate_only: false },
            stranger,
        ))
        .await
        .unwrap_err();
    let pause = app
        .public
        .pause_strategy(as_user(PauseStrategyRequest { strategy_id: id.clone() }, stranger))
        .await
        .unwrap_err();
    let delete = app
        .public
        .delete_strategy(as_user(DeleteStrategyRequest { strategy_id: id.clone() }, stranger))
        .await
        .unwrap_err();
    let performance = app
        .public
        .get_strategy_performance(as_user(GetStrategyPerformanceRequest { strategy_id: id.clone() }, stranger))
        .await
        .unwrap_err();
    for status in [get, update, pause, delete, performance] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let theirs =
        app.public.list_strategies(as_user(ListStrategiesRequest::default(), stranger)).await.unwrap().into_inner();
    assert!(theirs.strategies.is_empty());
    let unauthenticated = app.public.get_strategy(internal(GetStrategyRequest { strategy_id: id })).await.unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn lists_filter_by_state_and_kind_and_page() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create(user, spike(&[], &[])).await.unwrap());
    }
    app.activate(user, &ids[0]).await;
    let active = ListStrategiesRequest { state: StrategyState::Active as i32, ..Default::default() };
    let listed = app.public.list_strategies(as_user(active, user)).await.unwrap().into_inner();
    assert_eq!(
        listed.strategies.iter().map(|s| s.strategy_id.clone()).collect::<Vec<_>>(),
        [ids[0].strategy_id.clone()]
    );
    let arbitrage = ListStrategiesRequest { kind: StrategyKind::ArbitrageMode as i32, ..Default::default() };
    assert!(app.public.list_strategies(as_user(arbitrage, user)).await.unwrap().into_inner().strategies.is_empty());
    let first = app
        .public
        .list_strategies(as_user(ListStrategiesRequest { page_size: 2, ..Default::default() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.strategies.len(), 2);
    let rest = ListStrategiesRequest { page_size: 2, page_token: first.next_page_token, ..Default::default() };
    let second = app.public.list_strategies(as_user(rest, user)).await.unwrap().into_inner();
    assert_eq!(second.strategies.len(), 1);
    assert!(second.next_page_token.is_empty());
}

#[tokio::test]
async fn templates_are_ready_to_create_from() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let templates = app
        .public
        .list_strategy_templates(as_user(ListStrategyTemplatesRequest::default(), user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(templates.templates.len(), 3);
    let kinds: Vec<StrategyKind> = templates.templates.iter().map(|t| t.strategy.as_ref().unwrap().kind()).collect();
    for kind in [StrategyKind::RookieRisers, StrategyKind::PostGameSpike, StrategyKind::ArbitrageMode] {
        assert!(kinds.contains(&kind), "{kind:?}");
    }
    for template in templates.templates {
        let created = app.create(user, template.strategy.unwrap()).await.unwrap();
        assert_eq!(created.template_id, template.template_id);
    }
    let paged = app
        .public
        .list_strategy_templates(as_user(
            ListStrategyTemplatesRequest { page_size: 2, page_token: String::new() },
            user,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paged.templates.len(), 2);
    let rest = app
        .public
        .list_strategy_templates(as_user(
            ListStrategyTemplatesRequest { page_size: 2, page_token: paged.next_page_token },
            user,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.templates.len(), 1);
}

#[tokio::test]
async fn outcomes_add_up_once_per_trade() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let created = app.create(user, spike(&[], &[])).await.unwrap();
    let trade = uuid::Uuid::new_v4().to_string();
    let buy = RecordStrategyOutcomeRequest {
        strategy_id: created.strategy_id.clone(),
        trade_id: trade.clone(),
        spent_cents: 4_000,
        proceeds_cents: 0,
        realized_pnl_cents: 0,
        ..Default::default()
    };
    app.internal.record_strategy_outcome(internal(buy.clone())).await.unwrap();
    let repeated = app.internal.record_strategy_outcome(internal(buy)).await.unwrap().into_inner();
    assert_eq!((repeated.purchase_count, repeated.spent_cents), (1, 4_000), "a trade counts once");
    let sale = RecordStrategyOutcomeRequest {
        strategy_id: created.strategy_id.clone(),
        trade_id: uuid::Uuid::new_v4().to_string(),
        spent_cents: 0,
        proceeds_cents: 5_000,
        realized_pnl_cents: 1_000,
        ..Default::default()
    };
    app.internal.record_strategy_outcome(internal(sale)).await.unwrap();
    let request = GetStrategyPerformanceRequest { strategy_id: created.strategy_id.clone() };
    let performance = app.public.get_strategy_performance(as_user(request, user)).await.unwrap().into_inner();
    assert_eq!(
        (
            performance.purchase_count,
            performance.sale_count,
            performance.proceeds_cents,
            performance.realized_pnl_cents,
            performance.roi_bps
        ),
        (1, 1, 5_000, 1_000, 2_500)
    );
    let unknown = RecordStrategyOutcomeRequest {
        strategy_id: uuid::Uuid::new_v4().to_string(),
        trade_id: trade,
        spent_cents: 1,
        proceeds_cents: 0,
        realized_pnl_cents: 0,
        ..Default::default()
    };
    assert_eq!(app.internal.record_strategy_outcome(internal(unknown)).await.unwrap_err().code(), Code::NotFound);
    let bad = RecordStrategyOutcomeRequest { spent_cents: -1, ..Default::default() };
    let status = app.internal.record_strategy_outcome(internal(bad)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["strategy_id", "trade_id", "spent_cents", "spent_cents"]);
}

#[tokio::test]
async fn protections_are_kept_changed_by_their_mask_and_lifted_by_a_reset() {
    use fastbreak_proto::strategy::v1::{
        CooldownAfterLoss, ListStrategyOutcomesRequest, ManualApproval, ResetStrategyProtectionsRequest, Strategy,
        StrategyProtections, UpdateStrategyRequest,
    };
    let mut app = spawn_app().await;
    let user = app.user().await;
    let protections = StrategyProtections {
        cooldown_after_loss: Some(CooldownAfterLoss { minutes: 90, per_player: true }),
        max_daily_loss_cents: 2_500,
        blocked_set_names: vec!["Base Set".into()],
        manual_approval: Some(ManualApproval { expire_after_minutes: 30 }),
        ..Default::default()
    };
    let created =
        app.create(user, Strategy { protections: Some(protections.clone()), ..spike(&[], &[]) }).await.unwrap();
    assert_eq!(created.protections, Some(protections.clone()));
    assert_eq!(created.protections_reset_time, None);

    // An update that does not name them keeps them; one that names them replaces them.
    let renamed = UpdateStrategyRequest {
        strategy: Some(Strategy {
            strategy_id: created.strategy_id.clone(),
            display_name: "Renamed".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["display_name".into()] }),
        validate_only: false,
    };
    let kept = app.public.update_strategy(as_user(renamed, user)).await.unwrap().into_inner();
    assert_eq!(kept.protections, Some(protections.clone()));
    let cleared = UpdateStrategyRequest {
        strategy: Some(Strategy { strategy_id: created.strategy_id.clone(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["protections".into()] }),
        validate_only: false,
    };
    let none = app.public.update_strategy(as_user(cleared, user)).await.unwrap().into_inner();
    assert_eq!(none.protections, None);

    // Outcomes come back by the time their trades settled, oldest first, with their moments.
    let moment = uuid::Uuid::new_v4().to_string();
    let at = |minutes_ago: i64| {
        Some(fastbreak_mesh::status::timestamp(chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)))
    };
    for (minutes_ago, pnl) in [(30, -700), (90, 300)] {
        let sale = RecordStrategyOutcomeRequest {
            strategy_id: created.strategy_id.clone(),
            trade_id: uuid::Uuid::new_v4().to_string(),
            proceeds_cents: 4_000,
            realized_pnl_cents: pnl,
            moment_id: moment.clone(),
            occur_time: at(minutes_ago),
            ..Default::default()
        };
        app.internal.record_strategy_outcome(internal(sale)).await.unwrap();
    }
    let since =
        ListStrategyOutcomesRequest { strategy_id: created.strategy_id.clone(), since: at(120), ..Default::default() };
    let listed = app.internal.list_strategy_outcomes(internal(since.clone())).await.unwrap().into_inner();
    let pnls: Vec<i64> = listed.outcomes.iter().map(|o| o.realized_pnl_cents).collect();
    assert_eq!(pnls, [300, -700]);
    assert!(listed.outcomes.iter().all(|o| o.moment_id == moment));
    let recent = ListStrategyOutcomesRequest { since: at(60), ..since.clone() };
    assert_eq!(app.internal.list_strategy_outcomes(internal(recent)).await.unwrap().into_inner().outcomes.len(), 1);
    // A page at a time, oldest first.
    let one = ListStrategyOutcomesRequest { page_size: 1, ..since.clone() };
    let first = app.internal.list_strategy_outcomes(internal(one.clone())).await.unwrap().into_inner();
    assert_eq!((first.outcomes[0].realized_pnl_cents, first.next_page_token.is_empty()), (300, false));
    let next = ListStrategyOutcomesRequest { page_token: first.next_page_token, ..one };
    let second = app.internal.list_strategy_outcomes(internal(next)).await.unwrap().into_inner();
    assert_eq!((second.outcomes[0].realized_pnl_cents, second.next_page_token.as_str()), (-700, ""));

    // A reset lifts them: what came before no longer counts towards the protections.
    let reset = ResetStrategyProtectionsRequest { strategy_id: created.strategy_id.clone() };
    let lifted = app.public.reset_strategy_protections(as_user(reset.clone(), user)).await.unwrap().into_inner();
    assert!(lifted.protections_reset_time.is_some());
    let after = app.internal.list_strategy_outcomes(internal(since)).await.unwrap().into_inner();
    assert!(after.outcomes.is_empty());
    assert_eq!(after.protections_reset_time, lifted.protections_reset_time);
    let stranger = app.user().await;
    let status = app.public.reset_strategy_protections(as_user(reset, stranger)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "only its owner resets a strategy's protections");

    let missing =
        ListStrategyOutcomesRequest { strategy_id: "nope".into(), since: None, page_size: 5000, ..Default::default() };
    let status = app.internal.list_strategy_outcomes(internal(missing)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["strategy_id", "since", "page_size"]);
}
