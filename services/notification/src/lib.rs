//! The notification service: notifications, preferences, deliveries and operator alerts.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::MeshServer;
use fastbreak_proto::notification::v1::notification_internal_service_server::{
    NotificationInternalService, NotificationInternalServiceServer,
};
use fastbreak_proto::notification::v1::notification_service_server::{NotificationService, NotificationServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "notification";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50058;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotificationApi;

impl NotificationService for NotificationApi {}

/// The internal API: what only other FastBreak services call. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotificationInternalApi;

impl NotificationInternalService for NotificationInternalApi {}

/// The target's server with all of its gRPC services, ready to bind.
pub fn server() -> MeshServer {
    MeshServer::new(TARGET)
        .add_public_service(NotificationServiceServer::new(NotificationApi))
        .add_internal_service(NotificationInternalServiceServer::new(NotificationInternalApi))
}
