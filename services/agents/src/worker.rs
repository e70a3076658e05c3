//! The listing loop: follows marketplace's listing stream from the sequence stored in the
//! database (so a restart or a lost connection resumes where it was left, and a replayed
//! event decides nothing twice), and decides on every new or repriced listing. A listing whose
//! decisions cannot be made (a strategy lookup that fails after retries) is tried again before
//! the loop moves past it.

use std::collections::HashMap;

use fastbreak_db::repo::agents::{self as repo, RunTrigger};
use fastbreak_mesh::Draining;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use futures::FutureExt;

use crate::engine::{Candidate, Engine, Scope};

/// The stream's name in the cursor table.
pub(crate) const LISTINGS: &str = "marketplace.listing_events";

/// The loop.
#[derive(Debug, Clone)]
pub struct ListingLoop {
    engine: Engine,
}

impl ListingLoop {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Follows the stream until draining begins.
    pub async fn run(self, mut draining: Draining) {
        loop {
            if let Err(error) = self.follow(&mut draining).await {
                tracing::warn!(%error, "the listing stream stopped; following it again shortly");
            }
            if draining.sleep(self.engine.settings.reconnect_pause).await {
                return;
            }
        }
    }

    /// Follows the stream from the stored sequence until it ends, fails or draining begins.
    async fn follow(&self, draining: &mut Draining) -> Result<(), String> {
        let after = self
            .engine
            .database
            .read(|conn| async move { repo::cursor(conn, LISTINGS).await }.boxed())
            .await
            .map_err(|e| e.to_string())?;
        let channel = self.engine.peer("marketplace").map_err(|s| s.message().to_owned())?;
        let request = market::StreamListingEventsRequest { after_sequence: Some(after), ..Default::default() };
        let mut stream = MarketplaceServiceClient::new(channel)
            .stream_listing_events(request)
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                () = draining.wait() => return Ok(()),
            };
            let Some(event) = next.map_err(|s| s.message().to_owned())? else { return Ok(()) };
            let kind = market::ListingEventKind::try_from(event.kind).unwrap_or(market::ListingEventKind::Unspecified);
            if matches!(kind, market::ListingEventKind::Created | market::ListingEventKind::PriceChanged)
                && let Some(listing) = event.listing.clone()
                && listing.state == market::ListingState::Active as i32
            {
                let candidate = Candidate { listing, moment: event.moment.clone(), sequence: Some(event.sequence) };
                let mut runs = HashMap::new();
                let decided =
                    self.engine.decide(&candidate, RunTrigger::ListingEvent, Scope::default(), &mut runs).await;
                let failure = decided.as_ref().err().map(|s| s.message().to_owned());
                self.engine.finish(&runs, 1, failure.clone()).await;
                if let Some(failure) = failure {
                    // Not past this event: it is decided again when the stream is followed again.
                    return Err(format!("listing {} could not be decided: {failure}", candidate.listing.listing_id));
                }
            }
            let sequence = event.sequence;
            self.engine
                .write(move |conn| async move { repo::advance_cursor(conn, LISTINGS, sequence).await }.boxed())
                .await
                .map_err(|s| s.message().to_owned())?;
        }
    }
}
