//! Scouting over real gRPC, against a fresh PostgreSQL database per test.

mod events;
mod valuations;

use std::time::Duration;

use chrono::Utc;
use fastbreak_db::Rarity;
use fastbreak_db::testing::TestDatabase;
use fastbreak_marketplace::store::{self as market, Listing, ListingState, Moment, Sale};
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{CredentialChannel, TestServer, credential_channel};
use fastbreak_proto::scouting::v1::scouting_internal_service_client::ScoutingInternalServiceClient;
use fastbreak_proto::scouting::v1::scouting_service_client::ScoutingServiceClient;
use fastbreak_scouting::Settings;
use uuid::Uuid;

struct App {
    public: ScoutingServiceClient<CredentialChannel>,
    internal: ScoutingInternalServiceClient<CredentialChannel>,
    database: TestDatabase,
    _server: TestServer,
}

fn test_settings() -> Settings {
    Settings { poll_interval: Duration::from_millis(50), stream_poll: Duration::from_millis(50), ..Settings::default() }
}

async fn spawn_on(database: TestDatabase) -> App {
    let context = Context::new(database.database(), test_settings());
    let server = TestServer::start(fastbreak_scouting::server(context)).await;
    let channel = server.channel().await;
    App {
        public: ScoutingServiceClient::new(credential_channel(channel.clone())),
        internal: ScoutingInternalServiceClient::new(credential_channel(channel)),
        database,
        _server: server,
    }
}

async fn spawn() -> App {
    spawn_on(TestDatabase::create().await).await
}

fn address(n: u64) -> String {
    format!("0x{n:016x}")
}

/// A small market written straight to the database: a player (jersey 23), one play of rare
/// moments with the given serials, and the given sales of the first ones `(serial index,
/// price, days ago)`; the last moment is listed at `listed_at`.
struct Market {
    moments: Vec<Uuid>,
    listing: Uuid,
}

async fn market(app: &App, player: &str, serials: &[i32], sales: &[(usize, i64, i64)], listed_at: i64) -> Market {
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    market::upsert_player(
        conn,
        &market::Player {
            id: player.to_owned(),
            full_name: format!("Jalen {player}"),
            team_code: "BOS".to_owned(),
            position: "SF".to_owned(),
            seasons_played: 4,
            jersey_number: Some(23),
        },
    )
    .await
    .unwrap();
    let play_at = Utc::now() - chrono::Duration::days(90);
    let mut moments = Vec::new();
    for (i, serial) in serials.iter().enumerate() {
        let moment = Moment {
            id: Uuid::new_v4(),
            player_id: player.to_owned(),
            set_name: "Series 1 rare".to_owned(),
            play_category: "Dunk".to_owned(),
            play_at,
            rarity: Rarity::Rare,
            serial_number: *serial,
            edition_size: 250,
            owner_address: address(100 + i as u64),
        };
        market::insert_moment(conn, &moment).await.unwrap();
        moments.push(moment.id);
    }
    for (n, (index, price, days_ago)) in sales.iter().enumerate() {
        market::record_sale(
            conn,
            &Sale {
                id: Uuid::new_v4(),
                moment_id: moments[*index],
                listing_id: None,
                source_id: "simulator".to_owned(),
                price_cents: *price,
                seller_address: address(100 + *index as u64),
                buyer_address: address(900 + n as u64),
                sold_at: Utc::now() - chrono::Duration::days(*days_ago),
            },
        )
        .await
        .unwrap();
    }
    let last = *moments.last().unwrap();
    let listing = Listing {
        id: Uuid::new_v4(),
        moment_id: last,
        source_id: "simulator".to_owned(),
        price_cents: listed_at,
        seller_address: address(100 + serials.len() as u64 - 1),
        state: ListingState::Active,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    market::insert_listing(conn, &listing).await.unwrap();
    Market { moments, listing: listing.id }
}
