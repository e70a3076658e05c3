//! The strategy service over real gRPC, against a fresh PostgreSQL database per test.

mod active;
mod lifecycle;
mod validation;

use fastbreak_db::testing::TestDatabase;
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::TestServer;
use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::strategy_internal_service_client::StrategyInternalServiceClient;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::strategy::v1::{
    ActivateStrategyRequest, CreateStrategyRequest, PostGameSpikeParameters, Stat, StatTrigger, Strategy, StrategyRules,
};
use tonic::transport::Channel;
use tonic_types::StatusExt;
use uuid::Uuid;

use fastbreak_mesh::testing::{as_user, internal};

struct App {
    public: StrategyServiceClient<Channel>,
    internal: StrategyInternalServiceClient<Channel>,
    database: TestDatabase,
    _server: TestServer,
}

async fn spawn_app() -> App {
    let database = TestDatabase::create().await;
    let server = TestServer::start(fastbreak_strategy::server(Context::new(database.database(), ()))).await;
    let channel = server.channel().await;
    App {
        public: StrategyServiceClient::new(channel.clone()),
        internal: StrategyInternalServiceClient::new(channel),
        database,
        _server: server,
    }
}

impl App {
    async fn user(&self) -> Uuid {
        self.database.create_user().await
    }

    async fn create(&mut self, user: Uuid, strategy: Strategy) -> Result<Strategy, tonic::Status> {
        let request = CreateStrategyRequest { strategy: Some(strategy), validate_only: false };
        Ok(self.public.create_strategy(as_user(request, user)).await?.into_inner())
    }

    async fn activate(&mut self, user: Uuid, strategy: &Strategy) {
        let request = ActivateStrategyRequest { strategy_id: strategy.strategy_id.clone() };
        self.public.activate_strategy(as_user(request, user)).await.unwrap();
    }
}

fn rules() -> StrategyRules {
    StrategyRules { min_confidence: 0.7, min_discount_bps: 1000, max_price_cents: 5000, max_purchases_per_day: 3 }
}

/// A valid post-game-spike strategy.
fn spike(players: &[&str], rarities: &[Rarity]) -> Strategy {
    Strategy {
        display_name: "Big nights".into(),
        rules: Some(rules()),
        parameters: Some(Parameters::PostGameSpike(PostGameSpikeParameters {
            min_game_score: 40,
            buy_window_minutes: 360,
            player_ids: players.iter().map(|p| (*p).to_owned()).collect(),
            rarities: rarities.iter().map(|r| *r as i32).collect(),
            stat_triggers: vec![StatTrigger { stat: Stat::Points as i32, at_least: 40 }],
        })),
        ..Default::default()
    }
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}
