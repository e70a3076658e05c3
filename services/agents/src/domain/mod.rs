//! The agents' rules, pure: which listing a strategy skips and why (each skip with its reason
//! code, the rule that decided and a sentence), what a valuation and a refusal mean, and the
//! player's form that kind-specific strategies look at. No database, no peer: unit-tested here.

use chrono::{DateTime, Utc};
use fastbreak_mesh::money::dollars;
use fastbreak_mesh::status::is_answer;
use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::scouting::v1 as scouting;
use fastbreak_proto::strategy::v1 as strategy;
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic_types::StatusExt;

use crate::store::Decision;

pub(crate) mod protections;

/// A factor as a decision keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Factor {
    pub name: String,
    pub weight: f64,
    pub impact_cents: i64,
    pub explanation: String,
}

/// Whether an unavailability is trading's own answer about a service it needs (its ErrorInfo
/// names another service), rather than trading itself not being reached.
pub(crate) fn answered_by_trading(status: &Status) -> bool {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get("service").cloned())
        .is_some_and(|service| service != "trading")
}

/// Why a price is above the strategy's maximum, as a sentence; `None` when it is not.
pub(crate) fn above_max_price(rules: &strategy::StrategyRules, name: &str, price: i64) -> Option<String> {
    (rules.max_price_cents > 0 && price > rules.max_price_cents).then(|| {
        format!(
            "Skipped: the price {} is above \"{name}\"'s maximum of {}.",
            dollars(price),
            dollars(rules.max_price_cents)
        )
    })
}

/// A decision ended by a reason, the rule that decided, and its sentence first.
pub(crate) fn skip(mut decision: Decision, reason: pb::DecisionReason, rule: &str, sentence: String) -> Decision {
    decision.reason_code = reason_code(reason);
    decision.rule = rule.to_owned();
    decision.reasons.insert(0, sentence);
    decision
}

/// A reason as the database keeps it: the contract's name without its prefix, in lower case.
pub(crate) fn reason_code(reason: pb::DecisionReason) -> String {
    reason.as_str_name().trim_start_matches("DECISION_REASON_").to_ascii_lowercase()
}

/// The contract's reason for a stored code.
pub(crate) fn reason_of(code: &str) -> pb::DecisionReason {
    pb::DecisionReason::from_str_name(&format!("DECISION_REASON_{}", code.to_ascii_uppercase()))
        .unwrap_or(pb::DecisionReason::Unspecified)
}

/// How many of a player's latest games kind-specific rules look at.
pub(crate) const FORM_GAMES: i32 = 20;

/// A player's record and latest games, newest first.
#[derive(Debug, Clone)]
pub(crate) struct PlayerForm {
    pub player: Option<scouting::Player>,
    pub games: Vec<scouting::PlayerGameStats>,
}

/// A game's score as post-game-spike strategies count it.
pub(crate) fn game_score(game: &scouting::PlayerGameStats) -> i32 {
    game.points + game.rebounds + game.assists + game.steals + game.blocks
}

/// The percent by which a player's scoring in his last five games is above his average over
/// the latest twenty; `None` with fewer than three games.
pub(crate) fn scoring_rise(games: &[scouting::PlayerGameStats]) -> Option<f64> {
    if games.len() < 3 {
        return None;
    }
    let average = |games: &[scouting::PlayerGameStats]| {
        games.iter().map(|g| f64::from(g.points)).sum::<f64>() / games.len() as f64
    };
    let (recent, all) = (average(&games[..games.len().min(5)]), average(games));
    Some(if all > 0.0 { (recent - all) / all * 100.0 } else { 0.0 })
}

