//! The user service: users, Flow wallets, credentials and access tokens.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
pub mod domain;
mod error;
pub mod settings;
pub mod store;

use fastbreak_db::Database;
use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::user::v1::user_internal_service_server::UserInternalServiceServer;
use fastbreak_proto::user::v1::user_service_server::UserServiceServer;

pub use settings::Settings;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "user";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50052;

/// The target's server with all of its gRPC services, ready to bind.
pub fn server(context: Context<Settings, Database>) -> MeshServer {
    let api = api::UserApi::new(context);
    MeshServer::new(TARGET)
        .add_public_service(UserServiceServer::new(api.clone()))
        .add_internal_service(UserInternalServiceServer::new(api))
}
