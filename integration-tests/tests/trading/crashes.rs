//! A crash at each step of a purchase: the call dies there (a fail point panics it), and the
//! workers repair what the database says: the purchase ends fully done or fully undone.

use std::time::Duration;

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::risk::v1::{HoldState, ListHoldsRequest};
use fastbreak_proto::trading::v1::{
    GetBalanceRequest, GetTradeByIdempotencyKeyRequest, PurchaseMomentRequest, TradeState,
};
use futures::FutureExt;

use crate::{audit, settle_down};

/// Where a purchase crashes, and whether it ends done (true) or undone.
const STEPS: [(&str, bool); 6] = [
    ("trading::before-hold", false),
    // Risk placed the hold; trading never noted it: the trade fails, and risk's reconciler
    // releases the hold when it finds the trade failed.
    ("trading::before-hold-noted", false),
    ("trading::after-hold", true),
    ("trading::after-take", true),
    ("trading::after-settle", true),
    ("trading::before-commit", true),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_each_step_ends_fully_done_or_fully_undone() {
    let mut mesh = TradingMesh::start(MeshOptions::default()).await;
    for (step, done) in STEPS {
        let (user, _) = mesh.funded_user(10_000).await;
        let listing = mesh.list_market_moments(1, "simulator", 3_000).await[0];
        fail::cfg(mesh.fail_point(step), "panic").expect("a fail point");
        let request = PurchaseMomentRequest {
            listing_id: listing.to_string(),
            max_price_cents: 3_000,
            idempotency_key: format!("crash-{step}"),
            ..Default::default()
        };
        let crashed = mesh.trading().await.purchase_moment(as_user(request.clone(), user)).await;
        fail::remove(mesh.fail_point(step));
        assert!(crashed.is_err(), "{step}: the call dies with its server task: {crashed:?}");
        // The process goes too: a new one repairs from what the database says.
        mesh.stop_target("trading").await;
        mesh.start_target("trading").await;

        settle_down(&mesh, Duration::from_secs(30)).await;
        let trade = mesh
            .trading_internal()
            .await
            .get_trade_by_idempotency_key(internal(GetTradeByIdempotencyKeyRequest {
                user_id: user.to_string(),
                idempotency_key: request.idempotency_key.clone(),
            }))
            .await
            .unwrap_or_else(|status| panic!("{step}: the trade was recorded: {status:?}"))
            .into_inner();
        let balance = mesh.trading().await.get_balance(as_user(GetBalanceRequest {}, user)).await.unwrap().into_inner();
        let listing_state = mesh
            .pool
            .read(move |conn| {
                async move {
                    Ok(fastbreak_marketplace::store::find_listing(conn, listing)
                        .await?
                        .map(|l| l.state.as_str().to_owned()))
                }
                .boxed()
            })
            .await
            .unwrap();
        let holds = mesh
            .risk_internal()
            .await
            .list_holds(internal(ListHoldsRequest { page_size: 1000, ..Default::default() }))
            .await
            .unwrap()
            .into_inner()
            .holds;
        let hold = holds.iter().find(|h| h.idempotency_key == request.idempotency_key);
        if done {
            assert_eq!(trade.state(), TradeState::Settled, "{step}: {trade:?}");
            assert_eq!(balance.available_cents, 7_000, "{step}: paid once");
            assert_eq!(listing_state.as_deref(), Some("sold"), "{step}");
            assert_eq!(hold.map(|h| h.state()), Some(HoldState::Committed), "{step}: {hold:?}");
            // Asked again, the purchase answers as it ended.
            let again = mesh.trading().await.purchase_moment(as_user(request, user)).await.unwrap().into_inner();
            assert_eq!(again.trade_id, trade.trade_id);
        } else {
            assert_eq!(trade.state(), TradeState::Failed, "{step}: {trade:?}");
            assert_eq!(balance.available_cents, 10_000, "{step}: nothing moved");
            assert_eq!(listing_state.as_deref(), Some("active"), "{step}: the listing was not taken");
            assert!(hold.is_none_or(|h| h.state() == HoldState::Released), "{step}: {hold:?}");
        }
        audit(&mesh).await;
    }
}