/// Whether the listing's player fits the strategy's kind at `now`: `None` when he does (or the
/// kind asks nothing), else the decision skipped with the rule he fails.
pub(crate) fn kind_fit(
    strategy: &strategy::Strategy,
    form: &Result<PlayerForm, Status>,
    decision: &mut Decision,
    now: DateTime<Utc>,
) -> Option<Decision> {
    use strategy::strategy::Parameters;
    if !matches!(strategy.parameters, Some(Parameters::RookieRisers(_) | Parameters::PostGameSpike(_))) {
        return None;
    }
    let form = match form {
        Ok(form) => form,
        Err(_) => {
            decision.data_incomplete = true;
            return Some(skip(
                decision.clone(),
                pb::DecisionReason::ServiceUnavailable,
                "player_form",
                "Skipped: scouting could not be reached after retries, so the player's form is unknown.".to_owned(),
            ));
        }
    };
    let Some(player) = &form.player else {
        decision.data_incomplete = true;
        return Some(
            Skip::not_a_match("player", "Skipped: scouting does not know the moment's player.".to_owned())
                .decide(decision.clone()),
        );
    };
    let name = &strategy.display_name;
    let unfit = match &strategy.parameters {
        Some(Parameters::RookieRisers(params)) => rookie_riser_fit(params, player, &form.games, name, decision),
        Some(Parameters::PostGameSpike(params)) => match post_game_spike_fit(params, player, &form.games, name, now) {
            Ok(reason) => {
                decision.reasons.push(reason);
                None
            }
            Err(skip) => Some(skip),
        },
        _ => None,
    };
    unfit.map(|skip| skip.decide(decision.clone()))
}

/// A rookie riser: few seasons, a followed team, scoring rising against his average.
fn rookie_riser_fit(
    params: &strategy::RookieRisersParameters,
    player: &scouting::Player,
    games: &[scouting::PlayerGameStats],
    name: &str,
    decision: &mut Decision,
) -> Option<Skip> {
    if player.seasons_played > params.max_seasons_played {
        return Some(Skip::not_a_match(
            "max_seasons_played",
            format!(
                "Skipped: {} has played {} seasons, more than \"{name}\"'s {}.",
                player.full_name, player.seasons_played, params.max_seasons_played
            ),
        ));
    }
    if !params.team_codes.is_empty() && !params.team_codes.contains(&player.team_code) {
        return Some(Skip::not_a_match(
            "team_codes",
            format!("Skipped: {} plays for {}, not a team \"{name}\" follows.", player.full_name, player.team_code),
        ));
    }
    if params.min_performance_rise_percent <= 0.0 {
        return None;
    }
    let Some(rise) = scoring_rise(games) else {
        decision.data_incomplete = true;
        return Some(Skip::not_a_match(
            "min_performance_rise_percent",
            format!("Skipped: {} has too few games to measure a rise.", player.full_name),
        ));
    };
    (rise < params.min_performance_rise_percent).then(|| {
        Skip::not_a_match(
            "min_performance_rise_percent",
            format!(
                "Skipped: {}'s scoring is {rise:+.1}% against his average, below \"{name}\"'s rise of {:.1}%.",
                player.full_name, params.min_performance_rise_percent
            ),
        )
    })
}

/// A post-game spike: a standout game within the strategy's window before `now`, named in a
/// sentence for the decision's reasons.
fn post_game_spike_fit(
    params: &strategy::PostGameSpikeParameters,
    player: &scouting::Player,
    games: &[scouting::PlayerGameStats],
    name: &str,
    now: DateTime<Utc>,
) -> Result<String, Skip> {
    let since = now - chrono::Duration::minutes(i64::from(params.buy_window_minutes));
    let standout = games.iter().find(|g| {
        game_score(g) >= params.min_game_score && g.game_time.as_ref().is_some_and(|t| t.seconds >= since.timestamp())
    });
    match standout {
        Some(game) => {
            Ok(format!("{} had a game score of {} against {}.", player.full_name, game_score(game), game.opponent_code))
        }
        None => Err(Skip::not_a_match(
            "min_game_score",
            format!(
                "Skipped: {} has had no game with a score of {} or more in \"{name}\"'s window of {} minutes.",
                player.full_name, params.min_game_score, params.buy_window_minutes
            ),
        )),
    }
}

/// Why a listing is skipped for a strategy: the reason, the rule that decided, and a sentence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Skip {
    pub reason: pb::DecisionReason,
    pub rule: &'static str,
    pub sentence: String,
}

impl Skip {
    fn new(reason: pb::DecisionReason, rule: &'static str, sentence: String) -> Self {
        Self { reason, rule, sentence }
    }

