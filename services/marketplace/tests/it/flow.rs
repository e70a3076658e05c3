//! The Flow feed against a fake access node (the real Access API over gRPC, JSON-CDC payloads,
//! ranges capped at 250 blocks) and a fake of Top Shot's GraphQL API: recorded blocks become
//! listings with the moments' full identity and exact prices; a restart goes on at the stored
//! height; a failing access node marks the source unhealthy and the feed catches up after.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fastbreak_db::schema::{listing_events, listings, players};
use fastbreak_flow::fake::{FakeChain, RANGE_CAP, RecordedBlock, RecordedEvent};
use fastbreak_flow::fake_graphql::{FakeTopShotApi, MintedMoment};
use fastbreak_flow::topshot::{self, encode};
use fastbreak_marketplace::flow_feed::{FlowFeed, FlowFeedConfig, SOURCE_ID, moment_uuid};
use fastbreak_marketplace::store::{self as market, ListingState};
use fastbreak_mesh::testing::TestServer;
use fastbreak_proto::marketplace::v1::ListMarketSourcesRequest;

use crate::eventually;

const SELLER_A: &str = "0x1111aaaa2222bbbb";
const SELLER_B: &str = "0x3333cccc4444dddd";
const BUYER: &str = "0x5555eeee6666ffff";

/// A Top Shot moment of the fixtures (synthetic, in the public schema's shape).
fn minted(flow_id: u64, (serial, circulation): (u32, u32), player: &str, team: &str, tier: &str) -> MintedMoment {
    MintedMoment {
        flow_id,
        serial,
        tier: tier.to_owned(),
        set_name: "Metallic Gold LE".to_owned(),
        circulation,
        player_id: player.to_owned(),
        player_name: format!("Player {player}"),
        jersey: "23".to_owned(),
        team: team.to_owned(),
        position: "G".to_owned(),
        years: "3".to_owned(),
        date: "2026-01-08T00:00:00Z".to_owned(),
        play_category: "Dunk".to_owned(),
    }
}

fn api() -> FakeTopShotApi {
    FakeTopShotApi::new([
        minted(101, (23, 99), "1629029", "Dallas Mavericks", "MOMENT_TIER_RARE"),
        minted(102, (1_204, 15_000), "1628983", "Oklahoma City Thunder", "MOMENT_TIER_COMMON"),
        minted(103, (7, 25), "1629029", "Dallas Mavericks", "MOMENT_TIER_LEGENDARY"),
        minted(106, (40, 99), "1628983", "Oklahoma City Thunder", "MOMENT_TIER_RARE"),
        minted(107, (41, 99), "1628983", "Oklahoma City Thunder", "MOMENT_TIER_RARE"),
        // Top Shot shows a serial beyond its edition: not a moment the catalog can hold.
        minted(105, (120, 99), "1629029", "Dallas Mavericks", "MOMENT_TIER_RARE"),
    ])
}

fn event(type_id: &str, transaction_index: u32, event_index: u32, payload: Vec<u8>) -> RecordedEvent {
    RecordedEvent { type_id: type_id.to_owned(), transaction_index, event_index, payload }
}

/// Blocks `from..=to`, a second apart, with `events` at their heights.
fn blocks(from: u64, to: u64, mut events: Vec<(u64, RecordedEvent)>) -> Vec<RecordedBlock> {
    (from..=to)
        .map(|height| {
            let here = events.iter().filter(|(h, _)| *h == height).map(|(_, e)| e.clone()).collect();
            events.retain(|(h, _)| *h != height);
            RecordedBlock { height, timestamp: 1_780_000_000 + height as i64, events: here }
        })
        .collect()
}

