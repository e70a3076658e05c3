//! The emergency stop (user, operator, and its history) and suspicious activity that pauses
//! automated purchases until the user acknowledges it.

use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::risk::v1::{
    AcknowledgeRiskAlertRequest, EngageEmergencyStopForUserRequest, EngageEmergencyStopRequest,
    GetSpendingSummaryRequest, ListRiskAlertsRequest, PurchaseOrigin, ReleaseEmergencyStopForUserRequest,
    ReleaseEmergencyStopRequest, RiskAlertKind, StopActor,
};
use fastbreak_risk::store as repo;

use crate::{Settings, fields, only, reason, spawn_app, spawn_app_with, test_settings};

const RICH: i64 = 10_000_000;

#[tokio::test]
async fn the_emergency_stop_refuses_every_hold_until_released_and_keeps_its_history() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut public = app.public.clone();
    let empty = public.engage_emergency_stop(as_user(EngageEmergencyStopRequest { reason: " ".into() }, user)).await;
    assert_eq!(fields(&empty.unwrap_err()), vec!["reason"]);

    let stop = public
        .engage_emergency_stop(as_user(EngageEmergencyStopRequest { reason: "going on holiday".into() }, user))
        .await
        .unwrap()
        .into_inner();
    assert!(stop.engaged);
    assert_eq!((stop.engaged_by(), stop.reason.as_str()), (StopActor::User, "going on holiday"));
    for origin in [PurchaseOrigin::Manual, PurchaseOrigin::Automated] {
        let refused = app.buy_as(user, 100, &format!("k-{origin:?}"), RICH, origin).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert_eq!(reason(&refused).0, "EMERGENCY_STOP_ENGAGED");
        assert_eq!(reason(&refused).1["reason"], "going on holiday");
    }
    let summary = public.get_spending_summary(as_user(GetSpendingSummaryRequest {}, user)).await.unwrap().into_inner();
    assert!(summary.emergency_stop_engaged);

    let released =
        public.release_emergency_stop(as_user(ReleaseEmergencyStopRequest {}, user)).await.unwrap().into_inner();
    assert!(!released.engaged && released.release_time.is_some());
    assert_eq!(released.released_by(), StopActor::User);
    app.buy(user, 100, "after", RICH).await.unwrap();

    // An operator's stop: the user cannot release it; the operator can.
    let mut internal_api = app.internal.clone();
    internal_api
        .engage_emergency_stop_for_user(internal(EngageEmergencyStopForUserRequest {
            user_id: user.to_string(),
            reason: "chargeback under review".into(),
        }))
        .await
        .unwrap();
    let denied = public.release_emergency_stop(as_user(ReleaseEmergencyStopRequest {}, user)).await.unwrap_err();
    assert_eq!(
        reason(&denied),
        ("INVALID_STATE".to_owned(), [("engaged_by".to_owned(), "operator".to_owned())].into())
    );
    assert_eq!(reason(&app.buy(user, 100, "during", RICH).await.unwrap_err()).1["engaged_by"], "operator");
    let released = internal_api
        .release_emergency_stop_for_user(internal(ReleaseEmergencyStopForUserRequest { user_id: user.to_string() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.released_by(), StopActor::Operator);

    // An operator takes over a stop the user engaged; then only an operator releases it.
    public
        .engage_emergency_stop(as_user(EngageEmergencyStopRequest { reason: "lost my phone".into() }, user))
        .await
        .unwrap();
    let taken = internal_api
        .engage_emergency_stop_for_user(internal(EngageEmergencyStopForUserRequest {
            user_id: user.to_string(),
            reason: "account under review".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((taken.engaged_by(), taken.reason.as_str()), (StopActor::Operator, "account under review"));
    let denied = public.release_emergency_stop(as_user(ReleaseEmergencyStopRequest {}, user)).await.unwrap_err();
    assert_eq!(reason(&denied).0, "INVALID_STATE");
    internal_api
        .release_emergency_stop_for_user(internal(ReleaseEmergencyStopForUserRequest { user_id: user.to_string() }))
        .await
        .unwrap();

    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let history: Vec<_> = repo::list_stop_events(&mut conn, user)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.actor.as_str()))
        .collect();
    let expected = [
        ("engaged", "user"),
        ("released", "user"),
        ("engaged", "operator"),
        ("released", "operator"),
        ("engaged", "user"),
        ("engaged", "operator"),
        ("released", "operator"),
    ];
    assert_eq!(history, expected.map(|(a, b)| (a.to_owned(), b)).to_vec());
}

fn suspicious_settings() -> Settings {
    let mut settings = test_settings();
    settings.suspicion.burst_min = 3;
    settings.suspicion.refusals_in_a_row = 3;
    settings.suspicion.size_min_history = 2;
    settings.suspicion.size_factor = 5;
    settings
}

async fn open_alert(app: &crate::App, user: uuid::Uuid) -> fastbreak_proto::risk::v1::RiskAlert {
    let alerts = app
        .public
        .clone()
        .list_risk_alerts(as_user(ListRiskAlertsRequest { unacknowledged_only: true, ..Default::default() }, user))
        .await
        .unwrap()
        .into_inner()
        .alerts;
    alerts.into_iter().find(|a| a.kind() == RiskAlertKind::SuspiciousActivity).expect("a suspicious-activity alert")
}

async fn acknowledge(app: &crate::App, user: uuid::Uuid, alert_id: String) {
    app.public.clone().acknowledge_risk_alert(as_user(AcknowledgeRiskAlertRequest { alert_id }, user)).await.unwrap();
}

#[tokio::test]
async fn a_burst_pauses_automated_purchases_until_acknowledged() {
    let mut settings = suspicious_settings();
    settings.suspicion.burst_window = std::time::Duration::from_millis(500);
    let app = spawn_app_with(settings, vec![]).await;
    let user = app.user().await;
    let auto = PurchaseOrigin::Automated;
    for i in 0..3 {
        app.buy_as(user, 100, &format!("k{i}"), RICH, auto).await.unwrap();
    }
    let paused = app.buy_as(user, 100, "k3", RICH, auto).await.unwrap_err();
    assert_eq!(reason(&paused).0, "SUSPICIOUS_ACTIVITY");
    let alert = open_alert(&app, user).await;
    assert_eq!(reason(&paused).1["alert_id"], alert.alert_id);
    assert!(alert.message.contains("4 purchases"), "{}", alert.message);
    let still = app.buy_as(user, 100, "k4", RICH, auto).await.unwrap_err();
    assert_eq!(reason(&still).0, "SUSPICIOUS_ACTIVITY", "paused until acknowledged");
    let summary = app.public.clone().get_spending_summary(as_user(GetSpendingSummaryRequest {}, user)).await.unwrap();
    assert!(summary.into_inner().automation_paused);
    app.buy_as(user, 100, "by-hand", RICH, PurchaseOrigin::Manual).await.expect("the user may still buy by hand");

    acknowledge(&app, user, alert.alert_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await; // the burst window passes
    app.buy_as(user, 100, "k5", RICH, auto).await.expect("automated purchases resume once acknowledged");
}

#[tokio::test]
async fn refusals_in_a_row_and_an_outsized_purchase_are_suspicious_and_acknowledging_resumes() {
    let mut settings = suspicious_settings();
    settings.suspicion.burst_min = 1_000;
    let app = spawn_app_with(settings, vec![]).await;
    let user = app.user().await;
    app.set_limits(user, only(|l| l.per_moment_cents = Some(1_000))).await;
    let auto = PurchaseOrigin::Automated;
    for i in 0..3 {
        let refused = app.buy_as(user, 5_000, &format!("big{i}"), RICH, auto).await.unwrap_err();
        assert_eq!(reason(&refused).0, "LIMIT_EXCEEDED");
    }
    let paused = app.buy_as(user, 100, "small", RICH, auto).await.unwrap_err();
    assert_eq!(reason(&paused).0, "SUSPICIOUS_ACTIVITY");
    let alert = open_alert(&app, user).await;
    assert!(alert.message.contains("3 purchases in a row were refused"), "{}", alert.message);
    acknowledge(&app, user, alert.alert_id).await;
    let resumed = app.buy_as(user, 100, "small", RICH, auto).await.expect("purchases resume after acknowledging");

    // Two purchases of about 100 make a history; 5x that is outsized.
    let mut internal_api = app.internal.clone();
    internal_api
        .commit_hold(internal(fastbreak_proto::risk::v1::CommitHoldRequest { hold_id: resumed.hold_id }))
        .await
        .unwrap();
    let second = app.buy_as(user, 100, "small-2", RICH, auto).await.unwrap();
    internal_api
        .commit_hold(internal(fastbreak_proto::risk::v1::CommitHoldRequest { hold_id: second.hold_id }))
        .await
        .unwrap();
    app.buy_as(user, 500, "five-times", RICH, auto).await.expect("five times the usual is not yet outsized");
    let outsized = app.buy_as(user, 501, "outsized", RICH, auto).await.unwrap_err();
    assert_eq!(reason(&outsized).0, "SUSPICIOUS_ACTIVITY");
    assert!(open_alert(&app, user).await.message.contains("far above your usual 1.00"));
}
