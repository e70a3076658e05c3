//! Conversions between the contract's messages and the strategy domain: what arrives is
//! validated once here, every violation named by its field path.

use crate::store::{Strategy as StrategyRow, StrategyKind, StrategyState, StrategyTemplate};
use fastbreak_db::Rarity;
use fastbreak_mesh::status::{Violations, timestamp};
use fastbreak_proto::common::v1::Rarity as PbRarity;
use fastbreak_proto::strategy::v1 as pb;
use pb::strategy::Parameters as PbParameters;

use crate::domain::{
    self, ArbitrageMode, CooldownAfterLoss, DailyScan, DrawdownGuard, LosingStreakGuard, Parameters, PostGameSpike,
    Protections, RookieRisers, Rules, Stat, StatTrigger, StoredParametersError, StrategySpec,
};

/// A contract rarity as stored; `None` for unspecified or unknown values.
pub fn rarity_from_pb(value: i32) -> Option<Rarity> {
    match PbRarity::try_from(value).ok()? {
        PbRarity::Unspecified => None,
        PbRarity::Common => Some(Rarity::Common),
        PbRarity::Fandom => Some(Rarity::Fandom),
        PbRarity::Rare => Some(Rarity::Rare),
        PbRarity::Legendary => Some(Rarity::Legendary),
        PbRarity::Ultimate => Some(Rarity::Ultimate),
    }
}

fn rarity_to_pb(name: &str) -> i32 {
    let rarity = match name.parse::<Rarity>() {
        Ok(Rarity::Common) => PbRarity::Common,
        Ok(Rarity::Fandom) => PbRarity::Fandom,
        Ok(Rarity::Rare) => PbRarity::Rare,
        Ok(Rarity::Legendary) => PbRarity::Legendary,
        Ok(Rarity::Ultimate) => PbRarity::Ultimate,
        Err(_) => PbRarity::Unspecified,
    };
    rarity as i32
}

/// A contract kind as stored; `None` for unspecified or unknown values.
pub fn kind_from_pb(value: i32) -> Option<StrategyKind> {
    match pb::StrategyKind::try_from(value).ok()? {
        pb::StrategyKind::Unspecified => None,
        pb::StrategyKind::RookieRisers => Some(StrategyKind::RookieRisers),
        pb::StrategyKind::PostGameSpike => Some(StrategyKind::PostGameSpike),
        pb::StrategyKind::ArbitrageMode => Some(StrategyKind::ArbitrageMode),
    }
}

fn kind_to_pb(kind: StrategyKind) -> pb::StrategyKind {
    match kind {
        StrategyKind::RookieRisers => pb::StrategyKind::RookieRisers,
        StrategyKind::PostGameSpike => pb::StrategyKind::PostGameSpike,
        StrategyKind::ArbitrageMode => pb::StrategyKind::ArbitrageMode,
    }
}

/// A contract state as stored; `None` for unspecified.
pub fn state_from_pb(value: i32) -> Option<StrategyState> {
    match pb::StrategyState::try_from(value).ok()? {
        pb::StrategyState::Active => Some(StrategyState::Active),
        pb::StrategyState::Paused => Some(StrategyState::Paused),
        pb::StrategyState::Unspecified => None,
    }
}

fn stat_from_pb(value: i32) -> Option<Stat> {
    match pb::Stat::try_from(value).ok()? {
        pb::Stat::Unspecified => None,
        pb::Stat::Points => Some(Stat::Points),
        pb::Stat::Rebounds => Some(Stat::Rebounds),
        pb::Stat::Assists => Some(Stat::Assists),
        pb::Stat::Steals => Some(Stat::Steals),
        pb::Stat::Blocks => Some(Stat::Blocks),
    }
}

fn stat_to_pb(stat: Stat) -> pb::Stat {
    match stat {
        Stat::Points => pb::Stat::Points,
        Stat::Rebounds => pb::Stat::Rebounds,
        Stat::Assists => pb::Stat::Assists,
        Stat::Steals => pb::Stat::Steals,
        Stat::Blocks => pb::Stat::Blocks,
    }
}

fn rarities(values: &[i32], field: &str, violations: &mut Violations) -> Vec<String> {
    let given: Vec<Option<Rarity>> = values.iter().map(|v| rarity_from_pb(*v)).collect();
    domain::rarities(&given, field, violations)
}

