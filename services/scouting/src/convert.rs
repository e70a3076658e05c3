//! From scouting's rows to the contract's messages.

use crate::store::{GameEvent, GameStats, Player, Recommendation};
use fastbreak_mesh::status::timestamp;
use fastbreak_proto::scouting::v1 as pb;

use crate::valuer::Valued;

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
