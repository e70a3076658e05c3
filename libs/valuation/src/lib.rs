//! The valuation model, free of I/O: fair value from comparable sales (the same play first,
//! then the player's moments of the same tier), time-decayed and serial-adjusted, moved by the
//! player's last game against his averages; confidence from how many comparables there are and
//! how much they disagree; every step written as a factor a collector can read.

use chrono::{DateTime, Utc};

/// The model's version, stored with every valuation.
pub const MODEL_VERSION: &str = "comparables-v1";

/// Sales older than this are not comparables.
pub const WINDOW_DAYS: f64 = 60.0;

/// A comparable's weight halves every this many days.
const HALF_LIFE_DAYS: f64 = 10.0;

/// A sale of the player's same tier but another play counts this much against one of the
/// same play.
const OTHER_PLAY_WEIGHT: f64 = 0.35;

/// How much of a game's surprise (points against the average) moves value not yet priced in.
const PERFORMANCE_SENSITIVITY: f64 = 0.35;

/// Below this confidence a valuation says why.
pub const LOW_CONFIDENCE: f64 = 0.5;

/// The moment valued.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Its serial number.
    pub serial: i32,
    /// The player's jersey number, when known.
    pub jersey: Option<i32>,
    /// Its tier, for sentences ("rare").
    pub tier: String,
}

/// A past sale of a comparable moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparable {
    /// Of the same play (same player, set and play) as the target.
    pub same_play: bool,
    /// The serial sold.
    pub serial: i32,
    /// The price.
    pub price_cents: i64,
    /// Days before the valuation.
    pub age_days: f64,
    /// Sold after the player's last game (so the game is priced in).
    pub after_last_game: bool,
}

/// The player's recent games.
#[derive(Debug, Clone, PartialEq)]
pub struct Performance {
    /// The player's name, for sentences.
    pub name: String,
    /// Points in his last game, if any was played.
    pub last_points: Option<i32>,
    /// Days since that game.
    pub last_game_age_days: f64,
    /// Points per game over the games known.
    pub average_points: f64,
    /// The most points in a game known before the last one.
    pub previous_high: i32,
    /// Games known.
    pub games: usize,
}

/// One reason for a valuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    /// A machine name.
    pub name: &'static str,
    /// Its share of the valuation, 0 to 1.
    pub weight: f64,
    /// What it adds to (or takes from) fair value, in cents.
    pub impact_cents: i64,
    /// The reason, as a sentence.
    pub explanation: String,
}

/// A valuation as the model computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Fair value, in cents.
    pub fair_value_cents: i64,
    /// 0 to 1.
    pub confidence: f64,
    /// 0 to 1.
    pub risk_score: f64,
    /// Reasons, heaviest first.
    pub factors: Vec<Factor>,
}

/// What a serial adds: the first of an edition, the player's jersey number, a low serial.
pub fn serial_premium(serial: i32, jersey: Option<i32>) -> f64 {
    if serial == 1 {
        6.0
    } else if Some(serial) == jersey {
        2.5
    } else if serial <= 10 {
        1.8
    } else {
        1.0
    }
}

/// Cents as dollars, such as "$48.20".
pub use fastbreak_mesh::money::dollars;

fn serial_sentence(serial: i32, jersey: Option<i32>) -> Option<String> {
    if serial == 1 {
        Some("serial #1, the first of the edition".to_owned())
    } else if Some(serial) == jersey {
        Some(format!("serial #{serial} matches his jersey"))
    } else if serial <= 10 {
        Some(format!("serial #{serial} is a low serial"))
    } else {
        None
    }
}

