//! Scouting over real gRPC, against a fresh PostgreSQL database per test.

mod catalog;
mod events;
mod valuations;

use std::time::Duration;

use chrono::Utc;
use fastbreak_db::Rarity;
use fastbreak_db::outbox::{self, CatalogChange};
use fastbreak_db::testing::TestDatabase;
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

/// A small market announced the way the marketplace announces its catalog (`market_catalog`
/// messages in the outbox): a player (jersey 23), one play of rare moments with the given
/// serials, and the given sales of the first ones `(serial index, price, days ago)`; the last
/// moment is listed at `listed_at`.
struct Market {
    moments: Vec<Uuid>,
    listing: Uuid,
}

async fn market(app: &App, player: &str, serials: &[i32], sales: &[(usize, i64, i64)], listed_at: i64) -> Market {
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let conn = &mut *conn;
    let mut changes = vec![CatalogChange::Player {
        id: player.to_owned(),
        full_name: format!("Jalen {player}"),
        team_code: "BOS".to_owned(),
        position: "SF".to_owned(),
        seasons_played: 4,
        jersey_number: Some(23),
    }];
    let play_at = Utc::now() - chrono::Duration::days(90);
    let moments: Vec<Uuid> = serials.iter().map(|_| Uuid::new_v4()).collect();
    for (id, serial) in moments.iter().zip(serials) {
        changes.push(CatalogChange::Moment {
            id: *id,
            player_id: player.to_owned(),
            set_name: "Series 1 rare".to_owned(),
            play_category: "Dunk".to_owned(),
            play_at,
            rarity: Rarity::Rare,
            serial_number: *serial,
        });
    }
    for (index, price, days_ago) in sales {
        changes.push(CatalogChange::Sale {
            id: Uuid::new_v4(),
            moment_id: moments[*index],
            price_cents: *price,
            sold_at: Utc::now() - chrono::Duration::days(*days_ago),
        });
    }
    let listing = Uuid::new_v4();
    changes.push(CatalogChange::Listing {
        id: listing,
        moment_id: *moments.last().unwrap(),
        price_cents: listed_at,
        active: true,
    });
    for change in &changes {
        outbox::announce(conn, change).await.unwrap();
    }
    Market { moments, listing }
}
