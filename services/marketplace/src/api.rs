//! The marketplace's RPCs: each converts its request into domain values, applies the rule, and
//! converts the answer back.

use std::sync::Arc;

use crate::domain::{address, price, rarity_from_pb, uuids};
use crate::error::{self, unavailable};
use crate::store::{self as market, CatalogFilter, Listing, ListingState, Taken};
use chrono::{Duration, Utc};
use fastbreak_db::OrStatus as _;
use fastbreak_db::{Database, DatabaseError, PgConnection};
use fastbreak_mesh::idempotency::IdempotencyKey;
use fastbreak_mesh::status::{self, Violations, required_uuid};
use fastbreak_mesh::{paging, tail};
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::marketplace::v1 as pb;
use fastbreak_proto::marketplace::v1::marketplace_internal_service_server::MarketplaceInternalService;
use fastbreak_proto::marketplace::v1::marketplace_service_server::MarketplaceService;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::chain_check::{ChainCheck, OnChain};
use crate::convert;
use crate::flow_feed;
use crate::settings::Settings;

/// Events read per query by a stream.
const STREAM_BATCH: i64 = 500;

/// The process's one tail of listing events: every event after a sequence, a batch at a time
/// (the follower reads on background work's connections, replays on the callers').
fn listing_event_hub(
    database: Arc<Database>,
    wake: tail::Wake,
    limits: tail::Limits,
) -> Arc<tail::Hub<pb::ListingEvent>> {
    let fetch = |database: Database| {
        tail::fetch(move |after: i64| {
            let database = database.clone();
            async move {
                let batch = database
                    .read(|conn| market::listing_events_after(conn, after, None, &[], STREAM_BATCH).boxed())
                    .await
                    .or_status()?;
                Ok(batch.iter().map(|e| (e.sequence, convert::event_to_pb(e))).collect())
            }
        })
    };
    let fetches = [fetch(database.background()), fetch((*database).clone())];
    let last = tail::last(move || {
        let database = database.clone();
        async move { database.read(|conn| market::last_listing_sequence(conn).boxed()).await.or_status() }
    });
    tail::Hub::new("listing event", fetches, last, wake, limits)
}

/// Both of the target's services.
#[derive(Debug, Clone)]
pub struct MarketplaceApi {
    database: Arc<Database>,
    /// Wakes streams after a listing change made through this API.
    notify: watch::Sender<u64>,
    /// With the real market: confirms on chain that a `topshot` listing is still open.
    chain: Option<ChainCheck>,
    /// The one tail of listing events every stream of this process is fed from.
    listing_events: Arc<tail::Hub<pb::ListingEvent>>,
}

impl MarketplaceApi {
    pub(crate) fn new(
        database: Database,
        settings: Arc<Settings>,
        published: watch::Sender<u64>,
        draining: watch::Receiver<bool>,
    ) -> Self {
        let chain = settings.flow.as_ref().and_then(|config| match ChainCheck::new(config) {
            Ok(check) => Some(check),
            Err(error) => {
                tracing::error!(%error, "topshot listings cannot be confirmed on chain");
                None
            }
        });
        let database = Arc::new(database);
        let wake = tail::Wake { written: published.subscribe(), draining, poll: settings.stream_poll };
        let listing_events = listing_event_hub(database.clone(), wake, settings.streams);
        Self { database, notify: published, chain, listing_events }
    }