/// Values a moment from its comparables and its player's games; `None` without a comparable
/// sale in the window.
pub fn estimate(target: &Target, comparables: &[Comparable], performance: &Performance) -> Option<Estimate> {
    let usable: Vec<_> = comparables.iter().filter(|c| c.age_days <= WINDOW_DAYS && c.price_cents > 0).collect();
    if usable.is_empty() {
        return None;
    }
    let weight = |c: &Comparable| {
        0.5_f64.powf(c.age_days.max(0.0) / HALF_LIFE_DAYS) * if c.same_play { 1.0 } else { OTHER_PLAY_WEIGHT }
    };
    let adjusted = |c: &Comparable| c.price_cents as f64 / serial_premium(c.serial, target.jersey);
    let total: f64 = usable.iter().map(|c| weight(c)).sum();
    let base = usable.iter().map(|c| weight(c) * adjusted(c)).sum::<f64>() / total;
    let squares: f64 = usable.iter().map(|c| weight(c).powi(2)).sum();
    let effective = total * total / squares;
    let spread = (usable.iter().map(|c| weight(c) * (adjusted(c) - base).powi(2)).sum::<f64>() / total).sqrt() / base;

    // A game not yet priced in: the share of comparables that sold before it.
    let before = usable.iter().filter(|c| !c.after_last_game).map(|c| weight(c)).sum::<f64>() / total;
    let surprise = match performance.last_points {
        Some(points) if performance.average_points > 0.0 && performance.games >= 3 => {
            f64::from(points) / performance.average_points - 1.0
        }
        _ => 0.0,
    };
    let moved = (1.0 + PERFORMANCE_SENSITIVITY * surprise * before).clamp(0.75, 1.6);

    let premium = serial_premium(target.serial, target.jersey);
    let fair = base * premium * moved;
    let confidence = ((1.0 - (-effective / 3.0).exp()) / (1.0 + 2.0 * spread)).clamp(0.0, 1.0);
    let risk_score = (0.5 * spread.min(1.0) + 0.5 * (1.0 - confidence)).clamp(0.0, 1.0);

    let same_play = usable.iter().filter(|c| c.same_play).count();
    let mut factors = Vec::new();
    let base_cents = base.round() as i64;
    let comparables_sentence = if same_play > 0 {
        format!(
            "last {same_play} sales of this play average {} (serial-adjusted, recent sales count most)",
            dollars(base_cents)
        )
    } else {
        format!(
            "{} sales of his {} moments in the last {} days average {} (serial-adjusted; no sale of this play)",
            usable.len(),
            target.tier,
            WINDOW_DAYS as i64,
            dollars(base_cents)
        )
    };
    factors.push(("comparable_sales", base_cents, comparables_sentence));
    if let Some(sentence) = serial_sentence(target.serial, target.jersey) {
        factors.push(("serial", (base * (premium - 1.0)).round() as i64, sentence));
    }
    let performance_impact = (base * premium * (moved - 1.0)).round() as i64;
    if let (Some(points), true) = (performance.last_points, performance_impact != 0) {
        let ago =
            if performance.last_game_age_days < 1.5 { "last night".to_owned() } else { "in his last game".to_owned() };
        let sentence = if points > performance.previous_high && performance.games >= 3 {
            format!("{} scored {points} points {ago}, a career high", performance.name)
        } else if surprise > 0.0 {
            format!(
                "{} scored {points} points {ago}, above his {:.1} average",
                performance.name, performance.average_points
            )
        } else {
            format!(
                "{} scored {points} points {ago}, below his {:.1} average",
                performance.name, performance.average_points
            )
        };
        factors.push(("recent_performance", performance_impact, sentence));
    }
    let magnitude: f64 = factors.iter().map(|(_, impact, _)| impact.unsigned_abs() as f64).sum::<f64>().max(1.0);
    let mut factors: Vec<Factor> = factors
        .into_iter()
        .map(|(name, impact_cents, explanation)| Factor {
            name,
            weight: impact_cents.unsigned_abs() as f64 / magnitude,
            impact_cents,
            explanation,
        })
        .collect();
    factors.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    if confidence < LOW_CONFIDENCE {
        let why = if effective < 3.0 {
            format!("low confidence: only {} comparable sales in the last {} days", usable.len(), WINDOW_DAYS as i64)
        } else {
            format!("low confidence: comparable sales disagree by about {:.0}%", spread * 100.0)
        };
        factors.push(Factor { name: "confidence", weight: 0.0, impact_cents: 0, explanation: why });
    }
    Some(Estimate { fair_value_cents: fair.round().max(1.0) as i64, confidence, risk_score, factors })
}

