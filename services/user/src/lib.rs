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
    let (database, policy, every) =
        (context.database.background(), context.settings.sign_in, context.settings.failure_sweep);
    let api = api::UserApi::new(context);
    MeshServer::new(TARGET)
        .add_public_service(UserServiceServer::new(api.clone()))
        .add_internal_service(UserInternalServiceServer::new(api))
        .add_worker("sign-in-failure-sweeper", move |mut draining| async move {
            // Failed-sign-in records past their window and lock count for nothing: deleted.
            loop {
                let now = chrono::Utc::now();
                let swept = database
                    .autocommit(|conn| {
                        Box::pin(async move { store::forget_old_sign_in_failures(conn, now, &policy).await })
                    })
                    .await;
                match swept {
                    Ok(0) => {}
                    Ok(count) => tracing::debug!(count, "old failed-sign-in records deleted"),
                    Err(error) => tracing::warn!(%error, "old failed-sign-in records could not be deleted"),
                }
                if draining.sleep(every).await {
                    return;
                }
            }
        })
}
