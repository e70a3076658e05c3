//! The portfolio: values from the market, profit and loss, returns; last known values with
//! their age when the market cannot be asked, never an error.

use std::time::Duration;

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::as_user;
use fastbreak_proto::common::v1::Period;
use fastbreak_proto::trading::v1::{GetPortfolioRequest, ListHoldingsRequest, PurchaseMomentRequest};

#[tokio::test(flavor = "multi_thread")]
async fn the_portfolio_values_holdings_and_falls_back_to_last_known_values() {
    let mut mesh = TradingMesh::start(MeshOptions::default()).await;
    let (user, _) = mesh.funded_user(10_000).await;
    let listings = mesh.list_market_moments(2, "simulator", 1_500).await;
    for (i, listing) in listings.iter().enumerate() {
        mesh.trading()
            .await
            .purchase_moment(as_user(
                PurchaseMomentRequest {
                    listing_id: listing.to_string(),
                    max_price_cents: 1_500,
                    idempotency_key: format!("p-{i}"),
                    ..Default::default()
                },
                user,
            ))
            .await
            .unwrap();
    }
    let portfolio =
        mesh.trading().await.get_portfolio(as_user(GetPortfolioRequest {}, user)).await.unwrap().into_inner();
    assert_eq!((portfolio.holding_count, portfolio.cost_basis_cents, portfolio.cash_cents), (2, 3_000, 7_000));
    // Each moment's last sale is its purchase: worth what it cost.
    assert_eq!((portfolio.market_value_cents, portfolio.unrealized_pnl_cents, portfolio.roi_bps), (3_000, 0, 0));
    assert_eq!(portfolio.stale_value_count, 0);
    let periods: Vec<Period> = portfolio.returns.iter().map(|r| r.period()).collect();
    assert_eq!(periods, [Period::Day, Period::Week, Period::Month]);
    assert!(portfolio.returns.iter().all(|r| r.return_cents == 0), "nothing gained or lost: {:?}", portfolio.returns);

    mesh.stop_target("marketplace").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stale = mesh.trading().await.get_portfolio(as_user(GetPortfolioRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(stale.stale_value_count, 2, "last known values, marked");
    assert_eq!(stale.market_value_cents, 3_000);
    assert!(stale.oldest_value_time.is_some());
    let holdings =
        mesh.trading().await.list_holdings(as_user(ListHoldingsRequest::default(), user)).await.unwrap().into_inner();
    assert!(holdings.holdings.iter().all(|h| h.value_stale && h.value_time.is_some()));
    mesh.start_target("marketplace").await;
}
