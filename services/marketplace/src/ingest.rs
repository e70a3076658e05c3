//! Ingestion: one worker per feed polls it, applies each batch in one transaction (listing
//! events appended in the batch's order), and records the feed's health on its sources. A feed
//! that fails or stalls is marked unhealthy, logged and polled again after a pause; the others
//! are not held up. Box scores go to the outbox (topic `game_final`) for scouting.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fastbreak_db::{Rarity, outbox};

use crate::store::{self as market, Listing, ListingEventKind, ListingEvents, ListingState, Moment};
use fastbreak_db::{Database, DatabaseError, PgConnection};
use fastbreak_market_sim::{ListingChange, Tier};
use fastbreak_mesh::Draining;
use futures::FutureExt;
use tokio::sync::watch;
use uuid::Uuid;

use crate::feed::{MarketFeed, SourceEvent};
use crate::settings::Settings;

fn rarity(tier: Tier) -> Rarity {
    match tier {
        Tier::Common => Rarity::Common,
        Tier::Fandom => Rarity::Fandom,
        Tier::Rare => Rarity::Rare,
        Tier::Legendary => Rarity::Legendary,
        Tier::Ultimate => Rarity::Ultimate,
    }
}

/// Applies one event, adding the listing events it makes to `events` (appended at the end of the
/// batch, in the batch's order). A change to a listing locks its moment first (see
/// [`market::append_listing_events`] for the order of locks).
async fn apply(
    conn: &mut PgConnection,
    event: &SourceEvent,
    now: DateTime<Utc>,
    events: &mut ListingEvents,
) -> Result<(), DatabaseError> {
    match event {
        SourceEvent::PlayerSigned(p) => {
            let player = market::Player {
                id: p.id.clone(),
                full_name: p.full_name.clone(),
                team_code: p.team_code.clone(),
                position: p.position.clone(),
                seasons_played: p.seasons_played,
                // A feed that does not know the number says -1.
                jersey_number: (0..=99).contains(&p.jersey).then_some(p.jersey),
            };
            market::upsert_player(conn, &player).await?;
        }
        SourceEvent::GameFinal { game_id, lines } => {
            // Only the players the catalog has: a real box score names every player who played.
            let ids: Vec<String> = lines.iter().map(|l| l.player_id.clone()).collect();
            let known = market::known_players(conn, &ids).await?;
            // A game is given again while its box score is read (a real feed cannot tell which
            // players the catalog knows): one message per game and set of known players, so a
            // player catalogued later still gets his line (scouting records each line once).
            let key = format!("{game_id}:{}", lines.iter().filter(|l| known.contains(&l.player_id)).count());
            if known.is_empty() || outbox::has_message(conn, outbox::GAME_FINAL_TOPIC, &key).await? {
                return Ok(());
            }
            let message = outbox::GameFinal {
                game_id: game_id.clone(),
                lines: lines
                    .iter()
                    .filter(|l| known.contains(&l.player_id))
                    .map(|l| outbox::GameLine {
                        game_id: game_id.clone(),
                        player_id: l.player_id.clone(),
                        game_at: now,
                        opponent_code: l.opponent_code.clone(),
                        minutes: l.minutes,
                        points: l.points,
                        rebounds: l.rebounds,
                        assists: l.assists,
                        steals: l.steals,
                        blocks: l.blocks,
                        turnovers: l.turnovers,
                    })
                    .collect(),
            };
            // Strings, numbers and a time: always representable as JSON.
            let payload = serde_json::to_value(&message).expect("box scores serialize to JSON");
            outbox::enqueue(conn, outbox::GAME_FINAL_TOPIC, &key, &payload).await?;
        }
        SourceEvent::MomentMinted(m) => {
            let moment = Moment {
                id: m.id,
                player_id: m.player_id.clone(),
                set_name: m.set_name.clone(),
                play_category: m.play_category.clone(),
                // A simulated play can be ahead of the clock: never in the future.
                play_at: m.play_at.min(now),
                rarity: rarity(m.tier),
                serial_number: m.serial_number,
                edition_size: m.edition_size,
                owner_address: m.owner.clone(),
            };
            market::insert_moment_if_new(conn, &moment).await?;
        }
        SourceEvent::Listed(l) => {
            // A source may be behind: the seller must still own the moment, and it must not
            // be listed on that source already.
            let Some(moment) = market::lock_moment(conn, l.moment_id).await? else { return Ok(()) };
            let listed_there =
                market::active_listings_of(conn, l.moment_id).await?.iter().any(|a| a.source_id == l.marketplace);
            if moment.owner_address != l.seller || listed_there || market::find_listing(conn, l.id).await?.is_some() {
                return Ok(());
            }
            let listing = Listing {
                id: l.id,
                moment_id: l.moment_id,
                source_id: l.marketplace.clone(),
                price_cents: l.price_cents,
                seller_address: l.seller.clone(),
                state: ListingState::Active,
                created_at: now,
                updated_at: now,
            };
            if market::insert_listing_if_new(conn, &listing).await? {
                events.push((ListingEventKind::Created, l.id, l.price_cents));
            }
        }
        SourceEvent::PriceChanged { listing_id, price_cents } => {
            if is_active(conn, *listing_id).await? {
                market::update_listing_price(conn, *listing_id, *price_cents).await?;
                events.push((ListingEventKind::PriceChanged, *listing_id, *price_cents));
            }
        }
        SourceEvent::Sold { listing_id, buyer, .. } => {
            if is_active(conn, *listing_id).await? {
                market::take_listing(conn, *listing_id, buyer, i64::MAX, Uuid::new_v4(), now, events).await?;
            }
        }
        SourceEvent::Withdrawn { listing_id } => {
            if is_active(conn, *listing_id).await? {
                let listing = market::close_listing(conn, *listing_id, ListingState::Withdrawn).await?;
                events.push((ListingEventKind::Withdrawn, *listing_id, listing.price_cents));
            }
        }
        SourceEvent::SaleRecorded(sale) => {
            // A sale of a moment the catalog has, once, even when the chain reported it too.
            let known_moment = market::lock_moment(conn, sale.moment_id).await?.is_some();
            let window = chrono::Duration::minutes(15);
            if known_moment
                && !market::sale_known(conn, sale.id, sale.moment_id, sale.price_cents, sale.sold_at, window).await?
            {
                let recorded = market::Sale {
                    id: sale.id,
                    moment_id: sale.moment_id,
                    listing_id: None,
                    source_id: sale.marketplace.clone(),
                    price_cents: sale.price_cents,
                    seller_address: sale.seller.clone(),
                    buyer_address: sale.buyer.clone(),
                    sold_at: sale.sold_at.min(now),
                };
                market::record_sale(conn, &recorded).await?;
            }
        }
        SourceEvent::MomentOwner { moment_id, owner } => {
            market::set_moment_owner(conn, *moment_id, owner).await?;
        }
        SourceEvent::MomentListingChanged { marketplace, moment_id, change } => {
            // The moment's active listing on that marketplace, if FastBreak knows one.
            let listed = market::active_listings_of(conn, *moment_id).await?;
            let Some(listing) = listed.iter().find(|l| &l.source_id == marketplace) else { return Ok(()) };
            let listing_id = listing.id;
            let event = match change {
                ListingChange::Repriced { price_cents } => {
                    SourceEvent::PriceChanged { listing_id, price_cents: *price_cents }
                }
                ListingChange::Sold { price_cents, buyer } => {
                    SourceEvent::Sold { listing_id, price_cents: *price_cents, buyer: buyer.clone() }
                }
                ListingChange::Withdrawn => SourceEvent::Withdrawn { listing_id },
            };
            Box::pin(apply(conn, &event, now, events)).await?;
        }
    }
    Ok(())
}

