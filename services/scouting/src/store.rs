//! Players, game lines, game events and valuations with their factors.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::schema::{
    game_events, player_game_stats, scouting_listings, scouting_moments, scouting_players, scouting_sales,
    valuation_factors, valuations,
};
use fastbreak_db::text_enum;

/// A player's line in one game.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = player_game_stats)]
pub struct GameStats {
    /// The game.
    pub game_id: String,
    /// The player.
    pub player_id: String,
    /// Tip-off.
    pub game_at: DateTime<Utc>,
    /// The opponent.
    pub opponent_code: String,
    /// Minutes.
    pub minutes: i32,
    /// Points.
    pub points: i32,
    /// Rebounds.
    pub rebounds: i32,
    /// Assists.
    pub assists: i32,
    /// Steals.
    pub steals: i32,
    /// Blocks.
    pub blocks: i32,
    /// Turnovers.
    pub turnovers: i32,
}

/// Records (or corrects) a player's line in a game.
pub async fn upsert_game_stats(conn: &mut AsyncPgConnection, stats: &GameStats) -> Result<GameStats, DatabaseError> {
    Ok(diesel::insert_into(player_game_stats::table)
        .values(stats)
        .on_conflict((player_game_stats::game_id, player_game_stats::player_id))
        .do_update()
        .set(stats)
        .returning(GameStats::as_returning())
        .get_result(conn)
        .await?)
}

/// The last instant a request can name (the end of year 9999, as `status::time_field` allows).
const LAST_INSTANT: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(at) => at,
    None => DateTime::<Utc>::MAX_UTC,
};

/// A player's most recent game lines up to `until`, newest first.
pub async fn recent_game_stats(
    conn: &mut AsyncPgConnection,
    player_id: &str,
    until: DateTime<Utc>,
    size: i64,
) -> Result<Vec<GameStats>, DatabaseError> {
    game_stats_page(conn, player_id, Some(until), 0, size).await
}

/// A player's game lines (up to `until`, when given), newest first, `size` after the first
/// `offset`.
pub async fn game_stats_page(
    conn: &mut AsyncPgConnection,
    player_id: &str,
    until: Option<DateTime<Utc>>,
    offset: i64,
    size: i64,
) -> Result<Vec<GameStats>, DatabaseError> {
    // One shape with or without a bound (a boxed query would be planned again on every call,
    // once per valuation): no bound is the last instant a request can give.
    let until = until.unwrap_or(LAST_INSTANT);
    Ok(player_game_stats::table
        .filter(player_game_stats::player_id.eq(player_id))
        .filter(player_game_stats::game_at.le(until))
        .order((player_game_stats::game_at.desc(), player_game_stats::game_id.desc()))
        .offset(offset)
        .limit(size)
        .select(GameStats::as_select())
        .load(conn)
        .await?)
}

/// A game event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = game_events)]
pub struct GameEvent {
    /// Id (the source's).
    pub id: String,
    /// The game.
    pub game_id: String,
    /// The player.
    pub player_id: String,
    /// The game is over.
    pub is_final: bool,
    /// Notable facts.
    pub highlights: Vec<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was recorded.
    pub ingested_at: DateTime<Utc>,
    /// Its place in the order events were recorded in (set by the database).
    #[diesel(skip_insertion)]
    pub sequence: i64,
}

/// Records a game event once; false when its id was seen before. The events lock is taken
/// first and held to the end of the transaction, so that sequences commit in order and a reader
/// that has seen sequence n has seen every event before it.
pub async fn insert_game_event(conn: &mut AsyncPgConnection, event: &GameEvent) -> Result<bool, DatabaseError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('game_events', 0))").execute(conn).await?;
    let inserted = diesel::insert_into(game_events::table).values(event).on_conflict_do_nothing().execute(conn).await?;
    Ok(inserted == 1)
}

/// Game events ingested after `since`, oldest first (what a subscriber missed).
pub async fn game_events_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    size: i64,
) -> Result<Vec<GameEvent>, DatabaseError> {
    Ok(game_events::table
        .filter(game_events::ingested_at.gt(since))
        .order((game_events::ingested_at, game_events::id))
        .limit(size)
        .select(GameEvent::as_select())
        .load(conn)
        .await?)
}

text_enum! {
    /// What the model advises.
    Recommendation {
        /// Clearly undervalued.
        StrongBuy => "strong_buy",
        /// Undervalued.
        Buy => "buy",
        /// Fairly priced.
        Hold => "hold",
        /// Overvalued.
        Sell => "sell",
    }
}

/// A valuation (without its factors).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = valuations)]
pub struct Valuation {
    /// Id.
    pub id: Uuid,
    /// The moment.
    pub moment_id: Uuid,
    /// Fair value.
    pub fair_value_cents: i64,
    /// 0 to 1.
    pub confidence: f64,
    /// The advice.
    pub recommendation: Recommendation,
    /// 0 to 1.
    pub risk_score: f64,
    /// The price valued against.
    pub price_cents: Option<i64>,
    /// Discount of the price to fair value.
    pub discount_bps: Option<i32>,
    /// The model's version.
    pub model_version: String,
    /// Computed.
    pub computed_at: DateTime<Utc>,
    /// The instant valued at: the sales and games up to it counted.
    pub valued_at: DateTime<Utc>,
}

