//! Holds: every refusal with its figures, one hold per key (also when sent concurrently),
//! idempotent commit and release, and the spending summary.

use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::risk::v1::{
    CommitHoldRequest, GetEmergencyStopRequest, GetHoldRequest, GetSpendingSummaryRequest, HoldState, LimitKind,
    ListHoldsRequest, ReleaseHoldRequest, StopActor,
};

use crate::{fields, only, reason, spawn_app};

const RICH: i64 = 10_000_000;

#[tokio::test]
async fn each_limit_refuses_with_its_name_and_figures() {
    let app = spawn_app().await;
    let user = app.user().await;
    app.set_limits(
        user,
        only(|l| {
            l.daily_cents = Some(1_000);
            l.weekly_cents = Some(1_500);
            l.monthly_cents = Some(1_800);
            l.total_cents = Some(2_000);
            l.per_moment_cents = Some(800);
            l.reserve_cents = Some(500);
        }),
    )
    .await;
    let refused = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        reason(&status)
    };

    let (why, figures) = refused(app.buy(user, 801, "k-per-moment", RICH).await.unwrap_err());
    assert_eq!(why, "LIMIT_EXCEEDED");
    assert_eq!(figures["limit"], "LIMIT_KIND_PER_MOMENT");
    assert_eq!((figures["limit_cents"].as_str(), figures["asked_cents"].as_str()), ("800", "801"));

    let first = app.buy(user, 600, "k1", RICH).await.unwrap();
    assert_eq!(first.state(), HoldState::Placed);
    let (why, figures) = refused(app.buy(user, 401, "k-daily", RICH).await.unwrap_err());
    assert_eq!((why.as_str(), figures["limit"].as_str()), ("LIMIT_EXCEEDED", "LIMIT_KIND_DAILY"));
    assert_eq!(
        [&figures["limit_cents"], &figures["spent_cents"], &figures["held_cents"], &figures["asked_cents"]],
        ["1000", "0", "600", "401"],
        "held counts as spent"
    );
    // Committed, the 600 is spent, not held.
    app.internal.clone().commit_hold(internal(CommitHoldRequest { hold_id: first.hold_id.clone() })).await.unwrap();
    let (_, figures) = refused(app.buy(user, 401, "k-daily-2", RICH).await.unwrap_err());
    assert_eq!([&figures["spent_cents"], &figures["held_cents"]], ["600", "0"]);

    // The reserve: 600 of the balance is on hold, the rest must keep 500.
    let second = app.buy(user, 400, "k2", 1_500).await.unwrap();
    assert_eq!(second.amount_cents, 400);
    app.internal
        .clone()
        .release_hold(internal(ReleaseHoldRequest {
            hold_id: second.hold_id.clone(),
            reason: "listing gone".to_owned(),
        }))
        .await
        .unwrap();
    let _held = app.buy(user, 300, "k3", 1_100).await.unwrap();
    // 900 - 300 on hold - 100 keeps exactly the reserve; 850 would not.
    let fits = app.buy(user, 100, "k4", 900).await.unwrap();
    app.internal
        .clone()
        .release_hold(internal(ReleaseHoldRequest { hold_id: fits.hold_id, reason: "changed my mind".to_owned() }))
        .await
        .unwrap();
    let (why, figures) = refused(app.buy(user, 100, "k-reserve", 850).await.unwrap_err());
    assert_eq!((why.as_str(), figures["limit"].as_str()), ("LIMIT_EXCEEDED", "LIMIT_KIND_RESERVE"));
    assert_eq!(
        [&figures["balance_cents"], &figures["reserve_cents"], &figures["held_cents"], &figures["asked_cents"]],
        ["850", "500", "300", "100"]
    );
}

