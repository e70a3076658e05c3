//! The scouting service: player stats, game events and explainable valuations.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod domain;

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::scouting::v1::scouting_internal_service_server::{
    ScoutingInternalService, ScoutingInternalServiceServer,
};
use fastbreak_proto::scouting::v1::scouting_service_server::{ScoutingService, ScoutingServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "scouting";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50056;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScoutingApi;

impl ScoutingService for ScoutingApi {}

/// The internal API: what only other FastBreak services call. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScoutingInternalApi;

impl ScoutingInternalService for ScoutingInternalApi {}

/// The target's server with all of its gRPC services, ready to bind. Built from its context
/// (database pool and peers), which its RPCs will use as they are built.
pub fn server(_context: Context<()>) -> MeshServer {
    MeshServer::new(TARGET)
        .add_public_service(ScoutingServiceServer::new(ScoutingApi))
        .add_internal_service(ScoutingInternalServiceServer::new(ScoutingInternalApi))
}
