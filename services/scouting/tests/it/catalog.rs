//! Scouting's catalog, kept from the marketplace's `market_catalog` messages: changes are
//! taken in before a read that needs them, a listing's later change wins, and a message that
//! cannot be taken in is set aside without holding up the ones behind it.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fastbreak_db::outbox::{self, CATALOG_TOPIC, CatalogChange};
use fastbreak_db::schema::outbox as outbox_table;
use fastbreak_mesh::testing::internal;
use fastbreak_proto::scouting::v1::{GetPlayerRequest, ValueListingRequest};
use fastbreak_scouting::{catalog, store};
use uuid::Uuid;

use crate::{market, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn a_change_announced_just_before_a_request_is_seen_by_it() {
    let app = spawn().await;
    let m = market(&app, "p-20", &[100, 120, 140], &[(0, 4_000, 3), (1, 4_200, 5)], 5_000).await;
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    // The marketplace renames the player and reprices the listing; the very next requests see both.
    outbox::announce(
        &mut conn,
        &CatalogChange::Player {
            id: "p-20".to_owned(),
            full_name: "Jalen Renamed".to_owned(),
            team_code: "NYK".to_owned(),
            position: "SF".to_owned(),
            seasons_played: 5,
            jersey_number: Some(23),
        },
    )
    .await
    .unwrap();
    outbox::announce(
        &mut conn,
        &CatalogChange::Listing {
            id: m.listing,
            moment_id: *m.moments.last().unwrap(),
            price_cents: 3_100,
            active: true,
        },
    )
    .await
    .unwrap();
    let player =
        app.public.clone().get_player(GetPlayerRequest { player_id: "p-20".to_owned() }).await.unwrap().into_inner();
    assert_eq!((player.full_name.as_str(), player.team_code.as_str()), ("Jalen Renamed", "NYK"));
    let valued = app
        .internal
        .clone()
        .value_listing(internal(ValueListingRequest { listing_id: m.listing.to_string(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(valued.price_cents, Some(3_100), "valued at the new asking price");
    assert_eq!(catalog_messages(&mut conn, false).await, 0, "every change was taken in once");
}

/// The catalog's messages in the outbox, delivered or not.
async fn catalog_messages(conn: &mut diesel_async::AsyncPgConnection, delivered: bool) -> i64 {
    outbox_table::table
        .filter(outbox_table::topic.eq(CATALOG_TOPIC))
        .filter(outbox_table::delivered_at.is_not_null().eq(delivered))
        .count()
        .get_result(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_keeps_its_latest_change_and_a_closed_one_is_not_listed() {
    let app = spawn().await;
    let m = market(&app, "p-21", &[10, 11], &[(0, 2_000, 2)], 2_500).await;
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    catalog::catch_up_on(&mut conn).await.unwrap();
    let moment = *m.moments.last().unwrap();
    assert_eq!(store::listed_moments_of_player(&mut conn, "p-21", 10).await.unwrap(), vec![moment]);

    // A change older than the one recorded is ignored; a newer one wins.
    store::upsert_listing(&mut conn, m.listing, moment, 1_000, true, i64::MAX - 1).await.unwrap();
    store::upsert_listing(&mut conn, m.listing, moment, 9_999, true, 7).await.unwrap();
    assert_eq!(store::find_listed_price(&mut conn, m.listing).await.unwrap(), Some((moment, 1_000)));

    // Closed through a message: no longer listed, still priced for a valuation that names it.
    outbox::announce(
        &mut conn,
        &CatalogChange::Listing { id: m.listing, moment_id: moment, price_cents: 1_000, active: false },
    )
    .await
    .unwrap();
    catalog::catch_up_on(&mut conn).await.unwrap();
    assert_eq!(
        store::find_listed_price(&mut conn, m.listing).await.unwrap(),
        Some((moment, 1_000)),
        "older than the recorded change"
    );
    store::upsert_listing(&mut conn, m.listing, moment, 1_000, false, i64::MAX).await.unwrap();
    assert!(store::listed_moments_of_player(&mut conn, "p-21", 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_that_cannot_be_taken_in_is_set_aside_and_the_rest_go_on() {
    let app = spawn().await;
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let unknown = Uuid::new_v4();
    outbox::enqueue(&mut conn, CATALOG_TOPIC, "bogus", &serde_json::json!({"kind": "trade", "id": 1})).await.unwrap();
    outbox::announce(
        &mut conn,
        &CatalogChange::Sale { id: Uuid::new_v4(), moment_id: unknown, price_cents: 100, sold_at: chrono::Utc::now() },
    )
    .await
    .unwrap();
    let m = market(&app, "p-22", &[5], &[(0, 1_500, 1)], 1_800).await;

    // Taken in here or by the service's own worker, whichever comes first (this waits for a
    // batch the worker holds): counted by what is delivered, not by who delivered it.
    catalog::catch_up_on(&mut conn).await.unwrap();
    assert_eq!(catalog_messages(&mut conn, true).await, 4, "the player, the moment, the sale and the listing");
    assert!(store::find_moment(&mut conn, m.moments[0]).await.unwrap().is_some());
    let set_aside: Vec<(String, i32, String, bool)> = outbox_table::table
        .filter(outbox_table::topic.eq(CATALOG_TOPIC))
        .filter(outbox_table::delivered_at.is_null())
        .order(outbox_table::id)
        .select((
            outbox_table::message_key,
            outbox_table::attempts,
            outbox_table::last_error,
            outbox_table::available_at.gt(diesel::dsl::now),
        ))
        .load(&mut *conn)
        .await
        .unwrap();
    assert_eq!(set_aside.len(), 2, "{set_aside:?}");
    assert_eq!((set_aside[0].0.as_str(), set_aside[0].1, set_aside[0].3), ("bogus", 1, true));
    assert!(set_aside[0].2.starts_with("not a catalog change"), "{}", set_aside[0].2);
    assert_eq!((set_aside[1].1, set_aside[1].3), (1, true));
    assert!(set_aside[1].2.contains(&format!("unknown moment {unknown}")), "{}", set_aside[1].2);
    assert_eq!(catalog::catch_up_on(&mut conn).await.unwrap(), 0, "set aside: not taken again at once");
}
