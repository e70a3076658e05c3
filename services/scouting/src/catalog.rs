//! Scouting's catalog: its own copy of what valuing needs of the marketplace's players,
//! moments, listings and sales, kept from the marketplace's `market_catalog` messages (written
//! in the transaction of each change; see `fastbreak_db::outbox::CatalogChange`).
//!
//! Every read that depends on the catalog catches up first: it takes the messages committed
//! before it asked, in the order they were written, waiting for the ones another replica is
//! taking in. So a valuation asked for right after the marketplace answered sees what the
//! marketplace had just written, as it did when scouting read the marketplace's tables.

use chrono::{Duration, Utc};
use fastbreak_db::outbox::{self, CATALOG_TOPIC, CatalogChange};
use fastbreak_db::{Database, DatabaseError, PgConnection};
use futures::FutureExt;

use crate::store::{self as scouting, Moment, Player};

/// Messages taken per transaction.
const BATCH: i64 = 500;

/// Takes in every catalog change committed so far; returns how many were taken in.
pub async fn catch_up(database: &Database) -> Result<usize, DatabaseError> {
    let mut taken = 0;
    loop {
        let (seen, applied) = database.read_committed(|conn| take_batch(conn).boxed()).await?;
        taken += applied;
        if seen < BATCH as usize {
            return Ok(taken);
        }
    }
}

/// Takes in every catalog change committed so far on one connection (in the caller's
/// transaction, if any); returns how many were taken in.
pub async fn catch_up_on(conn: &mut PgConnection) -> Result<usize, DatabaseError> {
    let mut taken = 0;
    loop {
        let (seen, applied) = take_batch(conn).await?;
        taken += applied;
        if seen < BATCH as usize {
            return Ok(taken);
        }
    }
}

/// Takes in up to one batch of due catalog changes in the caller's transaction; returns how
/// many messages were seen and how many of them were taken in (the rest are set aside).
pub async fn take_batch(conn: &mut PgConnection) -> Result<(usize, usize), DatabaseError> {
    let now = Utc::now();
    let messages = outbox::claim_in_order(conn, CATALOG_TOPIC, now, BATCH).await?;
    let mut delivered = Vec::with_capacity(messages.len());
    for message in &messages {
        let outcome = match serde_json::from_value::<CatalogChange>(message.payload.clone()) {
            Ok(change) => apply(conn, message.id, &change).await?,
            Err(error) => Err(format!("not a catalog change: {error}")),
        };
        match outcome {
            Ok(()) => delivered.push(message.id),
            Err(error) => {
                // A change that cannot be taken in must not hold up the ones behind it.
                tracing::error!(id = message.id, key = %message.message_key, %error, "a catalog change is set aside for an hour");
                outbox::mark_failed(conn, message.id, &error, now + Duration::hours(1)).await?;
            }
        }
    }
    outbox::mark_all_delivered(conn, &delivered).await?;
    Ok((messages.len(), delivered.len()))
}

/// Takes in one change, as of message `version`; `Err` names why it cannot be (the database
/// is not touched then).
async fn apply(
    conn: &mut PgConnection,
    version: i64,
    change: &CatalogChange,
) -> Result<Result<(), String>, DatabaseError> {
    match change {
        CatalogChange::Player { id, full_name, team_code, position, seasons_played, jersey_number } => {
            let player = Player {
                id: id.clone(),
                full_name: full_name.clone(),
                team_code: team_code.clone(),
                position: position.clone(),
                seasons_played: *seasons_played,
                jersey_number: *jersey_number,
            };
            scouting::upsert_player(conn, &player).await?;
        }
        CatalogChange::Moment { id, player_id, set_name, play_category, play_at, rarity, serial_number } => {
            if scouting::find_player(conn, player_id).await?.is_none() {
                return Ok(Err(format!("moment {id} of unknown player {player_id}")));
            }
            let moment = Moment {
                id: *id,
                player_id: player_id.clone(),
                set_name: set_name.clone(),
                play_category: play_category.clone(),
                play_at: *play_at,
                rarity: *rarity,
                serial_number: *serial_number,
            };
            scouting::insert_moment(conn, &moment).await?;
        }
        CatalogChange::Listing { id, moment_id, price_cents, active } => {
            if scouting::find_moment(conn, *moment_id).await?.is_none() {
                return Ok(Err(format!("listing {id} of unknown moment {moment_id}")));
            }
            scouting::upsert_listing(conn, *id, *moment_id, *price_cents, *active, version).await?;
        }
        CatalogChange::Sale { id, moment_id, price_cents, sold_at } => {
            if scouting::find_moment(conn, *moment_id).await?.is_none() {
                return Ok(Err(format!("sale {id} of unknown moment {moment_id}")));
            }
            scouting::insert_sale(conn, *id, *moment_id, *price_cents, *sold_at).await?;
        }
    }
    Ok(Ok(()))
}
