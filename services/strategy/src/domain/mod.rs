//! The strategy domain: a strategy's rules and typed parameters per kind, validated field by
//! field (every violation at once), and how they are stored. No gRPC, no SQL.

use crate::store::StrategyKind;
use fastbreak_db::Rarity;
use fastbreak_mesh::status::Violations;
use serde::{Deserialize, Serialize};

/// Rules every kind of strategy shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Least valuation confidence, 0 to 1.
    pub min_confidence: f64,
    /// Least discount to fair value, 0 to 10000 basis points.
    pub min_discount_bps: i32,
    /// Most paid for one moment, positive cents.
    pub max_price_cents: i64,
    /// Most purchases a day, 1 to 1000.
    pub max_purchases_per_day: i32,
}

/// The largest amount one trade may carry: $10,000,000,000 (far above any moment, far below
/// what sums of them could overflow).
pub const MAX_TRADE_CENTS: i64 = 1_000_000_000_000;

/// The most a strategy may pay for one moment: $1,000,000.
pub const MAX_PRICE_CENTS: i64 = 100_000_000;

impl Rules {
    /// Validates rules, noting violations under `field` (such as "strategy.rules").
    pub fn validate(&self, field: &str, violations: &mut Violations) {
        violations.check(
            self.min_confidence.is_finite() && (0.0..=1.0).contains(&self.min_confidence),
            format!("{field}.min_confidence"),
            "must be between 0 and 1",
        );
        violations.check(
            (0..=10_000).contains(&self.min_discount_bps),
            format!("{field}.min_discount_bps"),
            "must be between 0 and 10000 basis points",
        );
        violations.check(
            (1..=MAX_PRICE_CENTS).contains(&self.max_price_cents),
            format!("{field}.max_price_cents"),
            format!("must be between 1 and {MAX_PRICE_CENTS} cents"),
        );
        violations.check(
            (1..=1000).contains(&self.max_purchases_per_day),
            format!("{field}.max_purchases_per_day"),
            "must be between 1 and 1000",
        );
    }
}

/// A box-score statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Points.
    Points,
    /// Rebounds.
    Rebounds,
    /// Assists.
    Assists,
    /// Steals.
    Steals,
    /// Blocks.
    Blocks,
}

/// A statistic that makes a game standout on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatTrigger {
    /// The statistic.
    pub stat: Stat,
    /// The least value that fires it.
    pub at_least: i32,
}

/// Rookie risers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RookieRisers {
    /// Most seasons played, 1 to 3.
    pub max_seasons_played: i32,
    /// Least rise of recent scoring over the season average, 0 to 500 percent.
    pub min_performance_rise_percent: f64,
    /// Rarities (stored names); empty means all.
    #[serde(default)]
    pub rarities: Vec<String>,
    /// Three-letter team codes, upper case; empty means all.
    #[serde(default)]
    pub team_codes: Vec<String>,
}

/// Post-game spikes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostGameSpike {
    /// Least game score, 1 to 200.
    pub min_game_score: i32,
    /// Minutes after the game the strategy keeps buying, 1 to 4320.
    pub buy_window_minutes: i32,
    /// Player ids; empty means every player.
    #[serde(default)]
    pub player_ids: Vec<String>,
    /// Rarities (stored names); empty means all.
    #[serde(default)]
    pub rarities: Vec<String>,
    /// Statistics that make a game standout on their own.
    #[serde(default)]
    pub stat_triggers: Vec<StatTrigger>,
}

/// Arbitrage mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArbitrageMode {
    /// Least spread after fees, 1 to 10000 basis points.
    pub min_spread_bps: i32,
    /// Market sources to buy on; empty means every source.
    #[serde(default)]
    pub buy_source_ids: Vec<String>,
    /// Market sources to relist on; empty means every source.
    #[serde(default)]
    pub relist_source_ids: Vec<String>,
    /// Relist at once after buying.
    #[serde(default)]
    pub auto_relist: bool,
}

/// What a strategy looks for, typed per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Parameters {
    /// Rookie risers.
    RookieRisers(RookieRisers),
    /// Post-game spikes.
    PostGameSpike(PostGameSpike),
    /// Arbitrage mode.
    ArbitrageMode(ArbitrageMode),
}

/// Why stored parameters could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored {kind} {what} are malformed: {source}")]
pub struct StoredParametersError {
    /// The kind.
    pub kind: StrategyKind,
    /// What: "parameters" or "protections".
    pub what: &'static str,
    /// The JSON error.
    pub source: serde_json::Error,
}

