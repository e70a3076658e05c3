//! What a target is built from: its database pool, its configuration and the channels to the
//! peers it calls. The binary builds one per target; tests build the same against a fresh
//! database and stand-in peers.

use std::collections::BTreeMap;

use std::time::Duration;

use tonic::Status;

use crate::client::PeerChannel;

/// A target's context: `S` is the target's own settings, `D` the handle on its store (the
/// pool of its database).
#[derive(Debug, Clone)]
pub struct Context<S, D> {
    /// The pool on the database the target serves from.
    pub database: D,
    /// Channels to the peers the target calls.
    pub peers: Peers,
    /// The target's own settings.
    pub settings: S,
}

impl<S, D> Context<S, D> {
    /// A context with no peers.
    pub fn new(database: D, settings: S) -> Self {
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

    /// One peer, looked up once when a target builds its typed set of peers.
    pub fn peer(&self, name: &'static str) -> Peer {
        Peer { name, channel: self.get(name) }
    }

    /// The names of the peers.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}

/// One peer of a target, looked up when the target is built: a target keeps a typed set of
/// them (a field per peer it calls), never names a peer at the call.
#[derive(Debug, Clone)]
pub struct Peer {
    name: &'static str,
    channel: Option<PeerChannel>,
}

impl Peer {
    /// The channel to the peer; UNAVAILABLE naming it when the target was given none.
    pub fn channel(&self) -> Result<PeerChannel, Status> {
        self.channel.clone().ok_or_else(|| crate::status::dependency_unavailable(self.name, Duration::from_secs(5)))
    }

    /// The peer's target name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}