/// Whether a listing is active, its moment and itself locked (see [`market::lock_listing`]).
async fn is_active(conn: &mut PgConnection, id: Uuid) -> Result<bool, DatabaseError> {
    Ok(market::lock_listing(conn, id).await?.is_some_and(|l| l.state == ListingState::Active))
}

/// A feed's name and where it stands after a batch.
pub type FeedPosition = (String, String);

/// Applies a batch in one transaction, with the feed's position after it (when it keeps one).
pub async fn apply_batch(
    database: &Database,
    events: Arc<Vec<SourceEvent>>,
    position: Option<Arc<FeedPosition>>,
) -> Result<(), DatabaseError> {
    apply_stamped_batch(database, events, None, position).await
}

/// Applies a batch in one transaction as [`apply_batch`] does, each event at the instant
/// `stamps` gives it (in the batch's order; now for an event past their end, or without them):
/// a market replayed on its own clock, such as a simulated one stepped at full speed.
pub async fn apply_stamped_batch(
    database: &Database,
    events: Arc<Vec<SourceEvent>>,
    stamps: Option<Arc<Vec<DateTime<Utc>>>>,
    position: Option<Arc<FeedPosition>>,
) -> Result<(), DatabaseError> {
    database
        .read_committed(|conn| {
            let (events, stamps) = (events.clone(), stamps.clone());
            let position = position.clone();
            async move {
                // Batches one after another; each change to a listing locks its moment, so a
                // change made through the API to one of the batch's moments waits for the batch
                // and what the batch checked stays true. The events last, in the batch's order.
                market::lock_ingest(conn).await?;
                if let Some(position) = position.as_deref() {
                    market::set_feed_position(conn, &position.0, &position.1).await?;
                }
                let now = Utc::now();
                let mut appended = ListingEvents::new();
                // Each listing event at the instant of the event that made it, the instant its
                // sales and box scores carry too: taken once the lock is held, so a batch's
                // instant is never before the one of the batch it waited for.
                let mut instants = Vec::new();
                for (k, event) in events.iter().enumerate() {
                    let at = stamps.as_ref().and_then(|s| s.get(k).copied()).unwrap_or(now);
                    apply(conn, event, at, &mut appended).await?;
                    instants.resize(appended.len(), at);
                }
                let stamped: Vec<_> =
                    appended.iter().zip(&instants).map(|(&(kind, id, price), &at)| (kind, id, price, at)).collect();
                market::append_listing_events_at(conn, &stamped).await
            }
            .boxed()
        })
        .await
}

