use fastbreak_proto::notification::v1::notification_link::Target;
use fastbreak_proto::notification::v1::{
    GetUnreadCountRequest, ListNotificationsRequest, MarkAllNotificationsReadRequest, MarkNotificationReadRequest,
    NotificationLink, Priority, SendNotificationRequest,
};
use tonic::Code;

use crate::{as_user, internal, notification, spawn_app, violated_fields};

#[tokio::test(flavor = "multi_thread")]
async fn notifications_are_listed_newest_first_with_unread_counts_and_read_marks() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let trade = uuid::Uuid::new_v4().to_string();
    let mut request = notification(user, "trade-1", Priority::High);
    request.links = vec![NotificationLink { target: Some(Target::TradeId(trade.clone())) }];
    let first = app.internal.send_notification(internal(request)).await.unwrap().into_inner();
    assert_eq!(first.links, vec![NotificationLink { target: Some(Target::TradeId(trade)) }]);
    let second = app.send(user, "trade-2", Priority::Low).await;

    let listed =
        app.public.list_notifications(as_user(ListNotificationsRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(listed.unread_count, 2);
    assert_eq!(
        listed.notifications.iter().map(|n| n.notification_id.clone()).collect::<Vec<_>>(),
        [second.notification_id.clone(), first.notification_id.clone()]
    );
    let high = ListNotificationsRequest { min_priority: Priority::High as i32, ..Default::default() };
    let listed = app.public.list_notifications(as_user(high, user)).await.unwrap().into_inner();
    assert_eq!(listed.notifications.len(), 1);

    let read = app
        .public
        .mark_notification_read(as_user(
            MarkNotificationReadRequest { notification_id: first.notification_id.clone() },
            user,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(read.read_time.is_some());
    let count = app.public.get_unread_count(as_user(GetUnreadCountRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(count.unread_count, 1);
    let unread = ListNotificationsRequest { unread_only: true, ..Default::default() };
    let listed = app.public.list_notifications(as_user(unread, user)).await.unwrap().into_inner();
    assert_eq!(listed.notifications.len(), 1);
    let count =
        app.public.mark_all_notifications_read(as_user(MarkAllNotificationsReadRequest {}, user)).await.unwrap();
    assert_eq!(count.into_inner().unread_count, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_is_one_notification() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let first = app.send(user, "trade-1", Priority::Normal).await;
    let again = app.send(user, "trade-1", Priority::Normal).await;
    assert_eq!(first.notification_id, again.notification_id);
    let listed =
        app.public.list_notifications(as_user(ListNotificationsRequest::default(), user)).await.unwrap().into_inner();
    assert_eq!(listed.notifications.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_notifications_are_refused_field_by_field() {
    let mut app = spawn_app().await;
    let request = SendNotificationRequest {
        user_id: "nobody".into(),
        category: 0,
        priority: 99,
        title: String::new(),
        body: "x".repeat(4001),
        idempotency_key: String::new(),
        links: vec![NotificationLink { target: None }, NotificationLink { target: Some(Target::MomentId("m".into())) }],
    };
    let status = app.internal.send_notification(internal(request)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["user_id", "category", "priority", "title", "body", "idempotency_key", "links[0]", "links[1].moment_id"]
    );
    let unknown =
        app.internal.send_notification(internal(notification(uuid::Uuid::new_v4(), "k", Priority::Normal))).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_user_never_sees_or_marks_anothers_notifications() {
    let mut app = spawn_app().await;
    let ada = app.user().await;
    let bob = app.user().await;
    let adas = app.send(ada, "k", Priority::Normal).await;
    let listed =
        app.public.list_notifications(as_user(ListNotificationsRequest::default(), bob)).await.unwrap().into_inner();
    assert!(listed.notifications.is_empty() && listed.unread_count == 0);
    let status = app
        .public
        .mark_notification_read(as_user(
            MarkNotificationReadRequest { notification_id: adas.notification_id.clone() },
            bob,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.public.mark_all_notifications_read(as_user(MarkAllNotificationsReadRequest {}, bob)).await.unwrap();
    let count = app.public.get_unread_count(as_user(GetUnreadCountRequest {}, ada)).await.unwrap().into_inner();
    assert_eq!(count.unread_count, 1, "bob's mark-all touched nothing of ada's");
    let request = fastbreak_proto::notification::v1::ListDeliveriesRequest {
        notification_id: adas.notification_id.clone(),
        ..Default::default()
    };
    let deliveries = app.public.list_deliveries(as_user(request, bob)).await.unwrap().into_inner();
    assert!(deliveries.deliveries.is_empty());
    let unauthenticated = app.public.get_unread_count(internal(GetUnreadCountRequest {})).await.unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
}
