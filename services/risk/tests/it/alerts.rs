//! Alerts as a limit is approached: once per period per limit and share, each sent as a budget
//! notification; kept and sent later when notification is down.

use std::sync::atomic::Ordering;

use fastbreak_mesh::testing::as_user;
use fastbreak_proto::notification::v1::NotificationCategory;
use fastbreak_proto::risk::v1::{
    AcknowledgeRiskAlertRequest, AlertSeverity, LimitKind, ListRiskAlertsRequest, RiskAlertKind,
};

use crate::{FakeNotification, eventually, only, spawn_app_with, test_settings};

const RICH: i64 = 10_000_000;

#[tokio::test]
async fn approaching_a_limit_alerts_once_per_share_and_notifies_even_after_an_outage() {
    let notification = FakeNotification::default();
    notification.down.store(true, Ordering::SeqCst);
    let server = notification.serve().await;
    let settings = crate::Settings { worker_enabled: true, ..test_settings() };
    let app = spawn_app_with(settings, vec![("notification", server.addr())]).await;
    let user = app.user().await;
    app.set_limits(user, only(|l| l.daily_cents = Some(1_000))).await;

    app.buy(user, 700, "k1", RICH).await.unwrap(); // 70%: nothing
    app.buy(user, 150, "k2", RICH).await.unwrap(); // 85%: the 80% alert
    app.buy(user, 10, "k3", RICH).await.unwrap(); // 86%: nothing new
    app.buy(user, 100, "k4", RICH).await.unwrap(); // 96%: the 95% alert
    let list = || {
        let mut public = app.public.clone();
        async move {
            public.list_risk_alerts(as_user(ListRiskAlertsRequest::default(), user)).await.unwrap().into_inner().alerts
        }
    };
    let alerts = list().await;
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert!(alerts.iter().all(|a| a.kind() == RiskAlertKind::LimitApproached && a.limit() == LimitKind::Daily));
    assert!(alerts.iter().all(|a| a.severity() == AlertSeverity::Warning));
    assert!(alerts[0].message.starts_with("95% of your daily limit is used: 9.60 of 10.00"), "{}", alerts[0].message);
    assert!(alerts[1].message.starts_with("80% of your daily limit is used"), "{}", alerts[1].message);

    // Notification is down: nothing was sent, nothing is lost.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(notification.sent().is_empty());
    notification.down.store(false, Ordering::SeqCst);
    eventually("both alerts are notified once notification is back", || async { notification.sent().len() >= 2 }).await;
    let sent = notification.sent();
    assert!(sent.iter().all(|n| n.category() == NotificationCategory::Risk && n.user_id == user.to_string()));
    let mut keys: Vec<_> = sent.iter().map(|n| n.idempotency_key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((keys.len(), sent.len()), (2, 2), "each alert once: {keys:?}");

    // A refusal at the limit raises its own alert once.
    app.buy(user, 100, "k5", RICH).await.unwrap_err();
    app.buy(user, 100, "k6", RICH).await.unwrap_err();
    let alerts = list().await;
    let reached: Vec<_> = alerts.iter().filter(|a| a.kind() == RiskAlertKind::LimitReached).collect();
    assert_eq!(reached.len(), 1, "{alerts:#?}");
    assert_eq!(reached[0].severity(), AlertSeverity::Critical);

    let acknowledged = app
        .public
        .clone()
        .acknowledge_risk_alert(as_user(AcknowledgeRiskAlertRequest { alert_id: reached[0].alert_id.clone() }, user))
        .await
        .unwrap()
        .into_inner();
    assert!(acknowledged.acknowledge_time.is_some());
    let other = app.user().await;
    let foreign = app
        .public
        .clone()
        .acknowledge_risk_alert(as_user(AcknowledgeRiskAlertRequest { alert_id: reached[0].alert_id.clone() }, other))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::NotFound);
}