    /// The listing does not match the strategy's kind.
    fn not_a_match(rule: &'static str, sentence: String) -> Self {
        Self::new(pb::DecisionReason::NotAMatch, rule, sentence)
    }

    /// The decision ended by this skip.
    pub(crate) fn decide(self, decision: Decision) -> Decision {
        skip(decision, self.reason, self.rule, self.sentence)
    }
}

/// The rules a listing must pass before it is valued: still active, not taken by another of
/// the user's strategies, not above the strategy's maximum price.
pub(crate) fn before_valuation(
    listing_active: bool,
    taken_by: Option<&str>,
    rules: &strategy::StrategyRules,
    name: &str,
    price: i64,
) -> Option<Skip> {
    if !listing_active {
        return Some(Skip::new(
            pb::DecisionReason::ListingGone,
            "listing_active",
            "Skipped: the listing was sold or withdrawn before it could be decided.".to_owned(),
        ));
    }
    if let Some(other) = taken_by {
        return Some(Skip::new(
            pb::DecisionReason::ListingGone,
            "one_purchase_per_listing",
            format!("Skipped: your strategy \"{other}\" already acted on this listing."),
        ));
    }
    above_max_price(rules, name, price)
        .map(|sentence| Skip::new(pb::DecisionReason::AboveMaxPrice, "max_price_cents", sentence))
}

/// The skip for a listing that could not be valued: scouting's answer, or scouting not reached.
pub(crate) fn no_valuation(status: &Status) -> Skip {
    if is_answer(status) {
        Skip::new(
            pb::DecisionReason::NoValuation,
            "valuation",
            format!("Skipped: no valuation could be made ({}).", status.message()),
        )
    } else {
        Skip::new(
            pb::DecisionReason::ServiceUnavailable,
            "valuation",
            "Skipped: scouting could not be reached after retries, so the moment could not be valued.".to_owned(),
        )
    }
}

/// The discount of a price on a fair value, in basis points (0 without a fair value).
pub(crate) fn discount_bps(price: i64, fair: i64) -> i64 {
    if fair > 0 { (fair - price).saturating_mul(10_000) / fair } else { 0 }
}

/// The rules a valuation decides: the strategy's minimum confidence and discount. The reason to
/// buy as a sentence when both pass.
pub(crate) fn valuation_rules(
    rules: &strategy::StrategyRules,
    name: &str,
    price: i64,
    fair: i64,
    confidence: f64,
) -> Result<String, Skip> {
    let discount = discount_bps(price, fair);
    if confidence < rules.min_confidence {
        return Err(Skip::new(
            pb::DecisionReason::LowConfidence,
            "min_confidence",
            format!(
                "Skipped: the valuation's confidence {confidence:.2} is below \"{name}\"'s minimum of {:.2}.",
                rules.min_confidence
            ),
        ));
    }
    if discount < i64::from(rules.min_discount_bps) {
        return Err(Skip::new(
            pb::DecisionReason::SmallDiscount,
            "min_discount_bps",
            format!(
                "Skipped: listed at {} against a fair value of {}, a discount of {:.1}%, below \"{name}\"'s minimum of {:.1}%.",
                dollars(price),
                dollars(fair),
                discount as f64 / 100.0,
                f64::from(rules.min_discount_bps) / 100.0
            ),
        ));
    }
    Ok(format!(
        "Bought: listed at {} against a fair value of {} ({:.1}% below) with confidence {confidence:.2}, by \"{name}\".",
        dollars(price),
        dollars(fair),
        discount as f64 / 100.0,
    ))
}

/// Whether a listing the valuation rules skip was a near miss: its discount reached half the
/// strategy's minimum and its confidence came within 0.1 of the minimum. A near miss keeps the
/// valuation's weighted factors (as a purchase does); other skips keep their reason, rule and
/// sentence only (the valuation stays reachable by its id).
pub(crate) fn near_miss(rules: &strategy::StrategyRules, price: i64, fair: i64, confidence: f64) -> bool {
    let discount = discount_bps(price, fair);
    discount > 0 && 2 * discount >= i64::from(rules.min_discount_bps) && confidence >= rules.min_confidence - 0.1
}

