//! Paper fills on the real market: a `topshot` listing is filled only if it is still open on
//! chain when the purchase is made. The ingest knows the chain up to the Flow feed's stored
//! height; this check reads the rest, from that height to the sealed head, for a purchase, a
//! withdrawal or a new price of the listing's moment. (The feed records the listing's fate when
//! it reaches those blocks.)

use fastbreak_flow::access::access_api_client::AccessApiClient;
use fastbreak_flow::topshot::{self, MarketEvent};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::feed::FeedError;
use crate::flow_feed::{self, FlowFeedConfig, moment_uuid};

/// What the chain says of a listing since the feed's height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnChain {
    /// Nothing closed or repriced it: it can be filled at its price.
    Open,
    /// Closed or repriced, with the sentence that says how and where.
    Gone {
        /// Such as `sold_on_chain`.
        state: &'static str,
        /// What happened, where.
        why: String,
    },
}

/// Reads the chain after the feed.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    access: AccessApiClient<Channel>,
    node: String,
    range_cap: u64,
}

impl ChainCheck {
    /// A check against the access node of `config`.
    pub fn new(config: &FlowFeedConfig) -> Result<Self, FeedError> {
        Ok(Self {
            access: flow_feed::access_client(config)?,
            node: config.access_node.clone(),
            range_cap: config.range_cap,
        })
    }

    /// The listing of `moment_id` since height `from` (the feed's next height) to the sealed
    /// head; an error says why the chain could not be asked.
    pub async fn since(&self, moment_id: Uuid, from: u64) -> Result<OnChain, String> {
        let mut access = self.access.clone();
        let unreachable = |s: tonic::Status| {
            format!("the access node {} cannot confirm the listing: {:?}: {}", self.node, s.code(), s.message())
        };
        let (head, _) = flow_feed::sealed_head(&mut access).await.map_err(unreachable)?;
        if from > head {
            return Ok(OnChain::Open);
        }
        if head - from >= self.range_cap {
            return Err(format!(
                "the Flow feed is {} blocks behind the chain: the listing cannot be confirmed",
                head - from + 1
            ));
        }
        let types = [topshot::MOMENT_PURCHASED, topshot::MOMENT_WITHDRAWN, topshot::MOMENT_PRICE_CHANGED];
        let read = flow_feed::read_events(&mut access, &types, from, head).await.map_err(unreachable)?;
        let closing = read.events.iter().find(|e| moment_uuid(e.event.moment()) == moment_id);
        Ok(match closing.map(|e| (&e.event, e.height)) {
            None => OnChain::Open,
            Some((MarketEvent::Purchased { .. }, height)) => {
                OnChain::Gone { state: "sold_on_chain", why: format!("bought on chain at block {height}") }
            }
            Some((MarketEvent::PriceChanged { price_cents, .. }, height)) => OnChain::Gone {
                state: "repriced_on_chain",
                why: format!("repriced on chain to {} at block {height}", fastbreak_mesh::money::dollars(*price_cents)),
            },
            Some((_, height)) => {
                OnChain::Gone { state: "withdrawn_on_chain", why: format!("withdrawn on chain at block {height}") }
            }
        })
    }
}
