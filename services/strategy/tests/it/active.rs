use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::strategy::v1::{ListActiveStrategiesRequest, StrategyKind};

use crate::{internal, spawn_app, spike};

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
