//! Real box scores, from the NBA's live data (`https://cdn.nba.com/static/json/liveData`): today's
//! scoreboard, then each finished game's box score, given as the same `GameFinal` source event
//! the simulator's games are (the ingest passes them to scouting through the outbox, for the
//! post-game-spike strategies). Players are named `nba-<personId>`, as the Flow feed names the
//! players of Top Shot's moments.
//!
//! Every finished game of the scoreboard's day is given on each poll: the ingest stores one
//! message per game and set of the catalog's players in it, so a game is passed on once, and
//! again only when a player of it joined the catalog since (scouting records each line once).

use std::time::Duration;

use fastbreak_market_sim::BoxScore;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::feed::{FeedError, MarketFeed, SourceEvent, SourceInfo};

/// The feed's name, under which its position is stored.
pub const FEED_NAME: &str = "nba-box-scores";

/// The NBA's box scores.
#[derive(Debug)]
pub struct BoxScoreFeed {
    base: String,
    http: reqwest::Client,
    poll: Duration,
    polled: bool,
}

impl BoxScoreFeed {
    /// The live data at `base` (`…/static/json/liveData`), polled every `poll`.
    pub fn new(base: &str, poll: Duration, timeout: Duration) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().timeout(timeout).build().unwrap_or_default(),
            poll,
            polled: false,
        }
    }

    async fn get(&self, path: &str) -> Result<Value, FeedError> {
        let url = format!("{}/{path}", self.base);
        let response =
            self.http.get(&url).send().await.map_err(|e| FeedError(format!("the NBA's live data at {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(FeedError(format!("the NBA's live data at {url} answered {}", response.status())));
        }
        response.json().await.map_err(|e| FeedError(format!("the NBA's live data at {url} is not JSON: {e}")))
    }

    async fn batch(&mut self) -> Result<Vec<SourceEvent>, FeedError> {
        self.polled = true;
        let board = self.get("scoreboard/todaysScoreboard_00.json").await?;
        let finished: Vec<String> = board["scoreboard"]["games"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|g| g["gameStatus"].as_u64() == Some(3))
            .filter_map(|g| g["gameId"].as_str().map(str::to_owned))
            .collect();
        let mut events = Vec::new();
        for game_id in finished {
            let score = self.get(&format!("boxscore/boxscore_{game_id}.json")).await?;
            let lines = lines(&game_id, &score["game"]);
            if !lines.is_empty() {
                events.push(SourceEvent::GameFinal { game_id, lines });
            }
        }
        Ok(events)
    }
}

/// The lines of the players who played in a box score's `game`.
fn lines(game_id: &str, game: &Value) -> Vec<BoxScore> {
    let mut lines = Vec::new();
    for (side, other) in [("homeTeam", "awayTeam"), ("awayTeam", "homeTeam")] {
        let opponent = game[other]["teamTricode"].as_str().unwrap_or_default().to_owned();
        for player in game[side]["players"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let (Some(id), true) = (player["personId"].as_u64(), player["played"] == "1") else { continue };
            let stats = &player["statistics"];
            let count = |name: &str| stats[name].as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(0).max(0);
            lines.push(BoxScore {
                game_id: game_id.to_owned(),
                player_id: format!("nba-{id}"),
                opponent_code: opponent.clone(),
                minutes: minutes(stats["minutes"].as_str().unwrap_or_default()),
                points: count("points"),
                rebounds: count("reboundsTotal"),
                assists: count("assists"),
                steals: count("steals"),
                blocks: count("blocks"),
                turnovers: count("turnovers"),
                career_high: false,
            });
        }
    }
    lines
}

/// Whole minutes of an ISO 8601 duration as the live data writes them (`PT35M12.00S`); 0 when
/// it cannot be read.
pub fn minutes(text: &str) -> i32 {
    text.strip_prefix("PT")
        .and_then(|rest| rest.split_once('M'))
        .and_then(|(m, _)| m.parse::<i32>().ok())
        .unwrap_or(0)
        .clamp(0, 70)
}

impl MarketFeed for BoxScoreFeed {
    fn name(&self) -> &str {
        FEED_NAME
    }

    fn sources(&self) -> Vec<SourceInfo> {
        Vec::new()
    }

    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<SourceEvent>, FeedError>> {
        self.batch().boxed()
    }

    fn pace(&self) -> Duration {
        if self.polled { self.poll } else { Duration::ZERO }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_read_from_the_live_datas_durations() {
        assert_eq!(minutes("PT35M12.00S"), 35);
        assert_eq!(minutes("PT00M00.00S"), 0);
        assert_eq!(minutes(""), 0);
        assert_eq!(minutes("PT99M00.00S"), 70, "never beyond what a game allows");
    }
}
