//! The notification service: notifications, preferences, webhook deliveries and operator
//! alerts. Its worker delivers webhooks in the background, claiming deliveries with leases in
//! the database so that replicas never deliver one twice at once and a dead worker's
//! deliveries are taken over.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod api;
pub mod domain;
mod error;
pub mod settings;
pub mod store;
pub mod worker;

use fastbreak_db::Database;
use std::sync::Arc;

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::notification::v1::notification_internal_service_server::NotificationInternalServiceServer;
use fastbreak_proto::notification::v1::notification_service_server::NotificationServiceServer;

pub use settings::Settings;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "notification";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50058;

/// The target's server with all of its gRPC services and its delivery worker, ready to bind.
pub fn server(context: Context<Settings, Database>) -> MeshServer {
    let wake = Arc::new(tokio::sync::Notify::new());
    let api = api::NotificationApi::new(context.database.clone(), context.settings.clone(), wake.clone());
    let enabled = context.settings.worker_enabled;
    let worker = worker::DeliveryWorker::new(context.database.background(), context.settings, wake);
    let server = MeshServer::new(TARGET)
        .add_public_service(NotificationServiceServer::new(api.clone()))
        .add_internal_service(NotificationInternalServiceServer::new(api));
    if enabled { server.add_worker("webhook-delivery", move |draining| worker.run(draining)) } else { server }
}