fn list_of_ids(ids: &[String], field: &str, max: usize, violations: &mut Violations) {
    violations.check(ids.len() <= max, field, format!("must hold at most {max} ids"));
    for (i, id) in ids.iter().enumerate() {
        violations.check(
            !id.trim().is_empty() && id.len() <= 64 && !id.chars().any(char::is_control),
            format!("{field}[{i}]"),
            "must be a non-empty id of at most 64 characters",
        );
    }
    let mut seen = std::collections::HashSet::new();
    if ids.iter().any(|id| !seen.insert(id)) {
        violations.add(field, "must not repeat an id");
    }
}

impl Parameters {
    /// The kind.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Self::RookieRisers(_) => StrategyKind::RookieRisers,
            Self::PostGameSpike(_) => StrategyKind::PostGameSpike,
            Self::ArbitrageMode(_) => StrategyKind::ArbitrageMode,
        }
    }

    /// The field name of the kind's parameters in the contract.
    pub fn field(kind: StrategyKind) -> &'static str {
        match kind {
            StrategyKind::RookieRisers => "rookie_risers",
            StrategyKind::PostGameSpike => "post_game_spike",
            StrategyKind::ArbitrageMode => "arbitrage_mode",
        }
    }

    /// Validates the parameters, noting violations under `prefix` (such as "strategy").
    pub fn validate(&self, prefix: &str, violations: &mut Violations) {
        let field = |name: &str| format!("{prefix}.{}.{name}", Self::field(self.kind()));
        match self {
            Self::RookieRisers(p) => {
                violations.check(
                    (1..=3).contains(&p.max_seasons_played),
                    field("max_seasons_played"),
                    "must be between 1 and 3",
                );
                violations.check(
                    p.min_performance_rise_percent.is_finite()
                        && (0.0..=500.0).contains(&p.min_performance_rise_percent),
                    field("min_performance_rise_percent"),
                    "must be between 0 and 500",
                );
                for (i, code) in p.team_codes.iter().enumerate() {
                    violations.check(
                        code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()),
                        format!("{}[{i}]", field("team_codes")),
                        "must be a three-letter team code such as LAL",
                    );
                }
                violations.check(p.team_codes.len() <= 30, field("team_codes"), "must hold at most 30 teams");
            }
            Self::PostGameSpike(p) => {
                violations.check(
                    (1..=200).contains(&p.min_game_score),
                    field("min_game_score"),
                    "must be between 1 and 200",
                );
                violations.check(
                    (1..=4320).contains(&p.buy_window_minutes),
                    field("buy_window_minutes"),
                    "must be between 1 and 4320 minutes (three days)",
                );
                list_of_ids(&p.player_ids, &field("player_ids"), 100, violations);
                violations.check(p.stat_triggers.len() <= 5, field("stat_triggers"), "must hold at most 5 triggers");
                let mut seen = std::collections::HashSet::new();
                for (i, trigger) in p.stat_triggers.iter().enumerate() {
                    violations.check(
                        (1..=200).contains(&trigger.at_least),
                        format!("{}[{i}].at_least", field("stat_triggers")),
                        "must be between 1 and 200",
                    );
                    violations.check(
                        seen.insert(trigger.stat),
                        format!("{}[{i}].stat", field("stat_triggers")),
                        "each statistic may have one trigger only",
                    );
                }
            }
            Self::ArbitrageMode(p) => {
                violations.check(
                    (1..=10_000).contains(&p.min_spread_bps),
                    field("min_spread_bps"),
                    "must be between 1 and 10000 basis points",
                );
                list_of_ids(&p.buy_source_ids, &field("buy_source_ids"), 20, violations);
                list_of_ids(&p.relist_source_ids, &field("relist_source_ids"), 20, violations);
            }
        }
    }

    /// The rarities the strategy is limited to (stored names), if its kind has such a list.
    pub fn rarities(&self) -> &[String] {
        match self {
            Self::RookieRisers(p) => &p.rarities,
            Self::PostGameSpike(p) => &p.rarities,
            Self::ArbitrageMode(_) => &[],
        }
    }

    /// As stored.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Self::RookieRisers(p) => serde_json::to_value(p),
            Self::PostGameSpike(p) => serde_json::to_value(p),
            Self::ArbitrageMode(p) => serde_json::to_value(p),
        };
        value.expect("plain structs always serialise")
    }

    /// Reads stored parameters back.
    pub fn from_json(kind: StrategyKind, value: &serde_json::Value) -> Result<Self, StoredParametersError> {
        let error = |source| StoredParametersError { kind, what: "parameters", source };
        Ok(match kind {
            StrategyKind::RookieRisers => Self::RookieRisers(serde_json::from_value(value.clone()).map_err(error)?),
            StrategyKind::PostGameSpike => Self::PostGameSpike(serde_json::from_value(value.clone()).map_err(error)?),
            StrategyKind::ArbitrageMode => Self::ArbitrageMode(serde_json::from_value(value.clone()).map_err(error)?),
        })
    }
}

