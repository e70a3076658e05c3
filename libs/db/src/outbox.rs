//! The outbox: messages written in the same transaction as the change they announce, and
//! delivered afterwards, at least once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DatabaseError;
use crate::prepared::Reuse as _;
use crate::schema::outbox;

/// A message waiting for (or past) delivery.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxMessage {
    /// Sequence number.
    pub id: i64,
    /// Where it goes, such as "notification.send".
    pub topic: String,
    /// Its key (for example an idempotency key the receiver dedupes on).
    pub message_key: String,
    /// The message.
    pub payload: serde_json::Value,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Not delivered before this.
    pub available_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: i32,
    /// The last attempt's error.
    pub last_error: String,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Writes a message (inside the caller's transaction).
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    topic: &str,
    key: &str,
    payload: &serde_json::Value,
) -> Result<OutboxMessage, DatabaseError> {
    Ok(diesel::insert_into(outbox::table)
        .values((outbox::topic.eq(topic), outbox::message_key.eq(key), outbox::payload.eq(payload)))
        .returning(OutboxMessage::as_returning())
        .reused()
        .get_result(conn)
        .await?)
}

/// Writes a message that is due only after `delay` (inside the caller's transaction): for one
/// the writer delivers itself first, so that the worker does not take it meanwhile.
pub async fn enqueue_after(
    conn: &mut AsyncPgConnection,
    topic: &str,
    key: &str,
    payload: &serde_json::Value,
    delay: std::time::Duration,
) -> Result<OutboxMessage, DatabaseError> {
    let available = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    Ok(diesel::insert_into(outbox::table)
        .values((
            outbox::topic.eq(topic),
            outbox::message_key.eq(key),
            outbox::payload.eq(payload),
            outbox::available_at.eq(available),
        ))
        .returning(OutboxMessage::as_returning())
        .reused()
        .get_result(conn)
        .await?)
}

/// Takes up to `size` due messages of a topic, oldest first, locking them so that concurrent
/// deliverers take different ones (call inside a transaction).
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    topic: &str,
    now: DateTime<Utc>,
    size: i64,
) -> Result<Vec<OutboxMessage>, DatabaseError> {
    claim(conn, topic, now, size, true).await
}

/// Takes up to `size` due messages of a topic, oldest first, locking them; with `skip_locked`,
/// the ones another transaction holds are passed over instead of waited for.
async fn claim(
    conn: &mut AsyncPgConnection,
    topic: &str,
    now: DateTime<Utc>,
    size: i64,
    skip_locked: bool,
) -> Result<Vec<OutboxMessage>, DatabaseError> {
    let due = outbox::table
        .filter(outbox::topic.eq(topic))
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::available_at.le(now))
        .order(outbox::id)
        .limit(size)
        .select(OutboxMessage::as_select())
        .for_update();
    Ok(if skip_locked { due.skip_locked().load(conn).await? } else { due.load(conn).await? })
}

/// Marks a message delivered.
pub async fn mark_delivered(conn: &mut AsyncPgConnection, id: i64) -> Result<(), DatabaseError> {
    mark_all_delivered(conn, &[id]).await
}

/// Records a failed attempt and when to try again.
pub async fn mark_failed(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<(), DatabaseError> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_error.eq(error),
            outbox::available_at.eq(retry_at),
        ))
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// The topic of finished games' box scores (written by the marketplace's feeds, taken in by
/// scouting).
pub const GAME_FINAL_TOPIC: &str = "game_final";

/// A finished game's box scores, as a `game_final` message carries them: one line per player.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GameFinal {
    /// The game.
    pub game_id: String,
    /// One line per player.
    pub lines: Vec<GameLine>,
}

/// One player's line of a finished game.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GameLine {
    /// The game.
    pub game_id: String,
    /// The player.
    pub player_id: String,
    /// When the game was played.
    pub game_at: DateTime<Utc>,
    /// The opponent's team code.
    pub opponent_code: String,
    /// Minutes played.
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

