//! Listings: taken once even by concurrent takers, created once per key, changed only by their
//! seller.

use fastbreak_market_sim::Tier;
use fastbreak_mesh::testing::internal;
use fastbreak_proto::marketplace::v1::{
    CreateListingRequest, GetListingRequest, GetMomentRequest, ListingState, TakeListingRequest,
    UpdateListingPriceRequest, WithdrawListingRequest,
};
use tonic_types::StatusExt;

use crate::{address, eventually, listed, moment, player, scripted, spawn_with, two_listed};

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_is_sold_once_even_to_twenty_concurrent_takers() {
    let (m, minted) = moment(1, "p-1", Tier::Rare, 7, 100);
    let (l, listing) = listed(11, m, "market-a", 5_000, 100);
    let (other, second) = listed(12, m, "market-b", 5_500, 100);
    let app = spawn_with(vec![scripted(vec![vec![player("p-1", "BOS"), minted, listing, second]])]).await;
    let mut public = app.public.clone();
    eventually("the listing is ingested", || {
        let mut public = public.clone();
        async move { public.get_listing(GetListingRequest { listing_id: l.to_string() }).await.is_ok() }
    })
    .await;

    let takers = (0..20).map(|n| {
        let mut client = app.internal.clone();
        async move {
            client
                .take_listing(internal(TakeListingRequest {
                    listing_id: l.to_string(),
                    buyer_address: address(1_000 + n),
                    max_price_cents: 6_000,
                }))
                .await
        }
    });
    let answers = futures::future::join_all(takers).await;
    let sold: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    assert_eq!(sold.len(), 1, "one taker buys");
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(
            (refused.code(), reason(refused).as_str()),
            (tonic::Code::FailedPrecondition, "LISTING_UNAVAILABLE")
        );
    }
    let sale = sold[0].get_ref().clone();
    assert_eq!((sale.price_cents, sale.seller_address.as_str()), (5_000, address(100).as_str()));

    // The buyer owns the moment, the other listing is withdrawn, and a retry answers the sale.
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let owner = fastbreak_marketplace::store::find_moment(&mut conn, m).await.unwrap().unwrap().owner_address;
    assert_eq!(owner, sale.buyer_address);
    let withdrawn = public.get_listing(GetListingRequest { listing_id: other.to_string() }).await.unwrap();
    assert_eq!(withdrawn.into_inner().state(), ListingState::Withdrawn);
    let again = app
        .internal
        .clone()
        .take_listing(internal(TakeListingRequest {
            listing_id: l.to_string(),
            buyer_address: sale.buyer_address.clone(),
            max_price_cents: 6_000,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, sale);
    let moment = public.get_moment(GetMomentRequest { moment_id: m.to_string() }).await.unwrap().into_inner();
    assert_eq!((moment.last_sale_cents, moment.floor_price_cents), (Some(5_000), None));
}

/// Sessions of the test's database waiting on a lock with a statement on moments.
async fn waiting_on_moments(database: &fastbreak_db::Database) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl as _;
    let mut conn = database.conn().await.unwrap();
    diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
         AND query LIKE '%\"moments\"%')",
    ))
    .get_result(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_waiting_on_a_busy_moment_holds_up_no_purchase_of_another() {
    use diesel_async::RunQueryDsl as _;
    let (app, [(busy, l_busy), (_, l_free)]) = two_listed(20, 5_000).await;
    let database = app.database.database();
    let take = |listing: uuid::Uuid, buyer: u64| {
        let mut client = app.internal.clone();
        async move {
            client
                .take_listing(internal(TakeListingRequest {
                    listing_id: listing.to_string(),
                    buyer_address: address(buyer),
                    max_price_cents: 6_000,
                }))
                .await
        }
    };

    // Another change to the busy moment is under way (the chain reports its owner, say): its
    // transaction holds the moment's row and has not committed.
    let mut holder = database.conn().await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut holder).await.unwrap();
    diesel::sql_query("UPDATE moments SET owner_address = owner_address WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(busy)
        .execute(&mut holder)
        .await
        .unwrap();
    // A purchase of the busy moment waits for it...
    let waiting = tokio::spawn(take(l_busy, 1_001));
    eventually("the purchase of the busy moment waits on its lock", || {
        let database = database.clone();
        async move { waiting_on_moments(&database).await == 1 }
    })
    .await;
    // ...and a purchase of another moment is not held up behind it.
    let other = tokio::time::timeout(std::time::Duration::from_secs(5), take(l_free, 1_002))
        .await
        .expect("a purchase of another moment completes while one of the busy moment waits")
        .expect("the free moment is bought");
    assert_eq!(other.get_ref().buyer_address, address(1_002));
    assert!(!waiting.is_finished(), "the purchase of the busy moment still waits");

    // Once the other change ends, the waiting purchase goes through.
    diesel::sql_query("ROLLBACK").execute(&mut holder).await.unwrap();
    let bought = waiting.await.unwrap().expect("the busy moment is bought once it is free");
    assert_eq!(bought.get_ref().buyer_address, address(1_001));

    // The events are in the order the purchases committed, with no gap.
    let mut conn = database.conn().await.unwrap();
    let events = fastbreak_marketplace::store::listing_events_after(&mut conn, 0, None, &[], 100).await.unwrap();
    let sold: Vec<_> = events
        .iter()
        .filter(|e| e.kind == fastbreak_marketplace::store::ListingEventKind::Sold)
        .map(|e| e.listing_id)
        .collect();
    assert_eq!(sold, [l_free, l_busy]);
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[1] == w[0] + 1), "gapless: {sequences:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_above_the_buyers_maximum_is_not_taken() {
    let (m, minted) = moment(2, "p-1", Tier::Common, 40, 100);
    let (l, listing) = listed(21, m, "market-a", 900, 100);
    let app = spawn_with(vec![scripted(vec![vec![player("p-1", "BOS"), minted, listing]])]).await;
    let mut public = app.public.clone();
    eventually("the listing is ingested", || {
        let mut public = public.clone();
        async move { public.get_listing(GetListingRequest { listing_id: l.to_string() }).await.is_ok() }
    })
    .await;
    let dear = app
        .internal
        .clone()
        .take_listing(internal(TakeListingRequest {
            listing_id: l.to_string(),
            buyer_address: address(5),
            max_price_cents: 899,
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&dear), "LISTING_UNAVAILABLE");
    assert_eq!(dear.get_details_error_info().unwrap().metadata["price_cents"], "900");
    let still = public.get_listing(GetListingRequest { listing_id: l.to_string() }).await.unwrap().into_inner();
    assert_eq!(still.state(), ListingState::Active);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_listing_is_one_listing_and_only_its_seller_changes_it() {
    let (m, minted) = moment(3, "p-1", Tier::Fandom, 12, 200);
    let app = spawn_with(vec![scripted(vec![vec![player("p-1", "BOS"), minted]])]).await;
    let mut internal_api = app.internal.clone();
    let create = |key: &str, seller: u64| CreateListingRequest {
        seller_address: address(seller),
        moment_id: m.to_string(),
        source_id: "market-a".to_owned(),
        price_cents: 2_500,
        idempotency_key: key.to_owned(),
    };
    eventually("the moment is ingested", || {
        let mut public = app.public.clone();
        async move { public.get_moment(GetMomentRequest { moment_id: m.to_string() }).await.is_ok() }
    })
    .await;
    let first = internal_api.create_listing(internal(create("relist-1", 200))).await.unwrap().into_inner();
    let again = internal_api.create_listing(internal(create("relist-1", 200))).await.unwrap().into_inner();
    assert_eq!(first, again, "a retried listing is one listing");
    let not_owner = internal_api.create_listing(internal(create("k", 201))).await.unwrap_err();
    assert_eq!(not_owner.code(), tonic::Code::FailedPrecondition);
    let twice = internal_api.create_listing(internal(create("relist-2", 200))).await.unwrap_err();
    assert_eq!(twice.code(), tonic::Code::AlreadyExists, "{twice:?}");

    let stranger = internal_api
        .update_listing_price(internal(UpdateListingPriceRequest {
            seller_address: address(201),
            listing_id: first.listing_id.clone(),
            price_cents: 1,
        }))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), tonic::Code::NotFound);
    let repriced = internal_api
        .update_listing_price(internal(UpdateListingPriceRequest {
            seller_address: address(200),
            listing_id: first.listing_id.clone(),
            price_cents: 2_200,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repriced.price_cents, 2_200);
    let withdrawn = internal_api
        .withdraw_listing(internal(WithdrawListingRequest {
            seller_address: address(200),
            listing_id: first.listing_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.state(), ListingState::Withdrawn);
    let late = internal_api
        .withdraw_listing(internal(WithdrawListingRequest {
            seller_address: address(200),
            listing_id: first.listing_id,
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&late), "LISTING_UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_sent_at_once_for_two_moments_lists_one_and_names_the_reuse() {
    const PAIRS: u128 = 6;
    let mut batch = vec![player("p-1", "BOS")];
    let mut moments = Vec::new();
    for n in 0..2 * PAIRS {
        let (m, minted) = moment(70 + n, "p-1", Tier::Common, 20 + n as i32, 300);
        batch.push(minted);
        moments.push(m);
    }
    let app = spawn_with(vec![scripted(vec![batch])]).await;
    let last = *moments.last().unwrap();
    eventually("the moments are ingested", || {
        let mut public = app.public.clone();
        async move { public.get_moment(GetMomentRequest { moment_id: last.to_string() }).await.is_ok() }
    })
    .await;
    // Each pair: the same seller and key, two moments, sent together.
    for (pair, moments) in moments.chunks(2).enumerate() {
        let calls = moments.iter().map(|m| {
            let mut client = app.internal.clone();
            let request = CreateListingRequest {
                seller_address: address(300),
                moment_id: m.to_string(),
                source_id: "market-a".to_owned(),
                price_cents: 2_500,
                idempotency_key: format!("same-{pair}"),
            };
            async move { client.create_listing(internal(request)).await }
        });
        let answers = futures::future::join_all(calls).await;
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "one listing per key: {answers:?}");
        for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
            assert_eq!(
                (refused.code(), reason(refused).as_str()),
                (tonic::Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED"),
                "{refused:?}"
            );
        }
    }
}
