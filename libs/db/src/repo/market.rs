//! Market sources, moments, listings, sales and price history.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::DatabaseError;
use crate::repo::{Rarity, text_enum};
use crate::schema::{listings, market_sources, moments, price_points, sales};

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
}

/// Every market source, by id.
pub async fn list_market_sources(conn: &mut AsyncPgConnection) -> Result<Vec<MarketSource>, DatabaseError> {
    Ok(market_sources::table.order(market_sources::id).select(MarketSource::as_select()).load(conn).await?)
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

/// Adds a moment to the catalog.
pub async fn insert_moment(conn: &mut AsyncPgConnection, moment: &Moment) -> Result<Moment, DatabaseError> {
    Ok(diesel::insert_into(moments::table).values(moment).returning(Moment::as_returning()).get_result(conn).await?)
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
        .execute(conn)
        .await?;
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

/// Searches the catalog, by id, `size` at a time after `after`.
pub async fn search_moments(
    conn: &mut AsyncPgConnection,
    filter: &MomentFilter,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<Moment>, DatabaseError> {
    let mut query = moments::table.select(Moment::as_select()).order(moments::id).limit(size).into_boxed();
    if let Some(text) = filter.query.as_deref().filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
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

/// Lists a moment for sale.
pub async fn insert_listing(conn: &mut AsyncPgConnection, listing: &Listing) -> Result<Listing, DatabaseError> {
    Ok(diesel::insert_into(listings::table).values(listing).returning(Listing::as_returning()).get_result(conn).await?)
}

/// Finds a listing.
pub async fn find_listing(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Listing>, DatabaseError> {
    Ok(listings::table.find(id).select(Listing::as_select()).first(conn).await.optional()?)
}

/// Finds a listing and locks it for the rest of the transaction (for settlement).
pub async fn lock_listing(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Listing>, DatabaseError> {
    Ok(listings::table.find(id).for_update().select(Listing::as_select()).first(conn).await.optional()?)
}

/// Active listings, cheapest first, optionally of one moment and under a price.
pub async fn list_active_listings(
    conn: &mut AsyncPgConnection,
    moment_id: Option<Uuid>,
    max_price_cents: Option<i64>,
    size: i64,
) -> Result<Vec<Listing>, DatabaseError> {
    let mut query = listings::table
        .filter(listings::state.eq(ListingState::Active))
        .select(Listing::as_select())
        .order((listings::price_cents, listings::id))
        .limit(size)
        .into_boxed();
    if let Some(moment) = moment_id {
        query = query.filter(listings::moment_id.eq(moment));
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
    diesel::update(listings::table.find(id).filter(listings::state.eq(ListingState::Active)))
        .set((listings::price_cents.eq(price_cents), listings::updated_at.eq(diesel::dsl::now)))
        .returning(Listing::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("active listing"))
}

/// Closes an active listing as sold or withdrawn.
pub async fn close_listing(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    state: ListingState,
) -> Result<Listing, DatabaseError> {
    diesel::update(listings::table.find(id).filter(listings::state.eq(ListingState::Active)))
        .set((listings::state.eq(state), listings::updated_at.eq(diesel::dsl::now)))
        .returning(Listing::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("active listing"))
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

/// Records a sale and folds it into the moment's daily price history.
pub async fn record_sale(conn: &mut AsyncPgConnection, sale: &Sale) -> Result<Sale, DatabaseError> {
    let stored =
        diesel::insert_into(sales::table).values(sale).returning(Sale::as_returning()).get_result(conn).await?;
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