/// 601 blocks (three ranges): 101 listed at $12.50 and repriced to $11.00; 102 listed at $0.53
/// and bought (its buyer named by the deposit in the same transaction); 103 listed and
/// withdrawn; 104, which Top Shot does not know, listed; one payload that is not an event.
fn recorded() -> Vec<RecordedBlock> {
    blocks(
        1_000,
        1_600,
        vec![
            (1_005, event(topshot::MOMENT_LISTED, 0, 0, encode::listed(101, 1_250, SELLER_A))),
            (1_010, event(topshot::MOMENT_LISTED, 2, 0, encode::listed(102, 53, SELLER_B))),
            (1_020, event(topshot::MOMENT_LISTED, 0, 0, encode::listed(106, 2_500, SELLER_B))),
            (1_030, event(topshot::MOMENT_LISTED, 0, 0, encode::listed(107, 800, SELLER_A))),
            (1_100, event(topshot::MOMENT_PRICE_CHANGED, 0, 0, encode::price_changed(101, 1_100, SELLER_A))),
            (1_300, event(topshot::MOMENT_PURCHASED, 1, 0, encode::purchased(102, 53, SELLER_B))),
            (1_300, event(topshot::DEPOSIT, 1, 1, encode::deposit(102, BUYER))),
            (1_400, event(topshot::MOMENT_LISTED, 0, 0, encode::listed(103, 45_000, SELLER_A))),
            (1_450, event(topshot::MOMENT_WITHDRAWN, 0, 3, encode::withdrawn(103, SELLER_A))),
            (1_500, event(topshot::MOMENT_LISTED, 0, 0, encode::listed(104, 999, SELLER_B))),
            (1_550, event(topshot::MOMENT_LISTED, 0, 1, b"{\"type\":\"Event\"}".to_vec())),
            (1_560, event(topshot::MOMENT_LISTED, 0, 0, encode::listed(105, 700, SELLER_B))),
        ],
    )
}

fn config(access: std::net::SocketAddr, graphql: String) -> FlowFeedConfig {
    FlowFeedConfig {
        access_node: access.to_string(),
        graphql_url: graphql,
        start_height: Some(1_000),
        range_cap: RANGE_CAP,
        poll: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
    }
}

async fn serve(database: &fastbreak_db::testing::TestDatabase, config: FlowFeedConfig) -> TestServer {
    let context = fastbreak_mesh::Context::new(database.database(), crate::test_settings());
    let feed = FlowFeed::new(config).unwrap();
    TestServer::start(fastbreak_marketplace::server_with_feeds(context, vec![Box::new(feed)])).await
}

