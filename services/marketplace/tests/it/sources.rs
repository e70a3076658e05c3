//! A failing or stalled source is reported and the others go on.

use fastbreak_marketplace::{FeedError, MarketFeed, SourceEvent, SourceInfo};
use fastbreak_proto::marketplace::v1::{ListMarketSourcesRequest, MarketSource, StreamListingEventsRequest};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::{eventually, simulator, spawn_with};

/// A marketplace that answers with errors, or never (stalls).
struct Broken {
    id: &'static str,
    stall: bool,
}

impl MarketFeed for Broken {
    fn name(&self) -> &str {
        self.id
    }

    fn sources(&self) -> Vec<SourceInfo> {
        vec![SourceInfo { id: self.id.to_owned(), display_name: "Broken".to_owned(), fee_bps: 100 }]
    }

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        let stall = self.stall;
        async move {
            if stall {
                futures::future::pending::<()>().await;
            }
            Err(FeedError("HTTP 503 from the marketplace API".to_owned()))
        }
        .boxed()
    }
}

async fn sources(app: &crate::App) -> Vec<MarketSource> {
    app.public.clone().list_market_sources(ListMarketSourcesRequest::default()).await.unwrap().into_inner().sources
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_and_stalled_sources_are_reported_while_the_others_go_on() {
    let app = spawn_with(vec![
        Box::new(Broken { id: "broken", stall: false }),
        Box::new(Broken { id: "stalled", stall: true }),
        simulator(13),
    ])
    .await;
    eventually("the broken sources are reported", || async {
        let all = sources(&app).await;
        let find = |id: &str| all.iter().find(|s| s.source_id == id).cloned();
        matches!((find("broken"), find("stalled")), (Some(b), Some(s)) if !b.healthy && !s.healthy)
    })
    .await;
    let all = sources(&app).await;
    let broken = all.iter().find(|s| s.source_id == "broken").unwrap();
    assert!(broken.last_error.contains("HTTP 503"), "{broken:?}");
    let stalled = all.iter().find(|s| s.source_id == "stalled").unwrap();
    assert!(stalled.last_error.contains("stalled"), "{stalled:?}");
    let simulated = all.iter().find(|s| s.source_id == "simulator").unwrap();
    assert!(simulated.healthy && simulated.last_success_time.is_some(), "{simulated:?}");

    // Events keep flowing from the healthy source.
    let mut stream = app
        .public
        .clone()
        .stream_listing_events(StreamListingEventsRequest { after_sequence: None, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message()).await;
    assert!(next.expect("an event while two sources are down").unwrap().is_some());
}
