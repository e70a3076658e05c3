//! The user service over real gRPC, against a fresh PostgreSQL database per test.

mod tokens;
mod users;
mod wallets;

use fastbreak_db::testing::TestDatabase;
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::TestServer;
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use fastbreak_proto::user::v1::{CreateAccessTokenRequest, CreateUserRequest};
use fastbreak_user::Settings;
use fastbreak_user::settings::PasswordCost;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use uuid::Uuid;

use fastbreak_mesh::testing::{as_user, internal};

/// A running user service and clients of both its services.
struct App {
    public: UserServiceClient<Channel>,
    internal: UserInternalServiceClient<Channel>,
    _server: TestServer,
    database: TestDatabase,
}

/// Settings for tests: a cheap password hash (the cost is a setting, not what is tested).
fn test_settings() -> Settings {
    Settings { password_hashing: PasswordCost { memory_kib: 1024, iterations: 1 }, ..Settings::default() }
}

async fn spawn_app() -> App {
    spawn_app_with(test_settings()).await
}

async fn spawn_app_with(settings: Settings) -> App {
    let database = TestDatabase::create().await;
    let server = TestServer::start(fastbreak_user::server(Context::new(database.database(), settings))).await;
    let channel = server.channel().await;
    App {
        public: UserServiceClient::new(channel.clone()),
        internal: UserInternalServiceClient::new(channel),
        _server: server,
        database,
    }
}

const PASSWORD: &str = "correct horse battery staple";

impl App {
    /// Creates a user with `email` and [`PASSWORD`]; returns their id.
    async fn user(&mut self, email: &str) -> Uuid {
        let request = CreateUserRequest { display_name: "Ada".into(), email: email.into(), password: PASSWORD.into() };
        let user = self.public.create_user(internal(request)).await.expect("user created").into_inner();
        Uuid::parse_str(&user.user_id).unwrap()
    }

    /// Signs in; returns the token's secret.
    async fn sign_in(&mut self, email: &str, password: &str) -> Result<String, tonic::Status> {
        let request = CreateAccessTokenRequest {
            email: email.into(),
            password: password.into(),
            label: "laptop".into(),
            ttl: None,
        };
        Ok(self.public.create_access_token(internal(request)).await?.into_inner().secret)
    }
}

/// The fields a status's BadRequest names.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|info| info.reason).unwrap_or_default()
}
