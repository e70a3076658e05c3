//! The box-score worker: keeps scouting's catalog current, takes `game_final` messages from the
//! outbox (written by the marketplace's feeds), records each line as a game event, and
//! re-values the players' listed moments. Messages are claimed with row locks (replicas skip each other's) and marked
//! delivered in the transaction that records them, so each game is recorded once.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use fastbreak_db::outbox::{self, GameFinal};
use fastbreak_db::{Database, DatabaseError};
use fastbreak_mesh::Draining;
use futures::FutureExt;
use tokio::sync::watch;

use crate::catalog;
use crate::settings::Settings;
use crate::store as scouting;
use crate::valuer::{self, Line};

/// Games taken per round.
const BATCH: i64 = 20;

/// The lines of a finished game, as events.
pub fn lines(game: &GameFinal) -> Vec<Line> {
    game.lines
        .iter()
        .map(|stats| Line {
            event_id: format!("{}:{}", game.game_id, stats.player_id),
            stats: scouting::GameStats {
                game_id: stats.game_id.clone(),
                player_id: stats.player_id.clone(),
                game_at: stats.game_at,
                opponent_code: stats.opponent_code.clone(),
                minutes: stats.minutes,
                points: stats.points,
                rebounds: stats.rebounds,
                assists: stats.assists,
                steals: stats.steals,
                blocks: stats.blocks,
                turnovers: stats.turnovers,
            },
            is_final: true,
            highlights: Vec::new(),
        })
        .collect()
}

/// Takes in box scores until draining begins.
#[derive(Debug, Clone)]
pub struct BoxScoreWorker {
    database: Database,
    settings: Arc<Settings>,
    written: watch::Sender<u64>,
}

impl BoxScoreWorker {
    /// A worker that bumps `written` after it records events.
    pub fn new(database: Database, settings: Arc<Settings>, written: watch::Sender<u64>) -> Self {
        Self { database, settings, written }
    }

    /// One round: the catalog's changes taken in first (a game names players the catalog
    /// announced before it), then the games; returns the players whose games were recorded.
    pub async fn round(&self) -> Result<BTreeSet<String>, DatabaseError> {
        catalog::catch_up(&self.database).await?;
        self.database
            .read_committed(|conn| {
                async move {
                    let now = Utc::now();
                    let mut players = BTreeSet::new();
                    for message in outbox::claim_due(conn, outbox::GAME_FINAL_TOPIC, now, BATCH).await? {
                        // A message that cannot be read, or names a player scouting does not
                        // know, is set aside: it must not hold up the games behind it.
                        let game = match serde_json::from_value::<GameFinal>(message.payload.clone()) {
                            Err(error) => Err(error.to_string()),
                            Ok(game) => {
                                let mut missing = Vec::new();
                                for line in &game.lines {
                                    if scouting::find_player(conn, &line.player_id).await?.is_none() {
                                        missing.push(line.player_id.clone());
                                    }
                                }
                                if missing.is_empty() {
                                    Ok(game)
                                } else {
                                    Err(format!("unknown players: {}", missing.join(", ")))
                                }
                            }
                        };
                        match game {
                            Ok(game) => {
                                for line in lines(&game) {
                                    if valuer::record(conn, &line, now).await? {
                                        players.insert(line.stats.player_id.clone());
                                    }
                                }
                                outbox::mark_delivered(conn, message.id).await?;
                            }
                            Err(error) => {
                                tracing::error!(id = message.id, %error, "a game_final message cannot be recorded; set aside for a day");
                                outbox::mark_failed(conn, message.id, &error, now + Duration::days(1)).await?;
                            }
                        }
                    }
                    Ok(players)
                }
                .boxed()
            })
            .await
    }

    /// Runs rounds until draining begins.
    pub async fn run(self, mut draining: Draining) {
        loop {
            match self.round().await {
                Ok(players) if !players.is_empty() => {
                    self.written.send_modify(|n| *n += 1);
                    for player in players {
                        match valuer::revalue_player(&self.database, &player, self.settings.revalue_limit).await {
                            Ok(count) => tracing::debug!(%player, count, "moments re-valued after a game"),
                            Err(error) => tracing::warn!(%player, %error, "cannot re-value the player's moments"),
                        }
                    }
                    if draining.is_draining() {
                        return;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "box scores could not be taken in; trying again"),
            }
            if draining.sleep(self.settings.poll_interval).await {
                return;
            }
        }
    }
}