#[tokio::test]
async fn weekly_monthly_and_total_limits_each_refuse_by_name() {
    let app = spawn_app().await;
    type Set = fn(&mut fastbreak_proto::risk::v1::BudgetLimits);
    let cases: [(&str, Set); 3] = [
        ("LIMIT_KIND_WEEKLY", |l| l.weekly_cents = Some(1_000)),
        ("LIMIT_KIND_MONTHLY", |l| l.monthly_cents = Some(1_000)),
        ("LIMIT_KIND_TOTAL", |l| l.total_cents = Some(1_000)),
    ];
    for (kind, set) in cases {
        let user = app.user().await;
        app.set_limits(user, only(set)).await;
        app.buy(user, 1_000, "fits", RICH).await.unwrap();
        let status = app.buy(user, 1, "over", RICH).await.unwrap_err();
        let (why, figures) = reason(&status);
        assert_eq!((why.as_str(), figures["limit"].as_str()), ("LIMIT_EXCEEDED", kind), "{status:?}");
        assert_eq!([&figures["limit_cents"], &figures["held_cents"], &figures["asked_cents"]], ["1000", "1000", "1"]);
    }
}

#[tokio::test]
async fn the_emergency_threshold_engages_the_stop_and_refuses_until_released() {
    let app = spawn_app().await;
    let user = app.user().await;
    app.set_limits(user, only(|l| l.emergency_threshold_cents = Some(1_000))).await;
    app.buy(user, 700, "k1", RICH).await.unwrap();
    let status = app.buy(user, 400, "k2", RICH).await.unwrap_err();
    let (why, figures) = reason(&status);
    assert_eq!((why.as_str(), figures["limit"].as_str()), ("EMERGENCY_STOP_ENGAGED", "LIMIT_KIND_EMERGENCY_THRESHOLD"));
    assert_eq!([&figures["limit_cents"], &figures["held_cents"], &figures["asked_cents"]], ["1000", "700", "400"]);
    let stop =
        app.public.clone().get_emergency_stop(as_user(GetEmergencyStopRequest {}, user)).await.unwrap().into_inner();
    assert!(stop.engaged);
    assert_eq!(stop.engaged_by(), StopActor::System);
    assert!(stop.reason.contains("emergency threshold"), "{}", stop.reason);
    // Even a small purchase is refused now.
    let small = app.buy(user, 1, "k3", RICH).await.unwrap_err();
    assert_eq!(reason(&small).0, "EMERGENCY_STOP_ENGAGED");
    assert_eq!(reason(&small).1["engaged_by"], "system");
}