    /// Refuses to fill a `topshot` listing that the chain has closed or repriced since the
    /// Flow feed's height (or that cannot be confirmed); other listings pass.
    async fn confirm_on_chain(&self, chain: &ChainCheck, id: Uuid) -> Result<(), Status> {
        let (listing, position) = self
            .read(|conn| {
                async move {
                    let listing = market::find_listing(conn, id).await?;
                    Ok((listing, market::feed_position(conn, flow_feed::FEED_NAME).await?))
                }
                .boxed()
            })
            .await?;
        let Some(listing) = listing.filter(|l| l.source_id == flow_feed::SOURCE_ID && l.state == ListingState::Active)
        else {
            return Ok(());
        };
        let from = position
            .as_deref()
            .map(flow_feed::next_height)
            .transpose()
            .map_err(|e| Status::unavailable(e.to_string()))?
            .ok_or_else(|| {
                Status::unavailable("the Flow feed has not read the chain yet: the listing cannot be confirmed")
            })?;
        match chain.since(listing.moment_id, from).await.map_err(Status::unavailable)? {
            OnChain::Open => Ok(()),
            OnChain::Gone { state, why } => Err(status::failed_precondition(
                format!("the listing is no longer for sale: {why}"),
                ErrorReason::ListingUnavailable,
                [("listing_id".to_owned(), id.to_string()), ("state".to_owned(), state.to_owned())],
            )),
        }
    }

    async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send,
    ) -> Result<T, Status> {
        self.database.read(work).await.or_status()
    }

    /// A listing change: row locks decide between concurrent changes; streams are woken after.
    /// `work` locks the moment first (the order of locks is in `market::append_listing_events`).
    async fn change<T: Send>(
        &self,
        work: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send + Sync,
    ) -> Result<T, Status> {
        let done = self.database.read_committed(work).await.map_err(error::listing_change)?;
        self.notify.send_modify(|n| *n += 1);
        Ok(done)
    }

    async fn moment(&self, id: Uuid) -> Result<market::MomentView, Status> {
        let filter = CatalogFilter { ids: Some(vec![id]), ..CatalogFilter::default() };
        let found = self.read(|conn| async move { market::catalog(conn, &filter, None, 1).await }.boxed()).await?;
        found.into_iter().next().ok_or_else(|| status::not_found("moment"))
    }

    /// The seller's active listing, or why not.
    async fn own_listing(&self, listing_id: Uuid, seller: &str) -> Result<Listing, Status> {
        let listing = self
            .read(|conn| market::find_listing(conn, listing_id).boxed())
            .await?
            .filter(|l| l.seller_address == seller)
            .ok_or_else(|| status::not_found("listing"))?;
        if listing.state != ListingState::Active {
            return Err(unavailable(&listing, "the listing is no longer active"));
        }
        Ok(listing)
    }
}

