//! The catalog: search filters, batch get, price history, arbitrage after fees, market price.

use fastbreak_market_sim::Tier;
use fastbreak_mesh::testing::internal;
use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::marketplace::v1::{
    BatchGetMomentsRequest, GetMarketPriceRequest, GetPriceHistoryRequest, ListArbitrageOpportunitiesRequest,
    ListListingsRequest, PriceInterval, SearchMomentsRequest, TakeListingRequest,
};

use crate::{address, eventually, listed, moment, player, scripted, spawn_with};

#[tokio::test(flavor = "multi_thread")]
async fn search_batch_get_history_arbitrage_and_market_price() {
    let (a, minted_a) = moment(1, "p-1", Tier::Rare, 3, 100);
    let (b, minted_b) = moment(2, "p-2", Tier::Common, 500, 101);
    let (c, minted_c) = moment(3, "p-2", Tier::Legendary, 23, 102);
    let (twin, minted_twin) = moment(4, "p-1", Tier::Rare, 80, 103);
    // a: cheap on market-a; another serial of its play and tier sells dearer on market-b
    // (fee 500 bps): an opportunity. Its owner's own listing there would not count.
    let (cheap, l1) = listed(11, a, "market-a", 10_000, 100);
    let (_, l2) = listed(12, a, "market-b", 9_000_000, 100);
    let (_, l5) = listed(15, twin, "market-b", 15_000, 103);
    let (_, l3) = listed(13, b, "market-a", 300, 101);
    let (_, l4) = listed(14, c, "market-b", 80_000, 102);
    let feed = scripted(vec![vec![
        player("p-1", "BOS"),
        player("p-2", "LAL"),
        minted_a,
        minted_b,
        minted_c,
        minted_twin,
        l1,
        l2,
        l3,
        l4,
        l5,
    ]]);
    let app = spawn_with(vec![feed]).await;
    let mut public = app.public.clone();
    eventually("the market is ingested", || {
        let mut public = public.clone();
        async move {
            let r = public.list_listings(ListListingsRequest::default()).await.unwrap().into_inner();
            r.listings.len() == 5
        }
    })
    .await;

    let search = |r: SearchMomentsRequest| {
        let mut public = app.public.clone();
        async move {
            public
                .search_moments(r)
                .await
                .unwrap()
                .into_inner()
                .moments
                .into_iter()
                .map(|m| m.moment_id)
                .collect::<Vec<_>>()
        }
    };
    let ids = |list: &[uuid::Uuid]| list.iter().map(|u| u.to_string()).collect::<Vec<_>>();
    assert_eq!(search(SearchMomentsRequest { team_code: "lal".into(), ..Default::default() }).await, ids(&[b, c]));
    assert_eq!(
        search(SearchMomentsRequest { rarity: Rarity::Rare as i32, ..Default::default() }).await,
        ids(&[a, twin])
    );
    assert_eq!(search(SearchMomentsRequest { max_serial_number: Some(25), ..Default::default() }).await, ids(&[a, c]));
    assert_eq!(
        search(SearchMomentsRequest {
            min_floor_price_cents: Some(1_000),
            max_floor_price_cents: Some(20_000),
            ..Default::default()
        })
        .await,
        ids(&[a, twin])
    );
    assert_eq!(search(SearchMomentsRequest { query: "Player p-2".into(), ..Default::default() }).await, ids(&[b, c]));
    let page =
        public.search_moments(SearchMomentsRequest { page_size: 2, ..Default::default() }).await.unwrap().into_inner();
    let rest = public
        .search_moments(SearchMomentsRequest { page_size: 2, page_token: page.next_page_token, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.moments.len(), rest.moments.len(), rest.next_page_token.as_str()), (2, 2, ""));

    let batch = public
        .batch_get_moments(BatchGetMomentsRequest {
            moment_ids: vec![c.to_string(), uuid::Uuid::nil().to_string(), a.to_string()],
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<_> =
        batch.moments.iter().map(|m| (m.moment_id.clone(), m.team_code.clone(), m.floor_price_cents)).collect();
    assert_eq!(
        got,
        vec![(c.to_string(), "LAL".to_owned(), Some(80_000)), (a.to_string(), "BOS".to_owned(), Some(10_000))]
    );

    let arbitrage = public
        .list_arbitrage_opportunities(ListArbitrageOpportunitiesRequest { min_spread_bps: 1_000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert_eq!(arbitrage.len(), 1, "{arbitrage:?}");
    let o = &arbitrage[0];
    assert_eq!(
        (o.buy_listing.as_ref().unwrap().listing_id.as_str(), o.sell_source_id.as_str()),
        (cheap.to_string().as_str(), "market-b")
    );
    // Sell one cent under market-b's 150.00, less its 5% fee, less the 100.00 paid.
    assert_eq!((o.expected_sell_cents, o.expected_profit_cents), (14_999, 14_999 - 749 - 10_000));

    app.internal
        .clone()
        .take_listing(internal(TakeListingRequest {
            listing_id: cheap.to_string(),
            buyer_address: address(9),
            max_price_cents: 10_000,
        }))
        .await
        .unwrap();
    let history = public
        .get_price_history(GetPriceHistoryRequest {
            moment_id: a.to_string(),
            interval: PriceInterval::Hour as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.points.len(), 1);
    assert_eq!((history.points[0].open_cents, history.points[0].sale_count), (10_000, 1));
    let too_long = public
        .get_price_history(GetPriceHistoryRequest {
            moment_id: a.to_string(),
            interval: PriceInterval::Hour as i32,
            start_time: Some(prost_types::Timestamp { seconds: 0, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), tonic::Code::InvalidArgument);
    let price = app
        .internal
        .clone()
        .get_market_price(internal(GetMarketPriceRequest { moment_id: a.to_string() }))
        .await
        .unwrap();
    let price = price.into_inner();
    assert_eq!(
        (price.last_sale_cents, price.median_sale_30d_cents, price.floor_price_cents),
        (Some(10_000), Some(10_000), None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_huge_prices_and_impossible_times_are_refused_by_name() {
    let (m, minted) = moment(5, "p-1", Tier::Rare, 9, 300);
    let (l, listing) = listed(51, m, "market-a", 700, 300);
    let app = spawn_with(vec![scripted(vec![vec![player("p-1", "BOS"), minted, listing]])]).await;
    let mut public = app.public.clone();
    eventually("the listing is ingested", || {
        let mut public = public.clone();
        async move { public.list_listings(ListListingsRequest::default()).await.unwrap().into_inner().listings.len() == 1 }
    })
    .await;
    let field = |status: tonic::Status| {
        use tonic_types::StatusExt;
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status.get_details_bad_request().unwrap().field_violations[0].field.clone()
    };
    let forged = fastbreak_mesh::paging::encode_key("-1");
    let negative =
        public.list_listings(ListListingsRequest { page_token: forged, ..Default::default() }).await.unwrap_err();
    assert_eq!(field(negative), "page_token");
    let huge = app
        .internal
        .clone()
        .take_listing(internal(TakeListingRequest {
            listing_id: l.to_string(),
            buyer_address: address(1),
            max_price_cents: i64::MAX,
        }))
        .await
        .unwrap_err();
    assert_eq!(field(huge), "max_price_cents");
    let own = app
        .internal
        .clone()
        .take_listing(internal(TakeListingRequest {
            listing_id: l.to_string(),
            buyer_address: address(300),
            max_price_cents: 1_000,
        }))
        .await
        .unwrap_err();
    assert_eq!(field(own), "buyer_address");
    let far = public
        .get_price_history(GetPriceHistoryRequest {
            moment_id: m.to_string(),
            end_time: Some(prost_types::Timestamp { seconds: 600_000_000_000, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(far), "end_time");
}
