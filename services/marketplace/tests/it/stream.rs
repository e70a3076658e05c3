//! The listing stream resumes by sequence: every event after the last one seen, exactly once,
//! in order, while the market keeps moving.

use fastbreak_proto::marketplace::v1::{ListingEvent, ListingEventKind, StreamListingEventsRequest};

use crate::{eventually, simulator, spawn_with};

async fn read(app: &crate::App, after: Option<i64>, count: usize) -> Vec<ListingEvent> {
    let request = StreamListingEventsRequest { after_sequence: after, ..Default::default() };
    let mut stream = app.public.clone().stream_listing_events(request).await.unwrap().into_inner();
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .expect("events keep coming")
            .unwrap()
            .expect("the stream stays open");
        events.push(event);
    }
    events // dropping the stream disconnects
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_reconnects_gets_every_later_event_once_in_order() {
    let app = spawn_with(vec![simulator(11)]).await;
    let first = read(&app, Some(0), 150).await;
    let resume = first.last().unwrap().sequence;
    // The market moves on while the subscriber is away.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = read(&app, Some(resume), 300).await;
    let third = read(&app, Some(second.last().unwrap().sequence), 50).await;

    let seen: Vec<i64> = first.iter().chain(&second).chain(&third).map(|e| e.sequence).collect();
    // What the database holds, in order, over the same range.
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let stored =
        fastbreak_marketplace::store::listing_events_after(&mut conn, 0, None, &[], seen.len() as i64).await.unwrap();
    let stored: Vec<i64> = stored.iter().map(|e| e.sequence).collect();
    assert_eq!(seen, stored, "every event once, in order, across two reconnections");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    let with_moment = first.iter().find(|e| e.kind() == ListingEventKind::Created).unwrap();
    let moment = with_moment.moment.as_ref().expect("the event carries its moment");
    assert!(!moment.player_name.is_empty() && moment.team_code.len() == 3 && moment.serial_number >= 1);
    assert_eq!(with_moment.listing.as_ref().unwrap().moment_id, moment.moment_id);
    let kinds: std::collections::BTreeSet<i32> = seen_kinds(&first, &second);
    assert!(kinds.len() >= 3, "created, sold and withdrawn or repriced listings flow: {kinds:?}");
}

fn seen_kinds(a: &[ListingEvent], b: &[ListingEvent]) -> std::collections::BTreeSet<i32> {
    a.iter().chain(b).map(|e| e.kind).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_sequence_only_new_events_come_and_filters_apply() {
    let app = spawn_with(vec![simulator(12)]).await;
    eventually("the market has started", || async { !read(&app, Some(0), 1).await.is_empty() }).await;
    let newest = read(&app, Some(0), 1).await[0].sequence;
    let fresh = read(&app, None, 20).await;
    assert!(fresh[0].sequence > newest, "a new subscriber starts at the present");
    let request = StreamListingEventsRequest {
        source_id: "simulator-east".to_owned(),
        after_sequence: Some(0),
        ..Default::default()
    };
    let mut stream = app.public.clone().stream_listing_events(request).await.unwrap().into_inner();
    for _ in 0..20 {
        let event = stream.message().await.unwrap().unwrap();
        assert_eq!(event.listing.unwrap().source_id, "simulator-east");
    }
    let bad = app
        .public
        .clone()
        .stream_listing_events(StreamListingEventsRequest { moment_ids: vec!["nope".into()], ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
