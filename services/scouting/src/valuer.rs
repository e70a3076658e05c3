//! Valuations from the database (comparable sales, the player's games), stored with an id so
//! that a decision can point at the exact valuation it used; and box scores recorded as game
//! events.

use crate::store::{self as scouting, GameEvent, GameStats, Recommendation, Valuation, ValuationFactor};
use chrono::{DateTime, Duration, Utc};
use fastbreak_db::{Database, DatabaseError, PgConnection};
use futures::FutureExt;
use uuid::Uuid;

use crate::domain::{self, Advice, Game, Sale, Target};

/// A stored valuation with its factors.
pub type Valued = (Valuation, Vec<ValuationFactor>);

/// What valuing found.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A valuation, stored.
    Valued(Valued),
    /// No comparable sale in the window: the model will not guess.
    NoComparables,
}

/// Values a moment (against `price`, if given) at the instant `now` — the sales and games up to
/// it, their age reckoned from it — and stores the valuation.
pub async fn value(
    database: &Database,
    moment_id: Uuid,
    price: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Outcome, DatabaseError> {
    let inputs = database
        .read(|conn| {
            async move {
                let moment = scouting::find_moment(conn, moment_id).await?.ok_or(DatabaseError::NotFound("moment"))?;
                let player = scouting::find_player(conn, &moment.player_id).await?;
                let games =
                    scouting::recent_game_stats(conn, &moment.player_id, now, domain::GAMES_READ as i64).await?;
                let since = now - Duration::days(domain::WINDOW_DAYS as i64);
                let sales = scouting::comparable_sales(conn, moment_id, since, now, domain::SALES_READ as i64).await?;
                Ok((moment, player, games, sales))
            }
            .boxed()
        })
        .await?;
    let (moment, player, games, sales) = inputs;
    let target = Target {
        serial: moment.serial_number,
        jersey: player.as_ref().and_then(|p| p.jersey_number),
        tier: moment.rarity.as_str().to_owned(),
    };
    let name = player.as_ref().map_or_else(|| moment.player_id.clone(), |p| p.full_name.clone());
    let games: Vec<Game> = games.iter().map(|g| Game { points: g.points, played_at: g.game_at }).collect();
    let sales: Vec<Sale> = sales
        .iter()
        .map(|s| Sale {
            same_play: s.same_play,
            serial: s.serial_number,
            price_cents: s.price_cents,
            sold_at: s.sold_at,
        })
        .collect();
    let Some(estimate) = domain::value_at(&target, &name, &games, &sales, now) else {
        return Ok(Outcome::NoComparables);
    };
    let id = Uuid::new_v4();
    let valuation = Valuation {
        id,
        moment_id,
        fair_value_cents: estimate.fair_value_cents,
        confidence: estimate.confidence,
        recommendation: match domain::advise(&estimate, price) {
            Advice::StrongBuy => Recommendation::StrongBuy,
            Advice::Buy => Recommendation::Buy,
            Advice::Hold => Recommendation::Hold,
            Advice::Sell => Recommendation::Sell,
        },
        risk_score: estimate.risk_score,
        price_cents: price,
        discount_bps: price.map(|p| domain::discount_bps(estimate.fair_value_cents, p)),
        model_version: domain::MODEL_VERSION.to_owned(),
        // A valuation at an instant past is computed now.
        computed_at: Utc::now().max(now),
        valued_at: now,
    };
    let factors: Vec<ValuationFactor> = estimate
        .factors
        .iter()
        .enumerate()
        .map(|(i, f)| ValuationFactor {
            valuation_id: id,
            rank: i as i32 + 1,
            name: f.name.to_owned(),
            weight: f.weight,
            impact_cents: f.impact_cents,
            explanation: f.explanation.clone(),
        })
        .collect();
    let stored = database
        .transaction(|conn| {
            let (valuation, factors) = (valuation.clone(), factors.clone());
            async move { scouting::insert_valuation(conn, &valuation, &factors).await }.boxed()
        })
        .await?;
    Ok(Outcome::Valued(stored))
}

/// A player's line in a game, as a source reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The event's id: one record per id.
    pub event_id: String,
    /// The stats.
    pub stats: GameStats,
    /// The game is over.
    pub is_final: bool,
    /// Highlights the source named.
    pub highlights: Vec<String>,
}

/// Records a line and its game event (with the highlights it earned); true when the event is
/// new.
pub async fn record(conn: &mut PgConnection, line: &Line, now: DateTime<Utc>) -> Result<bool, DatabaseError> {
    let s = &line.stats;
    let before = scouting::game_stats_page(conn, &s.player_id, None, 0, 200).await?;
    let previous_high = before.iter().filter(|g| g.game_id != s.game_id).map(|g| g.points).max();
    let mut highlights = line.highlights.clone();
    let mut note = |h: &str| {
        if !highlights.iter().any(|x| x == h) {
            highlights.push(h.to_owned());
        }
    };
    if s.points >= 40 {
        note("forty_point_game");
    }
    if previous_high.is_some_and(|high| s.points > high) {
        note("career_high_points");
    }
    let tens = [s.points, s.rebounds, s.assists, s.steals, s.blocks].iter().filter(|v| **v >= 10).count();
    if tens >= 3 {
        note("triple_double");
    } else if tens == 2 {
        note("double_double");
    }
    let event = GameEvent {
        id: line.event_id.clone(),
        game_id: s.game_id.clone(),
        player_id: s.player_id.clone(),
        is_final: line.is_final,
        highlights,
        occurred_at: s.game_at,
        ingested_at: now,
        sequence: 0,
    };
    // An event seen before changes nothing, not even the line it carried.
    let new = scouting::insert_game_event(conn, &event).await?;
    if new {
        scouting::upsert_game_stats(conn, s).await?;
    }
    Ok(new)
}

/// Re-values a player's listed moments; returns how many were valued.
pub async fn revalue_player(database: &Database, player_id: &str, limit: i64) -> Result<usize, DatabaseError> {
    let player = player_id.to_owned();
    let moments = database
        .read(|conn| async move { scouting::listed_moments_of_player(conn, &player, limit).await }.boxed())
        .await?;
    let now = Utc::now();
    let mut valued = 0;
    for moment in moments {
        if let Outcome::Valued(_) = value(database, moment, None, now).await? {
            valued += 1;
        }
    }
    Ok(valued)
}
