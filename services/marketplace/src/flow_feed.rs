//! The real market: NBA Top Shot's marketplace on Flow, followed through an access node's
//! Access API (gRPC). The feed reads the sealed blocks after its stored height, a capped range
//! at a time, asks for each followed event type (`fastbreak_flow::topshot::FOLLOWED`), puts
//! the events in chain order, and turns them into source events; a moment seen for the first
//! time is looked up once on Top Shot's GraphQL API for its player, set, play, tier, serial and
//! circulation.
//!
//! Its position is the next height to read, stored with each batch: a restart goes on at that
//! height, so no block range is skipped or read twice. A failed request fails the batch (the
//! ingest marks the source unhealthy and asks again after a pause) without moving the position.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use fastbreak_flow::access::access_api_client::AccessApiClient;
use fastbreak_flow::access::{GetEventsForHeightRangeRequest, GetLatestBlockHeaderRequest};
use fastbreak_flow::entities::EventEncodingVersion;
use fastbreak_flow::topshot::{self, MarketEvent};
use fastbreak_market_sim::{Averages, Listing, ListingChange, Moment, Player};
use futures::FutureExt;
use futures::future::BoxFuture;
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

use crate::feed::{FeedError, MarketFeed, SourceEvent, SourceInfo};
use crate::topshot_api::{MomentIdentity, TopShotApi};

/// The market source the feed reports on.
pub const SOURCE_ID: &str = "topshot";

/// A buyer the chain did not name (no deposit of the moment in the purchase's transaction).
pub const UNKNOWN_BUYER: &str = "0x0000000000000000";

/// Where the feed reads and how.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowFeedConfig {
    /// The access node, as `host:port`.
    pub access_node: String,
    /// Top Shot's GraphQL endpoint.
    pub graphql_url: String,
    /// The first height to read when no position is stored; `None` starts at the sealed head.
    pub start_height: Option<u64>,
    /// The most blocks one events request covers.
    pub range_cap: u64,
    /// The pause between polls once the feed has caught up with the chain.
    pub poll: Duration,
    /// Each request's timeout.
    pub timeout: Duration,
}

/// A moment's id in FastBreak, from its Flow id (the same on every replica and restart).
pub fn moment_uuid(flow_id: u64) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("flow.topshot.moment.{flow_id}").as_bytes())
}

/// A listing's id in FastBreak, from the event that made it.
fn listing_uuid(height: u64, transaction: u32, event: u32) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("flow.topshot.listing.{height}.{transaction}.{event}").as_bytes())
}

/// One decoded event where the chain put it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located {
    /// The block.
    pub height: u64,
    /// The transaction's index in the block.
    pub transaction: u32,
    /// The event's index in the transaction.
    pub index: u32,
    /// The event.
    pub event: MarketEvent,
}

/// How far behind the chain's sealed head the feed is, after its last batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// Blocks not read yet.
    pub blocks: u64,
    /// Seconds between the last block read and the head.
    pub seconds: i64,
}

/// The feed.
#[derive(Debug)]
pub struct FlowFeed {
    config: FlowFeedConfig,
    access: AccessApiClient<Channel>,
    api: TopShotApi,
    next_height: Option<u64>,
    caught_up: bool,
    /// Moments looked up: FastBreak's id, or `None` for one Top Shot does not show.
    looked_up: HashMap<u64, Option<Uuid>>,
    players: HashSet<String>,
    lag: Lag,
    skipped: u64,
}

/// A client of the access node of `config` (connects on first use).
pub(crate) fn access_client(config: &FlowFeedConfig) -> Result<AccessApiClient<Channel>, FeedError> {
    let endpoint = Endpoint::from_shared(format!("http://{}", config.access_node))
        .map_err(|e| FeedError(format!("the access node {:?} is not host:port: {e}", config.access_node)))?
        .connect_timeout(config.timeout)
        .timeout(config.timeout);
    Ok(AccessApiClient::new(endpoint.connect_lazy()))
}

impl FlowFeed {
    /// A feed of `config` (connects on first use).
    pub fn new(config: FlowFeedConfig) -> Result<Self, FeedError> {
        let api = TopShotApi::new(&config.graphql_url, config.timeout);
        Ok(Self {
            access: access_client(&config)?,
            api,
            next_height: config.start_height,
            config,
            caught_up: false,
            looked_up: HashMap::new(),
            players: HashSet::new(),
            lag: Lag::default(),
            skipped: 0,
        })
    }

