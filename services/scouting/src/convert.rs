//! From scouting's rows to the contract's messages, and from a game event of the contract to a
//! line to record.

use crate::store::{self as scouting, GameEvent, GameStats, Player, Recommendation};
use chrono::{DateTime, Utc};
use fastbreak_mesh::status::{self, Violations, timestamp};
use fastbreak_proto::scouting::v1 as pb;
use tonic::Status;

use crate::valuer::{Line, Valued};

pub(crate) fn valuation_to_pb((v, factors): &Valued) -> pb::Valuation {
    pb::Valuation {
        valuation_id: v.id.to_string(),
        moment_id: v.moment_id.to_string(),
        fair_value_cents: v.fair_value_cents,
        confidence: v.confidence,
        recommendation: match v.recommendation {
            Recommendation::StrongBuy => pb::Recommendation::StrongBuy,
            Recommendation::Buy => pb::Recommendation::Buy,
            Recommendation::Hold => pb::Recommendation::Hold,
            Recommendation::Sell => pb::Recommendation::Sell,
        } as i32,
        risk_score: v.risk_score,
        price_cents: v.price_cents,
        discount_bps: v.discount_bps,
        factors: factors
            .iter()
            .map(|f| pb::ValuationFactor {
                name: f.name.clone(),
                weight: f.weight,
                impact_cents: f.impact_cents,
                explanation: f.explanation.clone(),
            })
            .collect(),
        model_version: v.model_version.clone(),
        compute_time: Some(timestamp(v.computed_at)),
        valuation_time: Some(timestamp(v.valued_at)),
    }
}

pub(crate) fn player_to_pb(p: &Player) -> pb::Player {
    pb::Player {
        player_id: p.id.clone(),
        full_name: p.full_name.clone(),
        team_code: p.team_code.clone(),
        position: p.position.clone(),
        seasons_played: p.seasons_played,
        rookie: p.seasons_played == 1,
        jersey_number: p.jersey_number,
    }
}

pub(crate) fn stats_to_pb(s: &GameStats) -> pb::PlayerGameStats {
    pb::PlayerGameStats {
        game_id: s.game_id.clone(),
        player_id: s.player_id.clone(),
        game_time: Some(timestamp(s.game_at)),
        opponent_code: s.opponent_code.clone(),
        minutes: s.minutes,
        points: s.points,
        rebounds: s.rebounds,
        assists: s.assists,
        steals: s.steals,
        blocks: s.blocks,
        turnovers: s.turnovers,
    }
}

pub(crate) fn event_to_pb((e, stats): &(GameEvent, Option<GameStats>)) -> pb::GameEvent {
    pb::GameEvent {
        event_id: e.id.clone(),
        game_id: e.game_id.clone(),
        player_id: e.player_id.clone(),
        stats: stats.as_ref().map(stats_to_pb),
        r#final: e.is_final,
        highlights: e.highlights.clone(),
        event_time: Some(timestamp(e.occurred_at)),
        sequence: e.sequence,
    }
}

/// A game event as `IngestGameEvent` takes it, checked field by field (every bad field named);
/// a line without a time of its own is dated `now`.
pub(crate) fn line_from_pb(event: Option<pb::GameEvent>, now: DateTime<Utc>) -> Result<Line, Status> {
    let mut violations = Violations::new();
    let Some(event) = event else {
        violations.add("event", "required");
        return Err(violations.into_status());
    };
    for (field, value) in
        [("event.event_id", &event.event_id), ("event.game_id", &event.game_id), ("event.player_id", &event.player_id)]
    {
        violations.check((1..=128).contains(&value.chars().count()), field, "must be 1 to 128 characters");
    }
    let stats = event.stats.clone().unwrap_or_default();
    violations.check(event.stats.is_some(), "event.stats", "required: the player's line");
    let game_at = match (&stats.game_time, &event.event_time) {
        (Some(t), _) => status::time_field(t, "event.stats.game_time", &mut violations),
        (None, Some(t)) => status::time_field(t, "event.event_time", &mut violations),
        (None, None) => {
            violations.add("event.stats.game_time", "required: when the game was played");
            None
        }
    };
    let opponent_ok = stats.opponent_code.len() == 3 && stats.opponent_code.bytes().all(|b| b.is_ascii_uppercase());
    violations.check(opponent_ok, "event.stats.opponent_code", "must be three capital letters");
    for (field, value) in [
        ("minutes", stats.minutes),
        ("points", stats.points),
        ("rebounds", stats.rebounds),
        ("assists", stats.assists),
        ("steals", stats.steals),
        ("blocks", stats.blocks),
        ("turnovers", stats.turnovers),
    ] {
        violations.check(value >= 0, format!("event.stats.{field}"), "must not be negative");
    }
    violations.check(stats.minutes <= 70, "event.stats.minutes", "at most 70");
    violations.into_result(())?;
    Ok(Line {
        event_id: event.event_id.clone(),
        stats: scouting::GameStats {
            game_id: event.game_id.clone(),
            player_id: event.player_id.clone(),
            game_at: game_at.unwrap_or(now),
            opponent_code: stats.opponent_code.clone(),
            minutes: stats.minutes,
            points: stats.points,
            rebounds: stats.rebounds,
            assists: stats.assists,
            steals: stats.steals,
            blocks: stats.blocks,
            turnovers: stats.turnovers,
        },
        is_final: event.r#final,
        highlights: event.highlights.clone(),
    })
}