fn parameters_from_pb(given: Option<&PbParameters>, violations: &mut Violations) -> Option<Parameters> {
    let Some(given) = given else {
        violations
            .add("strategy.parameters", "exactly one of rookie_risers, post_game_spike or arbitrage_mode must be set");
        return None;
    };
    Some(match given {
        PbParameters::RookieRisers(p) => Parameters::RookieRisers(RookieRisers {
            max_seasons_played: p.max_seasons_played,
            min_performance_rise_percent: p.min_performance_rise_percent,
            rarities: rarities(&p.rarities, "strategy.rookie_risers.rarities", violations),
            team_codes: p.team_codes.iter().map(|c| c.trim().to_ascii_uppercase()).collect(),
        }),
        PbParameters::PostGameSpike(p) => Parameters::PostGameSpike(PostGameSpike {
            min_game_score: p.min_game_score,
            buy_window_minutes: p.buy_window_minutes,
            player_ids: p.player_ids.iter().map(|id| id.trim().to_owned()).collect(),
            rarities: rarities(&p.rarities, "strategy.post_game_spike.rarities", violations),
            stat_triggers: p
                .stat_triggers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let stat = stat_from_pb(t.stat);
                    violations.check(
                        stat.is_some(),
                        format!("strategy.post_game_spike.stat_triggers[{i}].stat"),
                        "must be a statistic (not STAT_UNSPECIFIED)",
                    );
                    Some(StatTrigger { stat: stat?, at_least: t.at_least })
                })
                .collect(),
        }),
        PbParameters::ArbitrageMode(p) => Parameters::ArbitrageMode(ArbitrageMode {
            min_spread_bps: p.min_spread_bps,
            buy_source_ids: p.buy_source_ids.iter().map(|id| id.trim().to_owned()).collect(),
            relist_source_ids: p.relist_source_ids.iter().map(|id| id.trim().to_owned()).collect(),
            auto_relist: p.auto_relist,
        }),
    })
}

/// Protections as the user sent them (unset: none); validated by the caller.
fn protections_from_pb(given: Option<&pb::StrategyProtections>) -> Protections {
    let Some(p) = given else { return Protections::default() };
    Protections {
        cooldown_after_loss: p
            .cooldown_after_loss
            .map(|c| CooldownAfterLoss { minutes: c.minutes, per_player: c.per_player }),
        losing_streak: p.losing_streak.map(|g| LosingStreakGuard {
            losing_trades: g.losing_trades,
            window_minutes: g.window_minutes,
            pause_minutes: g.pause_minutes,
        }),
        drawdown: p.drawdown.map(|g| DrawdownGuard {
            max_drawdown_bps: g.max_drawdown_bps,
            window_minutes: g.window_minutes,
            pause_minutes: g.pause_minutes,
        }),
        max_daily_loss_cents: p.max_daily_loss_cents,
        blocked_player_ids: p.blocked_player_ids.iter().map(|id| id.trim().to_owned()).collect(),
        blocked_set_names: p.blocked_set_names.iter().map(|name| name.trim().to_owned()).collect(),
        approval_expire_after_minutes: p.manual_approval.map(|m| m.expire_after_minutes),
    }
}

/// Protections as the contract shows them; `None` when there are none.
fn protections_to_pb(p: Protections) -> Option<pb::StrategyProtections> {
    (p != Protections::default()).then(|| pb::StrategyProtections {
        cooldown_after_loss: p
            .cooldown_after_loss
            .map(|c| pb::CooldownAfterLoss { minutes: c.minutes, per_player: c.per_player }),
        losing_streak: p.losing_streak.map(|g| pb::LosingStreakGuard {
            losing_trades: g.losing_trades,
            window_minutes: g.window_minutes,
            pause_minutes: g.pause_minutes,
        }),
        drawdown: p.drawdown.map(|g| pb::DrawdownGuard {
            max_drawdown_bps: g.max_drawdown_bps,
            window_minutes: g.window_minutes,
            pause_minutes: g.pause_minutes,
        }),
        max_daily_loss_cents: p.max_daily_loss_cents,
        blocked_player_ids: p.blocked_player_ids,
        blocked_set_names: p.blocked_set_names,
        manual_approval: p.approval_expire_after_minutes.map(|m| pb::ManualApproval { expire_after_minutes: m }),
    })
}

