//! Buy-and-relist: both halves or, when the relist cannot be made after the purchase settled,
//! an open arbitrage (the relist PENDING) that the worker lists as soon as it can.

use std::time::Duration;

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::trading::v1::{
    BuyAndRelistRequest, ExecuteArbitrageRequest, GetBalanceRequest, GetTradeRequest, ListHoldingsRequest,
    ListTradesRequest, PurchaseMomentRequest, TradeKind, TradeState,
};
use futures::FutureExt;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::{audit, settle_down};

fn arbitrage(listing: Uuid, key: &str) -> BuyAndRelistRequest {
    BuyAndRelistRequest {
        listing_id: listing.to_string(),
        max_price_cents: 2_000,
        relist_source_id: "east".to_owned(),
        relist_price_cents: 2_600,
        idempotency_key: key.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn buy_and_relist_does_both_and_a_relisted_moment_sells_to_another_user() {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    mesh.list_market_moments(1, "east", 9_999).await;
    let (user, wallet) = mesh.funded_user(10_000).await;
    let listing = mesh.list_market_moments(1, "simulator", 2_000).await[0];
    let mut trading = mesh.trading().await;

    let same_source = BuyAndRelistRequest { relist_source_id: "simulator".into(), ..arbitrage(listing, "same") };
    let refused = trading.buy_and_relist(as_user(same_source, user)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(refused.get_details_bad_request().unwrap().field_violations[0].field, "relist_source_id");

    let both = trading.buy_and_relist(as_user(arbitrage(listing, "arb-1"), user)).await.unwrap().into_inner();
    let (purchase, relist) = (both.purchase.unwrap(), both.sale_listing.unwrap());
    assert_eq!((purchase.state(), relist.state()), (TradeState::Settled, TradeState::Settled));
    assert_eq!((relist.kind(), relist.source_id.as_str(), relist.price_cents), (TradeKind::SaleListing, "east", 2_600));
    let new_listing: Uuid = relist.listing_id.parse().expect("the relist names its listing");
    let stored = mesh
        .pool
        .read(move |conn| async move { fastbreak_marketplace::store::find_listing(conn, new_listing).await }.boxed())
        .await
        .unwrap()
        .expect("the listing exists");
    assert_eq!((stored.seller_address.as_str(), stored.source_id.as_str()), (wallet.as_str(), "east"));
    let holdings = trading.list_holdings(as_user(ListHoldingsRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(holdings.holdings[0].listing_id, relist.listing_id, "the holding shows where it is offered");

    // Another user buys the relisted moment: the first user's sale is recorded with its profit.
    let (buyer, _) = mesh.funded_user(10_000).await;
    let bought = trading
        .purchase_moment(as_user(
            PurchaseMomentRequest {
                listing_id: relist.listing_id.clone(),
                max_price_cents: 2_600,
                idempotency_key: "from-a-collector".into(),
                ..Default::default()
            },
            buyer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bought.state(), TradeState::Settled);
    let sales = trading
        .list_trades(as_user(ListTradesRequest { kind: TradeKind::Sale.into(), ..Default::default() }, user))
        .await
        .unwrap()
        .into_inner()
        .trades;
    assert_eq!(sales.len(), 1);
    // 2,600 less east's 2.5% fee (65) is 2,535; it cost 2,000.
    assert_eq!((sales[0].price_cents, sales[0].fee_cents, sales[0].realized_pnl_cents), (2_600, 65, 535));
    let seller_balance = trading.get_balance(as_user(GetBalanceRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(seller_balance.available_cents, 10_000 - 2_000 + 2_535);
    assert!(
        trading
            .list_holdings(as_user(ListHoldingsRequest::default(), user))
            .await
            .unwrap()
            .into_inner()
            .holdings
            .is_empty()
    );
    settle_down(&mesh, Duration::from_secs(20)).await;
    audit(&mesh).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relist_that_fails_after_the_purchase_stays_open_and_lands_later() {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    mesh.list_market_moments(1, "east", 9_999).await;
    let (user, _) = mesh.funded_user(10_000).await;
    let listing = mesh.list_market_moments(1, "simulator", 2_000).await[0];

    fail::cfg(mesh.fail_point("trading::before-listing"), "return").expect("a fail point");
    let request = ExecuteArbitrageRequest {
        user_id: user.to_string(),
        listing_id: listing.to_string(),
        max_price_cents: 2_000,
        relist_source_id: "east".into(),
        relist_price_cents: 2_600,
        idempotency_key: "arb-open".into(),
        strategy_id: Uuid::new_v4().to_string(),
        decision_id: Uuid::new_v4().to_string(),
        valuation_id: String::new(),
        reasoning: vec!["Listed 20% below the same play on east.".into()],
        factors: Vec::new(),
    };
    let open = mesh.trading_internal().await.execute_arbitrage(internal(request.clone())).await.unwrap().into_inner();
    let (purchase, relist) = (open.purchase.unwrap(), open.sale_listing.unwrap());
    assert_eq!(purchase.state(), TradeState::Settled, "the purchase stands");
    assert_eq!(relist.state(), TradeState::Pending, "an open arbitrage: owned, not yet listed");
    let total = mesh
        .pool
        .read(|conn| async move { fastbreak_trading::store::total_balance(conn).await }.boxed())
        .await
        .unwrap();
    assert_eq!(total, 0, "the ledger balances with the position open");

    // Still failing, the worker keeps it open; once the marketplace answers, it lands.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut trading = mesh.trading().await;
    let still = trading
        .get_trade(as_user(GetTradeRequest { trade_id: relist.trade_id.clone() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.state(), TradeState::Pending);
    fail::remove(mesh.fail_point("trading::before-listing"));
    settle_down(&mesh, Duration::from_secs(20)).await;
    let landed = trading
        .get_trade(as_user(GetTradeRequest { trade_id: relist.trade_id.clone() }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(landed.state(), TradeState::Settled);
    assert!(!landed.listing_id.is_empty());
    // Replayed, the operation answers both halves as they stand now.
    let again = mesh.trading_internal().await.execute_arbitrage(internal(request)).await.unwrap().into_inner();
    assert_eq!(again.sale_listing.unwrap().state(), TradeState::Settled);
    audit(&mesh).await;
}
