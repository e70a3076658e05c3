//! A local stand-in for the NBA's live data (`cdn.nba.com/static/json/liveData`), for tests and
//! demos: today's scoreboard (`scoreboard/todaysScoreboard_00.json`: `scoreboard.gameDate`,
//! `scoreboard.games[]` with `gameId`, `gameStatus` — 3 is final — `gameTimeUTC` and the teams'
//! `teamTricode`) and each game's box score (`boxscore/boxscore_<gameId>.json`: `game.homeTeam` and
//! `game.awayTeam`, each with `teamTricode` and `players[]`: `personId`, `name`, `played`, and
//! `statistics` with `minutes` as an ISO 8601 duration, `points`, `reboundsTotal`, `assists`,
//! `steals`, `blocks`, `turnovers`).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::fake_graphql::{LocalServer, serve_http};

/// One player's line.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerLine {
    /// `personId`.
    pub person_id: u64,
    /// `name`.
    pub name: String,
    /// Minutes played (written as `PT<m>M<s>.00S`).
    pub minutes: u32,
    /// Seconds beyond the minutes.
    pub seconds: u32,
    /// `points`.
    pub points: u32,
    /// `reboundsTotal`.
    pub rebounds: u32,
    /// `assists`.
    pub assists: u32,
    /// `steals`.
    pub steals: u32,
    /// `blocks`.
    pub blocks: u32,
    /// `turnovers`.
    pub turnovers: u32,
}

/// A game of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    /// `gameId`, such as `0022600321`.
    pub game_id: String,
    /// `gameStatus`: 1 scheduled, 2 live, 3 final.
    pub status: u8,
    /// `gameTimeUTC`.
    pub time_utc: String,
    /// The home team's tricode and players.
    pub home: (String, Vec<PlayerLine>),
    /// The away team's tricode and players.
    pub away: (String, Vec<PlayerLine>),
}

fn team(tricode: &str, players: &[PlayerLine]) -> Value {
    let players: Vec<Value> = players
        .iter()
        .map(|p| {
            json!({
                "status": "ACTIVE",
                "personId": p.person_id,
                "name": p.name,
                "played": "1",
                "statistics": {
                    "minutes": format!("PT{:02}M{:02}.00S", p.minutes, p.seconds),
                    "points": p.points,
                    "reboundsTotal": p.rebounds,
                    "assists": p.assists,
                    "steals": p.steals,
                    "blocks": p.blocks,
                    "turnovers": p.turnovers,
                },
            })
        })
        .collect();
    json!({"teamTricode": tricode, "players": players})
}

#[derive(Debug, Default)]
struct Inner {
    date: String,
    games: Vec<Game>,
    fetched: Vec<String>,
}

/// The fake's handle.
#[derive(Debug, Clone, Default)]
pub struct FakeNbaLiveData {
    inner: Arc<Mutex<Inner>>,
}

impl FakeNbaLiveData {
    /// The day `date` (`YYYY-MM-DD`) with `games`.
    pub fn new(date: &str, games: Vec<Game>) -> Self {
        Self { inner: Arc::new(Mutex::new(Inner { date: date.to_owned(), games, fetched: Vec::new() })) }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes a game's status (a game ends).
    pub fn set_status(&self, game_id: &str, status: u8) {
        if let Some(game) = self.inner().games.iter_mut().find(|g| g.game_id == game_id) {
            game.status = status;
        }
    }

    /// The box scores fetched so far, by game id.
    pub fn fetched(&self) -> Vec<String> {
        self.inner().fetched.clone()
    }

    /// Serves `/static/json/liveData/...` on `127.0.0.1` at a free port until dropped.
    pub async fn serve(&self) -> FakeNbaServer {
        let app = axum::Router::new()
            .route("/static/json/liveData/scoreboard/todaysScoreboard_00.json", get(scoreboard))
            .route("/static/json/liveData/boxscore/{file}", get(boxscore))
            .with_state(self.clone());
        FakeNbaServer(serve_http(app).await)
    }
}

/// The running fake; it stops when dropped.
#[derive(Debug)]
pub struct FakeNbaServer(pub LocalServer);

impl FakeNbaServer {
    /// The live data's base URL (`…/static/json/liveData`).
    pub fn url(&self) -> String {
        format!("http://{}/static/json/liveData", self.0.address)
    }
}

async fn scoreboard(State(fake): State<FakeNbaLiveData>) -> Json<Value> {
    let inner = fake.inner();
    let games: Vec<Value> = inner
        .games
        .iter()
        .map(|g| {
            json!({
                "gameId": g.game_id,
                "gameStatus": g.status,
                "gameStatusText": match g.status { 3 => "Final", 2 => "Q3 5:12", _ => "7:30 pm ET" },
                "gameTimeUTC": g.time_utc,
                "homeTeam": {"teamTricode": g.home.0},
                "awayTeam": {"teamTricode": g.away.0},
            })
        })
        .collect();
    Json(
        json!({"meta": {"version": 1, "code": 200}, "scoreboard": {"gameDate": inner.date, "leagueId": "00", "games": games}}),
    )
}

async fn boxscore(State(fake): State<FakeNbaLiveData>, Path(file): Path<String>) -> Result<Json<Value>, StatusCode> {
    let id = file.strip_prefix("boxscore_").and_then(|f| f.strip_suffix(".json")).ok_or(StatusCode::NOT_FOUND)?;
    let mut inner = fake.inner();
    inner.fetched.push(id.to_owned());
    let game = inner.games.iter().find(|g| g.game_id == id).ok_or(StatusCode::FORBIDDEN)?;
    Ok(Json(json!({"meta": {"version": 1, "code": 200}, "game": {
        "gameId": game.game_id,
        "gameTimeUTC": game.time_utc,
        "gameStatus": game.status,
        "homeTeam": team(&game.home.0, &game.home.1),
        "awayTeam": team(&game.away.0, &game.away.1),
    }})))
}
