//! Purchases: settled once, replayed, refused before anything moves.

use std::time::Duration;

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::notification::v1::ListNotificationsRequest;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::trading::v1::{
    DepositFundsRequest, ExecutePurchaseRequest, GetBalanceRequest, GetTradeByIdempotencyKeyRequest, GetTradeRequest,
    ListHoldingsRequest, ListTradesRequest, PurchaseMomentRequest, ReasoningFactor, TradeState,
};
use fastbreak_proto::user::v1::DisconnectWalletRequest;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::{audit, settle_down};

fn buy(listing: Uuid, max: i64, key: &str) -> PurchaseMomentRequest {
    PurchaseMomentRequest {
        listing_id: listing.to_string(),
        max_price_cents: max,
        idempotency_key: key.to_owned(),
        note: "A bargain.".to_owned(),
        expected_value_cents: 0,
    }
}

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_settles_once_moves_the_money_and_is_replayed() {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    let (user, _) = mesh.funded_user(10_000).await;
    let listings = mesh.list_market_moments(2, "simulator", 2_000).await;
    let mut trading = mesh.trading().await;

    let trade = trading.purchase_moment(as_user(buy(listings[0], 2_500, "buy-1"), user)).await.unwrap().into_inner();
    assert_eq!(trade.state(), TradeState::Settled);
    assert_eq!((trade.price_cents, trade.fee_cents), (2_000, 100), "the simulator's fee is 5%, paid by the seller");
    assert_eq!(trade.reasoning, ["A bargain."]);
    let balance = trading.get_balance(as_user(GetBalanceRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(balance.available_cents, 8_000);

    // The same key again: the first answer, and nothing more moves.
    let again = trading.purchase_moment(as_user(buy(listings[0], 2_500, "buy-1"), user)).await.unwrap().into_inner();
    assert_eq!(again.trade_id, trade.trade_id);
    let balance = trading.get_balance(as_user(GetBalanceRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(balance.available_cents, 8_000);
    // The same key with other parameters is refused.
    let reused = trading.purchase_moment(as_user(buy(listings[1], 2_500, "buy-1"), user)).await.unwrap_err();
    assert_eq!((reused.code(), reason(&reused).as_str()), (Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED"));

    let holdings = trading.list_holdings(as_user(ListHoldingsRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(holdings.holdings.len(), 1);
    assert_eq!(
        (holdings.holdings[0].moment_id.as_str(), holdings.holdings[0].cost_cents),
        (trade.moment_id.as_str(), 2_000)
    );
    let by_key = mesh
        .trading_internal()
        .await
        .get_trade_by_idempotency_key(internal(GetTradeByIdempotencyKeyRequest {
            user_id: user.to_string(),
            idempotency_key: "buy-1".to_owned(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_key.trade_id, trade.trade_id);
    let unknown = mesh
        .trading_internal()
        .await
        .get_trade_by_idempotency_key(internal(GetTradeByIdempotencyKeyRequest {
            user_id: user.to_string(),
            idempotency_key: "never-used".to_owned(),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    settle_down(&mesh, Duration::from_secs(20)).await;
    let notifications = NotificationServiceClient::new(
        tonic::transport::Channel::from_shared(format!(
            "http://{}",
            mesh.addrs.iter().find(|(n, _)| *n == "notification").unwrap().1
        ))
        .unwrap()
        .connect()
        .await
        .unwrap(),
    )
    .list_notifications(as_user(ListNotificationsRequest::default(), user))
    .await
    .unwrap()
    .into_inner();
    assert!(
        notifications.notifications.iter().any(|n| n.title == "Moment bought"),
        "the purchase was notified: {:?}",
        notifications.notifications
    );
    audit(&mesh).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_sent_concurrently_makes_one_trade() {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    let (user, _) = mesh.funded_user(10_000).await;
    let listing = mesh.list_market_moments(1, "simulator", 1_000).await[0];
    let calls = (0..16).map(|_| {
        let mesh = &mesh;
        async move { mesh.trading().await.purchase_moment(as_user(buy(listing, 1_000, "same"), user)).await }
    });
    let answers = futures::future::join_all(calls).await;
    let ids: std::collections::BTreeSet<String> =
        answers.into_iter().map(|a| a.expect("every call is answered").into_inner().trade_id).collect();
    assert_eq!(ids.len(), 1, "one trade: {ids:?}");
    let trades =
        mesh.trading().await.list_trades(as_user(ListTradesRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(trades.trades.len(), 1);
    settle_down(&mesh, Duration::from_secs(20)).await;
    audit(&mesh).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_move_nothing_and_are_replayed_as_they_were() {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    let (user, _) = mesh.funded_user(1_500).await;
    let listings = mesh.list_market_moments(4, "simulator", 2_000).await;
    let mut trading = mesh.trading().await;

    // Insufficient balance: refused before anything moves, and the same again on replay.
    let poor = trading.purchase_moment(as_user(buy(listings[0], 2_000, "poor"), user)).await.unwrap_err();
    assert_eq!((poor.code(), reason(&poor).as_str()), (Code::FailedPrecondition, "INSUFFICIENT_FUNDS"));
    let again = trading.purchase_moment(as_user(buy(listings[0], 2_000, "poor"), user)).await.unwrap_err();
    assert_eq!((again.code(), again.message()), (poor.code(), poor.message()));
    assert_eq!(reason(&again), "INSUFFICIENT_FUNDS");

    trading
        .deposit_funds(as_user(DepositFundsRequest { amount_cents: 100_000, idempotency_key: "more".into() }, user))
        .await
        .unwrap();
    // The same deposit key again: once.
    let balance = trading
        .deposit_funds(as_user(DepositFundsRequest { amount_cents: 100_000, idempotency_key: "more".into() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.available_cents, 101_500);
    let other = trading
        .deposit_funds(as_user(DepositFundsRequest { amount_cents: 5, idempotency_key: "more".into() }, user))
        .await
        .unwrap_err();
    assert_eq!(reason(&other), "IDEMPOTENCY_KEY_REUSED");

    // Too dear for the maximum.
    let dear = trading.purchase_moment(as_user(buy(listings[1], 1_999, "dear"), user)).await.unwrap_err();
    assert_eq!(reason(&dear), "LISTING_UNAVAILABLE");

    // Unprofitable after fees: selling at 2,100 leaves 1,995 after the 5% fee, not above 2,000.
    let mut thin = buy(listings[1], 2_000, "thin");
    thin.expected_value_cents = 2_100;
    let unprofitable = trading.purchase_moment(as_user(thin, user)).await.unwrap_err();
    assert_eq!(reason(&unprofitable), "UNPROFITABLE");
    let trade_id = unprofitable.get_details_error_info().unwrap().metadata["trade_id"].clone();
    let recorded = trading.get_trade(as_user(GetTradeRequest { trade_id }, user)).await.unwrap().into_inner();
    assert_eq!(recorded.state(), TradeState::Failed);
    assert!(recorded.failure_reason.contains("unprofitable after fees"), "{}", recorded.failure_reason);

    // A risk limit: the per-moment limit is 250.00 by default.
    let dear_listing = mesh.list_market_moments(1, "simulator", 30_000).await[0];
    let limited = trading.purchase_moment(as_user(buy(dear_listing, 30_000, "limit"), user)).await.unwrap_err();
    assert_eq!(reason(&limited), "LIMIT_EXCEEDED");
    assert_eq!(limited.get_details_error_info().unwrap().metadata["limit"], "LIMIT_KIND_PER_MOMENT");

    // The wallet disconnected: trading is off.
    mesh.users().await.disconnect_wallet(as_user(DisconnectWalletRequest {}, user)).await.unwrap();
    let off = trading.purchase_moment(as_user(buy(listings[2], 2_000, "off"), user)).await.unwrap_err();
    assert_eq!(reason(&off), "WALLET_DISCONNECTED");

    let balance = trading.get_balance(as_user(GetBalanceRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(balance.available_cents, 101_500, "no refusal moved money");
    settle_down(&mesh, Duration::from_secs(20)).await;
    audit(&mesh).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_automated_purchase_keeps_its_strategy_decision_valuation_and_factors() {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    let (user, _) = mesh.funded_user(10_000).await;
    let listing = mesh.list_market_moments(1, "simulator", 1_000).await[0];
    let (strategy, decision, valuation) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let request = ExecutePurchaseRequest {
        user_id: user.to_string(),
        listing_id: listing.to_string(),
        max_price_cents: 1_200,
        idempotency_key: format!("decision-{decision}"),
        strategy_id: strategy.to_string(),
        decision_id: decision.to_string(),
        reasoning: vec!["Fair value 1,800; listed 44% below.".to_owned()],
        valuation_id: valuation.to_string(),
        expected_value_cents: 1_800,
        factors: vec![
            ReasoningFactor {
                name: "serial_scarcity".into(),
                weight: 0.3,
                impact_cents: 200,
                explanation: "A low serial.".into(),
            },
            ReasoningFactor {
                name: "recent_points".into(),
                weight: 0.7,
                impact_cents: 500,
                explanation: "40 points last night.".into(),
            },
        ],
    };
    let mut internal_client = mesh.trading_internal().await;
    let trade = internal_client.execute_purchase(internal(request.clone())).await.unwrap().into_inner();
    assert_eq!(trade.state(), TradeState::Settled);
    assert_eq!(
        (trade.strategy_id.as_str(), trade.valuation_id.as_str()),
        (strategy.to_string().as_str(), valuation.to_string().as_str())
    );
    assert_eq!(
        trade.factors.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["recent_points", "serial_scarcity"],
        "heaviest first"
    );
    let listed = mesh
        .trading()
        .await
        .list_trades(as_user(ListTradesRequest { strategy_id: strategy.to_string(), ..Default::default() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.trades.len(), 1);
    assert_eq!(listed.trades[0].factors.len(), 2, "the history carries the weighted factors");

    let mut no_reason = request.clone();
    no_reason.reasoning.clear();
    no_reason.idempotency_key = "another".into();
    let refused = internal_client.execute_purchase(internal(no_reason)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.get_details_bad_request().unwrap().field_violations.iter().any(|v| v.field == "reasoning"));

    settle_down(&mesh, Duration::from_secs(20)).await;
    audit(&mesh).await;
}
