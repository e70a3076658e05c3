//! A strategy's protections, pure: which players and sets it never buys, and whether a pause
//! after losses holds at an instant, judged from the strategy's outcomes up to that instant
//! (never after it, so that a replay of the past judges as the live agents did). A pause lifts
//! by its own rule (its time runs out); the user lifts every pause at once by resetting the
//! strategy's protections, after which earlier outcomes are not passed here.

use chrono::{DateTime, Duration, Utc};
use fastbreak_mesh::money::dollars;
use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::strategy::v1 as strategy;

use super::{Skip, reason_code};
pub(crate) use crate::store::MANUAL_APPROVAL;
use crate::store::{Decision, DecisionOutcome};

/// The decision of a purchase chosen by a strategy with manual approval: it waits until
/// `now` plus the strategy's time, its first reason saying so before the reason it was chosen.
pub(crate) fn awaiting(mut decision: Decision, sentence: String, minutes: i32, now: DateTime<Utc>) -> Decision {
    let until = now + Duration::minutes(i64::from(minutes.max(1)));
    decision.outcome = DecisionOutcome::AwaitingApproval;
    decision.approval_expires_at = Some(until);
    decision.reason_code = reason_code(pb::DecisionReason::AwaitingApproval);
    decision.rule = MANUAL_APPROVAL.to_owned();
    // Chosen, not bought yet: the rules' sentence says so.
    let chosen = sentence.strip_prefix("Bought: ").map_or(sentence.clone(), |rest| format!("Chosen to buy: {rest}"));
    decision.reasons.insert(0, chosen);
    decision.reasons.insert(0, format!("Waiting for your approval until {}.", clock(until)));
    decision
}

/// How long the strategy's purchases wait for approval, when they do.
pub(crate) fn approval_minutes(strategy: &strategy::Strategy) -> Option<i32> {
    strategy.protections.as_ref()?.manual_approval.map(|m| m.expire_after_minutes)
}

/// One trade's outcome for a strategy, as its protections read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// The player of the moment traded, when known.
    pub player_id: Option<String>,
    /// The profit (positive) or loss (negative) it realised, in cents; 0 for a purchase.
    pub pnl_cents: i64,
    /// When it settled.
    pub at: DateTime<Utc>,
}

/// A pause that holds: the protection that tripped, until when, and why, as a sentence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pause {
    /// The protection, as the decision's rule names it, such as "protections.cooldown_after_loss".
    pub rule: &'static str,
    /// When it lifts by its own rule.
    pub until: DateTime<Utc>,
    /// Why, for the decision and the notification.
    pub sentence: String,
}

impl Pause {
    /// The skip a purchase gets while the pause holds.
    pub(crate) fn skip(&self) -> Skip {
        Skip::new(pb::DecisionReason::Protection, self.rule, self.sentence.clone())
    }
}

/// A moment the strategy never buys: its player or its set is blocked.
pub(crate) fn blocked(
    protections: Option<&strategy::StrategyProtections>,
    moment: Option<&market::Moment>,
    name: &str,
) -> Option<Skip> {
    let protections = protections?;
    if protections.blocked_player_ids.is_empty() && protections.blocked_set_names.is_empty() {
        return None;
    }
    // Without its moment the blocks cannot be checked: nothing is bought on a guess.
    let Some(moment) = moment else {
        return Some(Skip::new(
            pb::DecisionReason::Protection,
            "protections.blocked_player_ids",
            format!("Skipped: \"{name}\" blocks players or sets, and the listing's moment is unknown."),
        ));
    };
    if protections.blocked_player_ids.iter().any(|p| p == &moment.player_id) {
        let player = if moment.player_name.is_empty() { &moment.player_id } else { &moment.player_name };
        return Some(Skip::new(
            pb::DecisionReason::Protection,
            "protections.blocked_player_ids",
            format!("Skipped: \"{name}\" never buys {player}'s moments (the player is blocked)."),
        ));
    }
    if protections.blocked_set_names.iter().any(|s| s.to_lowercase() == moment.set_name.to_lowercase()) {
        return Some(Skip::new(
            pb::DecisionReason::Protection,
            "protections.blocked_set_names",
            format!("Skipped: \"{name}\" never buys moments of the set {} (the set is blocked).", moment.set_name),
        ));
    }
    None
}

fn minutes(value: i32) -> Duration {
    Duration::minutes(i64::from(value.max(0)))
}

