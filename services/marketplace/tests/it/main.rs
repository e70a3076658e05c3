//! The marketplace over real gRPC, against a fresh PostgreSQL database per test, fed by the
//! simulator or by scripted feeds.

mod catalog;
mod flow;
mod listings;
mod sources;
mod stream;

use std::collections::VecDeque;
use std::time::Duration;

use fastbreak_db::testing::TestDatabase;
use fastbreak_market_sim::{Averages, Listing, Moment, Player, Tier};
use fastbreak_marketplace::{FeedError, MarketFeed, Settings, SourceEvent, SourceInfo};
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{CredentialChannel, TestServer, credential_channel};
use fastbreak_proto::marketplace::v1::marketplace_internal_service_client::MarketplaceInternalServiceClient;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use futures::FutureExt;
use futures::future::BoxFuture;
use tonic::transport::Channel;
use uuid::Uuid;

struct App {
    public: MarketplaceServiceClient<CredentialChannel>,
    internal: MarketplaceInternalServiceClient<Channel>,
    database: TestDatabase,
    _server: TestServer,
}

/// Settings for tests: quick retries and stream polls, a short stall timeout.
fn test_settings() -> Settings {
    Settings {
        simulator_tick: Duration::from_millis(20),
        stall_timeout: Duration::from_millis(500),
        retry_pause: Duration::from_millis(50),
        stream_poll: Duration::from_millis(50),
        ..Settings::default()
    }
}

async fn spawn_with(feeds: Vec<Box<dyn MarketFeed>>) -> App {
    let database = TestDatabase::create().await;
    let context = Context::new(database.database(), test_settings());
    let server = TestServer::start(fastbreak_marketplace::server_with_feeds(context, feeds)).await;
    let channel = server.channel().await;
    App {
        public: MarketplaceServiceClient::new(credential_channel(channel.clone())),
        internal: MarketplaceInternalServiceClient::new(channel),
        database,
        _server: server,
    }
}

/// The simulator, quick.
fn simulator(seed: u64) -> Box<dyn MarketFeed> {
    Box::new(fastbreak_marketplace::SimulatorFeed::new(
        seed,
        fastbreak_market_sim::Config::default().start,
        Duration::from_millis(20),
    ))
}

/// A feed that answers the given batches, then empty ones.
struct ScriptedFeed {
    source: &'static str,
    batches: VecDeque<Vec<SourceEvent>>,
}

impl MarketFeed for ScriptedFeed {
    fn name(&self) -> &str {
        self.source
    }

    fn sources(&self) -> Vec<SourceInfo> {
        ["market-a", "market-b"]
            .iter()
            .map(|id| SourceInfo { id: (*id).to_owned(), display_name: format!("Test {id}"), fee_bps: 500 })
            .collect()
    }

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        async move {
            match self.batches.pop_front() {
                Some(batch) => Ok(batch),
                None => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(Vec::new())
                }
            }
        }
        .boxed()
    }
}

fn scripted(batches: Vec<Vec<SourceEvent>>) -> Box<dyn MarketFeed> {
    Box::new(ScriptedFeed { source: "scripted", batches: batches.into() })
}

fn address(n: u64) -> String {
    format!("0x{n:016x}")
}

fn player(id: &str, team: &str) -> SourceEvent {
    SourceEvent::PlayerSigned(Player {
        id: id.to_owned(),
        full_name: format!("Player {id}"),
        team_code: team.to_owned(),
        position: "SF".to_owned(),
        seasons_played: 3,
        jersey: 23,
        averages: Averages::default(),
    })
}

fn moment(id: u128, player: &str, tier: Tier, serial: i32, owner: u64) -> (Uuid, SourceEvent) {
    let id = Uuid::from_u128(id);
    let event = SourceEvent::MomentMinted(Moment {
        id,
        player_id: player.to_owned(),
        set_name: format!("Series 1 {}", tier.as_str()),
        play_category: "Dunk".to_owned(),
        // One play: every moment of a test's player is a serial of the same play.
        play_at: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default(),
        tier,
        serial_number: serial,
        edition_size: 1_000,
        owner: address(owner),
    });
    (id, event)
}

fn listed(id: u128, moment: Uuid, source: &str, price: i64, seller: u64) -> (Uuid, SourceEvent) {
    let id = Uuid::from_u128(id);
    let event = SourceEvent::Listed(Listing {
        id,
        moment_id: moment,
        marketplace: source.to_owned(),
        price_cents: price,
        seller: address(seller),
    });
    (id, event)
}

/// A marketplace whose feed lists two moments of one player on `market-a` at `price` (moments
/// `base + 1` and `base + 2`, listings `base + 11` and `base + 12`), once both are ingested:
/// the app and each (moment, listing).
async fn two_listed(base: u128, price: i64) -> (App, [(Uuid, Uuid); 2]) {
    let (first_moment, minted_first) = moment(base + 1, "p-1", Tier::Common, 1, 100);
    let (second_moment, minted_second) = moment(base + 2, "p-1", Tier::Common, 2, 100);
    let (first, listed_first) = listed(base + 11, first_moment, "market-a", price, 100);
    let (second, listed_second) = listed(base + 12, second_moment, "market-a", price, 100);
    let batch = vec![player("p-1", "BOS"), minted_first, minted_second, listed_first, listed_second];
    let app = spawn_with(vec![scripted(vec![batch])]).await;
    let public = app.public.clone();
    eventually("the listings are ingested", || {
        let mut public = public.clone();
        async move {
            let request = fastbreak_proto::marketplace::v1::GetListingRequest { listing_id: second.to_string() };
            public.get_listing(request).await.is_ok()
        }
    })
    .await;
    (app, [(first_moment, first), (second_moment, second)])
}

/// Waits until `done` holds, failing with `what` after ten seconds.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
