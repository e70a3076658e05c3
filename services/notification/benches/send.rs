//! Figures for the notification service: `SendNotification` at 16 concurrent callers, for a user
//! without a webhook (the notification alone) and with one (plus its delivery row; the worker
//! is off so that only the write is measured). Prints them; asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-notification --bench send`.

use std::time::Duration;

use fastbreak_db::testing::TestDatabase;
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{TestServer, as_user, closed_loop, internal};
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::notification::v1::{
    NotificationCategory, NotificationPreferences, Priority, SendNotificationRequest,
    UpdateNotificationPreferencesRequest,
};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let database = TestDatabase::create().await;
        let settings = fastbreak_notification::Settings {
            worker_enabled: false,
            allow_private_webhooks: true,
            ..Default::default()
        };
        let server =
            TestServer::start(fastbreak_notification::server(Context::new(database.database(), settings))).await;
        let channel = server.channel().await;
        let (plain, hooked) = (database.create_user().await, database.create_user().await);
        let hook = UpdateNotificationPreferencesRequest {
            preferences: Some(NotificationPreferences {
                webhook_url: "http://127.0.0.1:9/hook".into(),
                webhook_min_priority: Priority::Low as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["webhook_url".into(), "webhook_min_priority".into()],
            }),
            rotate_webhook_secret: false,
        };
        NotificationServiceClient::new(channel.clone())
            .update_notification_preferences(as_user(hook, hooked))
            .await
            .unwrap();

        let client = NotificationInternalServiceClient::new(channel);
        for (label, user, seconds) in [
            ("warm-up", plain, 1),
            ("SendNotification, in-app only, 16 callers", plain, 4),
            ("SendNotification, with a webhook delivery, 16 callers", hooked, 4),
        ] {
            let client = client.clone();
            let report = closed_loop(16, Duration::from_secs(seconds), move |caller, n| {
                let mut client = client.clone();
                let request = SendNotificationRequest {
                    user_id: user.to_string(),
                    category: NotificationCategory::Purchase as i32,
                    priority: Priority::High as i32,
                    title: "Bought a moment".into(),
                    body: "Bought serial 7 for $35.00.".into(),
                    idempotency_key: format!("{label}-{caller}-{n}"),
                    links: vec![],
                };
                async move { client.send_notification(internal(request)).await }
            })
            .await;
            println!("{label}: {}", report.summary());
        }
        server.stop().await.unwrap();
    });
}
