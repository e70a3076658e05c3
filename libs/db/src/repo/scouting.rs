//! Players, game lines, game events and valuations with their factors.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::DatabaseError;
use crate::repo::text_enum;
use crate::schema::{game_events, player_game_stats, players, valuation_factors, valuations};

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
}

/// Creates or updates a player.
pub async fn upsert_player(conn: &mut AsyncPgConnection, player: &Player) -> Result<Player, DatabaseError> {
    Ok(diesel::insert_into(players::table)
        .values(player)
        .on_conflict(players::id)
        .do_update()
        .set(player)
        .returning(Player::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds a player.
pub async fn find_player(conn: &mut AsyncPgConnection, id: &str) -> Result<Option<Player>, DatabaseError> {
    Ok(players::table.find(id).select(Player::as_select()).first(conn).await.optional()?)
}

/// A player's line in one game.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
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

/// A player's most recent game lines, newest first.
pub async fn recent_game_stats(
    conn: &mut AsyncPgConnection,
    player_id: &str,
    size: i64,
) -> Result<Vec<GameStats>, DatabaseError> {
    Ok(player_game_stats::table
        .filter(player_game_stats::player_id.eq(player_id))
        .order(player_game_stats::game_at.desc())
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
}

/// Records a game event once; false when its id was seen before.
pub async fn insert_game_event(conn: &mut AsyncPgConnection, event: &GameEvent) -> Result<bool, DatabaseError> {
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
    let Some(valuation) = valuations::table
        .filter(valuations::moment_id.eq(moment_id))
        .order(valuations::computed_at.desc())
        .select(Valuation::as_select())
        .first(conn)
        .await
        .optional()?
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
