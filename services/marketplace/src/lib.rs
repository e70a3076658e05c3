//! The marketplace service: moments, listings, sales, price history and market sources.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use fastbreak_mesh::{Context, MeshServer};
use fastbreak_proto::marketplace::v1::marketplace_internal_service_server::{
    MarketplaceInternalService, MarketplaceInternalServiceServer,
};
use fastbreak_proto::marketplace::v1::marketplace_service_server::{MarketplaceService, MarketplaceServiceServer};

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "marketplace";

/// The services this target calls, by target name.
pub const PEERS: &[&str] = &[];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50055;

/// The public API: what clients reach through the gateway. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct MarketplaceApi;

impl MarketplaceService for MarketplaceApi {}

/// The internal API: what only other FastBreak services call. Its RPCs answer
/// UNIMPLEMENTED until they are built.
#[derive(Debug, Default, Clone, Copy)]
pub struct MarketplaceInternalApi;

impl MarketplaceInternalService for MarketplaceInternalApi {}

/// The target's server with all of its gRPC services, ready to bind. Built from its context
/// (database pool and peers), which its RPCs will use as they are built.
pub fn server(_context: Context<()>) -> MeshServer {
    MeshServer::new(TARGET)
        .add_public_service(MarketplaceServiceServer::new(MarketplaceApi))
        .add_internal_service(MarketplaceInternalServiceServer::new(MarketplaceInternalApi))
}