/// The strategy's daily cap, with `bought_today` purchases made today.
pub(crate) fn daily_cap(rules: &strategy::StrategyRules, name: &str, bought_today: i64) -> Option<Skip> {
    (rules.max_purchases_per_day > 0 && bought_today >= i64::from(rules.max_purchases_per_day)).then(|| {
        Skip::new(
            pb::DecisionReason::DailyCap,
            "max_purchases_per_day",
            format!("Skipped: \"{name}\" bought its {} moments for today.", rules.max_purchases_per_day),
        )
    })
}

/// What trading's refusal of a purchase means for the decision: its reason and the rule (risk
/// or trading); `None` when trading was not reached at all (nothing is decided, so that the
/// listing is decided again).
pub(crate) fn purchase_refused(status: &Status) -> Option<(pb::DecisionReason, &'static str)> {
    let reason = status.get_details_error_info().map(|i| i.reason).unwrap_or_default();
    Some(match ErrorReason::from_str_name(&reason) {
        Some(ErrorReason::LimitExceeded | ErrorReason::EmergencyStopEngaged | ErrorReason::SuspiciousActivity) => {
            (pb::DecisionReason::RiskRefused, "risk")
        }
        Some(ErrorReason::InsufficientFunds) => (pb::DecisionReason::InsufficientFunds, "trading"),
        Some(ErrorReason::WalletDisconnected) => (pb::DecisionReason::TradingOff, "trading"),
        Some(ErrorReason::ListingUnavailable) => (pb::DecisionReason::ListingGone, "trading"),
        Some(ErrorReason::Unprofitable) => (pb::DecisionReason::Unprofitable, "trading"),
        _ if !is_answer(status) && !answered_by_trading(status) => return None,
        // Trading answered that a service it needs (risk) could not be reached: the key is
        // spent, nothing was bought.
        _ if !is_answer(status) => (pb::DecisionReason::ServiceUnavailable, "trading"),
        _ => (pb::DecisionReason::RiskRefused, "trading"),
    })
}

/// The rules of an arbitrage for a strategy in arbitrage mode: the two marketplaces among the
/// ones it trades, a spread (after fees) of at least its minimum, a price within its maximum.
/// The reason to buy as a sentence when all pass.
pub(crate) fn arbitrage_rules(
    params: &strategy::ArbitrageModeParameters,
    rules: &strategy::StrategyRules,
    name: &str,
    opportunity: &market::ArbitrageOpportunity,
    listing: &market::Listing,
) -> Result<String, Skip> {
    let allowed = |list: &[String], source: &str| list.is_empty() || list.iter().any(|s| s == source);
    let spread = f64::from(opportunity.spread_bps) / 100.0;
    if !allowed(&params.buy_source_ids, &listing.source_id)
        || !allowed(&params.relist_source_ids, &opportunity.sell_source_id)
    {
        return Err(Skip::new(
            pb::DecisionReason::ListingGone,
            "sources",
            format!("Skipped: \"{name}\" does not trade {} → {}.", listing.source_id, opportunity.sell_source_id),
        ));
    }
    if opportunity.spread_bps < params.min_spread_bps {
        return Err(Skip::new(
            pb::DecisionReason::SmallDiscount,
            "min_spread_bps",
            format!(
                "Skipped: a spread of {spread:.1}% after fees, below \"{name}\"'s minimum of {:.1}%.",
                f64::from(params.min_spread_bps) / 100.0
            ),
        ));
    }
    if let Some(sentence) = above_max_price(rules, name, listing.price_cents) {
        return Err(Skip::new(pb::DecisionReason::AboveMaxPrice, "max_price_cents", sentence));
    }
    Ok(format!(
        "Bought on {} at {} to relist on {} at {}: a spread of {spread:.1}% after fees, by \"{name}\".",
        listing.source_id,
        dollars(listing.price_cents),
        opportunity.sell_source_id,
        dollars(opportunity.expected_sell_cents)
    ))
}

#[cfg(test)]
mod tests;
