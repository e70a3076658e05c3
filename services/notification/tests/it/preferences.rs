use fastbreak_proto::notification::v1::{
    GetNotificationPreferencesRequest, ListDeliveriesRequest, NotificationCategory, NotificationPreferences, Priority,
    UpdateNotificationPreferencesRequest,
};
use prost_types::FieldMask;
use tonic::Code;

use crate::{as_user, spawn_app, violated_fields};

fn update(preferences: NotificationPreferences, paths: &[&str], rotate: bool) -> UpdateNotificationPreferencesRequest {
    UpdateNotificationPreferencesRequest {
        preferences: Some(preferences),
        update_mask: Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        rotate_webhook_secret: rotate,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn preferences_default_validate_and_hand_out_a_secret_once() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let defaults = app
        .public
        .get_notification_preferences(as_user(GetNotificationPreferencesRequest {}, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (defaults.webhook_min_priority(), defaults.webhook_url.as_str(), defaults.webhook_secret_set),
        (Priority::High, "", false)
    );

    let bad = NotificationPreferences {
        webhook_url: "ftp://example.com/hook".into(),
        webhook_min_priority: 0,
        muted_categories: vec![NotificationCategory::Sale as i32, NotificationCategory::Sale as i32, 42],
        ..Default::default()
    };
    let status = app
        .public
        .update_notification_preferences(as_user(
            update(bad, &["webhook_url", "webhook_min_priority", "muted_categories", "colour"], false),
            user,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "preferences.webhook_url",
            "preferences.webhook_min_priority",
            "preferences.muted_categories[1]",
            "preferences.muted_categories[2]",
            "update_mask"
        ]
    );

    let good = NotificationPreferences { webhook_url: "https://hooks.example.com/fb".into(), ..Default::default() };
    let set = app
        .public
        .update_notification_preferences(as_user(update(good, &["webhook_url"], false), user))
        .await
        .unwrap()
        .into_inner();
    assert!(set.webhook_secret_set && set.webhook_secret.starts_with("whsec_"));
    let read = app
        .public
        .get_notification_preferences(as_user(GetNotificationPreferencesRequest {}, user))
        .await
        .unwrap()
        .into_inner();
    assert!(read.webhook_secret_set && read.webhook_secret.is_empty(), "the secret is shown once");
    assert_eq!(read.webhook_url, "https://hooks.example.com/fb");

    let rotated = app
        .public
        .update_notification_preferences(as_user(update(NotificationPreferences::default(), &[], true), user))
        .await
        .unwrap()
        .into_inner();
    assert!(rotated.webhook_secret.starts_with("whsec_") && rotated.webhook_secret != set.webhook_secret);
    assert_eq!(rotated.webhook_url, "https://hooks.example.com/fb", "a rotation alone changes nothing else");

    let other = app.user().await;
    let theirs = app
        .public
        .get_notification_preferences(as_user(GetNotificationPreferencesRequest {}, other))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.webhook_url.is_empty());
    let bad_id = ListDeliveriesRequest { notification_id: "x".into(), ..Default::default() };
    assert_eq!(
        violated_fields(&app.public.list_deliveries(as_user(bad_id, user)).await.unwrap_err()),
        ["notification_id"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn users_webhooks_may_not_point_into_private_networks() {
    let mut app = crate::spawn_app_with(fastbreak_notification::Settings {
        allow_private_webhooks: false,
        ..crate::test_settings()
    })
    .await;
    let user = app.user().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://[::7f00:1]/hook",
        "http://[::ffff:0:7f00:1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[fec0::1]/hook",
        "http://192.0.0.1/hook",
    ] {
        let preferences = NotificationPreferences { webhook_url: url.into(), ..Default::default() };
        let status = app
            .public
            .update_notification_preferences(as_user(update(preferences, &["webhook_url"], false), user))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["preferences.webhook_url"], "{url}");
    }
}