/// Checks a list of rarities: every one known, none repeated. Returns their stored names.
pub fn rarities(given: &[Option<Rarity>], field: &str, violations: &mut Violations) -> Vec<String> {
    let mut names = Vec::new();
    for (i, rarity) in given.iter().enumerate() {
        match rarity {
            Some(rarity) if names.contains(&rarity.as_str().to_owned()) => {
                violations.add(format!("{field}[{i}]"), "must not repeat a rarity");
            }
            Some(rarity) => names.push(rarity.as_str().to_owned()),
            None => violations.add(format!("{field}[{i}]"), "must be a known rarity (not RARITY_UNSPECIFIED)"),
        }
    }
    names
}

/// A daily scan at a local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyScan {
    /// `HH:MM`.
    pub local_time: String,
    /// IANA time zone.
    pub time_zone: String,
}

impl DailyScan {
    /// Validates a scan, noting violations under `field`; an empty time zone means UTC.
    pub fn parse(local_time: &str, time_zone: &str, field: &str, violations: &mut Violations) -> Option<Self> {
        let time_ok =
            chrono::NaiveTime::parse_from_str(local_time.trim(), "%H:%M").is_ok() && local_time.trim().len() == 5;
        violations.check(time_ok, format!("{field}.time_of_day"), "must be a 24-hour time HH:MM such as 09:30");
        let zone = if time_zone.trim().is_empty() { "UTC" } else { time_zone.trim() };
        let zone_ok = zone.parse::<chrono_tz::Tz>().is_ok();
        violations.check(zone_ok, format!("{field}.time_zone"), "must be an IANA time zone such as America/New_York");
        (time_ok && zone_ok).then(|| Self { local_time: local_time.trim().to_owned(), time_zone: zone.to_owned() })
    }
}

/// A pause after every losing sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CooldownAfterLoss {
    /// Minutes, 1 to 10080.
    pub minutes: i32,
    /// Only the losing moment's player.
    pub per_player: bool,
}

/// A pause after several losing sales within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LosingStreakGuard {
    /// Losing sales that trip it, 1 to 100.
    pub losing_trades: i32,
    /// Minutes they fall within, 1 to 43200.
    pub window_minutes: i32,
    /// Minutes of pause after the last of them, 1 to 43200.
    pub pause_minutes: i32,
}

/// A pause when the realised drawdown over a window reaches a share of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawdownGuard {
    /// The share of the budget, 1 to 10000 basis points.
    pub max_drawdown_bps: i32,
    /// Minutes of the window, 1 to 43200.
    pub window_minutes: i32,
    /// Minutes of pause after the sale that reached it, 1 to 43200.
    pub pause_minutes: i32,
}

/// A strategy's protections, as stored (an empty object: none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Protections {
    /// A pause after every losing sale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_after_loss: Option<CooldownAfterLoss>,
    /// A pause after a losing streak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub losing_streak: Option<LosingStreakGuard>,
    /// A pause on a drawdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drawdown: Option<DrawdownGuard>,
    /// The most lost in a UTC day, cents; 0 means no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_daily_loss_cents: i64,
    /// Players never bought.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_player_ids: Vec<String>,
    /// Sets never bought.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_set_names: Vec<String>,
    /// Minutes a purchase waits for approval before it expires (1 to 1440), when purchases
    /// wait for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_expire_after_minutes: Option<i32>,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// The most a strategy may be set to lose in a day: $100,000,000.
pub const MAX_DAILY_LOSS_CENTS: i64 = 10_000_000_000;

/// The longest window or pause a protection may have: 30 days, in minutes.
pub const MAX_PROTECTION_MINUTES: i32 = 43_200;