/// Validates a strategy as the user sent it (fields under "strategy."): every violation at once.
pub fn spec_from_pb(strategy: &pb::Strategy) -> Result<StrategySpec, Violations> {
    let mut violations = Violations::new();
    let display_name = domain::display_name(&strategy.display_name, "strategy.display_name", &mut violations);
    let rules = strategy.rules.as_ref().map(|r| Rules {
        min_confidence: r.min_confidence,
        min_discount_bps: r.min_discount_bps,
        max_price_cents: r.max_price_cents,
        max_purchases_per_day: r.max_purchases_per_day,
    });
    match &rules {
        Some(rules) => rules.validate("strategy.rules", &mut violations),
        None => violations.add("strategy.rules", "is required"),
    }
    let parameters = parameters_from_pb(strategy.parameters.as_ref(), &mut violations);
    if let Some(parameters) = &parameters {
        parameters.validate("strategy", &mut violations);
    }
    let priority = domain::priority(strategy.priority, "strategy.priority", &mut violations);
    let daily_scan = strategy
        .daily_scan
        .as_ref()
        .and_then(|scan| DailyScan::parse(&scan.time_of_day, &scan.time_zone, "strategy.daily_scan", &mut violations));
    let protections = protections_from_pb(strategy.protections.as_ref());
    protections.validate("strategy.protections", &mut violations);
    if matches!(parameters, Some(Parameters::ArbitrageMode(_))) {
        // An arbitrage buys where a spread opens and relists at once: it has no moment's player
        // or set to look at before, and a spread does not wait for an approval.
        let field = |name: &str| format!("strategy.protections.{name}");
        let unsupported = "does not apply to arbitrage mode (its pauses after losses do)";
        violations.check(protections.blocked_player_ids.is_empty(), field("blocked_player_ids"), unsupported);
        violations.check(protections.blocked_set_names.is_empty(), field("blocked_set_names"), unsupported);
        violations.check(protections.approval_expire_after_minutes.is_none(), field("manual_approval"), unsupported);
        violations.check(
            protections.cooldown_after_loss.is_none_or(|c| !c.per_player),
            field("cooldown_after_loss.per_player"),
            "does not apply to arbitrage mode (its cooldown pauses the whole strategy)",
        );
    }
    match (rules, parameters, violations.is_empty()) {
        (Some(rules), Some(parameters), true) => {
            Ok(StrategySpec { display_name, rules, parameters, priority, daily_scan, protections })
        }
        _ => Err(violations),
    }
}

fn parameters_to_pb(parameters: Parameters) -> PbParameters {
    match parameters {
        Parameters::RookieRisers(p) => PbParameters::RookieRisers(pb::RookieRisersParameters {
            max_seasons_played: p.max_seasons_played,
            min_performance_rise_percent: p.min_performance_rise_percent,
            rarities: p.rarities.iter().map(|r| rarity_to_pb(r)).collect(),
            team_codes: p.team_codes,
        }),
        Parameters::PostGameSpike(p) => PbParameters::PostGameSpike(pb::PostGameSpikeParameters {
            min_game_score: p.min_game_score,
            buy_window_minutes: p.buy_window_minutes,
            player_ids: p.player_ids,
            rarities: p.rarities.iter().map(|r| rarity_to_pb(r)).collect(),
            stat_triggers: p
                .stat_triggers
                .iter()
                .map(|t| pb::StatTrigger { stat: stat_to_pb(t.stat) as i32, at_least: t.at_least })
                .collect(),
        }),
        Parameters::ArbitrageMode(p) => PbParameters::ArbitrageMode(pb::ArbitrageModeParameters {
            min_spread_bps: p.min_spread_bps,
            buy_source_ids: p.buy_source_ids,
            relist_source_ids: p.relist_source_ids,
            auto_relist: p.auto_relist,
        }),
    }
}