/// One factor of a valuation.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = valuation_factors)]
pub struct ValuationFactor {
    /// The valuation.
    pub valuation_id: Uuid,
    /// 1 for the heaviest.
    pub rank: i32,
    /// Machine name.
    pub name: String,
    /// Share of the valuation, 0 to 1.
    pub weight: f64,
    /// Effect on fair value.
    pub impact_cents: i64,
    /// The reason, as a sentence.
    pub explanation: String,
}

/// Stores a valuation with its factors.
pub async fn insert_valuation(
    conn: &mut AsyncPgConnection,
    valuation: &Valuation,
    factors: &[ValuationFactor],
) -> Result<(Valuation, Vec<ValuationFactor>), DatabaseError> {
    let stored = diesel::insert_into(valuations::table)
        .values(valuation)
        .returning(Valuation::as_returning())
        .get_result(conn)
        .await?;
    let factors = diesel::insert_into(valuation_factors::table)
        .values(factors)
        .returning(ValuationFactor::as_returning())
        .get_results(conn)
        .await?;
    Ok((stored, factors))
}

/// The newest valuation of a moment, with its factors heaviest first.
pub async fn latest_valuation(
    conn: &mut AsyncPgConnection,
    moment_id: Uuid,
) -> Result<Option<(Valuation, Vec<ValuationFactor>)>, DatabaseError> {
    let newest: Option<Uuid> = valuations::table
        .filter(valuations::moment_id.eq(moment_id))
        .order(valuations::computed_at.desc())
        .select(valuations::id)
        .first(conn)
        .await
        .optional()?;
    match newest {
        Some(id) => find_valuation(conn, id).await,
        None => Ok(None),
    }
}

/// Game events after sequence `after`, oldest first, optionally of one player, with the
/// player's line in that game when it is known.
pub async fn game_events_after(
    conn: &mut AsyncPgConnection,
    after: i64,
    player_id: Option<&str>,
    size: i64,
) -> Result<Vec<(GameEvent, Option<GameStats>)>, DatabaseError> {
    let mut query = game_events::table
        .filter(game_events::sequence.gt(after))
        .order(game_events::sequence)
        .limit(size)
        .select(GameEvent::as_select())
        .into_boxed();
    if let Some(player) = player_id {
        query = query.filter(game_events::player_id.eq(player.to_owned()));
    }
    let events = query.load(conn).await?;
    with_stats(conn, events).await
}

/// Game events newest first, optionally of one player, `size` before sequence `before` (from
/// the newest when `None`).
pub async fn game_events_before(
    conn: &mut AsyncPgConnection,
    player_id: Option<&str>,
    before: Option<i64>,
    size: i64,
) -> Result<Vec<(GameEvent, Option<GameStats>)>, DatabaseError> {
    let mut query =
        game_events::table.order(game_events::sequence.desc()).limit(size).select(GameEvent::as_select()).into_boxed();
    if let Some(player) = player_id {
        query = query.filter(game_events::player_id.eq(player.to_owned()));
    }
    if let Some(before) = before {
        query = query.filter(game_events::sequence.lt(before));
    }
    let events = query.load(conn).await?;
    with_stats(conn, events).await
}

async fn with_stats(
    conn: &mut AsyncPgConnection,
    events: Vec<GameEvent>,
) -> Result<Vec<(GameEvent, Option<GameStats>)>, DatabaseError> {
    let games: Vec<&str> = events.iter().map(|e| e.game_id.as_str()).collect();
    let players: Vec<&str> = events.iter().map(|e| e.player_id.as_str()).collect();
    let stats: Vec<GameStats> = player_game_stats::table
        .filter(player_game_stats::game_id.eq_any(games))
        .filter(player_game_stats::player_id.eq_any(players))
        .select(GameStats::as_select())
        .load(conn)
        .await?;
    Ok(events
        .into_iter()
        .map(|e| {
            let line = stats.iter().find(|s| s.game_id == e.game_id && s.player_id == e.player_id).cloned();
            (e, line)
        })
        .collect())
}

/// The newest game event sequence, 0 when there is none.
pub async fn last_game_event_sequence(conn: &mut AsyncPgConnection) -> Result<i64, DatabaseError> {
    Ok(game_events::table
        .select(diesel::dsl::max(game_events::sequence))
        .first::<Option<i64>>(conn)
        .await?
        .unwrap_or(0))
}

/// A sale of a moment comparable to another: the same player and tier.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ComparableSale {
    /// Of the same play (set, play and time) as the moment valued.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub same_play: bool,
    /// The serial sold.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub serial_number: i32,
    /// The price.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub price_cents: i64,
    /// When.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub sold_at: DateTime<Utc>,
}