#[tonic::async_trait]
impl MarketplaceService for MarketplaceApi {
    async fn search_moments(
        &self,
        request: Request<pb::SearchMomentsRequest>,
    ) -> Result<Response<pb::SearchMomentsResponse>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let size = paging::page_size(r.page_size, 50, 100, &mut violations);
        let after = paging::decode_id(&r.page_token, &mut violations);
        let rarity = rarity_from_pb(r.rarity, &mut violations);
        if let (Some(min), Some(max)) = (r.min_floor_price_cents, r.max_floor_price_cents) {
            violations.check(min <= max, "min_floor_price_cents", "must not be above max_floor_price_cents");
        }
        violations.check(r.query.chars().count() <= 100, "query", "at most 100 characters");
        violations.into_result(())?;
        let non_empty = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        let filter = CatalogFilter {
            query: non_empty(r.query),
            player_id: non_empty(r.player_id),
            team_code: non_empty(r.team_code).map(|t| t.to_uppercase()),
            rarity,
            set_name: non_empty(r.set_name),
            max_floor_cents: r.max_floor_price_cents,
            min_floor_cents: r.min_floor_price_cents,
            max_serial: r.max_serial_number,
            ids: None,
        };
        let found =
            self.read(|conn| async move { market::catalog(conn, &filter, after, size + 1).await }.boxed()).await?;
        let more = found.len() as i64 > size;
        let moments: Vec<_> = found.into_iter().take(size as usize).collect();
        let next_page_token =
            if more { moments.last().map(|m| paging::encode_id(m.id)).unwrap_or_default() } else { String::new() };
        Ok(Response::new(pb::SearchMomentsResponse {
            moments: moments.iter().map(convert::moment_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_moment(&self, request: Request<pb::GetMomentRequest>) -> Result<Response<pb::Moment>, Status> {
        let id = required_uuid(&request.get_ref().moment_id, "moment_id")?;
        Ok(Response::new(convert::moment_to_pb(&self.moment(id).await?)))
    }

    async fn batch_get_moments(
        &self,
        request: Request<pb::BatchGetMomentsRequest>,
    ) -> Result<Response<pb::BatchGetMomentsResponse>, Status> {
        let mut violations = Violations::new();
        let ids = uuids(&request.get_ref().moment_ids, "moment_ids", &mut violations);
        violations.check(!request.get_ref().moment_ids.is_empty(), "moment_ids", "at least one id");
        violations.into_result(())?;
        let filter = CatalogFilter { ids: Some(ids.clone()), ..CatalogFilter::default() };
        let size = ids.len() as i64;
        let found = self.read(|conn| async move { market::catalog(conn, &filter, None, size).await }.boxed()).await?;
        let moments =
            ids.iter().filter_map(|id| found.iter().find(|m| m.id == *id)).map(convert::moment_to_pb).collect();
        Ok(Response::new(pb::BatchGetMomentsResponse { moments }))
    }

    async fn list_listings(
        &self,
        request: Request<pb::ListListingsRequest>,
    ) -> Result<Response<pb::ListListingsResponse>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let size = paging::page_size(r.page_size, 50, 100, &mut violations);
        let offset = paging::decode_offset(&r.page_token, &mut violations);
        let moment = (!r.moment_id.is_empty()).then(|| violations.uuid(&r.moment_id, "moment_id")).flatten();
        if let Some(max) = r.max_price_cents {
            price(max, "max_price_cents", &mut violations);
        }
        violations.into_result(())?;
        let source = (!r.source_id.is_empty()).then_some(r.source_id);
        let max = r.max_price_cents;
        let found = self
            .read(|conn| {
                async move { market::list_active_listings(conn, moment, source.as_deref(), max, offset, size + 1).await }
                    .boxed()
            })
            .await?;
        let more = found.len() as i64 > size;
        Ok(Response::new(pb::ListListingsResponse {
            listings: found.iter().take(size as usize).map(convert::listing_to_pb).collect(),
            next_page_token: if more { paging::encode_offset(offset + size) } else { String::new() },
        }))
    }

    async fn get_listing(&self, request: Request<pb::GetListingRequest>) -> Result<Response<pb::Listing>, Status> {
        let id = required_uuid(&request.get_ref().listing_id, "listing_id")?;
        let listing = self
            .read(|conn| market::find_listing(conn, id).boxed())
            .await?
            .ok_or_else(|| status::not_found("listing"))?;
        Ok(Response::new(convert::listing_to_pb(&listing)))
    }

    async fn list_sales(
        &self,
        request: Request<pb::ListSalesRequest>,
    ) -> Result<Response<pb::ListSalesResponse>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let id = violations.uuid(&r.moment_id, "moment_id");
        let size = paging::page_size(r.page_size, 50, 100, &mut violations);
        violations.check(
            r.page_token.is_empty(),
            "page_token",
            "sales come in one page of up to page_size, newest first",
        );
        violations.into_result(())?;
        let id = id.unwrap_or_default();
        let sales = self.read(|conn| market::list_sales(conn, id, size).boxed()).await?;
        Ok(Response::new(pb::ListSalesResponse {
            sales: sales.iter().map(convert::sale_to_pb).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn get_price_history(
        &self,
        request: Request<pb::GetPriceHistoryRequest>,
    ) -> Result<Response<pb::PriceHistory>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let id = violations.uuid(&r.moment_id, "moment_id");
        let (unit, longest) = match pb::PriceInterval::try_from(r.interval) {
            Ok(pb::PriceInterval::Hour) => ("hour", Duration::days(14)),
            Ok(pb::PriceInterval::Week) => ("week", Duration::days(5 * 366)),
            Ok(pb::PriceInterval::Day | pb::PriceInterval::Unspecified) => ("day", Duration::days(366)),
            Err(_) => {
                violations.add("interval", format!("unknown interval {}", r.interval));
                ("day", Duration::days(366))
            }
        };
        let now = Utc::now();
        let end = r.end_time.as_ref().and_then(|t| status::time_field(t, "end_time", &mut violations)).unwrap_or(now);
        let start = r
            .start_time
            .as_ref()
            .and_then(|t| status::time_field(t, "start_time", &mut violations))
            .unwrap_or_else(|| end - longest.min(Duration::days(30)));
        violations.check(start < end, "start_time", "must be before end_time");
        violations.check(
            end - start <= longest,
            "start_time",
            format!("the range may span at most {} days at this interval", longest.num_days()),
        );
        violations.into_result(())?;
        let id = id.unwrap_or_default();
        let buckets = self.read(|conn| market::price_buckets(conn, id, unit, start, end).boxed()).await?;
        Ok(Response::new(pb::PriceHistory {
            moment_id: id.to_string(),
            interval: match unit {
                "hour" => pb::PriceInterval::Hour,
                "week" => pb::PriceInterval::Week,
                _ => pb::PriceInterval::Day,
            } as i32,
            points: buckets.iter().map(convert::bucket_to_pb).collect(),
        }))
    }

    async fn stream_listing_events(
        &self,
        request: Request<pb::StreamListingEventsRequest>,
    ) -> Result<Response<tail::TailStream<pb::ListingEvent>>, Status> {
        let caller = tail::caller(&request);
        let r = request.into_inner();
        let mut violations = Violations::new();
        let moments = uuids(&r.moment_ids, "moment_ids", &mut violations);
        if let Some(after) = r.after_sequence {
            violations.check(after >= 0, "after_sequence", "must not be negative");
        }
        violations.into_result(())?;
        let source = (!r.source_id.is_empty()).then_some(r.source_id);
        let wanted: Vec<String> = moments.iter().map(Uuid::to_string).collect();
        let keep = move |event: &pb::ListingEvent| {
            let Some(listing) = &event.listing else { return false };
            source.as_ref().is_none_or(|s| *s == listing.source_id)
                && (wanted.is_empty() || wanted.contains(&listing.moment_id))
        };
        let subscription = tail::Subscription { caller, after: r.after_sequence };
        Ok(Response::new(self.listing_events.subscribe(subscription, keep).await?))
    }

    async fn list_arbitrage_opportunities(
        &self,
        request: Request<pb::ListArbitrageOpportunitiesRequest>,
    ) -> Result<Response<pb::ListArbitrageOpportunitiesResponse>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let size = paging::page_size(r.page_size, 50, 100, &mut violations);
        let offset = paging::decode_offset(&r.page_token, &mut violations);
        violations.check(r.min_spread_bps >= 0, "min_spread_bps", "must not be negative");
        violations.into_result(())?;
        let min = i64::from(r.min_spread_bps);
        let found = self.read(|conn| market::arbitrage(conn, min, offset, size + 1).boxed()).await?;
        let more = found.len() as i64 > size;
        Ok(Response::new(pb::ListArbitrageOpportunitiesResponse {
            opportunities: found.iter().take(size as usize).map(convert::arbitrage_to_pb).collect(),
            next_page_token: if more { paging::encode_offset(offset + size) } else { String::new() },
        }))
    }

    async fn list_market_sources(
        &self,
        request: Request<pb::ListMarketSourcesRequest>,
    ) -> Result<Response<pb::ListMarketSourcesResponse>, Status> {
        let mut violations = Violations::new();
        let _ = paging::page_size(request.get_ref().page_size, 100, 100, &mut violations);
        violations.check(request.get_ref().page_token.is_empty(), "page_token", "sources come in one page");
        violations.into_result(())?;
        let sources = self.read(|conn| market::list_market_sources(conn).boxed()).await?;
        Ok(Response::new(pb::ListMarketSourcesResponse {
            sources: sources.iter().map(convert::source_to_pb).collect(),
            next_page_token: String::new(),
        }))
    }
}

#[tonic::async_trait]
impl MarketplaceInternalService for MarketplaceApi {
    async fn create_listing(
        &self,
        request: Request<pb::CreateListingRequest>,
    ) -> Result<Response<pb::Listing>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        address(&r.seller_address, "seller_address", &mut violations);
        let moment_id = violations.uuid(&r.moment_id, "moment_id");
        violations.check(!r.source_id.is_empty(), "source_id", "required");
        price(r.price_cents, "price_cents", &mut violations);
        let key = IdempotencyKey::parse(&r.idempotency_key, "idempotency_key", &mut violations)
            .map(IdempotencyKey::into_string)
            .unwrap_or_default();
        violations.into_result(())?;
        let moment_id = moment_id.unwrap_or_default();
        let sources = self.read(|conn| market::list_market_sources(conn).boxed()).await?;
        if !sources.iter().any(|s| s.id == r.source_id && s.enabled) {
            return Err(status::invalid_field("source_id", format!("no enabled market source {:?}", r.source_id)));
        }
        let listing = Listing {
            id: Uuid::new_v4(),
            moment_id,
            source_id: r.source_id.clone(),
            price_cents: r.price_cents,
            seller_address: r.seller_address.clone(),
            state: ListingState::Active,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        enum Created {
            Listed(Listing),
            NotOwner,
            Reused(Listing),
        }
        let created = self
            .change(|conn| {
                let (listing, key) = (listing.clone(), key.clone());
                async move {
                    // The moment first (see market::append_listing_events): a retry with the same
                    // key waits for the first and finds its listing.
                    let moment = market::lock_moment(conn, listing.moment_id).await?;
                    if let Some(existing) = market::find_listing_by_key(conn, &listing.seller_address, &key).await? {
                        let same = existing.moment_id == listing.moment_id && existing.source_id == listing.source_id;
                        return Ok(if same { Created::Listed(existing) } else { Created::Reused(existing) });
                    }
                    let moment = moment.ok_or(DatabaseError::NotFound("moment"))?;
                    if moment.owner_address != listing.seller_address {
                        return Ok(Created::NotOwner);
                    }
                    let stored = market::insert_listing_with_key(conn, &listing, &key).await?;
                    market::append_listing_events(
                        conn,
                        &[(market::ListingEventKind::Created, stored.id, stored.price_cents)],
                    )
                    .await?;
                    Ok(Created::Listed(stored))
                }
                .boxed()
            })
            .await?;
        match created {
            Created::Listed(listing) => Ok(Response::new(convert::listing_to_pb(&listing))),
            Created::NotOwner => Err(status::failed_precondition(
                "the seller does not own the moment",
                ErrorReason::InvalidState,
                [("moment_id".to_owned(), moment_id.to_string())],
            )),
            Created::Reused(existing) => Err(status::failed_precondition(
                "the idempotency key was used for another listing",
                ErrorReason::IdempotencyKeyReused,
                [("listing_id".to_owned(), existing.id.to_string())],
            )),
        }
    }

    async fn update_listing_price(
        &self,
        request: Request<pb::UpdateListingPriceRequest>,
    ) -> Result<Response<pb::Listing>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        address(&r.seller_address, "seller_address", &mut violations);
        let id = violations.uuid(&r.listing_id, "listing_id");
        price(r.price_cents, "price_cents", &mut violations);
        violations.into_result(())?;
        let id = id.unwrap_or_default();
        self.own_listing(id, &r.seller_address).await?;
        let price_cents = r.price_cents;
        let updated = self
            .change(|conn| {
                async move { Ok(market::reprice_listings(conn, &[(id, price_cents)]).await?.remove(0)) }.boxed()
            })
            .await?;
        Ok(Response::new(convert::listing_to_pb(&updated)))
    }

    async fn withdraw_listing(
        &self,
        request: Request<pb::WithdrawListingRequest>,
    ) -> Result<Response<pb::Listing>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        address(&r.seller_address, "seller_address", &mut violations);
        let id = violations.uuid(&r.listing_id, "listing_id");
        violations.into_result(())?;
        let id = id.unwrap_or_default();
        self.own_listing(id, &r.seller_address).await?;
        let withdrawn = self.change(|conn| market::withdraw_listing(conn, id).boxed()).await?;
        Ok(Response::new(convert::listing_to_pb(&withdrawn)))
    }

    async fn get_market_price(
        &self,
        request: Request<pb::GetMarketPriceRequest>,
    ) -> Result<Response<pb::MarketPrice>, Status> {
        let id = required_uuid(&request.get_ref().moment_id, "moment_id")?;
        let moment = self.moment(id).await?;
        let since = Utc::now() - Duration::days(30);
        let median = self.read(|conn| market::median_sale_since(conn, id, since).boxed()).await?;
        Ok(Response::new(pb::MarketPrice {
            moment_id: id.to_string(),
            floor_price_cents: moment.floor_price_cents,
            last_sale_cents: moment.last_sale_cents,
            median_sale_30d_cents: median,
        }))
    }

    async fn get_market_return(
        &self,
        request: Request<pb::GetMarketReturnRequest>,
    ) -> Result<Response<pb::MarketReturn>, Status> {
        let mut violations = Violations::new();
        let now = Utc::now();
        let start = match request.get_ref().start_time.as_ref() {
            Some(time) => status::time_field(time, "start_time", &mut violations),
            None => {
                violations.add("start_time", "is required");
                None
            }
        };
        if let Some(start) = start {
            violations.check(start < now, "start_time", "must be in the past");
            violations.check(now - start <= Duration::days(3660), "start_time", "must be within ten years");
        }
        let start = violations.into_result(start)?.unwrap_or(now);
        let before = start - (now - start);
        let ((now_average, count), (before_average, previous)) = self
            .read(|conn| {
                async move {
                    let recent = market::average_sale_between(conn, start, now).await?;
                    let previous = market::average_sale_between(conn, before, start).await?;
                    Ok((recent, previous))
                }
                .boxed()
            })
            .await?;
        let return_bps = match (now_average, before_average) {
            (Some(now), Some(before)) if before > 0 => Some((now - before).saturating_mul(10_000) / before),
            _ => None,
        };
        Ok(Response::new(pb::MarketReturn { return_bps, sale_count: count, previous_sale_count: previous }))
    }

    async fn take_listing(&self, request: Request<pb::TakeListingRequest>) -> Result<Response<pb::Sale>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let id = violations.uuid(&r.listing_id, "listing_id");
        address(&r.buyer_address, "buyer_address", &mut violations);
        price(r.max_price_cents, "max_price_cents", &mut violations);
        violations.into_result(())?;
        let id = id.unwrap_or_default();
        if let Some(chain) = &self.chain {
            self.confirm_on_chain(chain, id).await?;
        }
        let (buyer, max) = (r.buyer_address.clone(), r.max_price_cents);
        let taken = self
            .change(|conn| {
                let buyer = buyer.clone();
                async move {
                    let mut events = market::ListingEvents::new();
                    let taken =
                        market::take_listing(conn, id, &buyer, max, Uuid::new_v4(), Utc::now(), &mut events).await?;
                    market::append_listing_events(conn, &events).await?;
                    Ok(taken)
                }
                .boxed()
            })
            .await?;
        match taken {
            Taken::Bought(sale) | Taken::Again(sale) => Ok(Response::new(convert::sale_to_pb(&sale))),
            Taken::OwnListing => Err(status::invalid_field("buyer_address", "is the listing's seller")),
            Taken::Gone(state) => Err(status::failed_precondition(
                format!("the listing is {state}: no longer for sale"),
                ErrorReason::ListingUnavailable,
                [("listing_id".to_owned(), id.to_string()), ("state".to_owned(), state.as_str().to_owned())],
            )),
            Taken::TooDear(price) => Err(status::failed_precondition(
                format!("the listing costs {price}, above the most the buyer pays ({max})"),
                ErrorReason::ListingUnavailable,
                [
                    ("listing_id".to_owned(), id.to_string()),
                    ("price_cents".to_owned(), price.to_string()),
                    ("max_price_cents".to_owned(), max.to_string()),
                ],
            )),
        }
    }
}
