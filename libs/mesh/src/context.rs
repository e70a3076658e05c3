//! What a target is built from: its database pool, its configuration and the channels to the
//! peers it calls. The binary builds one per target; tests build the same against a fresh
//! database and stand-in peers.

use std::collections::BTreeMap;

use fastbreak_db::Database;

use crate::client::PeerChannel;

/// A target's context: `S` is the target's own settings.
#[derive(Debug, Clone)]
pub struct Context<S> {
    /// The pool on the database the target serves from.
    pub database: Database,
    /// Channels to the peers the target calls.
    pub peers: Peers,
    /// The target's own settings.
    pub settings: S,
}

impl<S> Context<S> {
    /// A context with no peers.
    pub fn new(database: Database, settings: S) -> Self {
        Self { database, peers: Peers::default(), settings }
    }
}

/// Channels to peer targets, by target name.
#[derive(Debug, Clone, Default)]
pub struct Peers(BTreeMap<&'static str, PeerChannel>);

impl Peers {
    /// Adds (or replaces) the channel to a peer.
    pub fn insert(&mut self, name: &'static str, channel: PeerChannel) {
        self.0.insert(name, channel);
    }

    /// The channel to a peer, if the target was given one.
    pub fn get(&self, name: &str) -> Option<PeerChannel> {
        self.0.get(name).cloned()
    }

    /// The names of the peers.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}
