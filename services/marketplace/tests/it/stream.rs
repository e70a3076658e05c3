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

#[tokio::test(flavor = "multi_thread")]
async fn events_another_process_appends_reach_a_stream_at_once_not_at_its_next_poll() {
    use std::time::Duration;

    use chrono::Utc;
    use fastbreak_db::Rarity;
    use fastbreak_marketplace::store::{self as market, ListingEventKind as Kind, ListingState};
    use fastbreak_mesh::Context;
    use fastbreak_mesh::testing::{TestServer, credential_channel};
    use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
    use futures::FutureExt;
    use uuid::Uuid;

    // A stream that polls every two minutes, and no feed: only a notification wakes it sooner.
    let database = fastbreak_db::testing::TestDatabase::create().await;
    let settings = fastbreak_marketplace::Settings { stream_poll: Duration::from_secs(120), ..crate::test_settings() };
    let context = Context::new(database.database(), settings);
    let server = TestServer::start(fastbreak_marketplace::server_with_feeds(context, Vec::new())).await;
    let mut client = MarketplaceServiceClient::new(credential_channel(server.channel().await));
    let request = StreamListingEventsRequest { after_sequence: Some(0), ..Default::default() };
    let mut stream = client.stream_listing_events(request).await.unwrap().into_inner();

    // Another process (another replica's ingest, say) lists a moment straight in the database.
    let listing = database
        .database()
        .read_committed(|conn| {
            async move {
                let player = market::Player {
                    id: "p-elsewhere".to_owned(),
                    full_name: "Listed Elsewhere".to_owned(),
                    team_code: "BOS".to_owned(),
                    position: "G".to_owned(),
                    seasons_played: 3,
                    jersey_number: None,
                };
                market::upsert_player(conn, &player).await?;
                market::ensure_source(conn, "elsewhere", "Another marketplace", 250).await?;
                let moment = market::Moment {
                    id: Uuid::new_v4(),
                    player_id: player.id.clone(),
                    set_name: "Base Set".to_owned(),
                    play_category: "Dunk".to_owned(),
                    play_at: Utc::now(),
                    rarity: Rarity::Common,
                    serial_number: 1,
                    edition_size: 100,
                    owner_address: "0x0000000000000001".to_owned(),
                };
                let moment = market::insert_moment(conn, &moment).await?;
                let now = Utc::now();
                let listing = market::Listing {
                    id: Uuid::new_v4(),
                    moment_id: moment.id,
                    source_id: "elsewhere".to_owned(),
                    price_cents: 1_500,
                    seller_address: moment.owner_address.clone(),
                    state: ListingState::Active,
                    created_at: now,
                    updated_at: now,
                };
                let listing = market::insert_listing(conn, &listing).await?;
                market::append_listing_events(conn, &[(Kind::Created, listing.id, 1_500)]).await?;
                Ok(listing.id)
            }
            .boxed()
        })
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("the event came at once, not at the stream's next poll (two minutes)")
        .unwrap()
        .expect("the stream stays open");
    assert_eq!(event.listing.map(|l| l.listing_id), Some(listing.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_numbered_in_the_order_their_transactions_commit_and_writers_do_not_wait() {
    use std::time::Duration;

    use diesel_async::RunQueryDsl as _;
    use fastbreak_marketplace::store::{self as market, ListingEventKind as Kind};

    let (app, [(_, first), (_, second)]) = crate::two_listed(40, 1_000).await;
    let database = app.database.database();
    let mut reader = database.conn().await.unwrap();
    let newest = market::last_listing_sequence(&mut reader).await.unwrap();

    // Two writers: the first appends first but commits last.
    let (mut early, mut late) = (database.conn().await.unwrap(), database.conn().await.unwrap());
    diesel::sql_query("BEGIN").execute(&mut early).await.unwrap();
    market::append_listing_events(&mut early, &[(Kind::PriceChanged, first, 1_100)]).await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut late).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        market::append_listing_events(&mut late, &[(Kind::PriceChanged, second, 1_200)]),
    )
    .await
    .expect("a writer does not wait for another's open transaction to append")
    .unwrap();
    diesel::sql_query("COMMIT").execute(&mut late).await.unwrap();

    // A reader sees the committed event, and resumes after it...
    let seen = market::listing_events_after(&mut reader, newest, None, &[], 10).await.unwrap();
    assert_eq!(seen.iter().map(|e| (e.listing_id, e.price_cents)).collect::<Vec<_>>(), [(second, 1_200)]);
    let resume = seen[0].sequence;
    assert_eq!(resume, newest + 1, "numbered when it committed");
    // ...and still gets the event committed after it: it is numbered later.
    diesel::sql_query("COMMIT").execute(&mut early).await.unwrap();
    let later = market::listing_events_after(&mut reader, resume, None, &[], 10).await.unwrap();
    assert_eq!(later.iter().map(|e| (e.listing_id, e.sequence)).collect::<Vec<_>>(), [(first, resume + 1)]);

    // A writer that rolls back leaves no event and no gap.
    diesel::sql_query("BEGIN").execute(&mut early).await.unwrap();
    market::append_listing_events(&mut early, &[(Kind::PriceChanged, first, 1_300)]).await.unwrap();
    diesel::sql_query("ROLLBACK").execute(&mut early).await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut late).await.unwrap();
    market::append_listing_events(&mut late, &[(Kind::PriceChanged, second, 1_400)]).await.unwrap();
    diesel::sql_query("COMMIT").execute(&mut late).await.unwrap();
    let last = market::listing_events_after(&mut reader, resume + 1, None, &[], 10).await.unwrap();
    assert_eq!(last.iter().map(|e| (e.listing_id, e.sequence)).collect::<Vec<_>>(), [(second, resume + 2)]);
}

/// A listing event carries the instant its batch was taken in at, the one the batch's listings,
/// sales and box scores carry: never the earlier start of a transaction that waited for the
/// batch before it (a listing judged at its event must see the sales and games before it).
#[tokio::test(flavor = "multi_thread")]
async fn a_listing_event_carries_the_instant_its_batch_was_taken_in_at() {
    let app = spawn_with(vec![simulator(11)]).await;
    let events = read(&app, Some(0), 150).await;
    let created: Vec<&ListingEvent> = events.iter().filter(|e| e.kind() == ListingEventKind::Created).collect();
    assert!(!created.is_empty());
    for event in created {
        let listing = event.listing.as_ref().unwrap();
        assert_eq!(event.event_time, listing.create_time, "{event:?}");
    }
}