/// One feed's ingestion.
pub struct Ingest {
    database: Database,
    feed: Box<dyn MarketFeed>,
    settings: Arc<Settings>,
    /// Bumped after every committed batch: wakes the streams.
    published: watch::Sender<u64>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("feed", &self.feed.name()).finish()
    }
}

impl Ingest {
    /// Ingestion of `feed` into `database`.
    pub fn new(
        database: Database,
        feed: Box<dyn MarketFeed>,
        settings: Arc<Settings>,
        published: watch::Sender<u64>,
    ) -> Self {
        Self { database, feed, settings, published }
    }

    async fn record(&self, error: Option<&str>) {
        let lag = self.feed.lag().filter(|_| error.is_none());
        for source in self.feed.sources() {
            let (id, error) = (source.id.clone(), error.map(str::to_owned));
            let recorded = self
                .database
                .read(|conn| {
                    async move {
                        let outcome = match &error {
                            None => Ok(()),
                            Some(why) => Err(why.as_str()),
                        };
                        market::record_source_poll(conn, &id, outcome).await?;
                        if let Some(lag) = lag {
                            market::record_source_lag(conn, &id, lag).await?;
                        }
                        Ok(())
                    }
                    .boxed()
                })
                .await;
            if let Err(error) = recorded {
                tracing::warn!(source = %source.id, %error, "cannot record the source's state");
            }
        }
    }

    async fn register(&self, draining: &mut Draining) -> bool {
        loop {
            let sources = self.feed.sources();
            let registered = self
                .database
                .read(|conn| {
                    async move {
                        for s in &sources {
                            market::ensure_source(conn, &s.id, &s.display_name, s.fee_bps).await?;
                        }
                        Ok(())
                    }
                    .boxed()
                })
                .await;
            match registered {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(feed = self.feed.name(), %error, "cannot register the feed's sources; trying again");
                    if draining.sleep(self.settings.retry_pause).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Gives the feed its stored position, if it has one, trying again until the position is
    /// read and taken (a feed started over would give its batches a second time); `false`
    /// when draining began first.
    async fn resume(&mut self, draining: &mut Draining) -> bool {
        loop {
            let feed = self.feed.name().to_owned();
            let stored = self
                .database
                .read(|conn| {
                    let feed = feed.clone();
                    async move { market::feed_position(conn, &feed).await }.boxed()
                })
                .await;
            let failure = match stored {
                Ok(None) => return true,
                Ok(Some(position)) => match self.feed.resume(&position) {
                    Ok(()) => return true,
                    Err(error) => error.to_string(),
                },
                Err(error) => format!("cannot read its stored position: {error}"),
            };
            tracing::warn!(feed = self.feed.name(), why = %failure, "cannot resume the feed; trying again");
            self.record(Some(&failure)).await;
            if draining.sleep(self.settings.retry_pause).await {
                return false;
            }
        }
    }

    /// Stores a batch, trying again until it is stored (a feed does not give a batch twice, so
    /// one dropped would be lost); `None` when draining began first.
    async fn store(&self, events: Arc<Vec<SourceEvent>>, draining: &mut Draining) -> Option<()> {
        let position = self.feed.position().map(|p| Arc::new((self.feed.name().to_owned(), p)));
        loop {
            match apply_batch(&self.database, events.clone(), position.clone()).await {
                Ok(()) => {
                    self.published.send_modify(|n| *n += 1);
                    return Some(());
                }
                Err(error) => {
                    tracing::warn!(feed = self.feed.name(), %error, "cannot store the feed's events; trying the same batch again");
                    self.record(Some(&format!("cannot store its events: {error}"))).await;
                    if draining.sleep(self.settings.retry_pause).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Polls the feed and applies its batches until draining begins.
    pub async fn run(mut self, mut draining: Draining) {
        if !self.register(&mut draining).await || !self.resume(&mut draining).await {
            return;
        }
        let stall = self.settings.stall_timeout + self.feed.pace();
        let mut healthy: Option<bool> = None;
        loop {
            let batch = tokio::select! {
                batch = tokio::time::timeout(stall, self.feed.next_batch()) => batch,
                () = draining.wait() => return,
            };
            let failure = match batch {
                Err(_) => Some(format!("stalled: no answer within {} ms", stall.as_millis())),
                Ok(Err(error)) => Some(error.to_string()),
                Ok(Ok(events)) => match self.store(Arc::new(events), &mut draining).await {
                    Some(()) => None,
                    None => return,
                },
            };
            match failure {
                None => {
                    if healthy != Some(true) {
                        tracing::info!(feed = self.feed.name(), "market feed healthy");
                    }
                    self.record(None).await;
                    healthy = Some(true);
                }
                Some(why) => {
                    tracing::warn!(feed = self.feed.name(), %why, "market feed failed; the others go on");
                    self.record(Some(&why)).await;
                    healthy = Some(false);
                    if draining.sleep(self.settings.retry_pause).await {
                        return;
                    }
                }
            }
        }
    }
}
