//! The peers the agents call, looked up once when the target is built.

use fastbreak_mesh::{Peer, Peers};

/// The agents' peers.
#[derive(Debug, Clone)]
pub(crate) struct AgentPeers {
    /// Active strategies.
    pub strategy: Peer,
    /// Valuations.
    pub scouting: Peer,
    /// Listings and their events.
    pub marketplace: Peer,
    /// Purchases.
    pub trading: Peer,
    /// The user's budget limits (a backtest holds its ledgers to them).
    pub risk: Peer,
    /// Alerts.
    pub notification: Peer,
}

impl AgentPeers {
    /// The set, from the channels the target was given.
    pub(crate) fn new(peers: &Peers) -> Self {
        Self {
            strategy: peers.peer("strategy"),
            scouting: peers.peer("scouting"),
            marketplace: peers.peer("marketplace"),
            trading: peers.peer("trading"),
            risk: peers.peer("risk"),
            notification: peers.peer("notification"),
        }
    }
}
