use fastbreak_mesh::testing::as_user;
use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::strategy::v1::{
    DeleteStrategyRequest, GetStrategiesRevisionRequest, ListActiveStrategiesRequest, PauseStrategyRequest, Strategy,
    StrategyKind,
};

use crate::{App, internal, spawn_app, spike};

#[tokio::test]
async fn active_strategies_are_listed_for_the_agents_filtered_by_player_kind_and_rarity() {
    let mut app = spawn_app().await;
    let ada = app.user().await;
    let bob = app.user().await;
    let any_player = app.create(ada, spike(&[], &[])).await.unwrap();
    let only_p1_rare = app.create(bob, spike(&["p1"], &[Rarity::Rare])).await.unwrap();
    let paused = app.create(bob, spike(&["p1"], &[])).await.unwrap();
    app.activate(ada, &any_player).await;
    app.activate(bob, &only_p1_rare).await;

    let list = |request: ListActiveStrategiesRequest| {
        let mut client = app.internal.clone();
        async move {
            let mut ids: Vec<String> = client
                .list_active_strategies(internal(request))
                .await
                .unwrap()
                .into_inner()
                .strategies
                .into_iter()
                .map(|s| s.strategy_id)
                .collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![any_player.strategy_id.clone(), only_p1_rare.strategy_id.clone()];
    both.sort();
    assert_eq!(list(ListActiveStrategiesRequest::default()).await, both);
    assert!(!list(ListActiveStrategiesRequest::default()).await.contains(&paused.strategy_id));
    let p2 = ListActiveStrategiesRequest { player_id: "p2".into(), ..Default::default() };
    assert_eq!(list(p2).await, vec![any_player.strategy_id.clone()]);
    let p1_common =
        ListActiveStrategiesRequest { player_id: "p1".into(), rarity: Rarity::Common as i32, ..Default::default() };
    assert_eq!(list(p1_common).await, vec![any_player.strategy_id.clone()]);
    let p1_rare =
        ListActiveStrategiesRequest { player_id: "p1".into(), rarity: Rarity::Rare as i32, ..Default::default() };
    assert_eq!(list(p1_rare).await, both);
    let arbitrage = ListActiveStrategiesRequest { kind: StrategyKind::ArbitrageMode as i32, ..Default::default() };
    assert!(list(arbitrage).await.is_empty());

    let first = app
        .internal
        .list_active_strategies(internal(ListActiveStrategiesRequest { page_size: 1, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.strategies.len(), 1);
    assert!(!first.strategies[0].user_id.is_empty(), "user_id is set for the agents");
    let second = app
        .internal
        .list_active_strategies(internal(ListActiveStrategiesRequest {
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.strategies.len(), 1);
    assert_ne!(second.strategies[0].strategy_id, first.strategies[0].strategy_id);
}

#[tokio::test]
async fn the_revision_moves_on_with_every_change_to_a_strategy_and_only_then() {
    let mut app = spawn_app().await;
    let ada = app.user().await;
    let revision = |app: &App| {
        let mut client = app.internal.clone();
        async move {
            client
                .get_strategies_revision(internal(GetStrategiesRevisionRequest {}))
                .await
                .unwrap()
                .into_inner()
                .revision
        }
    };
    let at_start = revision(&app).await;
    assert_eq!(revision(&app).await, at_start, "reading moves nothing");
    let created = app.create(ada, spike(&["p1"], &[])).await.unwrap();
    let after_create = revision(&app).await;
    assert!(after_create > at_start, "{at_start} then {after_create}");
    app.activate(ada, &created).await;
    let after_activate = revision(&app).await;
    assert!(after_activate > after_create);
    // A change refused changes nothing.
    let refused = app.create(ada, Strategy { display_name: String::new(), ..spike(&[], &[]) }).await;
    assert!(refused.is_err());
    assert_eq!(revision(&app).await, after_activate);
    app.public
        .pause_strategy(as_user(PauseStrategyRequest { strategy_id: created.strategy_id.clone() }, ada))
        .await
        .unwrap();
    let after_pause = revision(&app).await;
    assert!(after_pause > after_activate);
    app.public
        .delete_strategy(as_user(DeleteStrategyRequest { strategy_id: created.strategy_id.clone() }, ada))
        .await
        .unwrap();
    assert!(revision(&app).await > after_pause, "a deletion moves it too");
}