/// The most comparable sales a valuation reads, newest first.
pub const SALES_READ: usize = 300;

/// The most of a player's games a valuation reads, newest first.
pub const GAMES_READ: usize = 82;

/// A sale of one of the player's moments of the target's tier, as it was recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sale {
    /// Of the same play (same set, play and time) as the target.
    pub same_play: bool,
    /// The serial sold.
    pub serial: i32,
    /// The price.
    pub price_cents: i64,
    /// When.
    pub sold_at: DateTime<Utc>,
}

/// A player's points in a game, and when it was played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Game {
    /// Points.
    pub points: i32,
    /// Tip-off.
    pub played_at: DateTime<Utc>,
}

/// Values a moment at `now` from the sales and games given (newest first): sales at or before
/// `now` and within the window only (a sale after `now` is never looked at, so that a replay of
/// the past values as the live service did), at most [`SALES_READ`] of them, and the player's
/// latest [`GAMES_READ`] games as the caller knows them at `now`. `None` without a comparable
/// sale.
pub fn value_at(target: &Target, name: &str, games: &[Game], sales: &[Sale], now: DateTime<Utc>) -> Option<Estimate> {
    let days = |then: DateTime<Utc>| (now - then).num_minutes() as f64 / 1_440.0;
    let games: Vec<&Game> = games.iter().take(GAMES_READ).collect();
    let last_game = games.first();
    let performance = Performance {
        name: name.to_owned(),
        last_points: last_game.map(|g| g.points),
        last_game_age_days: last_game.map_or(99.0, |g| days(g.played_at)),
        average_points: if games.is_empty() {
            0.0
        } else {
            games.iter().map(|g| f64::from(g.points)).sum::<f64>() / games.len() as f64
        },
        previous_high: games.iter().skip(1).map(|g| g.points).max().unwrap_or(0),
        games: games.len(),
    };
    let comparables: Vec<Comparable> = sales
        .iter()
        .filter(|s| s.sold_at <= now && days(s.sold_at) <= WINDOW_DAYS)
        .take(SALES_READ)
        .map(|s| Comparable {
            same_play: s.same_play,
            serial: s.serial,
            price_cents: s.price_cents,
            age_days: days(s.sold_at),
            after_last_game: last_game.is_some_and(|g| s.sold_at >= g.played_at),
        })
        .collect();
    estimate(target, &comparables, &performance)
}

/// What the model advises at `price`, given fair value and confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Clearly undervalued, and the model is sure.
    StrongBuy,
    /// Undervalued.
    Buy,
    /// About fair, or no price to judge.
    Hold,
    /// Overvalued.
    Sell,
}

/// The discount of `price` to fair value, in basis points (negative: a premium).
pub fn discount_bps(fair: i64, price: i64) -> i32 {
    if fair <= 0 {
        return 0;
    }
    (((fair - price) as f64 / fair as f64) * 10_000.0).round().clamp(-1_000_000.0, 10_000.0) as i32
}

/// The advice for a price.
pub fn advise(estimate: &Estimate, price: Option<i64>) -> Advice {
    let Some(price) = price else { return Advice::Hold };
    match discount_bps(estimate.fair_value_cents, price) {
        d if d >= 2_500 && estimate.confidence >= 0.6 => Advice::StrongBuy,
        d if d >= 1_000 => Advice::Buy,
        d if d >= -1_000 => Advice::Hold,
        _ => Advice::Sell,
    }
}

#[cfg(test)]
mod tests;