impl Protections {
    /// Validates protections, noting violations under `field` (such as "strategy.protections").
    pub fn validate(&self, field: &str, violations: &mut Violations) {
        let minutes = |value: i32, max: i32, name: String, violations: &mut Violations| {
            violations.check((1..=max).contains(&value), name, format!("must be between 1 and {max} minutes"));
        };
        if let Some(cooldown) = &self.cooldown_after_loss {
            minutes(cooldown.minutes, 10_080, format!("{field}.cooldown_after_loss.minutes"), violations);
        }
        if let Some(streak) = &self.losing_streak {
            let name = |n: &str| format!("{field}.losing_streak.{n}");
            violations.check(
                (1..=100).contains(&streak.losing_trades),
                name("losing_trades"),
                "must be between 1 and 100",
            );
            minutes(streak.window_minutes, MAX_PROTECTION_MINUTES, name("window_minutes"), violations);
            minutes(streak.pause_minutes, MAX_PROTECTION_MINUTES, name("pause_minutes"), violations);
        }
        if let Some(drawdown) = &self.drawdown {
            let name = |n: &str| format!("{field}.drawdown.{n}");
            violations.check(
                (1..=10_000).contains(&drawdown.max_drawdown_bps),
                name("max_drawdown_bps"),
                "must be between 1 and 10000 basis points",
            );
            minutes(drawdown.window_minutes, MAX_PROTECTION_MINUTES, name("window_minutes"), violations);
            minutes(drawdown.pause_minutes, MAX_PROTECTION_MINUTES, name("pause_minutes"), violations);
        }
        violations.check(
            (0..=MAX_DAILY_LOSS_CENTS).contains(&self.max_daily_loss_cents),
            format!("{field}.max_daily_loss_cents"),
            format!("must be between 0 (no limit) and {MAX_DAILY_LOSS_CENTS} cents"),
        );
        list_of_ids(&self.blocked_player_ids, &format!("{field}.blocked_player_ids"), 100, violations);
        let sets = format!("{field}.blocked_set_names");
        violations.check(self.blocked_set_names.len() <= 100, &sets, "must hold at most 100 sets");
        for (i, name) in self.blocked_set_names.iter().enumerate() {
            violations.check(
                (1..=120).contains(&name.chars().count()) && !name.chars().any(char::is_control),
                format!("{sets}[{i}]"),
                "must be a set name of 1 to 120 characters",
            );
        }
        let mut seen = std::collections::HashSet::new();
        if self.blocked_set_names.iter().any(|name| !seen.insert(name.to_lowercase())) {
            violations.add(&sets, "must not repeat a set");
        }
        if let Some(expire) = self.approval_expire_after_minutes {
            minutes(expire, 1_440, format!("{field}.manual_approval.expire_after_minutes"), violations);
        }
    }

    /// As stored.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain structs always serialise")
    }

    /// Reads stored protections back.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value.clone())
    }
}

/// A strategy as the user defines it (what create and update write).
#[derive(Debug, Clone, PartialEq)]
pub struct StrategySpec {
    /// 1 to 80 characters.
    pub display_name: String,
    /// Shared rules.
    pub rules: Rules,
    /// Typed parameters.
    pub parameters: Parameters,
    /// 1 to 100, higher first.
    pub priority: i32,
    /// The daily scan, if any.
    pub daily_scan: Option<DailyScan>,
    /// Its protections.
    pub protections: Protections,
}

/// The priority of a strategy that asks for none.
pub const DEFAULT_PRIORITY: i32 = 50;

/// Checks a display name: 1 to 80 characters, no control characters.
pub fn display_name(text: &str, field: &str, violations: &mut Violations) -> String {
    let text = text.trim();
    violations.check(
        (1..=80).contains(&text.chars().count()) && !text.chars().any(char::is_control),
        field,
        "must be 1 to 80 characters, without control characters",
    );
    text.to_owned()
}

/// Checks a priority: 0 means the default, else 1 to 100.
pub fn priority(value: i32, field: &str, violations: &mut Violations) -> i32 {
    match value {
        0 => DEFAULT_PRIORITY,
        1..=100 => value,
        _ => {
            violations.add(field, "must be between 1 and 100 (0 means 50)");
            DEFAULT_PRIORITY
        }
    }
}

