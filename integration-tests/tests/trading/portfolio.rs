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

#[tokio::test(flavor = "multi_thread")]
async fn equity_history_is_the_users_snapshots_in_their_span_thinned_evenly() {
    use fastbreak_proto::trading::v1::GetEquityHistoryRequest;
    use fastbreak_trading::store::{EquitySnapshot, record_snapshot};
    use futures::FutureExt as _;
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    let (user, _) = mesh.funded_user(1_000).await;
    let (other, _) = mesh.funded_user(1_000).await;
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap().to_utc();
    // 100 hourly snapshots of the user (equity 1,000 + n), one of another user.
    mesh.pool
        .autocommit(move |conn| {
            async move {
                for n in 0..100 {
                    let snapshot = EquitySnapshot {
                        user_id: user,
                        taken_at: start + chrono::Duration::hours(n),
                        equity_cents: 1_000 + n,
                        deposits_cents: 1_000,
                    };
                    record_snapshot(conn, &snapshot).await?;
                }
                let theirs = EquitySnapshot { user_id: other, taken_at: start, equity_cents: 9, deposits_cents: 9 };
                record_snapshot(conn, &theirs).await
            }
            .boxed()
        })
        .await
        .unwrap();
    let at = |hours: i64| Some(fastbreak_mesh::status::timestamp(start + chrono::Duration::hours(hours)));
    let ask = |request: GetEquityHistoryRequest| {
        let mesh = &mesh;
        async move { mesh.trading().await.get_equity_history(as_user(request, user)).await }
    };
    let all = ask(GetEquityHistoryRequest { start_time: at(0), end_time: at(99), max_points: 1000 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((all.points.len(), all.snapshot_count), (100, 100));
    assert!(all.points.windows(2).all(|w| w[0].equity_cents < w[1].equity_cents), "oldest first");
    let thin = ask(GetEquityHistoryRequest { start_time: at(10), end_time: at(99), max_points: 10 })
        .await
        .unwrap()
        .into_inner();
    let equities: Vec<i64> = thin.points.iter().map(|p| p.equity_cents).collect();
    assert_eq!(thin.snapshot_count, 90);
    assert_eq!(equities.len(), 10, "{equities:?}");
    assert_eq!((equities[0], equities[9]), (1_010, 1_099), "the first and the last kept: {equities:?}");
    let gaps: Vec<i64> = equities.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|gap| (9..=11).contains(gap)), "evenly: {gaps:?}");
    let bad = ask(GetEquityHistoryRequest { start_time: at(5), end_time: at(1), max_points: 5000 }).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = tonic_types::StatusExt::get_details_bad_request(&bad)
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["start_time", "max_points"]);
}
