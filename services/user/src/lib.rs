//! The user service: users, Flow wallets, credentials and access tokens.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::MeshServer;
use fastbreak_proto::user::v1::user_internal_service_server::{UserInternalService, UserInternalServiceServer};
use fastbreak_proto::user::v1::user_service_server::{UserService, UserServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "user";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50052;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserApi;

impl UserService for UserApi {}

/// The internal API: what only other FastBreak services call. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserInternalApi;

impl UserInternalService for UserInternalApi {}

/// The target's server with all of its gRPC services, ready to bind.
pub fn server() -> MeshServer {
    MeshServer::new(TARGET)
        .add_public_service(UserServiceServer::new(UserApi))
        .add_internal_service(UserInternalServiceServer::new(UserInternalApi))
}