    /// Events the feed could not read (logged and passed over).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn unreachable(&self, what: &str, status: &tonic::Status) -> FeedError {
        FeedError(format!(
            "the access node {} {what}: {:?}: {}",
            self.config.access_node,
            status.code(),
            status.message()
        ))
    }

    /// The sealed head: its height and time.
    async fn head(&mut self) -> Result<(u64, i64), FeedError> {
        sealed_head(&mut self.access).await.map_err(|s| self.unreachable("did not give its sealed head", &s))
    }

    /// The followed events of `[start, end]`, in chain order, and the time of the last block.
    async fn events(&mut self, start: u64, end: u64) -> Result<(Vec<Located>, Option<i64>), FeedError> {
        let read = read_events(&mut self.access, &topshot::FOLLOWED, start, end)
            .await
            .map_err(|s| self.unreachable(&format!("did not give the events of {start}..={end}"), &s))?;
        self.skipped += read.skipped;
        Ok((read.events, read.last_time))
    }

    /// The moment of a Flow id, looked up once; the events that bring it (and its player) into
    /// the catalog the first time.
    async fn moment(
        &mut self,
        flow_id: u64,
        owner: &str,
        out: &mut Vec<SourceEvent>,
    ) -> Result<Option<Uuid>, FeedError> {
        if let Some(known) = self.looked_up.get(&flow_id) {
            return Ok(*known);
        }
        let identity = self.api.moment(flow_id).await?;
        let id = identity.as_ref().map(|identity| {
            catalogue(identity, owner, &mut self.players, out);
            moment_uuid(flow_id)
        });
        self.looked_up.insert(flow_id, id);
        Ok(id)
    }

    /// The source events of a range's market events.
    async fn source_events(&mut self, found: &[Located]) -> Result<Vec<SourceEvent>, FeedError> {
        // A purchase's buyer is the deposit of the moment in the same transaction.
        let deposits: HashMap<(u64, u32, u64), String> = found
            .iter()
            .filter_map(|e| match &e.event {
                MarketEvent::Deposit { moment, to: Some(to) } => Some(((e.height, e.transaction, *moment), to.clone())),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for located in found {
            let moment_id = moment_uuid(located.event.moment());
            let change = match &located.event {
                MarketEvent::Listed { moment, price_cents, seller: Some(seller) } => {
                    let Some(moment_id) = self.moment(*moment, seller, &mut out).await? else { continue };
                    out.push(SourceEvent::MomentOwner { moment_id, owner: seller.clone() });
                    out.push(SourceEvent::Listed(Listing {
                        id: listing_uuid(located.height, located.transaction, located.index),
                        moment_id,
                        marketplace: SOURCE_ID.to_owned(),
                        price_cents: *price_cents,
                        seller: seller.clone(),
                    }));
                    continue;
                }
                MarketEvent::PriceChanged { price_cents, .. } => ListingChange::Repriced { price_cents: *price_cents },
                MarketEvent::Purchased { moment, price_cents, .. } => ListingChange::Sold {
                    price_cents: *price_cents,
                    buyer: deposits
                        .get(&(located.height, located.transaction, *moment))
                        .cloned()
                        .unwrap_or_else(|| UNKNOWN_BUYER.to_owned()),
                },
                MarketEvent::Withdrawn { .. } => ListingChange::Withdrawn,
                MarketEvent::Listed { seller: None, .. } | MarketEvent::Deposit { .. } => continue,
            };
            out.push(SourceEvent::MomentListingChanged { marketplace: SOURCE_ID.to_owned(), moment_id, change });
        }
        Ok(out)
    }

    async fn batch(&mut self) -> Result<Vec<SourceEvent>, FeedError> {
        let (head, head_time) = self.head().await?;
        let next = *self.next_height.get_or_insert(head);
        if next > head {
            self.caught_up = true;
            self.lag = Lag::default();
            return Ok(Vec::new());
        }
        let end = head.min(next + self.config.range_cap.max(1) - 1);
        let (found, last_time) = self.events(next, end).await?;
        let events = self.source_events(&found).await?;
        self.next_height = Some(end + 1);
        self.caught_up = end == head;
        self.lag = Lag { blocks: head - end, seconds: last_time.map_or(0, |t| (head_time - t).max(0)) };
        Ok(events)
    }
}

/// The events that bring a moment (and, the first time, its player) into the catalog.
pub(crate) fn catalogue(m: &MomentIdentity, owner: &str, players: &mut HashSet<String>, out: &mut Vec<SourceEvent>) {
    if players.insert(m.player_id.clone()) {
        out.push(SourceEvent::PlayerSigned(Player {
            id: m.player_id.clone(),
            full_name: m.player_name.clone(),
            team_code: m.team_code.clone(),
            position: m.position.clone(),
            seasons_played: m.seasons_played,
            jersey: m.jersey.unwrap_or(-1),
            averages: Averages { points: 0.0, rebounds: 0.0, assists: 0.0, steals: 0.0, blocks: 0.0 },
        }));
    }
    out.push(SourceEvent::MomentMinted(Moment {
        id: moment_uuid(m.flow_id),
        player_id: m.player_id.clone(),
        set_name: m.set_name.clone(),
        play_category: m.play_category.clone(),
        play_at: m.play_at,
        tier: m.tier,
        serial_number: m.serial,
        edition_size: m.circulation,
        owner: owner.to_owned(),
    }));
}

/// The feed's name, under which its position is stored.
pub const FEED_NAME: &str = "flow";

/// The next height of a stored position.
pub fn next_height(position: &str) -> Result<u64, FeedError> {
    let value: serde_json::Value =
        serde_json::from_str(position).map_err(|e| FeedError(format!("the stored position is not JSON: {e}")))?;
    value["next_height"]
        .as_str()
        .and_then(|h| h.parse::<u64>().ok())
        .ok_or_else(|| FeedError(format!("the stored position has no next_height: {position}")))
}

/// The sealed head of the access node's chain: its height and time.
pub(crate) async fn sealed_head(access: &mut AccessApiClient<Channel>) -> Result<(u64, i64), tonic::Status> {
    let response = access.get_latest_block_header(GetLatestBlockHeaderRequest { is_sealed: true }).await?.into_inner();
    let block = response.block.ok_or_else(|| tonic::Status::internal("a head without a block"))?;
    Ok((block.height, block.timestamp.map_or(0, |t| t.seconds)))
}

/// Events of a height range, decoded and in chain order.
pub(crate) struct ReadEvents {
    /// The events.
    pub events: Vec<Located>,
    /// The time of the range's last block, when the node gave it.
    pub last_time: Option<i64>,
    /// Payloads that could not be read (logged).
    pub skipped: u64,
}

/// The events of `types` in `[start, end]` (one request per type), decoded, in chain order
/// (height, transaction, event); a payload that cannot be read is logged and passed over.
pub(crate) async fn read_events(
    access: &mut AccessApiClient<Channel>,
    types: &[&str],
    start: u64,
    end: u64,
) -> Result<ReadEvents, tonic::Status> {
    let mut read = ReadEvents { events: Vec::new(), last_time: None, skipped: 0 };
    for type_id in types {
        let request = GetEventsForHeightRangeRequest {
            r#type: (*type_id).to_owned(),
            start_height: start,
            end_height: end,
            event_encoding_version: EventEncodingVersion::JsonCdcV0 as i32,
            execution_state_query: None,
        };
        for block in access.get_events_for_height_range(request).await?.into_inner().results {
            if block.block_height == end {
                read.last_time = block.block_timestamp.map(|t| t.seconds).or(read.last_time);
            }
            for event in block.events {
                match MarketEvent::decode(&event.r#type, &event.payload) {
                    Ok(decoded) => read.events.push(Located {
                        height: block.block_height,
                        transaction: event.transaction_index,
                        index: event.event_index,
                        event: decoded,
                    }),
                    Err(error) => {
                        read.skipped += 1;
                        tracing::warn!(height = block.block_height, r#type = %event.r#type, %error, "an event cannot be read; passed over");
                    }
                }
            }
        }
    }
    read.events.sort_by_key(|e| (e.height, e.transaction, e.index));
    Ok(read)
}

impl MarketFeed for FlowFeed {
    fn name(&self) -> &str {
        FEED_NAME
    }

    fn sources(&self) -> Vec<SourceInfo> {
        vec![SourceInfo {
            id: SOURCE_ID.to_owned(),
            display_name: "NBA Top Shot Marketplace (Flow)".to_owned(),
            fee_bps: 500,
        }]
    }

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        self.batch().boxed()
    }

    fn pace(&self) -> Duration {
        if self.caught_up { self.config.poll } else { Duration::ZERO }
    }

    fn lag(&self) -> Option<(i64, i64)> {
        self.next_height.map(|_| (i64::try_from(self.lag.blocks).unwrap_or(i64::MAX), self.lag.seconds))
    }

    fn position(&self) -> Option<String> {
        self.next_height.map(|height| serde_json::json!({ "next_height": height.to_string() }).to_string())
    }

    fn resume(&mut self, position: &str) -> Result<(), FeedError> {
        self.next_height = Some(next_height(position)?);
        Ok(())
    }
}
