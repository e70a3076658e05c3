//! Market sources, moments, listings, sales and price history. Every change of a player, a
//! moment, a listing or a sale is announced on the outbox's `market_catalog` topic in the
//! transaction that makes it (scouting keeps its own catalog from these messages).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::Reuse as _;
use fastbreak_db::outbox::{self, CatalogChange};
use fastbreak_db::schema::{
    feed_positions, listing_events, listings, market_sources, moments, players, price_points, sales,
};
use fastbreak_db::{Rarity, text_enum};

/// A marketplace FastBreak watches.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = market_sources)]
pub struct MarketSource {
    /// Id.
    pub id: String,
    /// Name.
    pub display_name: String,
    /// Fee on sales, basis points.
    pub fee_bps: i32,
    /// Polled.
    pub enabled: bool,
    /// Its last poll succeeded.
    pub healthy: bool,
    /// The last poll's error.
    pub last_error: String,
    /// Last successful poll.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Blocks behind the chain's sealed head after the last batch (a chain-following source).
    pub lag_blocks: Option<i64>,
    /// Seconds behind the chain's sealed head after the last batch.
    pub lag_seconds: Option<i64>,
}

/// Every market source, by id.
pub async fn list_market_sources(conn: &mut AsyncPgConnection) -> Result<Vec<MarketSource>, DatabaseError> {
    Ok(market_sources::table.order(market_sources::id).select(MarketSource::as_select()).load(conn).await?)
}

/// Registers a market source, or renames it and sets its fee; it is enabled.
pub async fn ensure_source(
    conn: &mut AsyncPgConnection,
    id: &str,
    display_name: &str,
    fee_bps: i32,
) -> Result<MarketSource, DatabaseError> {
    Ok(diesel::insert_into(market_sources::table)
        .values((
            market_sources::id.eq(id),
            market_sources::display_name.eq(display_name),
            market_sources::fee_bps.eq(fee_bps),
        ))
        .on_conflict(market_sources::id)
        .do_update()
        .set((
            market_sources::display_name.eq(display_name),
            market_sources::fee_bps.eq(fee_bps),
            market_sources::enabled.eq(true),
        ))
        .returning(MarketSource::as_returning())
        .get_result(conn)
        .await?)
}

/// Where a feed stood after its last stored batch, if it ever stored one.
pub async fn feed_position(conn: &mut AsyncPgConnection, feed: &str) -> Result<Option<String>, DatabaseError> {
    Ok(feed_positions::table.find(feed).select(feed_positions::position).get_result(conn).await.optional()?)
}