/// Profit on what was spent, in basis points (0 when nothing was spent).
pub fn roi_bps(realized_pnl_cents: i64, spent_cents: i64) -> i64 {
    if spent_cents <= 0 {
        return 0;
    }
    i64::try_from(i128::from(realized_pnl_cents) * 10_000 / i128::from(spent_cents)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spike() -> PostGameSpike {
        PostGameSpike {
            min_game_score: 40,
            buy_window_minutes: 360,
            player_ids: vec![],
            rarities: vec![],
            stat_triggers: vec![StatTrigger { stat: Stat::Points, at_least: 40 }],
        }
    }

    #[test]
    fn every_violation_is_named_at_once() {
        let mut v = Violations::new();
        Rules { min_confidence: 1.5, min_discount_bps: -1, max_price_cents: 0, max_purchases_per_day: 0 }
            .validate("strategy.rules", &mut v);
        let mut bad = spike();
        bad.min_game_score = 0;
        bad.stat_triggers.push(StatTrigger { stat: Stat::Points, at_least: 300 });
        Parameters::PostGameSpike(bad).validate("strategy", &mut v);
        let fields: Vec<&str> = v.fields().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "strategy.rules.min_confidence",
                "strategy.rules.min_discount_bps",
                "strategy.rules.max_price_cents",
                "strategy.rules.max_purchases_per_day",
                "strategy.post_game_spike.min_game_score",
                "strategy.post_game_spike.stat_triggers[1].at_least",
                "strategy.post_game_spike.stat_triggers[1].stat",
            ]
        );
    }

    #[test]
    fn parameters_round_trip_through_storage_and_templates_read_back() {
        let parameters = Parameters::PostGameSpike(spike());
        assert_eq!(Parameters::from_json(StrategyKind::PostGameSpike, &parameters.to_json()).unwrap(), parameters);
        let template = serde_json::json!({"max_seasons_played": 1, "min_performance_rise_percent": 25.0, "rarities": ["common"], "team_codes": []});
        assert!(Parameters::from_json(StrategyKind::RookieRisers, &template).is_ok());
        assert!(Parameters::from_json(StrategyKind::ArbitrageMode, &template).is_err());
    }

    #[test]
    fn scans_need_a_real_time_and_zone() {
        let mut v = Violations::new();
        assert_eq!(DailyScan::parse("09:30", "", "daily_scan", &mut v).unwrap().time_zone, "UTC");
        assert!(DailyScan::parse("09:30", "Europe/Paris", "daily_scan", &mut v).is_some());
        assert!(DailyScan::parse("24:00", "Mars/Olympus", "daily_scan", &mut v).is_none());
        assert!(DailyScan::parse("9:30", "UTC", "daily_scan", &mut v).is_none());
        assert_eq!(v.fields().count(), 3);
    }

    #[test]
    fn protections_name_every_violation_and_round_trip_through_storage() {
        let mut v = Violations::new();
        let bad = Protections {
            cooldown_after_loss: Some(CooldownAfterLoss { minutes: 0, per_player: true }),
            losing_streak: Some(LosingStreakGuard { losing_trades: 101, window_minutes: 60, pause_minutes: 0 }),
            drawdown: Some(DrawdownGuard { max_drawdown_bps: 10_001, window_minutes: 43_201, pause_minutes: 60 }),
            max_daily_loss_cents: -1,
            blocked_player_ids: vec![String::new()],
            blocked_set_names: vec!["Base Set".into(), "base set".into()],
            approval_expire_after_minutes: Some(1_441),
        };
        bad.validate("strategy.protections", &mut v);
        let fields: Vec<&str> = v.fields().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "strategy.protections.cooldown_after_loss.minutes",
                "strategy.protections.losing_streak.losing_trades",
                "strategy.protections.losing_streak.pause_minutes",
                "strategy.protections.drawdown.max_drawdown_bps",
                "strategy.protections.drawdown.window_minutes",
                "strategy.protections.max_daily_loss_cents",
                "strategy.protections.blocked_player_ids[0]",
                "strategy.protections.blocked_set_names",
                "strategy.protections.manual_approval.expire_after_minutes",
            ]
        );
        let good = Protections {
            cooldown_after_loss: Some(CooldownAfterLoss { minutes: 60, per_player: true }),
            max_daily_loss_cents: 5_000,
            blocked_set_names: vec!["Base Set".into()],
            approval_expire_after_minutes: Some(30),
            ..Protections::default()
        };
        let mut v = Violations::new();
        good.validate("strategy.protections", &mut v);
        assert!(v.is_empty());
        assert_eq!(Protections::from_json(&good.to_json()).unwrap(), good);
        assert_eq!(Protections::default().to_json(), serde_json::json!({}));
        assert_eq!(Protections::from_json(&serde_json::json!({})).unwrap(), Protections::default());
    }

    #[test]
    fn roi_is_in_basis_points() {
        assert_eq!(roi_bps(500, 10_000), 500);
        assert_eq!(roi_bps(-2_500, 10_000), -2_500);
        assert_eq!(roi_bps(100, 0), 0);
    }
}