#[tokio::test]
async fn one_key_one_hold_even_sent_concurrently() {
    let app = spawn_app().await;
    let user = app.user().await;
    let calls = (0..16).map(|_| app.buy(user, 500, "same-key", RICH));
    let holds: Vec<_> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert!(holds.iter().all(|h| h.hold_id == holds[0].hold_id), "one hold for one key");
    let listed = app.internal.clone().list_holds(internal(ListHoldsRequest::default())).await.unwrap().into_inner();
    assert_eq!(listed.holds.len(), 1);

    let reused = app.buy(user, 501, "same-key", RICH).await.unwrap_err();
    assert_eq!(reason(&reused).0, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(reason(&reused).1["hold_id"], holds[0].hold_id);
}

#[tokio::test]
async fn commit_and_release_are_idempotent_and_final() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut internal_api = app.internal.clone();
    let hold = app.buy(user, 500, "k1", RICH).await.unwrap();
    let commit = || CommitHoldRequest { hold_id: hold.hold_id.clone() };
    let once = internal_api.commit_hold(internal(commit())).await.unwrap().into_inner();
    let twice = internal_api.commit_hold(internal(commit())).await.unwrap().into_inner();
    assert_eq!((once.state(), &once), (HoldState::Committed, &twice));
    let release = internal_api
        .release_hold(internal(ReleaseHoldRequest { hold_id: hold.hold_id.clone(), reason: "late".to_owned() }))
        .await
        .unwrap_err();
    assert_eq!(reason(&release).0, "INVALID_STATE");

    let other = app.buy(user, 300, "k2", RICH).await.unwrap();
    let release = || ReleaseHoldRequest { hold_id: other.hold_id.clone(), reason: "listing gone".to_owned() };
    let once = internal_api.release_hold(internal(release())).await.unwrap().into_inner();
    let twice = internal_api.release_hold(internal(release())).await.unwrap().into_inner();
    assert_eq!((once.state(), once.release_reason.as_str()), (HoldState::Released, "listing gone"));
    assert_eq!(once, twice);
    let replayed = app.buy(user, 300, "k2", RICH).await.unwrap_err();
    assert_eq!(reason(&replayed).0, "INVALID_STATE", "a released purchase's key is spent");
    let committed_again = app.buy(user, 500, "k1", RICH).await.unwrap();
    assert_eq!(committed_again.state(), HoldState::Committed, "a committed purchase's key answers its hold");
    let commit_released =
        internal_api.commit_hold(internal(CommitHoldRequest { hold_id: other.hold_id.clone() })).await;
    assert_eq!(reason(&commit_released.unwrap_err()).0, "INVALID_STATE");

    let got = internal_api.get_hold(internal(GetHoldRequest { hold_id: other.hold_id.clone() })).await.unwrap();
    assert_eq!(got.into_inner(), once);
    let bad = internal_api.release_hold(internal(ReleaseHoldRequest { hold_id: "nope".into(), reason: String::new() }));
    assert_eq!(fields(&bad.await.unwrap_err()), vec!["hold_id", "reason"]);
    let unknown = internal_api.get_hold(internal(GetHoldRequest { hold_id: uuid::Uuid::new_v4().to_string() })).await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn a_request_missing_its_parts_is_refused_naming_each() {
    let app = spawn_app().await;
    let request = fastbreak_proto::risk::v1::AuthorizePurchaseRequest {
        amount_cents: 0,
        balance_cents: -1,
        ..Default::default()
    };
    let status = app.internal.clone().authorize_purchase(internal(request)).await.unwrap_err();
    assert_eq!(
        fields(&status),
        vec!["user_id", "moment_id", "amount_cents", "balance_cents", "idempotency_key", "balance_time", "origin"]
    );
}

#[tokio::test]
async fn a_balance_read_in_the_future_or_a_key_with_control_characters_is_refused() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut request = crate::purchase(user, 100, "k\u{0}", RICH, fastbreak_proto::risk::v1::PurchaseOrigin::Manual);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3_600);
    request.balance_time = Some(prost_types::Timestamp::from(later));
    let status = app.internal.clone().authorize_purchase(internal(request)).await.unwrap_err();
    assert_eq!(fields(&status), vec!["idempotency_key", "balance_time"]);
}

#[tokio::test]
async fn the_summary_shows_spent_held_and_left_under_each_limit() {
    let app = spawn_app().await;
    let user = app.user().await;
    app.set_limits(
        user,
        only(|l| {
            l.daily_cents = Some(1_000);
            l.total_cents = Some(5_000);
            l.time_zone = "Asia/Tokyo".to_owned();
        }),
    )
    .await;
    let spent = app.buy(user, 300, "k1", RICH).await.unwrap();
    app.internal.clone().commit_hold(internal(CommitHoldRequest { hold_id: spent.hold_id })).await.unwrap();
    app.buy(user, 200, "k2", RICH).await.unwrap();
    let summary = app
        .public
        .clone()
        .get_spending_summary(as_user(GetSpendingSummaryRequest {}, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.time_zone, "Asia/Tokyo");
    assert!(!summary.emergency_stop_engaged && !summary.automation_paused);
    let daily = summary.usages.iter().find(|u| u.kind() == LimitKind::Daily).unwrap();
    assert_eq!(
        (daily.limit_cents, daily.spent_cents, daily.held_cents, daily.remaining_cents),
        (Some(1_000), 300, 200, Some(500))
    );
    let start = daily.period_start_time.unwrap();
    assert_eq!((start.seconds + 9 * 3600) % 86_400, 0, "the day begins at midnight in Tokyo");
    let weekly = summary.usages.iter().find(|u| u.kind() == LimitKind::Weekly).unwrap();
    assert_eq!((weekly.limit_cents, weekly.remaining_cents, weekly.spent_cents), (None, None, 300));
    let total = summary.usages.iter().find(|u| u.kind() == LimitKind::Total).unwrap();
    assert_eq!(total.remaining_cents, Some(4_500));
}