/// Keeps a feed's position (in the transaction that stores the batch it follows).
pub async fn set_feed_position(conn: &mut AsyncPgConnection, feed: &str, position: &str) -> Result<(), DatabaseError> {
    diesel::insert_into(feed_positions::table)
        .values((feed_positions::feed.eq(feed), feed_positions::position.eq(position)))
        .on_conflict(feed_positions::feed)
        .do_update()
        .set((feed_positions::position.eq(position), feed_positions::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records how far a chain-following source is behind the chain's head: (blocks, seconds).
pub async fn record_source_lag(conn: &mut AsyncPgConnection, id: &str, lag: (i64, i64)) -> Result<(), DatabaseError> {
    diesel::update(market_sources::table.find(id))
        .set((market_sources::lag_blocks.eq(Some(lag.0)), market_sources::lag_seconds.eq(Some(lag.1))))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the outcome of polling a source: `Ok` marks it healthy, `Err` keeps the error.
pub async fn record_source_poll(
    conn: &mut AsyncPgConnection,
    id: &str,
    outcome: Result<(), &str>,
) -> Result<MarketSource, DatabaseError> {
    let query = diesel::update(market_sources::table.find(id));
    let updated = match outcome {
        Ok(()) => {
            query
                .set((
                    market_sources::healthy.eq(true),
                    market_sources::last_error.eq(""),
                    market_sources::last_success_at.eq(Some(Utc::now())),
                ))
                .returning(MarketSource::as_returning())
                .get_result(conn)
                .await
        }
        Err(error) => {
            query
                .set((market_sources::healthy.eq(false), market_sources::last_error.eq(error)))
                .returning(MarketSource::as_returning())
                .get_result(conn)
                .await
        }
    };
    updated.optional()?.ok_or(DatabaseError::NotFound("market source"))
}

/// A moment.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = moments)]
pub struct Moment {
    /// Id.
    pub id: Uuid,
    /// The player.
    pub player_id: String,
    /// The set.
    pub set_name: String,
    /// The play.
    pub play_category: String,
    /// When the play happened.
    pub play_at: DateTime<Utc>,
    /// Rarity tier.
    pub rarity: Rarity,
    /// Serial number.
    pub serial_number: i32,
    /// Edition size.
    pub edition_size: i32,
    /// The one owner's Flow address.
    pub owner_address: String,
}

/// A player.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = players)]
pub struct Player {
    /// Id.
    pub id: String,
    /// Name.
    pub full_name: String,
    /// Team, three capital letters.
    pub team_code: String,
    /// Position.
    pub position: String,
    /// Seasons played, counting this one.
    pub seasons_played: i32,
    /// Jersey number, when known.
    pub jersey_number: Option<i32>,
}

/// Creates or updates a player.
pub async fn upsert_player(conn: &mut AsyncPgConnection, player: &Player) -> Result<Player, DatabaseError> {
    let stored = diesel::insert_into(players::table)
        .values(player)
        .on_conflict(players::id)
        .do_update()
        .set(player)
        .returning(Player::as_returning())
        .reused()
        .get_result(conn)
        .await?;
    outbox::announce(
        conn,
        &CatalogChange::Player {
            id: stored.id.clone(),
            full_name: stored.full_name.clone(),
            team_code: stored.team_code.clone(),
            position: stored.position.clone(),
            seasons_played: stored.seasons_played,
            jersey_number: stored.jersey_number,
        },
    )
    .await?;
    Ok(stored)
}

/// Which of these players the catalog has.
pub async fn known_players(
    conn: &mut AsyncPgConnection,
    ids: &[String],
) -> Result<std::collections::HashSet<String>, DatabaseError> {
    let found: Vec<String> = players::table.filter(players::id.eq_any(ids)).select(players::id).load(conn).await?;
    Ok(found.into_iter().collect())
}

/// Adds a moment to the catalog.
pub async fn insert_moment(conn: &mut AsyncPgConnection, moment: &Moment) -> Result<Moment, DatabaseError> {
    let stored = diesel::insert_into(moments::table)
        .values(moment)
        .returning(Moment::as_returning())
        .reused()
        .get_result(conn)
        .await?;
    outbox::announce(conn, &moment_change(&stored)).await?;
    Ok(stored)
}

/// A moment as the catalog's messages announce it.
fn moment_change(moment: &Moment) -> CatalogChange {
    CatalogChange::Moment {
        id: moment.id,
        player_id: moment.player_id.clone(),
        set_name: moment.set_name.clone(),
        play_category: moment.play_category.clone(),
        play_at: moment.play_at,
        rarity: moment.rarity,
        serial_number: moment.serial_number,
    }
}

/// A listing as the catalog's messages announce it.
fn listing_change(listing: &Listing) -> CatalogChange {
    CatalogChange::Listing {
        id: listing.id,
        moment_id: listing.moment_id,
        price_cents: listing.price_cents,
        active: listing.state == ListingState::Active,
    }
}

/// Announces a listing's change and hands it back.
async fn announced(conn: &mut AsyncPgConnection, listing: Listing) -> Result<Listing, DatabaseError> {
    outbox::announce(conn, &listing_change(&listing)).await?;
    Ok(listing)
}

/// Finds a moment.
pub async fn find_moment(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Moment>, DatabaseError> {
    Ok(moments::table.find(id).select(Moment::as_select()).first(conn).await.optional()?)
}

/// Moves a moment to a new owner, only if `from` owns it now; false otherwise.
pub async fn transfer_moment(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    from: &str,
    to: &str,
) -> Result<bool, DatabaseError> {
    let moved = diesel::update(moments::table.find(id).filter(moments::owner_address.eq(from)))
        .set(moments::owner_address.eq(to))
        .reused()
        .execute(conn)
        .await?;
    Ok(moved == 1)
}

/// Records who holds a moment now, as a chain reported it (whoever held it before); false
/// when the moment is unknown.
pub async fn set_moment_owner(conn: &mut AsyncPgConnection, id: Uuid, owner: &str) -> Result<bool, DatabaseError> {
    let moved =
        diesel::update(moments::table.find(id)).set(moments::owner_address.eq(owner)).reused().execute(conn).await?;
    Ok(moved == 1)
}

/// What to search the catalog for; every filter set must match.
#[derive(Debug, Clone, Default)]
pub struct MomentFilter {
    /// Words in the player's id, the set or the play.
    pub query: Option<String>,
    /// One player.
    pub player_id: Option<String>,
    /// One rarity.
    pub rarity: Option<Rarity>,
}

/// An ILIKE pattern matching `text` anywhere, its wildcards taken literally.
fn like_pattern(text: &str) -> String {
    format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// Searches the catalog, by id, `size` at a time after `after`.
pub async fn search_moments(
    conn: &mut AsyncPgConnection,
    filter: &MomentFilter,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<Moment>, DatabaseError> {
    let mut query = moments::table.select(Moment::as_select()).order(moments::id).limit(size).into_boxed();
    if let Some(text) = filter.query.as_deref().filter(|t| !t.is_empty()) {
        let pattern = like_pattern(text);
        query = query.filter(
            moments::set_name
                .ilike(pattern.clone())
                .or(moments::play_category.ilike(pattern.clone()))
                .or(moments::player_id.ilike(pattern)),
        );
    }
    if let Some(player) = &filter.player_id {
        query = query.filter(moments::player_id.eq(player.clone()));
    }
    if let Some(rarity) = filter.rarity {
        query = query.filter(moments::rarity.eq(rarity));
    }
    if let Some(after) = after {
        query = query.filter(moments::id.gt(after));
    }
    Ok(query.load(conn).await?)
}

text_enum! {
    /// Where a listing stands.
    ListingState {
        /// For sale.
        Active => "active",
        /// Sold.
        Sold => "sold",
        /// Withdrawn.
        Withdrawn => "withdrawn",
    }
}

/// A listing.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = listings)]
pub struct Listing {
    /// Id.
    pub id: Uuid,
    /// The moment.
    pub moment_id: Uuid,
    /// The source.
    pub source_id: String,
    /// Asking price.
    pub price_cents: i64,
    /// The seller.
    pub seller_address: String,
    /// Where it stands.
    pub state: ListingState,
    /// Listed.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Lists a moment a source reported, unless the listing is known or the moment is already
/// listed on that source; true when it was new.
pub async fn insert_listing_if_new(conn: &mut AsyncPgConnection, listing: &Listing) -> Result<bool, DatabaseError> {
    let inserted =
        diesel::insert_into(listings::table).values(listing).on_conflict_do_nothing().reused().execute(conn).await?;
    if inserted == 1 {
        outbox::announce(conn, &listing_change(listing)).await?;
    }
    Ok(inserted == 1)
}

/// Lists a moment for sale.
pub async fn insert_listing(conn: &mut AsyncPgConnection, listing: &Listing) -> Result<Listing, DatabaseError> {
    let stored = diesel::insert_into(listings::table)
        .values(listing)
        .returning(Listing::as_returning())
        .reused()
        .get_result(conn)
        .await?;
    announced(conn, stored).await
}

/// Finds a listing.
pub async fn find_listing(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Listing>, DatabaseError> {
    Ok(listings::table.find(id).select(Listing::as_select()).first(conn).await.optional()?)
}

/// Finds a moment and locks its row for the rest of the transaction. Every transaction that
/// changes a moment's listings, sales or owner takes its moment's lock before any of those rows
/// (see [`append_listing_events`] for the whole order), so changes to one moment are decided
/// one after another while changes to different moments go side by side. The lock is `FOR NO
/// KEY UPDATE`: rows that refer to the moment can still be written meanwhile.
pub async fn lock_moment(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Moment>, DatabaseError> {
    Ok(moments::table.find(id).for_no_key_update().select(Moment::as_select()).first(conn).await.optional()?)
}

/// Finds a listing and locks it for the rest of the transaction, its moment first (see
/// [`lock_moment`]).
pub async fn lock_listing(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Listing>, DatabaseError> {
    let moment: Option<Uuid> = listings::table.find(id).select(listings::moment_id).first(conn).await.optional()?;
    let Some(moment) = moment else { return Ok(None) };
    lock_moment(conn, moment).await?;
    Ok(listings::table.find(id).for_update().select(Listing::as_select()).first(conn).await.optional()?)
}

/// Active listings, cheapest first, optionally of one moment, on one source and under a price;
/// `size` after the first `offset`.
pub async fn list_active_listings(
    conn: &mut AsyncPgConnection,
    moment_id: Option<Uuid>,
    source: Option<&str>,
    max_price_cents: Option<i64>,
    offset: i64,
    size: i64,
) -> Result<Vec<Listing>, DatabaseError> {
    let mut query = listings::table
        .filter(listings::state.eq(ListingState::Active))
        .select(Listing::as_select())
        .order((listings::price_cents, listings::id))
        .offset(offset)
        .limit(size)
        .into_boxed();
    if let Some(moment) = moment_id {
        query = query.filter(listings::moment_id.eq(moment));
    }
    if let Some(source) = source {
        query = query.filter(listings::source_id.eq(source.to_owned()));
    }
    if let Some(max) = max_price_cents {
        query = query.filter(listings::price_cents.le(max));
    }
    Ok(query.load(conn).await?)
}

/// Changes an active listing's price.
pub async fn update_listing_price(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    price_cents: i64,
) -> Result<Listing, DatabaseError> {
    let updated = diesel::update(listings::table.find(id).filter(listings::state.eq(ListingState::Active)))
        .set((listings::price_cents.eq(price_cents), listings::updated_at.eq(diesel::dsl::now)))
        .returning(Listing::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("active listing"))?;
    announced(conn, updated).await
}

/// Closes an active listing as sold or withdrawn.
pub async fn close_listing(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    state: ListingState,
) -> Result<Listing, DatabaseError> {
    let closed = diesel::update(listings::table.find(id).filter(listings::state.eq(ListingState::Active)))
        .set((listings::state.eq(state), listings::updated_at.eq(diesel::dsl::now)))
        .returning(Listing::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("active listing"))?;
    announced(conn, closed).await
}

/// A sale.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sales)]
pub struct Sale {
    /// Id.
    pub id: Uuid,
    /// The moment.
    pub moment_id: Uuid,
    /// The listing sold, if it sold through one.
    pub listing_id: Option<Uuid>,
    /// The source.
    pub source_id: String,
    /// Price.
    pub price_cents: i64,
    /// Seller.
    pub seller_address: String,
    /// Buyer.
    pub buyer_address: String,
    /// When.
    pub sold_at: DateTime<Utc>,
}

/// Whether a sale with this id, or a sale of the moment at this price within `window` of
/// `at`, is recorded (the same sale reported by two sources: the chain and a sales history).
pub async fn sale_known(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    moment_id: Uuid,
    price_cents: i64,
    at: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<bool, DatabaseError> {
    let same = sales::table
        .filter(
            sales::id.eq(id).or(sales::moment_id
                .eq(moment_id)
                .and(sales::price_cents.eq(price_cents))
                .and(sales::sold_at.between(at - window, at + window))),
        )
        .select(sales::id)
        .first::<Uuid>(conn)
        .await
        .optional()?;
    Ok(same.is_some())
}

/// Records a sale and folds it into the moment's daily price history.
pub async fn record_sale(conn: &mut AsyncPgConnection, sale: &Sale) -> Result<Sale, DatabaseError> {
    let stored = diesel::insert_into(sales::table)
        .values(sale)
        .returning(Sale::as_returning())
        .reused()
        .get_result(conn)
        .await?;
    outbox::announce(
        conn,
        &CatalogChange::Sale {
            id: stored.id,
            moment_id: stored.moment_id,
            price_cents: stored.price_cents,
            sold_at: stored.sold_at,
        },
    )
    .await?;
    let day = stored.sold_at.date_naive();
    let price = stored.price_cents;
    diesel::insert_into(price_points::table)
        .values((
            price_points::moment_id.eq(stored.moment_id),
            price_points::day.eq(day),
            price_points::open_cents.eq(price),
            price_points::high_cents.eq(price),
            price_points::low_cents.eq(price),
            price_points::close_cents.eq(price),
            price_points::sale_count.eq(1),
        ))
        .on_conflict((price_points::moment_id, price_points::day))
        .do_update()
        .set((
            price_points::high_cents.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "GREATEST(price_points.high_cents, excluded.high_cents)",
            )),
            price_points::low_cents
                .eq(diesel::dsl::sql::<diesel::sql_types::BigInt>("LEAST(price_points.low_cents, excluded.low_cents)")),
            price_points::close_cents.eq(price),
            price_points::sale_count.eq(price_points::sale_count + 1),
        ))
        .reused()
        .execute(conn)
        .await?;
    Ok(stored)
}

/// A moment's sales, newest first.
pub async fn list_sales(conn: &mut AsyncPgConnection, moment_id: Uuid, size: i64) -> Result<Vec<Sale>, DatabaseError> {
    Ok(sales::table
        .filter(sales::moment_id.eq(moment_id))
        .order((sales::sold_at.desc(), sales::id.desc()))
        .limit(size)
        .select(Sale::as_select())
        .load(conn)
        .await?)
}

/// One day of a moment's price history.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = price_points)]
pub struct PricePoint {
    /// The moment.
    pub moment_id: Uuid,
    /// The day (UTC).
    pub day: NaiveDate,
    /// First sale.
    pub open_cents: i64,
    /// Highest.
    pub high_cents: i64,
    /// Lowest.
    pub low_cents: i64,
    /// Last sale.
    pub close_cents: i64,
    /// Sales that day.
    pub sale_count: i64,
}

/// A moment's daily price history between two days (inclusive), oldest first.
pub async fn price_history(
    conn: &mut AsyncPgConnection,
    moment_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PricePoint>, DatabaseError> {
    Ok(price_points::table
        .filter(price_points::moment_id.eq(moment_id))
        .filter(price_points::day.between(from, to))
        .order(price_points::day)
        .select(PricePoint::as_select())
        .load(conn)
        .await?)
}

/// Adds a moment a source reported, unless it is known; true when it was new.
pub async fn insert_moment_if_new(conn: &mut AsyncPgConnection, moment: &Moment) -> Result<bool, DatabaseError> {
    let inserted =
        diesel::insert_into(moments::table).values(moment).on_conflict_do_nothing().reused().execute(conn).await?;
    if inserted == 1 {
        outbox::announce(conn, &moment_change(moment)).await?;
    }
    Ok(inserted == 1)
}

/// A seller's listing under an idempotency key, if any.
pub async fn find_listing_by_key(
    conn: &mut AsyncPgConnection,
    seller_address: &str,
    key: &str,
) -> Result<Option<Listing>, DatabaseError> {
    Ok(listings::table
        .filter(listings::seller_address.eq(seller_address))
        .filter(listings::idempotency_key.eq(key))
        .select(Listing::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Lists a moment under an idempotency key (a seller's own listing).
pub async fn insert_listing_with_key(
    conn: &mut AsyncPgConnection,
    listing: &Listing,
    key: &str,
) -> Result<Listing, DatabaseError> {
    let stored = diesel::insert_into(listings::table)
        .values((listing, listings::idempotency_key.eq(key)))
        .returning(Listing::as_returning())
        .reused()
        .get_result(conn)
        .await?;
    announced(conn, stored).await
}

/// The active listings of a moment, cheapest first.
pub async fn active_listings_of(conn: &mut AsyncPgConnection, moment_id: Uuid) -> Result<Vec<Listing>, DatabaseError> {
    list_active_listings(conn, Some(moment_id), None, None, 0, 1_000).await
}

text_enum! {
    /// What happened to a listing.
    ListingEventKind {
        /// Listed.
        Created => "created",
        /// Repriced.
        PriceChanged => "price_changed",
        /// Sold.
        Sold => "sold",
        /// Withdrawn.
        Withdrawn => "withdrawn",
    }
}

/// Listing events a transaction has decided on, appended as its last statement by
/// [`append_listing_events`].
pub type ListingEvents = Vec<(ListingEventKind, Uuid, i64)>;

/// Appends listing events in order, as the transaction's last statement before its commit.
///
/// Sequences must become visible in order: a reader that has seen sequence n+1 never gets n
/// later. The schema sees to it (migration `2026-12-06-000027_listing_events_numbered_at_commit`):
/// an event is numbered at its transaction's commit, under the listing events lock, which is held
/// from there to the end of the commit only, inside the server. So it is the last lock any
/// transaction takes, and no wait can run in a circle through it. The order of locks, for every
/// transaction that changes listings:
/// 1. the ingest lock, by an ingest batch only (see [`lock_ingest`]);
/// 2. the moment's row, before any of its listings (see [`lock_moment`]; a batch takes several);
/// 3. the listings' rows, the sales and the day's price point of that moment;
/// 4. at the commit, the listing events lock.
///
/// Appended last, the events are written in one statement once the transaction's work is done.
pub async fn append_listing_events(
    conn: &mut AsyncPgConnection,
    events: &[(ListingEventKind, Uuid, i64)],
) -> Result<(), DatabaseError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = events
        .iter()
        .map(|(kind, listing, price)| {
            (
                listing_events::kind.eq(*kind),
                listing_events::listing_id.eq(*listing),
                listing_events::price_cents.eq(*price),
            )
        })
        .collect();
    let insert = diesel::insert_into(listing_events::table).values(rows);
    // A purchase, a repricing or a withdrawal appends one event: that statement is kept
    // prepared. A batch's length varies, so its statement is not.
    if events.len() == 1 {
        insert.reused().execute(conn).await?
    } else {
        insert.execute(conn).await?
    };
    Ok(())
}

/// Appends listing events as [`append_listing_events`] does, each at the instant it carries
/// rather than at the transaction's: a market replayed on its own clock.
pub async fn append_listing_events_at(
    conn: &mut AsyncPgConnection,
    events: &[(ListingEventKind, Uuid, i64, DateTime<Utc>)],
) -> Result<(), DatabaseError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = events
        .iter()
        .map(|(kind, listing, price, at)| {
            (
                listing_events::kind.eq(*kind),
                listing_events::listing_id.eq(*listing),
                listing_events::price_cents.eq(*price),
                listing_events::occurred_at.eq(*at),
            )
        })
        .collect();
    diesel::insert_into(listing_events::table).values(rows).execute(conn).await?;
    Ok(())
}

/// Takes the ingest lock until the end of the transaction: ingest batches (which lock many
/// moments, in the order of their feed) apply one after another, so two never wait on each
/// other's moments. Taken as a batch's first statement; nothing else takes it.
pub async fn lock_ingest(conn: &mut AsyncPgConnection) -> Result<(), DatabaseError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('listing_ingest', 0))")
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// Reprices active listings in order and appends their events: the whole change, in its
/// transaction. The listings as they are after it.
pub async fn reprice_listings(
    conn: &mut AsyncPgConnection,
    prices: &[(Uuid, i64)],
) -> Result<Vec<Listing>, DatabaseError> {
    let mut updated = Vec::with_capacity(prices.len());
    for &(id, price_cents) in prices {
        lock_listing(conn, id).await?;
        updated.push(update_listing_price(conn, id, price_cents).await?);
    }
    let events: ListingEvents = prices.iter().map(|&(id, price)| (ListingEventKind::PriceChanged, id, price)).collect();
    append_listing_events(conn, &events).await?;
    Ok(updated)
}

/// Withdraws an active listing and appends its event: the whole change, in its transaction.
pub async fn withdraw_listing(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Listing, DatabaseError> {
    lock_listing(conn, id).await?;
    let closed = close_listing(conn, id, ListingState::Withdrawn).await?;
    append_listing_events(conn, &[(ListingEventKind::Withdrawn, id, closed.price_cents)]).await?;
    Ok(closed)
}

/// The LISTEN/NOTIFY channel a transaction that appends listing events notifies on commit (the
/// schema's trigger `listing_events_notify`, with no round trip of its own under the lock).
pub const LISTING_EVENTS_CHANNEL: &str = "listing_events";

/// A listing event with its listing and moment, as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ListingEventView {
    /// Its place in the order of events.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sequence: i64,
    /// What happened.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: ListingEventKind,
    /// The price after it.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub price_cents: i64,
    /// When.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    /// The listing.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub listing_id: Uuid,
    /// Its source.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub source_id: String,
    /// Its seller.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub seller_address: String,
    /// When it was listed.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub listed_at: DateTime<Utc>,
    /// The moment, with its player.
    #[diesel(embed)]
    pub moment: MomentView,
}

/// Listing events after `after`, oldest first, optionally of one source and some moments.
pub async fn listing_events_after(
    conn: &mut AsyncPgConnection,
    after: i64,
    source: Option<&str>,
    moment_ids: &[Uuid],
    size: i64,
) -> Result<Vec<ListingEventView>, DatabaseError> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Uuid as SqlUuid};
    let moments = (!moment_ids.is_empty()).then(|| moment_ids.to_vec());
    Ok(diesel::sql_query(format!(
        "SELECT e.sequence, e.kind, e.price_cents, e.occurred_at, l.id AS listing_id, l.source_id,
                l.seller_address, l.created_at AS listed_at, {MOMENT_COLUMNS}
           FROM listing_events e
           JOIN listings l ON l.id = e.listing_id
           JOIN moments m ON m.id = l.moment_id
           JOIN players p ON p.id = m.player_id
          WHERE e.sequence > $1
            AND ($2::text IS NULL OR l.source_id = $2)
            AND ($3::uuid[] IS NULL OR l.moment_id = ANY($3))
          ORDER BY e.sequence
          LIMIT $4"
    ))
    .bind::<BigInt, _>(after)
    .bind::<Nullable<Text>, _>(source)
    .bind::<Nullable<Array<SqlUuid>>, _>(moments)
    .bind::<BigInt, _>(size)
    .load(conn)
    .await?)
}

/// The sequence of the newest listing event, 0 when there is none.
pub async fn last_listing_sequence(conn: &mut AsyncPgConnection) -> Result<i64, DatabaseError> {
    Ok(listing_events::table
        .select(diesel::dsl::max(listing_events::sequence))
        .first::<Option<i64>>(conn)
        .await?
        .unwrap_or(0))
}

/// The columns of a [`MomentView`], with `m` the moment, `p` its player, `f` its floor and
/// `s` its last sale.
const MOMENT_COLUMNS: &str = "m.id, m.player_id, m.set_name, m.play_category, m.play_at, m.rarity, m.serial_number,
    m.edition_size, m.owner_address, p.full_name AS player_name, p.team_code,
    (SELECT min(price_cents) FROM listings fl WHERE fl.moment_id = m.id AND fl.state = 'active') AS floor_price_cents,
    (SELECT price_cents FROM sales ls WHERE ls.moment_id = m.id ORDER BY ls.sold_at DESC, ls.id DESC LIMIT 1) AS last_sale_cents";

/// A moment as the catalog shows it: with its player's name and team, its floor and last sale.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct MomentView {
    /// Id.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    /// The player.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub player_id: String,
    /// The set.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub set_name: String,
    /// The play.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub play_category: String,
    /// When the play happened.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub play_at: DateTime<Utc>,
    /// Tier.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub rarity: Rarity,
    /// Serial.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub serial_number: i32,
    /// Edition size.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub edition_size: i32,
    /// Owner.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub owner_address: String,
    /// The player's name.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub player_name: String,
    /// The player's team.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub team_code: String,
    /// The cheapest active listing.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub floor_price_cents: Option<i64>,
    /// The last sale.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub last_sale_cents: Option<i64>,
}

/// What to search the catalog for; every filter set must match.
#[derive(Debug, Clone, Default)]
pub struct CatalogFilter {
    /// Words in the player's name, the set or the play.
    pub query: Option<String>,
    /// One player.
    pub player_id: Option<String>,
    /// One team.
    pub team_code: Option<String>,
    /// One rarity.
    pub rarity: Option<Rarity>,
    /// One set.
    pub set_name: Option<String>,
    /// Listed at or below.
    pub max_floor_cents: Option<i64>,
    /// Listed at or above.
    pub min_floor_cents: Option<i64>,
    /// Serials at or below.
    pub max_serial: Option<i32>,
    /// Only these moments.
    pub ids: Option<Vec<Uuid>>,
}

/// Searches the catalog, by id, `size` at a time after `after`.
pub async fn catalog(
    conn: &mut AsyncPgConnection,
    filter: &CatalogFilter,
    after: Option<Uuid>,
    size: i64,
) -> Result<Vec<MomentView>, DatabaseError> {
    use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Uuid as SqlUuid};
    let pattern = filter.query.as_deref().filter(|t| !t.is_empty()).map(like_pattern);
    Ok(diesel::sql_query(format!(
        "SELECT * FROM (SELECT {MOMENT_COLUMNS} FROM moments m JOIN players p ON p.id = m.player_id
          WHERE ($1::text IS NULL OR m.set_name ILIKE $1 OR m.play_category ILIKE $1 OR p.full_name ILIKE $1)
            AND ($2::text IS NULL OR m.player_id = $2)
            AND ($3::text IS NULL OR p.team_code = $3)
            AND ($4::text IS NULL OR m.rarity = $4)
            AND ($5::text IS NULL OR m.set_name = $5)
            AND ($6::int IS NULL OR m.serial_number <= $6)
            AND ($7::uuid IS NULL OR m.id > $7)
            AND ($8::uuid[] IS NULL OR m.id = ANY($8))) c
          WHERE ($9::bigint IS NULL OR c.floor_price_cents <= $9)
            AND ($10::bigint IS NULL OR c.floor_price_cents >= $10)
          ORDER BY c.id
          LIMIT $11"
    ))
    .bind::<Nullable<Text>, _>(pattern)
    .bind::<Nullable<Text>, _>(filter.player_id.clone())
    .bind::<Nullable<Text>, _>(filter.team_code.clone())
    .bind::<Nullable<Text>, _>(filter.rarity.map(|r| r.as_str()))
    .bind::<Nullable<Text>, _>(filter.set_name.clone())
    .bind::<Nullable<Integer>, _>(filter.max_serial)
    .bind::<Nullable<SqlUuid>, _>(after)
    .bind::<Nullable<Array<SqlUuid>>, _>(filter.ids.clone())
    .bind::<Nullable<BigInt>, _>(filter.max_floor_cents)
    .bind::<Nullable<BigInt>, _>(filter.min_floor_cents)
    .bind::<BigInt, _>(size)
    .load(conn)
    .await?)
}

/// How taking a listing went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// This call bought it.
    Bought(Sale),
    /// The same buyer bought it before (the answer is repeated).
    Again(Sale),
    /// It is no longer for sale: sold to someone else or withdrawn.
    Gone(ListingState),
    /// It costs more than the buyer's maximum.
    TooDear(i64),
    /// The buyer is its seller.
    OwnListing,
}

/// Buys an active listing for `buyer`, at most at `max_price_cents`, adding its events to
/// `events` for the caller to append last (see [`append_listing_events`]). The moment and then the listing are locked first,
/// so concurrent takers of one moment are decided one after another and only one buys. The sale
/// is recorded, the moment moves to the buyer, its other active listings are withdrawn. A
/// listing whose seller no longer owns the moment is withdrawn instead.
pub async fn take_listing(
    conn: &mut AsyncPgConnection,
    listing_id: Uuid,
    buyer: &str,
    max_price_cents: i64,
    sale_id: Uuid,
    at: DateTime<Utc>,
    events: &mut ListingEvents,
) -> Result<Taken, DatabaseError> {
    let listing = lock_listing(conn, listing_id).await?.ok_or(DatabaseError::NotFound("listing"))?;
    match listing.state {
        ListingState::Active => {}
        ListingState::Sold => {
            let sale = sales::table
                .filter(sales::listing_id.eq(listing_id))
                .select(Sale::as_select())
                .first(conn)
                .await
                .optional()?;
            return Ok(match sale {
                Some(sale) if sale.buyer_address == buyer => Taken::Again(sale),
                _ => Taken::Gone(ListingState::Sold),
            });
        }
        state @ ListingState::Withdrawn => return Ok(Taken::Gone(state)),
    }
    if listing.seller_address == buyer {
        return Ok(Taken::OwnListing);
    }
    if listing.price_cents > max_price_cents {
        return Ok(Taken::TooDear(listing.price_cents));
    }
    if !transfer_moment(conn, listing.moment_id, &listing.seller_address, buyer).await? {
        close_listing(conn, listing_id, ListingState::Withdrawn).await?;
        events.push((ListingEventKind::Withdrawn, listing_id, listing.price_cents));
        return Ok(Taken::Gone(ListingState::Withdrawn));
    }
    close_listing(conn, listing_id, ListingState::Sold).await?;
    let sale = record_sale(
        conn,
        &Sale {
            id: sale_id,
            moment_id: listing.moment_id,
            listing_id: Some(listing_id),
            source_id: listing.source_id.clone(),
            price_cents: listing.price_cents,
            seller_address: listing.seller_address.clone(),
            buyer_address: buyer.to_owned(),
            sold_at: at,
        },
    )
    .await?;
    events.push((ListingEventKind::Sold, listing_id, listing.price_cents));
    for other in active_listings_of(conn, listing.moment_id).await? {
        close_listing(conn, other.id, ListingState::Withdrawn).await?;
        events.push((ListingEventKind::Withdrawn, other.id, other.price_cents));
    }
    Ok(Taken::Bought(sale))
}

/// A moment listed on one source for less than its play sells for on another: the other
/// source's cheapest listing of the same play and tier, by another seller.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Arbitrage {
    /// The listing to buy.
    #[diesel(embed)]
    pub buy: ListingRow,
    /// Where to sell.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub sell_source_id: String,
    /// The price to sell at: one cent under that source's cheapest listing of the same play
    /// and tier.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sell_cents: i64,
    /// (sell - buy) / buy, in basis points.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spread_bps: i64,
    /// The sell price less the selling source's fee, less the buy price.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub profit_cents: i64,
}

/// A listing read by name (for raw queries).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ListingRow {
    /// Id.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    /// The moment.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub moment_id: Uuid,
    /// The source.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub source_id: String,
    /// Asking price.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub price_cents: i64,
    /// The seller.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub seller_address: String,
    /// Listed.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// Arbitrage opportunities with at least `min_spread_bps` and a profit after fees, most
/// profitable first, `size` after the first `offset`.
pub async fn arbitrage(
    conn: &mut AsyncPgConnection,
    min_spread_bps: i64,
    offset: i64,
    size: i64,
) -> Result<Vec<Arbitrage>, DatabaseError> {
    use diesel::sql_types::BigInt;
    Ok(diesel::sql_query(
        "SELECT * FROM (
           SELECT b.id, b.moment_id, b.source_id, b.price_cents, b.seller_address, b.created_at, b.updated_at,
                  o.source_id AS sell_source_id, o.floor - 1 AS sell_cents,
                  ((o.floor - 1 - b.price_cents) * 10000 / b.price_cents)::bigint AS spread_bps,
                  (o.floor - 1 - (o.floor - 1) * src.fee_bps / 10000 - b.price_cents)::bigint AS profit_cents
             FROM listings b
             JOIN moments bm ON bm.id = b.moment_id
             JOIN LATERAL (SELECT l.source_id, min(l.price_cents) AS floor
                             FROM listings l JOIN moments cm ON cm.id = l.moment_id
                            WHERE l.state = 'active' AND l.source_id <> b.source_id
                              AND l.seller_address <> b.seller_address
                              AND cm.player_id = bm.player_id AND cm.set_name = bm.set_name
                              AND cm.play_category = bm.play_category AND cm.play_at = bm.play_at
                              AND cm.rarity = bm.rarity
                            GROUP BY l.source_id) o ON true
             JOIN market_sources src ON src.id = o.source_id AND src.enabled AND src.healthy
            WHERE b.state = 'active') a
          WHERE a.profit_cents > 0 AND a.spread_bps >= $1
          ORDER BY a.profit_cents DESC, a.id, a.sell_source_id
          LIMIT $2 OFFSET $3",
    )
    .bind::<BigInt, _>(min_spread_bps)
    .bind::<BigInt, _>(size)
    .bind::<BigInt, _>(offset)
    .load(conn)
    .await?)
}

/// One interval of a moment's sales.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct PriceBucket {
    /// The interval's start.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub start: DateTime<Utc>,
    /// First sale.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub open_cents: i64,
    /// Highest.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub high_cents: i64,
    /// Lowest.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub low_cents: i64,
    /// Last.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub close_cents: i64,
    /// Sales.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sale_count: i64,
}

/// A moment's sales in `[from, to)` by `unit` ("hour", "day" or "week", UTC), oldest first.
pub async fn price_buckets(
    conn: &mut AsyncPgConnection,
    moment_id: Uuid,
    unit: &'static str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<PriceBucket>, DatabaseError> {
    use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
    Ok(diesel::sql_query(
        "SELECT date_trunc($2, sold_at, 'UTC') AS start,
                (array_agg(price_cents ORDER BY sold_at, id))[1] AS open_cents,
                max(price_cents) AS high_cents, min(price_cents) AS low_cents,
                (array_agg(price_cents ORDER BY sold_at DESC, id DESC))[1] AS close_cents,
                count(*) AS sale_count
           FROM sales WHERE moment_id = $1 AND sold_at >= $3 AND sold_at < $4
          GROUP BY 1 ORDER BY 1",
    )
    .bind::<SqlUuid, _>(moment_id)
    .bind::<Text, _>(unit)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?)
}

/// The median sale price of a moment since `since`, if it sold.
pub async fn median_sale_since(
    conn: &mut AsyncPgConnection,
    moment_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Option<i64>, DatabaseError> {
    #[derive(QueryableByName)]
    struct Median {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        median: Option<i64>,
    }
    let row: Median = diesel::sql_query(
        "SELECT (percentile_cont(0.5) WITHIN GROUP (ORDER BY price_cents))::bigint AS median
           FROM sales WHERE moment_id = $1 AND sold_at >= $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(moment_id)
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .get_result(conn)
    .await?;
    Ok(row.median)
}

/// The average sale price and count of every sale in `[from, to)`.
pub async fn average_sale_between(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Option<i64>, i64), DatabaseError> {
    #[derive(QueryableByName)]
    struct Average {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        average: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let row: Average = diesel::sql_query(
        "SELECT avg(price_cents)::bigint AS average, count(*) AS count
           FROM sales WHERE sold_at >= $1 AND sold_at < $2",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(from)
    .bind::<diesel::sql_types::Timestamptz, _>(to)
    .get_result(conn)
    .await?;
    Ok((row.average, row.count))
}
