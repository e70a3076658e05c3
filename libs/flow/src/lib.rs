//! Flow for FastBreak: the part of Flow's Access API it calls (generated from `proto/`, a
//! subset of the public `onflow/flow` definitions with their names and numbers), JSON-CDC
//! decoding with exact `UFix64` prices, NBA Top Shot's market events, and a fake access node
//! for tests and demos (`fake`), with a stand-in for Top Shot's GraphQL API (`fake_graphql`).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(missing_docs)] // the generated code carries the proto comments; a few items have none

/// `flow.entities`: blocks, events and their encodings.
pub mod entities {
    tonic::include_proto!("flow.entities");
}

/// `flow.access`: the Access API.
pub mod access {
    tonic::include_proto!("flow.access");
}

/// The encoded `FileDescriptorSet` of the contract above (checked against the public
/// definitions by `tests/contract.rs`).
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flow_descriptor.bin"));

pub mod cdc;
pub mod demo;
pub mod fake;
pub mod fake_graphql;
pub mod fake_nba;
pub mod topshot;
