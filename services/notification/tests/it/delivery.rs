use std::sync::Arc;
use std::time::Duration;

use fastbreak_notification::Settings;
use fastbreak_notification::domain::{
    NOT_PUBLIC, SIGNATURE_HEADER, TIMESTAMP_HEADER, failure_reason, users_webhook_client, verify,
};
use fastbreak_notification::worker::DeliveryWorker;
use fastbreak_proto::notification::v1::{
    DeliveryState, ListNotificationsRequest, NotificationCategory, NotificationPreferences, Priority,
    UpdateNotificationPreferencesRequest,
};

use crate::{Behaviour, Hook, as_user, spawn_app, spawn_app_with, test_settings};

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_gets_a_signed_json_post_that_verifies() {
    let hook = Hook::start(Behaviour::FailFirst(0)).await;
    let mut app = spawn_app().await;
    let user = app.user().await;
    let secret = app.webhook(user, &hook.url()).await;
    let sent = app.send(user, "trade-1", Priority::High).await;

    let deliveries = app.settled_deliveries(user, 1).await;
    assert_eq!(deliveries[0].state(), DeliveryState::Delivered);
    assert_eq!((deliveries[0].attempt_count, deliveries[0].last_http_status), (1, 200));
    assert_eq!(deliveries[0].notification_id, sent.notification_id);

    let received = hook.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    let timestamp: i64 = request.headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
    let signature = request.headers[SIGNATURE_HEADER].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(verify(&secret, timestamp, &request.body, signature, now, Duration::from_secs(300)));
    assert!(!verify("whsec_wrong", timestamp, &request.body, signature, now, Duration::from_secs(300)));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["notification"]["notification_id"], sent.notification_id.as_str());
    assert_eq!(body["notification"]["title"], "Bought a moment");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_webhook_is_retried_with_every_attempt_recorded() {
    let hook = Hook::start(Behaviour::FailFirst(2)).await;
    let mut app = spawn_app().await;
    let user = app.user().await;
    app.webhook(user, &hook.url()).await;
    app.send(user, "trade-1", Priority::High).await;

    let deliveries = app.settled_deliveries(user, 1).await;
    let delivery = &deliveries[0];
    assert_eq!(delivery.state(), DeliveryState::Delivered);
    assert_eq!(delivery.attempt_count, 3);
    let statuses: Vec<i32> = delivery.attempts.iter().map(|a| a.http_status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(delivery.attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(delivery.attempts[0].error.contains("503"));
    assert_eq!(hook.received().len(), 3);
    let ids: Vec<String> =
        hook.received().iter().map(|r| r.headers["x-fastbreak-delivery"].to_str().unwrap().to_owned()).collect();
    assert!(ids.iter().all(|id| *id == delivery.delivery_id), "every attempt names the delivery");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_never_answers_is_given_up_and_the_notification_stays() {
    let hook = Hook::start(Behaviour::Hang).await;
    let mut app = spawn_app_with(Settings { request_timeout: Duration::from_millis(200), ..test_settings() }).await;
    let user = app.user().await;
    app.webhook(user, &hook.url()).await;
    let sent = app.send(user, "trade-1", Priority::Urgent).await;

    let deliveries = app.settled_deliveries(user, 1).await;
    let delivery = &deliveries[0];
    assert_eq!(delivery.state(), DeliveryState::Failed);
    assert_eq!(delivery.attempt_count, 3, "the configured number of tries");
    assert!(delivery.attempts.iter().all(|a| a.http_status == 0 && a.error == "no answer: timed out"), "{delivery:#?}");
    assert_eq!(delivery.last_error, "no answer: timed out");
    assert!(delivery.next_attempt_time.is_none());
    let listed =
        app.public.list_notifications(as_user(ListNotificationsRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(listed.notifications[0].notification_id, sent.notification_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_shows_its_user_a_reason_not_the_connection_error() {
    // A port nothing listens on: every attempt is refused by the operating system.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut app = spawn_app().await;
    let user = app.user().await;
    app.webhook(user, &format!("http://{closed}/hook")).await;
    app.send(user, "trade-1", Priority::High).await;

    let deliveries = app.settled_deliveries(user, 1).await;
    let delivery = &deliveries[0];
    assert_eq!((delivery.state(), delivery.attempt_count), (DeliveryState::Failed, 3));
    let shown: Vec<&str> = std::iter::once(&delivery.last_error)
        .chain(delivery.attempts.iter().map(|a| &a.error))
        .map(String::as_str)
        .collect();
    assert!(shown.iter().all(|error| *error == "no answer: could not connect"), "{shown:#?}");
}

/// Proxy variables are read from the environment when a client is built, and a test may not
/// change its own environment (other threads read it); so this test runs itself again in a
/// child process that has them, all pointing at a listener here that notes whether anything
/// connected to it.
#[test]
fn deliveries_do_not_go_through_a_proxy_named_in_the_environment() {
    const CHILD: &str = "FASTBREAK_TEST_PROXY_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return tokio::runtime::Runtime::new().unwrap().block_on(deliver_once());
    }
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "delivery::deliveries_do_not_go_through_a_proxy_named_in_the_environment", "--nocapture"])
        .env(CHILD, "1");
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        child.env(name, &proxy_url);
    }
    let output = child.env_remove("NO_PROXY").env_remove("no_proxy").output().unwrap();
    let through_proxy = proxy.accept().is_ok();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && printed.contains("1 passed"), "the child failed:\n{printed}");
    assert!(!through_proxy, "a delivery connected to the proxy");
}

/// One delivery to a local webhook, which must arrive directly; and the public-only client,
/// which must refuse a name that resolves to loopback rather than hand it to a proxy.
async fn deliver_once() {
    let hook = Hook::start(Behaviour::FailFirst(0)).await;
    let public_only = users_webhook_client(Duration::from_millis(500), true).unwrap();
    let error = public_only.post(format!("http://localhost:{}/hook", hook.addr.port())).send().await.unwrap_err();
    assert_eq!(failure_reason(&error), NOT_PUBLIC, "{error}");

    let mut app = spawn_app().await;
    let user = app.user().await;
    app.webhook(user, &hook.url()).await;
    app.send(user, "trade-1", Priority::High).await;
    let deliveries = app.settled_deliveries(user, 1).await;
    assert_eq!(deliveries[0].state(), DeliveryState::Delivered, "{deliveries:#?}");
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn low_priority_and_muted_categories_stay_in_app() {
    let hook = Hook::start(Behaviour::FailFirst(0)).await;
    let mut app = spawn_app().await;
    let user = app.user().await;
    app.webhook(user, &hook.url()).await;
    let mute = UpdateNotificationPreferencesRequest {
        preferences: Some(NotificationPreferences {
            muted_categories: vec![NotificationCategory::Purchase as i32],
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["muted_categories".into()] }),
        rotate_webhook_secret: false,
    };
    app.send(user, "low", Priority::Low).await;
    app.public.update_notification_preferences(as_user(mute, user)).await.unwrap();
    app.send(user, "muted", Priority::Urgent).await;
    assert!(app.deliveries(user).await.is_empty());
    let listed =
        app.public.list_notifications(as_user(ListNotificationsRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(listed.notifications.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_after_claiming_loses_nothing_and_another_delivers_once() {
    let hook = Hook::start(Behaviour::FailFirst(0)).await;
    let settings = Settings { worker_enabled: false, ..test_settings() };
    let mut app = spawn_app_with(settings.clone()).await;
    let user = app.user().await;
    app.webhook(user, &hook.url()).await;
    app.send(user, "trade-1", Priority::High).await;
    assert_eq!(app.deliveries(user).await[0].state(), DeliveryState::Pending, "written, not yet delivered");

    // The first worker claims the delivery and dies before sending it.
    let doomed = DeliveryWorker::new(app.database.database(), settings.clone(), Arc::default());
    assert_eq!(doomed.claim().await.unwrap().len(), 1);
    drop(doomed);

    // A new worker takes it over once the dead one's lease expires, and delivers it once.
    let worker = DeliveryWorker::new(app.database.database(), settings, Arc::default());
    let (stop, draining) = fastbreak_mesh::Draining::channel();
    let running = tokio::spawn(worker.run(draining));
    let deliveries = app.settled_deliveries(user, 1).await;
    assert_eq!((deliveries[0].state(), deliveries[0].attempt_count), (DeliveryState::Delivered, 1));
    stop.drain();
    running.await.unwrap();
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_at_once_deliver_each_notification_exactly_once() {
    let hook = Hook::start(Behaviour::FailFirst(0)).await;
    let settings = Settings { worker_enabled: false, ..test_settings() };
    let mut app = spawn_app_with(settings.clone()).await;
    let user = app.user().await;
    app.webhook(user, &hook.url()).await;
    for n in 0..30 {
        app.send(user, &format!("trade-{n}"), Priority::High).await;
    }
    let (stop, draining) = fastbreak_mesh::Draining::channel();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(
                DeliveryWorker::new(app.database.database(), settings.clone(), Arc::default()).run(draining.clone()),
            )
        })
        .collect();
    let deliveries = app.settled_deliveries(user, 30).await;
    stop.drain();
    for worker in workers {
        worker.await.unwrap();
    }
    assert!(deliveries.iter().all(|d| d.state() == DeliveryState::Delivered && d.attempt_count == 1));
    let mut ids: Vec<String> =
        hook.received().iter().map(|r| r.headers["x-fastbreak-delivery"].to_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 30);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "no delivery was sent twice");
    drop(app.server.take());
}