/// A stored strategy as the contract shows it.
pub fn strategy_to_pb(row: StrategyRow) -> Result<pb::Strategy, StoredParametersError> {
    let parameters = Parameters::from_json(row.kind, &row.parameters)?;
    let protections = Protections::from_json(&row.protections).map_err(|source| StoredParametersError {
        kind: row.kind,
        what: "protections",
        source,
    })?;
    let state = match row.state {
        StrategyState::Active => pb::StrategyState::Active,
        StrategyState::Paused => pb::StrategyState::Paused,
    };
    let daily_scan = match (row.scan_time, row.scan_time_zone) {
        (Some(local_time), Some(time_zone)) => Some(pb::DailyScan { time_of_day: local_time, time_zone }),
        _ => None,
    };
    Ok(pb::Strategy {
        strategy_id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        display_name: row.display_name,
        state: state as i32,
        rules: Some(pb::StrategyRules {
            min_confidence: row.min_confidence,
            min_discount_bps: row.min_discount_bps,
            max_price_cents: row.max_price_cents,
            max_purchases_per_day: row.max_purchases_per_day,
        }),
        template_id: row.template_id.unwrap_or_default(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        priority: row.priority,
        daily_scan,
        kind: kind_to_pb(row.kind) as i32,
        parameters: Some(parameters_to_pb(parameters)),
        protections: protections_to_pb(protections),
        protections_reset_time: row.protections_reset_at.map(timestamp),
    })
}

/// A template as the contract shows it: a strategy ready for CreateStrategy.
pub fn template_to_pb(template: StrategyTemplate) -> Result<pb::StrategyTemplate, StoredParametersError> {
    let parameters = Parameters::from_json(template.kind, &template.parameters)?;
    Ok(pb::StrategyTemplate {
        template_id: template.id.clone(),
        display_name: template.display_name.clone(),
        description: template.description,
        strategy: Some(pb::Strategy {
            display_name: template.display_name,
            state: pb::StrategyState::Paused as i32,
            rules: Some(pb::StrategyRules {
                min_confidence: template.min_confidence,
                min_discount_bps: template.min_discount_bps,
                max_price_cents: template.max_price_cents,
                max_purchases_per_day: template.max_purchases_per_day,
            }),
            template_id: template.id,
            priority: domain::DEFAULT_PRIORITY,
            kind: kind_to_pb(template.kind) as i32,
            parameters: Some(parameters_to_pb(parameters)),
            ..Default::default()
        }),
    })
}

fn kind_name(parameters: &PbParameters) -> &'static str {
    match parameters {
        PbParameters::RookieRisers(_) => "rookie_risers",
        PbParameters::PostGameSpike(_) => "post_game_spike",
        PbParameters::ArbitrageMode(_) => "arbitrage_mode",
    }
}

/// Applies an update mask: the fields it names are taken from `given`, the others kept from
/// `current`. Unknown paths, and parameters of another kind than the strategy's, are violations.
pub fn apply_mask(
    current: &pb::Strategy,
    given: &pb::Strategy,
    paths: &[String],
    violations: &mut Violations,
) -> pb::Strategy {
    let mut merged = current.clone();
    let own_kind = current.parameters.as_ref().map(kind_name);
    let all = ["display_name", "priority", "daily_scan", "rules", "protections", own_kind.unwrap_or("parameters")]
        .map(str::to_owned);
    let paths: Vec<String> = if paths.is_empty() { all.to_vec() } else { paths.to_vec() };
    let given_rules = given.rules.unwrap_or_default();
    for path in &paths {
        let rules = merged.rules.get_or_insert_with(Default::default);
        match path.as_str() {
            "display_name" => merged.display_name = given.display_name.clone(),
            "priority" => merged.priority = given.priority,
            "daily_scan" => merged.daily_scan = given.daily_scan.clone(),
            "protections" => merged.protections = given.protections.clone(),
            "rules" => merged.rules = given.rules,
            "rules.min_confidence" => rules.min_confidence = given_rules.min_confidence,
            "rules.min_discount_bps" => rules.min_discount_bps = given_rules.min_discount_bps,
            "rules.max_price_cents" => rules.max_price_cents = given_rules.max_price_cents,
            "rules.max_purchases_per_day" => rules.max_purchases_per_day = given_rules.max_purchases_per_day,
            kind @ ("rookie_risers" | "post_game_spike" | "arbitrage_mode") if Some(kind) == own_kind => {
                match given.parameters.as_ref().map(kind_name) {
                    Some(given_kind) if given_kind == kind => merged.parameters = given.parameters.clone(),
                    Some(_) => violations
                        .add("strategy.parameters", "a strategy's kind cannot change; create a new strategy instead"),
                    None => violations.add(format!("strategy.{kind}"), "must be set when the update mask names it"),
                }
            }
            "rookie_risers" | "post_game_spike" | "arbitrage_mode" | "parameters" => violations
                .add("update_mask", format!("{path}: a strategy's kind cannot change; create a new strategy instead")),
            other => violations.add("update_mask", format!("{other}: not a field that can be updated")),
        }
    }
    merged
}