/// A valuation by its id, with its factors heaviest first.
pub async fn find_valuation(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(Valuation, Vec<ValuationFactor>)>, DatabaseError> {
    let Some(valuation) = valuations::table.find(id).select(Valuation::as_select()).first(conn).await.optional()?
    else {
        return Ok(None);
    };
    let factors = valuation_factors::table
        .filter(valuation_factors::valuation_id.eq(valuation.id))
        .order(valuation_factors::rank)
        .select(ValuationFactor::as_select())
        .load(conn)
        .await?;
    Ok(Some((valuation, factors)))
}

// --- Scouting's catalog ----------------------------------------------------------------------
// What valuing needs of the marketplace's players, moments, listings and sales, kept by
// scouting from the marketplace's `market_catalog` messages (taken in by the catalog module).

/// A player, as scouting's catalog knows them.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = scouting_players)]
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

/// Finds a player.
pub async fn find_player(conn: &mut AsyncPgConnection, id: &str) -> Result<Option<Player>, DatabaseError> {
    Ok(scouting_players::table.find(id).select(Player::as_select()).first(conn).await.optional()?)
}

/// Records a player, or what changed of them.
pub async fn upsert_player(conn: &mut AsyncPgConnection, player: &Player) -> Result<(), DatabaseError> {
    diesel::insert_into(scouting_players::table)
        .values(player)
        .on_conflict(scouting_players::id)
        .do_update()
        .set(player)
        .execute(conn)
        .await?;
    Ok(())
}

/// A moment, as scouting's catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = scouting_moments)]
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
    pub rarity: fastbreak_db::Rarity,
    /// Serial number.
    pub serial_number: i32,
}

/// Records a moment unless it is known.
pub async fn insert_moment(conn: &mut AsyncPgConnection, moment: &Moment) -> Result<(), DatabaseError> {
    diesel::insert_into(scouting_moments::table).values(moment).on_conflict_do_nothing().execute(conn).await?;
    Ok(())
}

/// Finds a moment.
pub async fn find_moment(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Moment>, DatabaseError> {
    Ok(scouting_moments::table.find(id).select(Moment::as_select()).first(conn).await.optional()?)
}

/// Records a listing's price and whether it is still for sale, as of change `version`: a
/// change older than the one recorded is ignored.
pub async fn upsert_listing(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    moment_id: Uuid,
    price_cents: i64,
    active: bool,
    version: i64,
) -> Result<(), DatabaseError> {
    use diesel::sql_types::{BigInt, Bool, Uuid as SqlUuid};
    diesel::sql_query(
        "INSERT INTO scouting_listings (id, moment_id, price_cents, active, version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE
            SET price_cents = excluded.price_cents, active = excluded.active, version = excluded.version
          WHERE scouting_listings.version < excluded.version",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(moment_id)
    .bind::<BigInt, _>(price_cents)
    .bind::<Bool, _>(active)
    .bind::<BigInt, _>(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a sale unless it is known.
pub async fn insert_sale(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    moment_id: Uuid,
    price_cents: i64,
    sold_at: DateTime<Utc>,
) -> Result<(), DatabaseError> {
    diesel::insert_into(scouting_sales::table)
        .values((
            scouting_sales::id.eq(id),
            scouting_sales::moment_id.eq(moment_id),
            scouting_sales::price_cents.eq(price_cents),
            scouting_sales::sold_at.eq(sold_at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// A listing's moment and asking price, if the listing exists.
pub async fn find_listed_price(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<(Uuid, i64)>, DatabaseError> {
    Ok(scouting_listings::table
        .find(id)
        .select((scouting_listings::moment_id, scouting_listings::price_cents))
        .first(conn)
        .await
        .optional()?)
}

/// Sales of moments of the same player and tier as `moment_id` (itself included) in
/// `[since, until]`, newest first, at most `size`.
pub async fn comparable_sales(
    conn: &mut AsyncPgConnection,
    moment_id: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    size: i64,
) -> Result<Vec<ComparableSale>, DatabaseError> {
    use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
    Ok(diesel::sql_query(
        "SELECT (c.set_name = m.set_name AND c.play_category = m.play_category AND c.play_at = m.play_at) AS same_play,
                c.serial_number, s.price_cents, s.sold_at
           FROM scouting_moments m
           JOIN scouting_moments c ON c.player_id = m.player_id AND c.rarity = m.rarity
           JOIN scouting_sales s ON s.moment_id = c.id
          WHERE m.id = $1 AND s.sold_at >= $2 AND s.sold_at <= $3
          ORDER BY s.sold_at DESC
          LIMIT $4",
    )
    .bind::<SqlUuid, _>(moment_id)
    .bind::<Timestamptz, _>(since)
    .bind::<Timestamptz, _>(until)
    .bind::<BigInt, _>(size)
    .load(conn)
    .await?)
}

/// Moments of a player listed for sale now (the ones a new game event re-values first).
pub async fn listed_moments_of_player(
    conn: &mut AsyncPgConnection,
    player_id: &str,
    size: i64,
) -> Result<Vec<Uuid>, DatabaseError> {
    Ok(scouting_moments::table
        .inner_join(scouting_listings::table)
        .filter(scouting_moments::player_id.eq(player_id.to_owned()))
        .filter(scouting_listings::active.eq(true))
        .select(scouting_moments::id)
        .distinct()
        .limit(size)
        .load(conn)
        .await?)
}
