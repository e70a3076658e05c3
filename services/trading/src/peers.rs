//! The peers trading calls, looked up once when the target is built.

use fastbreak_mesh::{Peer, Peers};

/// Trading's peers.
#[derive(Debug, Clone)]
pub(crate) struct TradingPeers {
    /// Users' status and wallets.
    pub user: Peer,
    /// Holds on the buyer's limits.
    pub risk: Peer,
    /// Listings, moments and their transfer.
    pub marketplace: Peer,
    /// Strategies' outcomes.
    pub strategy: Peer,
    /// Notifications of trades.
    pub notification: Peer,
}

impl TradingPeers {
    /// The set, from the channels the target was given.
    pub(crate) fn new(peers: &Peers) -> Self {
        Self {
            user: peers.peer("user"),
            risk: peers.peer("risk"),
            marketplace: peers.peer("marketplace"),
            strategy: peers.peer("strategy"),
            notification: peers.peer("notification"),
        }
    }
}