/// How far back the pauses after losses look from an instant, or `None` when the strategy has
/// none (then its outcomes need not be read at all).
pub(crate) fn lookback(protections: Option<&strategy::StrategyProtections>) -> Option<Duration> {
    let p = protections?;
    [
        p.cooldown_after_loss.map(|c| minutes(c.minutes)),
        p.losing_streak.map(|g| minutes(g.window_minutes) + minutes(g.pause_minutes)),
        p.drawdown.map(|g| minutes(g.window_minutes) + minutes(g.pause_minutes)),
        (p.max_daily_loss_cents > 0).then(|| Duration::days(1)),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// Whether the cooldown needs each loss's player (it is per player).
pub(crate) fn needs_players(protections: Option<&strategy::StrategyProtections>) -> bool {
    protections.and_then(|p| p.cooldown_after_loss).is_some_and(|c| c.per_player)
}

pub(crate) fn clock(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The pause that holds at `now` for a purchase of `player`'s moment, judged from `outcomes`
/// (oldest first; those after `now` are not looked at): of the protections that tripped, the
/// one that lifts last. `None` when the strategy may buy.
pub(crate) fn paused(
    protections: Option<&strategy::StrategyProtections>,
    rules: &strategy::StrategyRules,
    name: &str,
    outcomes: &[Outcome],
    player: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Pause> {
    let p = protections?;
    let past: Vec<&Outcome> = outcomes.iter().filter(|o| o.at <= now).collect();
    let pauses = [
        p.cooldown_after_loss.and_then(|c| cooldown(c, name, &past, player, now)),
        p.losing_streak.and_then(|g| losing_streak(g, name, &past, now)),
        p.drawdown.and_then(|g| drawdown(g, rules, name, &past, now)),
        daily_loss(p.max_daily_loss_cents, name, &past, now),
    ];
    pauses.into_iter().flatten().max_by_key(|pause| pause.until)
}

fn cooldown(
    c: strategy::CooldownAfterLoss,
    name: &str,
    past: &[&Outcome],
    player: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Pause> {
    let loss = past
        .iter()
        .rev()
        .filter(|o| o.pnl_cents < 0)
        // Per player: a loss on the same player's moment; when the player is unknown, any loss.
        .filter(|o| !c.per_player || player.is_none() || o.player_id.as_deref() == player)
        .find(|o| o.at + minutes(c.minutes) > now)?;
    let until = loss.at + minutes(c.minutes);
    let whose = if c.per_player { " on this player's moments" } else { "" };
    Some(Pause {
        rule: "protections.cooldown_after_loss",
        until,
        sentence: format!(
            "Skipped: \"{name}\" is paused{whose} until {}, a cooldown of {} minutes after it lost {} on a sale at {}.",
            clock(until),
            c.minutes,
            dollars(-loss.pnl_cents),
            clock(loss.at)
        ),
    })
}

fn losing_streak(g: strategy::LosingStreakGuard, name: &str, past: &[&Outcome], now: DateTime<Utc>) -> Option<Pause> {
    let losses: Vec<&Outcome> = past.iter().copied().filter(|o| o.pnl_cents < 0).collect();
    let needed = usize::try_from(g.losing_trades.max(1)).unwrap_or(1);
    // The latest loss that closes a streak: `needed` losses within the window ending at it.
    let (last, first) = (needed - 1..losses.len())
        .rev()
        .map(|k| (losses[k], losses[k + 1 - needed]))
        .find(|(last, first)| last.at - first.at <= minutes(g.window_minutes))?;
    let until = last.at + minutes(g.pause_minutes);
    (until > now).then(|| Pause {
        rule: "protections.losing_streak",
        until,
        sentence: format!(
            "Skipped: \"{name}\" is paused until {}: it lost on {needed} sales between {} and {}, within its window of {} minutes.",
            clock(until),
            clock(first.at),
            clock(last.at),
            g.window_minutes
        ),
    })
}

/// The strategy's budget: the most it can spend in a day.
pub(crate) fn budget_cents(rules: &strategy::StrategyRules) -> i64 {
    rules.max_price_cents.saturating_mul(i64::from(rules.max_purchases_per_day.max(0)))
}

fn drawdown(
    g: strategy::DrawdownGuard,
    rules: &strategy::StrategyRules,
    name: &str,
    past: &[&Outcome],
    now: DateTime<Utc>,
) -> Option<Pause> {
    let limit = i64::try_from(i128::from(budget_cents(rules)) * i128::from(g.max_drawdown_bps) / 10_000).ok()?;
    // The latest sale at which the drawdown over the window ending there reached the limit.
    let (at, fallen) = past.iter().enumerate().rev().find_map(|(k, end)| {
        let start = end.at - minutes(g.window_minutes);
        let (mut total, mut peak) = (0_i64, 0_i64);
        for outcome in past[..=k].iter().filter(|o| o.at >= start) {
            total += outcome.pnl_cents;
            peak = peak.max(total);
        }
        (end.pnl_cents < 0 && peak - total >= limit.max(1)).then_some((end.at, peak - total))
    })?;
    let until = at + minutes(g.pause_minutes);
    (until > now).then(|| Pause {
        rule: "protections.drawdown",
        until,
        sentence: format!(
            "Skipped: \"{name}\" is paused until {}: its realised profit fell {} within {} minutes, at least {} of its budget of {} a day.",
            clock(until),
            dollars(fallen),
            g.window_minutes,
            percent(g.max_drawdown_bps),
            dollars(budget_cents(rules))
        ),
    })
}

fn percent(bps: i32) -> String {
    format!("{}%", f64::from(bps) / 100.0)
}

fn daily_loss(max_cents: i64, name: &str, past: &[&Outcome], now: DateTime<Utc>) -> Option<Pause> {
    if max_cents <= 0 {
        return None;
    }
    let midnight = now.date_naive().and_hms_opt(0, 0, 0)?.and_utc();
    let net: i64 = past.iter().filter(|o| o.at >= midnight).map(|o| o.pnl_cents).sum();
    let until = midnight + Duration::days(1);
    (net <= -max_cents).then(|| Pause {
        rule: "protections.max_daily_loss_cents",
        until,
        sentence: format!(
            "Skipped: \"{name}\" is paused until {}: it lost {} today (UTC), its most a day is {}.",
            clock(until),
            dollars(-net),
            dollars(max_cents)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minute)
    }

    fn sale(minute: i64, pnl_cents: i64, player: &str) -> Outcome {
        Outcome { player_id: Some(player.to_owned()), pnl_cents, at: at(minute) }
    }

    fn rules() -> strategy::StrategyRules {
        strategy::StrategyRules {
            min_confidence: 0.5,
            min_discount_bps: 0,
            max_price_cents: 10_000,
            max_purchases_per_day: 5,
        }
    }

    fn check(p: &strategy::StrategyProtections, outcomes: &[Outcome], player: &str, minute: i64) -> Option<Pause> {
        paused(Some(p), &rules(), "Spikes", outcomes, Some(player), at(minute))
    }

    #[test]
    fn a_cooldown_pauses_after_a_loss_and_lifts_when_it_runs_out() {
        let p = strategy::StrategyProtections {
            cooldown_after_loss: Some(strategy::CooldownAfterLoss { minutes: 60, per_player: false }),
            ..Default::default()
        };
        let outcomes = [sale(0, 500, "lebron"), sale(10, -300, "lebron")];
        assert_eq!(check(&p, &outcomes, "curry", 5), None, "a gain pauses nothing");
        let pause = check(&p, &outcomes, "curry", 30).expect("paused 20 minutes after the loss");
        assert_eq!((pause.rule, pause.until), ("protections.cooldown_after_loss", at(70)));
        assert!(pause.sentence.contains("lost $3.00"), "{}", pause.sentence);
        assert_eq!(check(&p, &outcomes, "curry", 70), None, "lifted by its rule");
        assert_eq!(check(&p, &outcomes, "curry", 9), None, "a loss after the instant is not looked at");
    }

    #[test]
    fn a_per_player_cooldown_pauses_only_that_players_moments() {
        let p = strategy::StrategyProtections {
            cooldown_after_loss: Some(strategy::CooldownAfterLoss { minutes: 60, per_player: true }),
            ..Default::default()
        };
        let outcomes = [sale(0, -300, "lebron")];
        assert!(check(&p, &outcomes, "lebron", 30).is_some());
        assert_eq!(check(&p, &outcomes, "curry", 30), None);
        let unknown = paused(Some(&p), &rules(), "Spikes", &outcomes, None, at(30));
        assert!(unknown.is_some(), "an unknown player is treated as the losing one");
        assert!(needs_players(Some(&p)));
    }

    #[test]
    fn a_losing_streak_trips_on_the_nth_loss_within_its_window_only() {
        let p = strategy::StrategyProtections {
            losing_streak: Some(strategy::LosingStreakGuard {
                losing_trades: 3,
                window_minutes: 60,
                pause_minutes: 120,
            }),
            ..Default::default()
        };
        // Two losses, a gain, a loss 100 minutes later: never three within an hour.
        let spread = [sale(0, -100, "a"), sale(30, -100, "a"), sale(40, 900, "a"), sale(100, -100, "a")];
        assert_eq!(check(&p, &spread, "a", 101), None);
        // A third loss within the hour of the second and the fourth.
        let mut streak = spread.to_vec();
        streak.push(sale(110, -100, "b"));
        streak.push(sale(120, -100, "c"));
        let pause = check(&p, &streak, "z", 121).expect("three losses within 60 minutes");
        assert_eq!((pause.rule, pause.until), ("protections.losing_streak", at(240)));
        assert_eq!(check(&p, &streak, "z", 240), None, "lifted after its pause");
    }

    #[test]
    fn a_drawdown_over_the_window_past_its_share_of_the_budget_pauses() {
        // Budget: $100 × 5 = $500 a day; 10% of it is $50.
        let p = strategy::StrategyProtections {
            drawdown: Some(strategy::DrawdownGuard { max_drawdown_bps: 1_000, window_minutes: 120, pause_minutes: 60 }),
            ..Default::default()
        };
        let outcomes = [sale(0, 3_000, "a"), sale(10, -2_000, "a"), sale(20, -2_500, "a")];
        // Peak +$30, then down to -$15: a fall of $45, under $50.
        assert_eq!(check(&p, &outcomes, "a", 21), None);
        let mut more = outcomes.to_vec();
        more.push(sale(30, -600, "a"));
        let pause = check(&p, &more, "a", 31).expect("a fall of $51");
        assert_eq!((pause.rule, pause.until), ("protections.drawdown", at(90)));
        assert!(pause.sentence.contains("$51.00") && pause.sentence.contains("10%"), "{}", pause.sentence);
        // The same losses spread wider than the window never reach the limit within it.
        let spread = [sale(0, -2_000, "a"), sale(200, -2_000, "a"), sale(400, -2_000, "a")];
        assert_eq!(check(&p, &spread, "a", 401), None);
    }

    #[test]
    fn a_daily_loss_pauses_until_the_next_utc_day() {
        let p = strategy::StrategyProtections { max_daily_loss_cents: 1_000, ..Default::default() };
        let yesterday = Outcome { player_id: None, pnl_cents: -5_000, at: at(-13 * 60) };
        let today = [yesterday.clone(), sale(0, -600, "a"), sale(5, 200, "a")];
        assert_eq!(check(&p, &today, "a", 6), None, "net -$4.00 today");
        let mut worse = today.to_vec();
        worse.push(sale(10, -700, "a"));
        let pause = check(&p, &worse, "a", 11).expect("net -$11.00 today");
        assert_eq!(pause.until, "2026-03-02T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(check(&p, &worse, "a", 12 * 60), None, "a new day");
    }

    #[test]
    fn of_several_pauses_the_one_that_lifts_last_is_named() {
        let p = strategy::StrategyProtections {
            cooldown_after_loss: Some(strategy::CooldownAfterLoss { minutes: 30, per_player: false }),
            losing_streak: Some(strategy::LosingStreakGuard {
                losing_trades: 2,
                window_minutes: 60,
                pause_minutes: 240,
            }),
            ..Default::default()
        };
        let outcomes = [sale(0, -100, "a"), sale(10, -100, "a")];
        assert_eq!(check(&p, &outcomes, "a", 11).map(|p| p.rule), Some("protections.losing_streak"));
        assert_eq!(lookback(Some(&p)), Some(Duration::minutes(300)));
        assert_eq!(lookback(Some(&strategy::StrategyProtections::default())), None);
    }

    #[test]
    fn blocked_players_and_sets_are_skipped_by_name() {
        let p = strategy::StrategyProtections {
            blocked_player_ids: vec!["lebron".into()],
            blocked_set_names: vec!["base set".into()],
            ..Default::default()
        };
        let moment = |player: &str, set: &str| market::Moment {
            player_id: player.into(),
            player_name: "Someone".into(),
            set_name: set.into(),
            ..Default::default()
        };
        let skip = blocked(Some(&p), Some(&moment("lebron", "Metallic Gold")), "Spikes").unwrap();
        assert_eq!(skip.rule, "protections.blocked_player_ids");
        assert_eq!(
            blocked(Some(&p), Some(&moment("curry", "Base Set")), "Spikes").unwrap().rule,
            "protections.blocked_set_names"
        );
        assert!(blocked(Some(&p), Some(&moment("curry", "Metallic Gold")), "Spikes").is_none());
        assert!(blocked(Some(&p), None, "Spikes").is_some(), "an unknown moment is not bought on a guess");
        assert!(blocked(Some(&strategy::StrategyProtections::default()), None, "Spikes").is_none());
    }
}