async fn stored_height(database: &fastbreak_db::Database) -> Option<u64> {
    let mut conn = database.conn().await.unwrap();

    let position = market::feed_position(&mut conn, "flow").await.unwrap()?;
    let value: serde_json::Value = serde_json::from_str(&position).unwrap();
    value["next_height"].as_str().and_then(|h| h.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn recorded_blocks_become_listings_with_full_identity_and_exact_prices_in_capped_ranges() {
    let chain = FakeChain::new(recorded());
    let (access, api) = (chain.serve().await, api());
    let graphql = api.serve().await;
    let database = fastbreak_db::testing::TestDatabase::create().await;
    let server = serve(&database, config(access.address, graphql.url())).await;
    eventually("the feed reads to the head", || async { stored_height(&database.database()).await == Some(1_601) })
        .await;
    server.stop().await.unwrap();

    let mut conn = database.database().conn().await.unwrap();
    let gold = market::find_moment(&mut conn, moment_uuid(101)).await.unwrap().expect("moment 101");
    assert_eq!(
        (gold.player_id.as_str(), gold.serial_number, gold.edition_size, gold.rarity, gold.set_name.as_str()),
        ("nba-1629029", 23, 99, fastbreak_db::Rarity::Rare, "Metallic Gold LE")
    );
    assert_eq!(gold.owner_address, SELLER_A);
    let listed = market::active_listings_of(&mut conn, gold.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].source_id.as_str(), listed[0].price_cents), (SOURCE_ID, 1_100), "$12.50, then $11.00");

    let sold = market::find_moment(&mut conn, moment_uuid(102)).await.unwrap().expect("moment 102");
    assert_eq!(sold.owner_address, BUYER, "the buyer is the deposit of the purchase's transaction");
    let sales = market::list_sales(&mut conn, sold.id, 10).await.unwrap();
    assert_eq!(sales.iter().map(|s| (s.price_cents, s.buyer_address.as_str())).collect::<Vec<_>>(), [(53, BUYER)]);

    let states: Vec<(uuid::Uuid, ListingState)> = listings::table
        .filter(listings::moment_id.eq(moment_uuid(103)))
        .select((listings::id, listings::state))
        .load(&mut *conn)
        .await
        .unwrap();
    assert_eq!(states.iter().map(|s| s.1).collect::<Vec<_>>(), [ListingState::Withdrawn]);
    assert!(
        market::find_moment(&mut conn, moment_uuid(104)).await.unwrap().is_none(),
        "unknown to Top Shot: passed over"
    );
    let player: (String, i32, Option<i32>) = players::table
        .find("nba-1628983")
        .select((players::team_code, players::seasons_played, players::jersey_number))
        .first(&mut *conn)
        .await
        .unwrap();
    assert_eq!(player, ("OKC".to_owned(), 4, Some(23)), "the team's code, seasons counting this one");

    // Each moment looked up once; every range within the cap, in order, none read twice.
    assert!(api.lookups().values().all(|n| *n == 1), "{:?}", api.lookups());
    assert_eq!(api.lookups().keys().copied().collect::<Vec<_>>(), [101, 102, 103, 104, 105, 106, 107]);
    let deposits: Vec<(u64, u64)> =
        chain.asked().into_iter().filter(|(t, ..)| t == topshot::DEPOSIT).map(|(_, s, e)| (s, e)).collect();
    assert_eq!(deposits, [(1_000, 1_249), (1_250, 1_499), (1_500, 1_600)]);
    assert!(chain.asked().iter().all(|(_, s, e)| e - s < RANGE_CAP));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_goes_on_at_the_stored_height_with_no_event_lost_or_doubled() {
    let chain = FakeChain::new(recorded());
    let (access, api) = (chain.serve().await, api());
    let graphql = api.serve().await;
    let database = fastbreak_db::testing::TestDatabase::create().await;
    let first = serve(&database, config(access.address, graphql.url())).await;
    eventually("the feed reads to the head", || async { stored_height(&database.database()).await == Some(1_601) })
        .await;
    first.stop().await.unwrap();

    // While it is down, the chain goes on: 101 is bought.
    chain.append(blocks(
        1_601,
        1_700,
        vec![
            (1_650, event(topshot::MOMENT_PURCHASED, 0, 0, encode::purchased(101, 1_100, SELLER_A))),
            (1_650, event(topshot::DEPOSIT, 0, 1, encode::deposit(101, BUYER))),
        ],
    ));
    let before = chain.asked().len();
    let second = serve(&database, config(access.address, graphql.url())).await;
    eventually("the feed goes on to the new head", || async {
        stored_height(&database.database()).await == Some(1_701)
    })
    .await;
    second.stop().await.unwrap();
    let again: Vec<(u64, u64)> =
        chain.asked()[before..].iter().filter(|(t, ..)| t == topshot::DEPOSIT).map(|(_, s, e)| (*s, *e)).collect();
    assert_eq!(again, [(1_601, 1_700)], "from the stored height, not the configured start");

    let mut conn = database.database().conn().await.unwrap();
    let kinds: Vec<String> = listing_events::table
        .inner_join(listings::table)
        .filter(listings::moment_id.eq(moment_uuid(101)))
        .order(listing_events::sequence)
        .select(listing_events::kind)
        .load(&mut *conn)
        .await
        .unwrap();
    assert_eq!(kinds, ["created", "price_changed", "sold"], "each event once");
    assert_eq!(api.lookups().get(&101), Some(&1), "a purchase needs no lookup");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_access_node_marks_the_source_unhealthy_and_the_feed_catches_up() {
    let chain = FakeChain::new(recorded());
    chain.fail_next(u32::MAX);
    let (access, api) = (chain.serve().await, api());
    let graphql = api.serve().await;
    let app_database = fastbreak_db::testing::TestDatabase::create().await;
    let server = serve(&app_database, config(access.address, graphql.url())).await;
    let mut client = fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient::new(
        fastbreak_mesh::testing::credential_channel(server.channel().await),
    );
    let topshot =
        |client: &mut fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient<_>| {
            let mut client = client.clone();
            async move {
                let sources =
                    client.list_market_sources(ListMarketSourcesRequest::default()).await.unwrap().into_inner();
                sources.sources.into_iter().find(|s| s.source_id == SOURCE_ID)
            }
        };
    eventually("the source is reported unhealthy", || {
        let found = topshot(&mut client);
        async move { found.await.is_some_and(|s| !s.healthy) }
    })
    .await;
    let source = topshot(&mut client).await;
    let error = source.unwrap().last_error;
    assert!(error.contains(&access.address.to_string()) && error.contains("Unavailable"), "{error}");
    assert_eq!(stored_height(&app_database.database()).await, None, "nothing read, nothing stored");

    chain.fail_next(0);
    eventually("the feed catches up", || async { stored_height(&app_database.database()).await == Some(1_601) }).await;
    eventually("the source is healthy again", || {
        let found = topshot(&mut client);
        async move { found.await.is_some_and(|s| s.healthy && s.last_error.is_empty() && s.lag_blocks == Some(0)) }
    })
    .await;
    let caught_up = topshot(&mut client).await.unwrap();
    assert_eq!((caught_up.lag_blocks, caught_up.lag_seconds), (Some(0), Some(0)), "at the head: no lag");
    server.stop().await.unwrap();
    let mut conn = app_database.database().conn().await.unwrap();
    let sold = market::list_sales(&mut conn, moment_uuid(102), 10).await.unwrap();
    assert_eq!(sold.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_reports_its_lag_behind_the_head_in_blocks_and_seconds() {
    use fastbreak_marketplace::MarketFeed;
    let chain = FakeChain::new(recorded());
    let (access, api) = (chain.serve().await, api());
    let graphql = api.serve().await;
    let mut feed = FlowFeed::new(config(access.address, graphql.url())).unwrap();
    assert_eq!(feed.lag(), Some((0, 0)), "nothing read yet");
    let first = feed.next_batch().await.unwrap();
    assert!(!first.is_empty());
    // Blocks 1000..=1249 read, the head at 1600, a second apart.
    assert_eq!(feed.lag(), Some((351, 351)));
    assert_eq!(feed.position().as_deref(), Some("{\"next_height\":\"1250\"}"));
    feed.next_batch().await.unwrap();
    feed.next_batch().await.unwrap();
    assert_eq!(feed.lag(), Some((0, 0)));
    assert_eq!(feed.pace(), Duration::from_millis(50), "caught up: it polls at its pace");
    assert!(feed.next_batch().await.unwrap().is_empty(), "nothing new");
    assert_eq!(feed.skipped(), 1, "the payload that is not an event");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_bought_or_withdrawn_on_chain_after_the_feed_read_is_refused_and_an_open_one_is_filled() {
    use fastbreak_proto::marketplace::v1::TakeListingRequest;
    use fastbreak_proto::marketplace::v1::marketplace_internal_service_client::MarketplaceInternalServiceClient;
    use tonic_types::StatusExt;

    let chain = FakeChain::new(recorded());
    let (access, api) = (chain.serve().await, api());
    let graphql = api.serve().await;
    let database = fastbreak_db::testing::TestDatabase::create().await;
    let feed = serve(&database, config(access.address, graphql.url())).await;
    eventually("the feed reads to the head", || async { stored_height(&database.database()).await == Some(1_601) })
        .await;
    feed.stop().await.unwrap();

    // After the feed's last read (and before any decision could know), the chain moves on:
    // 106 is bought by a collector, 107 withdrawn, 101 stays listed.
    chain.append(blocks(
        1_601,
        1_620,
        vec![
            (1_605, event(topshot::MOMENT_PURCHASED, 0, 0, encode::purchased(106, 2_500, SELLER_B))),
            (1_605, event(topshot::DEPOSIT, 0, 1, encode::deposit(106, "0x9999000099990000"))),
            (1_610, event(topshot::MOMENT_WITHDRAWN, 0, 0, encode::withdrawn(107, SELLER_A))),
        ],
    ));
    // The marketplace answers with the real market configured but no feed running.
    let settings =
        fastbreak_marketplace::Settings { flow: Some(config(access.address, graphql.url())), ..crate::test_settings() };
    let context = fastbreak_mesh::Context::new(database.database(), settings);
    let server = TestServer::start(fastbreak_marketplace::server_with_feeds(context, Vec::new())).await;
    let mut internal = MarketplaceInternalServiceClient::new(server.channel().await);
    let mut conn = database.database().conn().await.unwrap();
    let mut listing_of = async |flow_id: u64| {
        market::active_listings_of(&mut conn, moment_uuid(flow_id)).await.unwrap()[0].id.to_string()
    };
    let (bought, withdrawn, open) = (listing_of(106).await, listing_of(107).await, listing_of(101).await);
    let take = |listing_id: String| TakeListingRequest {
        listing_id,
        buyer_address: BUYER.to_owned(),
        max_price_cents: 10_000,
    };

    for (listing, state, why) in [
        (bought, "sold_on_chain", "bought on chain at block 1605"),
        (withdrawn, "withdrawn_on_chain", "withdrawn on chain at block 1610"),
    ] {
        let refused =
            internal.take_listing(fastbreak_mesh::testing::internal(take(listing.clone()))).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
        let info = refused.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.metadata["state"].as_str()), ("LISTING_UNAVAILABLE", state));
        assert!(refused.message().contains(why), "{}", refused.message());
    }
    // The chain cannot be asked: nothing is filled unconfirmed.
    chain.fail_next(100);
    let unconfirmed = internal.take_listing(fastbreak_mesh::testing::internal(take(open.clone()))).await.unwrap_err();
    assert_eq!(unconfirmed.code(), tonic::Code::Unavailable, "{unconfirmed:?}");
    assert!(unconfirmed.message().contains("cannot confirm the listing"), "{}", unconfirmed.message());
    chain.fail_next(0);
    let filled = internal.take_listing(fastbreak_mesh::testing::internal(take(open))).await.unwrap().into_inner();
    assert_eq!(
        (filled.price_cents, filled.buyer_address.as_str()),
        (1_100, BUYER),
        "filled on paper at the listed price"
    );
    server.stop().await.unwrap();
}

/// A recorded sale of the fixtures (synthetic, in the public schema's shape).
fn transaction(
    n: u64,
    moment: MintedMoment,
    price_cents: u64,
    minutes: i64,
) -> fastbreak_flow::fake_graphql::Transaction {
    let at = chrono::DateTime::from_timestamp(1_780_000_000 + minutes * 60, 0).unwrap();
    fastbreak_flow::fake_graphql::Transaction {
        id: format!("00000000-0000-4000-9000-{n:012x}"),
        price_cents,
        updated_at: at.to_rfc3339(),
        tx_hash: format!("{n:064x}"),
        seller: SELLER_A.to_owned(),
        buyer: BUYER.to_owned(),
        moment,
    }
}

async fn serve_sales(database: &fastbreak_db::testing::TestDatabase, url: &str) -> TestServer {
    let context = fastbreak_mesh::Context::new(database.database(), crate::test_settings());
    let feed =
        fastbreak_marketplace::sales_feed::SalesFeed::new(url, 2, Duration::from_millis(50), Duration::from_secs(2));
    TestServer::start(fastbreak_marketplace::server_with_feeds(context, vec![Box::new(feed)])).await
}

async fn sales_of(database: &fastbreak_db::Database, flow_id: u64) -> Vec<(i64, String)> {
    let mut conn = database.conn().await.unwrap();
    let mut sales: Vec<(i64, String)> = market::list_sales(&mut conn, moment_uuid(flow_id), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.price_cents, s.source_id))
        .collect();
    sales.sort();
    sales
}

#[tokio::test(flavor = "multi_thread")]
async fn recorded_sales_are_paged_stored_once_and_resumed_at_their_cursor() {
    let gold = minted(201, (5, 99), "1629029", "Dallas Mavericks", "MOMENT_TIER_RARE");
    let base = minted(202, (800, 15_000), "1628983", "Oklahoma City Thunder", "MOMENT_TIER_COMMON");
    let api = FakeTopShotApi::new([]);
    api.add_transactions([
        transaction(1, gold.clone(), 2_000, 0),
        transaction(2, base.clone(), 53, 10),
        transaction(3, gold.clone(), 2_150, 60),
        // The same sale reported twice (two ids, the same moment, price and minute): stored once.
        transaction(4, base.clone(), 60, 120),
        transaction(5, base.clone(), 60, 125),
    ]);
    let graphql = api.serve().await;
    let database = fastbreak_db::testing::TestDatabase::create().await;
    let position = |database: fastbreak_db::Database| async move {
        let mut conn = database.conn().await.unwrap();
        market::feed_position(&mut conn, fastbreak_marketplace::sales_feed::FEED_NAME).await.unwrap()
    };
    let first = serve_sales(&database, &graphql.url()).await;
    eventually("every page is stored", || async {
        position(database.database()).await.as_deref() == Some("{\"cursor\":\"5\"}")
    })
    .await;
    first.stop().await.unwrap();
    assert_eq!(
        sales_of(&database.database(), 201).await,
        [(2_000, "topshot-sales".to_owned()), (2_150, "topshot-sales".to_owned())]
    );
    assert_eq!(
        sales_of(&database.database(), 202).await,
        [(53, "topshot-sales".to_owned()), (60, "topshot-sales".to_owned())]
    );
    let mut conn = database.database().conn().await.unwrap();
    let moment = market::find_moment(&mut conn, moment_uuid(201)).await.unwrap().unwrap();
    assert_eq!(
        (moment.serial_number, moment.rarity, moment.player_id.as_str()),
        (5, fastbreak_db::Rarity::Rare, "nba-1629029")
    );
    let pages: Vec<String> = api.pages().into_iter().map(|(cursor, _)| cursor).collect();
    assert_eq!(&pages[..3], ["", "2", "4"], "two at a time, from the start");

    // Two more sales; a restart asks from the stored cursor and stores only them.
    api.add_transactions([transaction(6, gold.clone(), 2_300, 600), transaction(7, base, 70, 700)]);
    let asked = api.pages().len();
    let second = serve_sales(&database, &graphql.url()).await;
    eventually("the new page is stored", || async {
        position(database.database()).await.as_deref() == Some("{\"cursor\":\"7\"}")
    })
    .await;
    second.stop().await.unwrap();
    assert_eq!(api.pages()[asked].0, "5", "resumed at the stored cursor");
    assert_eq!(sales_of(&database.database(), 201).await.len(), 3);
    assert_eq!(sales_of(&database.database(), 202).await.len(), 3);
}

fn line(person_id: u64, points: u32) -> fastbreak_flow::fake_nba::PlayerLine {
    fastbreak_flow::fake_nba::PlayerLine {
        person_id,
        name: format!("Player {person_id}"),
        minutes: 34,
        seconds: 41,
        points,
        rebounds: 7,
        assists: 5,
        steals: 1,
        blocks: 0,
        turnovers: 2,
    }
}

async fn serve_box_scores(database: &fastbreak_db::testing::TestDatabase, base: &str) -> TestServer {
    let context = fastbreak_mesh::Context::new(database.database(), crate::test_settings());
    let feed =
        fastbreak_marketplace::box_scores::BoxScoreFeed::new(base, Duration::from_millis(50), Duration::from_secs(2));
    TestServer::start(fastbreak_marketplace::server_with_feeds(context, vec![Box::new(feed)])).await
}

async fn game_finals(database: &fastbreak_db::Database) -> Vec<fastbreak_db::outbox::GameFinal> {
    use fastbreak_db::schema::outbox;
    let mut conn = database.conn().await.unwrap();
    let payloads: Vec<serde_json::Value> = outbox::table
        .filter(outbox::topic.eq(fastbreak_db::outbox::GAME_FINAL_TOPIC))
        .order(outbox::id)
        .select(outbox::payload)
        .load(&mut *conn)
        .await
        .unwrap();
    payloads.into_iter().map(|p| serde_json::from_value(p).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_box_scores_of_finished_games_reach_scouting_for_the_catalogs_players_once() {
    use fastbreak_flow::fake_nba::{FakeNbaLiveData, Game};
    let game = |id: &str, status: u8| Game {
        game_id: id.to_owned(),
        status,
        time_utc: "2026-12-05T00:30:00Z".to_owned(),
        // 1629029 and 1628983 will have moments in the catalog; 203999 has none.
        home: ("DAL".to_owned(), vec![line(1_629_029, 41), line(203_999, 12)]),
        away: ("OKC".to_owned(), vec![line(1_628_983, 30)]),
    };
    let nba = FakeNbaLiveData::new("2026-12-04", vec![game("0022600321", 3), game("0022600322", 2)]);
    let live = nba.serve().await;
    let database = fastbreak_db::testing::TestDatabase::create().await;

    // Before the catalog has any of the players, a finished game passes nothing on.
    let early = serve_box_scores(&database, &live.url()).await;
    eventually("the box score is read", || async { !nba.fetched().is_empty() }).await;
    early.stop().await.unwrap();
    assert!(game_finals(&database.database()).await.is_empty());

    // The chain brings the players' moments; the same game then reaches scouting.
    let chain = FakeChain::new(recorded());
    let (access, api) = (chain.serve().await, api());
    let graphql = api.serve().await;
    let feed = serve(&database, config(access.address, graphql.url())).await;
    eventually("the feed reads to the head", || async { stored_height(&database.database()).await == Some(1_601) })
        .await;
    feed.stop().await.unwrap();
    let first = serve_box_scores(&database, &live.url()).await;
    eventually("the finished game is given", || async { game_finals(&database.database()).await.len() == 1 }).await;
    let finals = game_finals(&database.database()).await;
    assert_eq!(finals[0].game_id, "0022600321");
    let lines: Vec<(&str, &str, i32, i32, i32)> = finals[0]
        .lines
        .iter()
        .map(|l| (l.player_id.as_str(), l.opponent_code.as_str(), l.minutes, l.points, l.rebounds))
        .collect();
    assert_eq!(
        lines,
        [("nba-1629029", "OKC", 34, 41, 7), ("nba-1628983", "DAL", 34, 30, 7)],
        "the catalog's players only"
    );

    // The live game ends; polled again and again, and after a restart, each game is given once.
    nba.set_status("0022600322", 3);
    eventually("the second game is given", || async { game_finals(&database.database()).await.len() == 2 }).await;
    first.stop().await.unwrap();
    let second = serve_box_scores(&database, &live.url()).await;
    let fetched = nba.fetched().len();
    eventually("the restarted feed reads the box scores again", || async { nba.fetched().len() >= fetched + 4 }).await;
    second.stop().await.unwrap();
    let ids: Vec<String> = game_finals(&database.database()).await.into_iter().map(|g| g.game_id).collect();
    assert_eq!(ids, ["0022600321", "0022600322"], "each game once");
}
