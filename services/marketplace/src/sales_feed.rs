//! Top Shot's recorded sales, from its public GraphQL API (`searchMarketplaceTransactions`,
//! oldest first, a page at a time): each sale, with its moment's identity given inline, becomes
//! a recorded sale of the `topshot-sales` source, so valuations on the real market rest on real
//! sales (they reach scouting as every sale does, through the catalog's messages).
//!
//! Its position is the cursor after the last stored page: a restart asks for the next page, so
//! no sale is stored twice (and a sale the chain feed recorded too is recognised by the ingest:
//! the same moment at the same price within 15 minutes).

use std::collections::HashSet;
use std::time::Duration;

use fastbreak_market_sim::RecordedSale;
use futures::FutureExt;
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::feed::{FeedError, MarketFeed, SourceEvent, SourceInfo};
use crate::flow_feed::{catalogue, moment_uuid};
use crate::topshot_api::TopShotApi;

/// The source the sales are recorded under.
pub const SOURCE_ID: &str = "topshot-sales";

/// The feed's name, under which its position is stored.
pub const FEED_NAME: &str = "topshot-sales";

/// The sales history.
#[derive(Debug)]
pub struct SalesFeed {
    api: TopShotApi,
    cursor: Option<String>,
    page: u32,
    poll: Duration,
    caught_up: bool,
    /// Moments already brought into the catalog by this feed.
    catalogued: HashSet<u64>,
    players: HashSet<String>,
}

impl SalesFeed {
    /// The sales of the API at `url`, `page` at a time, polled every `poll` once caught up.
    pub fn new(url: &str, page: u32, poll: Duration, timeout: Duration) -> Self {
        Self {
            api: TopShotApi::new(url, timeout),
            cursor: None,
            page: page.max(1),
            poll,
            caught_up: false,
            catalogued: HashSet::new(),
            players: HashSet::new(),
        }
    }

    async fn batch(&mut self) -> Result<Vec<SourceEvent>, FeedError> {
        let cursor = self.cursor.clone().unwrap_or_default();
        let (sales, right) = self.api.sales_page(&cursor, self.page).await?;
        self.caught_up = sales.is_empty();
        let mut out = Vec::new();
        for sale in sales {
            let Some(moment) = &sale.moment else { continue };
            if self.catalogued.insert(moment.flow_id) {
                catalogue(moment, &sale.buyer, &mut self.players, &mut out);
            }
            let id = Uuid::parse_str(&sale.id)
                .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("topshot.sale.{}", sale.id).as_bytes()));
            out.push(SourceEvent::SaleRecorded(RecordedSale {
                id,
                moment_id: moment_uuid(moment.flow_id),
                marketplace: SOURCE_ID.to_owned(),
                price_cents: sale.price_cents,
                seller: sale.seller,
                buyer: sale.buyer,
                sold_at: sale.sold_at,
            }));
        }
        if !right.is_empty() {
            self.cursor = Some(right);
        }
        Ok(out)
    }
}

impl MarketFeed for SalesFeed {
    fn name(&self) -> &str {
        FEED_NAME
    }

    fn sources(&self) -> Vec<SourceInfo> {
        vec![SourceInfo {
            id: SOURCE_ID.to_owned(),
            display_name: "NBA Top Shot sales (GraphQL)".to_owned(),
            fee_bps: 500,
        }]
    }

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        self.batch().boxed()
    }

    fn pace(&self) -> Duration {
        if self.caught_up { self.poll } else { Duration::ZERO }
    }

    fn position(&self) -> Option<String> {
        self.cursor.as_ref().map(|cursor| serde_json::json!({ "cursor": cursor }).to_string())
    }

    fn resume(&mut self, position: &str) -> Result<(), FeedError> {
        let value: serde_json::Value =
            serde_json::from_str(position).map_err(|e| FeedError(format!("the stored position is not JSON: {e}")))?;
        let cursor = value["cursor"]
            .as_str()
            .ok_or_else(|| FeedError(format!("the stored position has no cursor: {position}")))?;
        self.cursor = Some(cursor.to_owned());
        Ok(())
    }
}