/// Marks the undelivered message of a topic with a key delivered (after it was delivered
/// inline); false when there was none.
pub async fn mark_delivered_by_key(
    conn: &mut AsyncPgConnection,
    topic: &str,
    key: &str,
) -> Result<bool, DatabaseError> {
    let updated = diesel::update(
        outbox::table
            .filter(outbox::topic.eq(topic))
            .filter(outbox::message_key.eq(key))
            .filter(outbox::delivered_at.is_null()),
    )
    .set((outbox::delivered_at.eq(Some(Utc::now())), outbox::attempts.eq(outbox::attempts + 1)))
    .reused()
    .execute(conn)
    .await?;
    Ok(updated >= 1)
}

/// The topic of the marketplace's catalog changes (written by the marketplace's store in the
/// transaction of each change, taken in by scouting into the catalog it keeps for valuing).
pub const CATALOG_TOPIC: &str = "market_catalog";

/// One change of the marketplace's catalog, as a `market_catalog` message carries it: only
/// what another service may need of it (no owners' addresses, no sources).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogChange {
    /// A player was announced or changed.
    Player {
        /// Id.
        id: String,
        /// Name.
        full_name: String,
        /// Team, three capital letters.
        team_code: String,
        /// Position.
        position: String,
        /// Seasons played, counting this one.
        seasons_played: i32,
        /// Jersey number, when known.
        jersey_number: Option<i32>,
    },
    /// A moment joined the catalog.
    Moment {
        /// Id.
        id: uuid::Uuid,
        /// The player.
        player_id: String,
        /// The set.
        set_name: String,
        /// The play.
        play_category: String,
        /// When the play happened.
        play_at: DateTime<Utc>,
        /// Rarity tier.
        rarity: crate::Rarity,
        /// Serial number.
        serial_number: i32,
    },
    /// A listing was made, repriced or closed.
    Listing {
        /// Id.
        id: uuid::Uuid,
        /// The moment listed.
        moment_id: uuid::Uuid,
        /// Asking price.
        price_cents: i64,
        /// Still for sale.
        active: bool,
    },
    /// A moment was sold.
    Sale {
        /// Id.
        id: uuid::Uuid,
        /// The moment sold.
        moment_id: uuid::Uuid,
        /// Price.
        price_cents: i64,
        /// When.
        sold_at: DateTime<Utc>,
    },
}

impl CatalogChange {
    /// The message's key: what changed.
    pub fn key(&self) -> String {
        match self {
            Self::Player { id, .. } => format!("player:{id}"),
            Self::Moment { id, .. } => format!("moment:{id}"),
            Self::Listing { id, .. } => format!("listing:{id}"),
            Self::Sale { id, .. } => format!("sale:{id}"),
        }
    }
}

/// Announces a catalog change (inside the transaction that makes it).
pub async fn announce(conn: &mut AsyncPgConnection, change: &CatalogChange) -> Result<(), DatabaseError> {
    let payload = serde_json::to_value(change)
        .map_err(|e| DatabaseError::Query(diesel::result::Error::SerializationError(Box::new(e))))?;
    enqueue(conn, CATALOG_TOPIC, &change.key(), &payload).await?;
    Ok(())
}

/// Takes up to `size` due messages of a topic in the order they were written, waiting for
/// messages another deliverer holds (call inside a transaction): for a projection, whose
/// reader must see every change committed before it asked, in order.
pub async fn claim_in_order(
    conn: &mut AsyncPgConnection,
    topic: &str,
    now: DateTime<Utc>,
    size: i64,
) -> Result<Vec<OutboxMessage>, DatabaseError> {
    claim(conn, topic, now, size, false).await
}

/// Whether a message of a topic with this key was ever written.
pub async fn has_message(conn: &mut AsyncPgConnection, topic: &str, key: &str) -> Result<bool, DatabaseError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(outbox::table.filter(outbox::topic.eq(topic)).filter(outbox::message_key.eq(key))))
        .get_result(conn)
        .await?)
}

/// Marks messages delivered.
pub async fn mark_all_delivered(conn: &mut AsyncPgConnection, ids: &[i64]) -> Result<(), DatabaseError> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set((outbox::delivered_at.eq(Some(Utc::now())), outbox::attempts.eq(outbox::attempts + 1)))
        .execute(conn)
        .await?;
    Ok(())
}
