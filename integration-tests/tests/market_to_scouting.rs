//! The simulated market's games reach scouting: the marketplace's feed writes box scores to
//! the outbox, scouting's worker records them as game events.

use std::time::Duration;

use fastbreak_db::testing::TestDatabase;
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{TestServer, internal};
use fastbreak_proto::scouting::v1::ListGameEventsRequest;
use fastbreak_proto::scouting::v1::scouting_service_client::ScoutingServiceClient;

#[tokio::test(flavor = "multi_thread")]
async fn box_scores_from_the_simulated_market_become_game_events() {
    let database = TestDatabase::create().await;
    let market_settings = fastbreak_marketplace::Settings { simulator_tick: Duration::ZERO, ..Default::default() };
    let feed = Box::new(fastbreak_marketplace::SimulatorFeed::new(
        21,
        fastbreak_market_sim::Config::default().start,
        Duration::ZERO,
    ));
    let market = TestServer::start(fastbreak_marketplace::server_with_feeds(
        Context::new(database.database(), market_settings),
        vec![feed],
    ))
    .await;
    let scouting_settings =
        fastbreak_scouting::Settings { poll_interval: Duration::from_millis(50), ..Default::default() };
    let scouting =
        TestServer::start(fastbreak_scouting::server(Context::new(database.database(), scouting_settings))).await;
    let mut client = ScoutingServiceClient::new(scouting.channel().await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events =
            client.list_game_events(internal(ListGameEventsRequest::default())).await.unwrap().into_inner().events;
        if let Some(event) = events.iter().find(|e| e.r#final) {
            let stats = event.stats.as_ref().expect("a final event carries the player's line");
            assert!(stats.minutes > 0 && stats.opponent_code.len() == 3, "{event:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no simulated game reached scouting in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    market.stop().await.unwrap();
    scouting.stop().await.unwrap();
}
