use fastbreak_config::Secret;
use fastbreak_notification::Settings;
use fastbreak_notification::domain::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use fastbreak_notification::settings::OperatorWebhook;
use fastbreak_proto::notification::v1::{ListSystemAlertsRequest, RaiseSystemAlertRequest, SystemAlertSeverity};
use tonic::Code;

use crate::{Behaviour, Hook, internal, spawn_app_with, test_settings, violated_fields};

fn alert(key: &str, severity: SystemAlertSeverity) -> RaiseSystemAlertRequest {
    RaiseSystemAlertRequest {
        severity: severity as i32,
        source: "agents".into(),
        message: "Purchases have failed for 10 minutes: risk is unavailable.".into(),
        correlation_id: "c-1".into(),
        dedup_key: key.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_raised_twice_is_one_alert_posted_once_to_the_operators() {
    let hook = Hook::start(Behaviour::FailFirst(0)).await;
    let secret = "operator-signing-secret-0123";
    let settings = Settings {
        operator_webhook: Some(OperatorWebhook { url: hook.url(), secret: Secret::new(secret.to_owned()) }),
        ..test_settings()
    };
    let mut app = spawn_app_with(settings).await;
    let first = app
        .internal
        .raise_system_alert(internal(alert("risk-down", SystemAlertSeverity::Critical)))
        .await
        .unwrap()
        .into_inner();
    let again = app
        .internal
        .raise_system_alert(internal(alert("risk-down", SystemAlertSeverity::Critical)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.alert_id, again.alert_id);
    app.internal.raise_system_alert(internal(alert("slow-scan", SystemAlertSeverity::Warning))).await.unwrap();

    let all = app.internal.list_system_alerts(internal(ListSystemAlertsRequest::default())).await.unwrap().into_inner();
    assert_eq!(all.alerts.len(), 2);
    let critical = ListSystemAlertsRequest { min_severity: SystemAlertSeverity::Critical as i32, ..Default::default() };
    let critical = app.internal.list_system_alerts(internal(critical)).await.unwrap().into_inner();
    assert_eq!(critical.alerts.iter().map(|a| a.alert_id.clone()).collect::<Vec<_>>(), vec![first.alert_id.clone()]);

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while hook.received().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the operator webhook got {:?}", hook.received());
        let arrived = hook.state.arrived.notified();
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), arrived).await;
    }
    let received = hook.received();
    assert_eq!(received.len(), 2, "one POST per alert, not per raise");
    let bodies: Vec<serde_json::Value> = received.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert!(bodies.iter().any(|b| b["alert"]["alert_id"] == first.alert_id.as_str()));
    for request in &received {
        let timestamp: i64 = request.headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
        let signature = request.headers[SIGNATURE_HEADER].to_str().unwrap();
        assert!(verify(
            secret,
            timestamp,
            &request.body,
            signature,
            chrono::Utc::now().timestamp(),
            std::time::Duration::from_secs(300)
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_are_validated() {
    let mut app = spawn_app_with(test_settings()).await;
    let bad = RaiseSystemAlertRequest {
        severity: 0,
        source: String::new(),
        message: String::new(),
        correlation_id: String::new(),
        dedup_key: String::new(),
    };
    let status = app.internal.raise_system_alert(internal(bad)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["severity", "source", "message", "dedup_key"]);
}
