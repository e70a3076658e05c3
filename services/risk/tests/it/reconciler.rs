//! The reconciler: an expired hold is committed when its purchase settled, released when it
//! failed or never began, and left placed while trading cannot say.

use std::sync::atomic::Ordering;
use std::time::Duration;

use fastbreak_mesh::testing::internal;
use fastbreak_proto::risk::v1::{GetHoldRequest, Hold, HoldState};
use fastbreak_proto::trading::v1::TradeState;

use crate::{FakeTrading, eventually, spawn_app_with, test_settings};

const RICH: i64 = 10_000_000;

#[tokio::test]
async fn expired_holds_are_resolved_by_what_trading_says_never_by_the_clock_alone() {
    let trading = FakeTrading::default();
    trading.down.store(true, Ordering::SeqCst);
    let server = trading.serve().await;
    let settings = crate::Settings { worker_enabled: true, hold_ttl: Duration::from_millis(200), ..test_settings() };
    let app = spawn_app_with(settings, vec![("trading", server.addr())]).await;
    let user = app.user().await;

    let settled = app.buy(user, 100, "settled", RICH).await.unwrap();
    let failed = app.buy(user, 100, "failed", RICH).await.unwrap();
    let never = app.buy(user, 100, "never-began", RICH).await.unwrap();
    let pending = app.buy(user, 100, "still-settling", RICH).await.unwrap();
    trading.record(user, "settled", TradeState::Settled);
    trading.record(user, "failed", TradeState::Failed);
    trading.record(user, "still-settling", TradeState::Pending);

    let get = |hold: &Hold| {
        let mut internal_api = app.internal.clone();
        let id = hold.hold_id.clone();
        async move { internal_api.get_hold(internal(GetHoldRequest { hold_id: id })).await.unwrap().into_inner() }
    };
    // Expired, but trading cannot answer: every hold stays placed.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for hold in [&settled, &failed, &never, &pending] {
        assert_eq!(
            get(hold).await.state(),
            HoldState::Placed,
            "{} left placed while trading is down",
            hold.idempotency_key
        );
    }

    trading.down.store(false, Ordering::SeqCst);
    eventually("the settled purchase's hold is committed", || async {
        get(&settled).await.state() == HoldState::Committed
    })
    .await;
    eventually("the failed purchase's hold is released", || async {
        get(&failed).await.state() == HoldState::Released
    })
    .await;
    eventually("the hold of a purchase that never began is released", || async {
        get(&never).await.state() == HoldState::Released
    })
    .await;
    assert!(get(&failed).await.release_reason.contains("listing gone"));
    assert!(get(&never).await.release_reason.contains("never began"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&pending).await.state(), HoldState::Placed, "a purchase still settling keeps its hold");
    trading.record(user, "still-settling", TradeState::Settled);
    eventually("the hold is committed once its purchase settles", || async {
        get(&pending).await.state() == HoldState::Committed
    })
    .await;
}
