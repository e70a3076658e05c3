//! Listings: taken once even by concurrent takers, created once per key, changed only by their
//! seller.

use fastbreak_market_sim::Tier;
use fastbreak_mesh::testing::internal;
use fastbreak_proto::marketplace::v1::{
    CreateListingRequest, GetListingRequest, GetMomentRequest, ListingState, TakeListingRequest,
    UpdateListingPriceRequest, WithdrawListingRequest,
};
use tonic_types::StatusExt;

use crate::{address, eventually, listed, moment, player, scripted, spawn_with};

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
