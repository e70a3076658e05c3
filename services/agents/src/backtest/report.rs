//! A backtest's ledgers and the report made of them: per strategy (and per baseline) the trades
//! with their reasons and factors, profit, ROI, win rate, maximum drawdown, exposure over
//! time, best and worst calls and skips by reason; and the chart of it (equity and drawdown),
//! as SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use fastbreak_market_sim::{self as sim, Simulator};
use fastbreak_proto::strategy::v1 as strategy;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Acted, Plan, outcome};
use crate::domain::Factor;
use crate::domain::protections::Outcome;
use crate::store::{Decision, DecisionOutcome};

/// The most trades a ledger's report lists (the rest are counted).
const TRADES_LISTED: usize = 200;
/// How many best and worst calls a ledger's report names.
const CALLS: usize = 3;

/// A moment a ledger bought, held or sold.
#[derive(Debug, Clone)]
pub(crate) struct Position {
    trade: Trade,
}

impl Position {
    /// The position a purchase decision opened.
    pub(crate) fn bought(decision: &Decision, moment: &sim::Moment, player: &str) -> Self {
        Self {
            trade: Trade {
                listing_id: decision.listing_id.to_string(),
                moment_id: moment.id.to_string(),
                player_id: moment.player_id.clone(),
                player: player.to_owned(),
                tier: moment.tier.as_str().to_owned(),
                serial_number: moment.serial_number,
                bought_at: decision.created_at,
                price_cents: decision.price_cents,
                fair_value_cents: decision.fair_value_cents,
                confidence: decision.confidence,
                reasons: decision.reasons.clone(),
                factors: serde_json::from_value(decision.factors.clone()).unwrap_or_default(),
                sold_at: None,
                proceeds_cents: None,
                value_cents: decision.price_cents,
                pnl_cents: 0,
            },
        }
    }
}

/// A strategy's paper ledger during a replay.
#[derive(Debug)]
pub(crate) struct Account {
    strategy_id: String,
    name: String,
    starting_cents: i64,
    pub cash_cents: i64,
    /// Purchases made (numbering the paper trades).
    pub bought: u64,
    /// What its protections read: a purchase (no profit) and a sale (its profit) each.
    pub outcomes: Vec<Outcome>,
    /// Listings it bought.
    pub acted: Acted,
    open: Vec<Position>,
    closed: Vec<Position>,
    /// The instant of the decision being made.
    pub now: DateTime<Utc>,
    /// What each purchase spent, and when (for the user's budget limits).
    pub spent: Vec<(DateTime<Utc>, i64)>,
    /// When its emergency stop engaged, and why, once it has.
    pub emergency_stop: Option<Stop>,
    /// When activity as risk judges it paused its automated purchases, and why, once it has.
    pub paused: Option<Stop>,
    /// Purchases refused by a limit in a row, since the last one granted.
    pub refusals_in_a_row: u32,
    decisions: u64,
    awaiting: u64,
    skips: BTreeMap<(String, String), u64>,
    points: Vec<Point>,
}

impl Account {
    pub(crate) fn new(strategy: &strategy::Strategy, starting_cents: i64, start: DateTime<Utc>) -> Self {
        Self {
            strategy_id: strategy.strategy_id.clone(),
            name: strategy.display_name.clone(),
            starting_cents,
            cash_cents: starting_cents,
            bought: 0,
            outcomes: Vec::new(),
            acted: Acted::default(),
            open: Vec::new(),
            closed: Vec::new(),
            now: start,
            spent: Vec::new(),
            emergency_stop: None,
            paused: None,
            refusals_in_a_row: 0,
            decisions: 0,
            awaiting: 0,
            skips: BTreeMap::new(),
            points: vec![Point { at: start, equity_cents: starting_cents, exposure_cents: 0, drawdown: 0.0 }],
        }
    }

    /// Purchases made at or after `since`.
    pub(crate) fn bought_since(&self, since: DateTime<Utc>) -> i64 {
        self.spent.iter().filter(|(at, _)| *at >= since).count() as i64
    }

    /// Counts a decision: a purchase, one waiting for an approval nobody gives in a replay, or
    /// a skip by its reason and rule.
    pub(crate) fn decided(&mut self, decision: &Decision) {
        self.decisions += 1;
        // A listing bought leaves the market, as a live purchase takes it off; one refused or
        // waiting for approval stays, and is decided again when repriced, as live.
        if decision.outcome == DecisionOutcome::Buy {
            self.acted.insert(decision.listing_id);
        }
        match decision.outcome {
            // Its purchase is counted where the ledger paid for it (`spent`).
            DecisionOutcome::Buy => {}
            DecisionOutcome::AwaitingApproval => self.awaiting += 1,
            DecisionOutcome::Skip | DecisionOutcome::Refused => {
                *self.skips.entry((decision.reason_code.clone(), decision.rule.clone())).or_default() += 1;
            }
        }
    }

    /// A purchase's position, and its outcome for the protections.
    pub(crate) fn opened(&mut self, position: Position) {
        self.outcomes.push(outcome(&position.trade.player_id, 0, position.trade.bought_at));
        self.open.push(position);
    }

    /// What a moment fetches now on the main marketplace, less its fee.
    fn proceeds(simulator: &Simulator, moment: &str, fee_bps: i32) -> i64 {
        let value = Uuid::parse_str(moment).ok().and_then(|id| simulator.latent_value(id)).unwrap_or(0);
        value - value * i64::from(fee_bps) / 10_000
    }

    /// Sells the positions held `hold_days` or more at `now` (none when 0) at the moment's
    /// market value less the marketplace's fee.
    pub(crate) fn sell_held(&mut self, simulator: &Simulator, hold_days: u32, fee_bps: i32, now: DateTime<Utc>) {
        if hold_days == 0 {
            return;
        }
        let due = now - Duration::days(i64::from(hold_days));
        let (sold, kept): (Vec<Position>, Vec<Position>) =
            std::mem::take(&mut self.open).into_iter().partition(|p| p.trade.bought_at <= due);
        self.open = kept;
        for mut position in sold {
            let proceeds = Self::proceeds(simulator, &position.trade.moment_id, fee_bps);
            let trade = &mut position.trade;
            trade.sold_at = Some(now);
            trade.proceeds_cents = Some(proceeds);
            trade.value_cents = proceeds;
            trade.pnl_cents = proceeds - trade.price_cents;
            self.cash_cents += proceeds;
            self.outcomes.push(outcome(&trade.player_id, trade.pnl_cents, now));
            self.closed.push(position);
        }
    }

    /// Marks the open positions at their market value less the fee, and records the ledger's
    /// equity and exposure at `at`.
    pub(crate) fn mark(&mut self, simulator: &Simulator, fee_bps: i32, at: DateTime<Utc>) {
        let mut held = 0;
        let mut exposure = 0;
        for position in &mut self.open {
            let trade = &mut position.trade;
            trade.value_cents = Self::proceeds(simulator, &trade.moment_id, fee_bps);
            trade.pnl_cents = trade.value_cents - trade.price_cents;
            held += trade.value_cents;
            exposure += trade.price_cents;
        }
        let equity = self.cash_cents + held;
        let peak = self.points.iter().map(|p| p.equity_cents).max().unwrap_or(equity).max(equity);
        let drawdown = if peak > 0 { (peak - equity) as f64 / peak as f64 } else { 0.0 };
        self.points.push(Point { at, equity_cents: equity, exposure_cents: exposure, drawdown });
    }

    fn ledger(self) -> Ledger {
        let mut trades: Vec<Trade> = self.closed.into_iter().chain(self.open).map(|p| p.trade).collect();
        trades.sort_by(|a, b| a.bought_at.cmp(&b.bought_at).then_with(|| a.listing_id.cmp(&b.listing_id)));
        let last = self.points.last().map_or(self.starting_cents, |p| p.equity_cents);
        let closed = trades.iter().filter(|t| t.sold_at.is_some()).count();
        let wins = trades.iter().filter(|t| t.sold_at.is_some() && t.pnl_cents > 0).count();
        let realised = trades.iter().filter(|t| t.sold_at.is_some()).map(|t| t.pnl_cents).sum();
        let (mut max_drawdown, mut max_drawdown_cents, mut peak) = (0.0_f64, 0, i64::MIN);
        for point in &self.points {
            peak = peak.max(point.equity_cents);
            max_drawdown = max_drawdown.max(point.drawdown);
            max_drawdown_cents = max_drawdown_cents.max(peak - point.equity_cents);
        }
        let mut ranked: Vec<&Trade> = trades.iter().collect();
        ranked.sort_by(|a, b| b.pnl_cents.cmp(&a.pnl_cents).then_with(|| a.listing_id.cmp(&b.listing_id)));
        let best: Vec<Trade> = ranked.iter().filter(|t| t.pnl_cents > 0).take(CALLS).map(|t| (*t).clone()).collect();
        let worst: Vec<Trade> =
            ranked.iter().rev().filter(|t| t.pnl_cents < 0).take(CALLS).map(|t| (*t).clone()).collect();
        let purchases = trades.len();
        let left_out = purchases.saturating_sub(TRADES_LISTED);
        trades.truncate(TRADES_LISTED);
        Ledger {
            emergency_stop: self.emergency_stop,
            paused: self.paused,
            strategy_id: self.strategy_id,
            name: self.name,
            decisions: self.decisions,
            purchases: purchases as u64,
            awaiting_approval: self.awaiting,
            closed: closed as u64,
            wins: wins as u64,
            win_rate: if closed == 0 { 0.0 } else { wins as f64 / closed as f64 },
            final_equity_cents: last,
            profit_cents: last - self.starting_cents,
            roi: (last - self.starting_cents) as f64 / self.starting_cents.max(1) as f64,
            realised_profit_cents: realised,
            max_drawdown,
            max_drawdown_cents,
            skips: self.skips.into_iter().map(|((reason, rule), count)| SkipCount { reason, rule, count }).collect(),
            best,
            worst,
            trades,
            trades_left_out: left_out as u64,
            equity: self.points,
        }
    }
}

/// A trade of a backtest: bought (with the reasons and factors that led to it), then sold or
/// still held at the end (marked at its market value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Trade {
    pub listing_id: String,
    pub moment_id: String,
    pub player_id: String,
    pub player: String,
    pub tier: String,
    pub serial_number: i32,
    pub bought_at: DateTime<Utc>,
    pub price_cents: i64,
    pub fair_value_cents: i64,
    pub confidence: f64,
    pub reasons: Vec<String>,
    pub factors: Vec<Factor>,
    pub sold_at: Option<DateTime<Utc>>,
    pub proceeds_cents: Option<i64>,
    /// What it fetched, or what it would fetch at the end (less the fee).
    pub value_cents: i64,
    /// Realised when sold, else marked.
    pub pnl_cents: i64,
}

/// A ledger's equity (cash and positions at market value), exposure (what its open positions
/// cost) and drawdown from its peak, at the end of a simulated day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Point {
    pub at: DateTime<Utc>,
    pub equity_cents: i64,
    pub exposure_cents: i64,
    pub drawdown: f64,
}

/// Skips of one reason by one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SkipCount {
    pub reason: String,
    pub rule: String,
    pub count: u64,
}

/// One strategy's (or baseline's) figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ledger {
    pub strategy_id: String,
    pub name: String,
    pub decisions: u64,
    pub purchases: u64,
    pub awaiting_approval: u64,
    pub closed: u64,
    pub wins: u64,
    pub win_rate: f64,
    pub final_equity_cents: i64,
    pub profit_cents: i64,
    pub roi: f64,
    pub realised_profit_cents: i64,
    pub max_drawdown: f64,
    pub max_drawdown_cents: i64,
    pub skips: Vec<SkipCount>,
    pub best: Vec<Trade>,
    pub worst: Vec<Trade>,
    pub trades: Vec<Trade>,
    pub trades_left_out: u64,
    pub equity: Vec<Point>,
    /// When the ledger's emergency stop engaged (the user's emergency threshold passed), and
    /// why: nothing is bought after it.
    #[serde(default)]
    pub emergency_stop: Option<Stop>,
    /// When activity that risk calls suspicious (a burst, a purchase far above the usual size,
    /// refusals in a row) paused the ledger's purchases, and why: nobody acknowledges the
    /// alert in a replay, so nothing is bought after it.
    #[serde(default)]
    pub paused: Option<Stop>,
}

/// An emergency stop that engaged, or a pause that began, during a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stop {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A backtest's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Report {
    pub seed: u64,
    pub days: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub starting_balance_cents: i64,
    pub hold_days: u32,
    /// Listing events (new listings and price changes) replayed.
    pub listing_events: u64,
    /// The user's budget limits every ledger was held to (none when absent).
    #[serde(default)]
    pub budget_limits: Option<Budget>,
    pub strategies: Vec<Ledger>,
    /// "buy every listing under fair value" and "hold nothing".
    pub baselines: Vec<Ledger>,
}

/// The budget limits a backtest applied, in cents (absent: no such limit), with the time zone
/// of their periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Budget {
    #[serde(flatten)]
    pub limits: fastbreak_limits::LimitValues,
    pub time_zone: String,
    /// The limits in words, as the command line and the dashboard show them.
    pub summary: String,
}

impl Budget {
    fn of(limits: &fastbreak_limits::Limits) -> Self {
        let v = &limits.values;
        let named = [
            ("a day", v.daily_cents),
            ("a week", v.weekly_cents),
            ("a month", v.monthly_cents),
            ("in all", v.total_cents),
            ("a moment", v.per_moment_cents),
            ("kept in reserve", v.reserve_cents),
            ("within an hour before the emergency stop engages", v.emergency_threshold_cents),
        ];
        let parts: Vec<String> = named
            .iter()
            .filter_map(|(what, cents)| cents.map(|c| format!("{} {what}", fastbreak_mesh::money::dollars(c))))
            .collect();
        let summary = if parts.is_empty() {
            "no budget limit".to_owned()
        } else {
            format!("{} (periods in {})", parts.join(", "), limits.zone.name())
        };
        Self { summary, limits: *v, time_zone: limits.zone.name().to_owned() }
    }
}

impl Report {
    /// The report of a replay's ledgers: the plan's strategies first, then the baseline that
    /// buys every discount; "hold nothing" is added here.
    pub(crate) fn new(
        plan: &Plan,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        listing_events: u64,
        accounts: Vec<Account>,
    ) -> Self {
        let mut ledgers: Vec<Ledger> = accounts.into_iter().map(Account::ledger).collect();
        let every = ledgers.split_off(plan.strategies.len());
        let flat: Vec<Point> = every
            .first()
            .map(|l| {
                l.equity
                    .iter()
                    .map(|p| Point { at: p.at, equity_cents: plan.starting_cents, exposure_cents: 0, drawdown: 0.0 })
                    .collect()
            })
            .unwrap_or_default();
        let nothing = Ledger {
            strategy_id: String::new(),
            name: "hold nothing".to_owned(),
            decisions: 0,
            purchases: 0,
            awaiting_approval: 0,
            closed: 0,
            wins: 0,
            win_rate: 0.0,
            final_equity_cents: plan.starting_cents,
            profit_cents: 0,
            roi: 0.0,
            realised_profit_cents: 0,
            max_drawdown: 0.0,
            max_drawdown_cents: 0,
            skips: Vec::new(),
            best: Vec::new(),
            worst: Vec::new(),
            trades: Vec::new(),
            trades_left_out: 0,
            equity: flat,
            emergency_stop: None,
            paused: None,
        };
        let mut baselines = every;
        baselines.push(nothing);
        Self {
            seed: plan.seed,
            days: plan.days,
            start,
            end,
            starting_balance_cents: plan.starting_cents,
            hold_days: plan.hold_days,
            listing_events,
            budget_limits: plan.limits.as_ref().map(Budget::of),
            strategies: ledgers,
            baselines,
        }
    }

    /// The chart: every ledger's equity over time (above) and drawdown (below), as SVG.
    pub(crate) fn chart_svg(&self) -> String {
        const WIDTH: f64 = 860.0;
        const LEFT: f64 = 80.0;
        const RIGHT: f64 = 600.0;
        const TOP: f64 = 40.0;
        const EQUITY_BOTTOM: f64 = 300.0;
        const DRAW_TOP: f64 = 340.0;
        const DRAW_BOTTOM: f64 = 460.0;
        const COLOURS: [&str; 12] = [
            "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
            "#7f7f7f", "#444444", "#aaaaaa",
        ];
        let ledgers: Vec<&Ledger> = self.strategies.iter().chain(&self.baselines).collect();
        let span = (self.end - self.start).num_seconds().max(1) as f64;
        let x = |at: DateTime<Utc>| LEFT + (RIGHT - LEFT) * ((at - self.start).num_seconds() as f64 / span);
        let equities = ledgers.iter().flat_map(|l| l.equity.iter().map(|p| p.equity_cents));
        let (low, high) = equities
            .fold((self.starting_balance_cents, self.starting_balance_cents), |(lo, hi), e| (lo.min(e), hi.max(e)));
        let (low, high) = (low as f64, (high as f64).max(low as f64 + 1.0));
        let y = |cents: i64| EQUITY_BOTTOM - (EQUITY_BOTTOM - TOP) * ((cents as f64 - low) / (high - low));
        let deepest = ledgers.iter().map(|l| l.max_drawdown).fold(0.01_f64, f64::max);
        let dy = |share: f64| DRAW_TOP + (DRAW_BOTTOM - DRAW_TOP) * (share / deepest);
        let dollars = |cents: f64| fastbreak_mesh::money::dollars(cents.round() as i64);
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"500\" viewBox=\"0 0 {WIDTH} 500\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{LEFT}\" y=\"22\" font-size=\"15\">Backtest: seed {}, {} days from {} (equity, then drawdown)</text>\n",
            self.seed,
            self.days,
            self.start.format("%Y-%m-%d")
        );
        for (label, at) in [(dollars(high), TOP), (dollars(low), EQUITY_BOTTOM)] {
            let _ =
                writeln!(svg, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>", LEFT - 6.0, at + 4.0);
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0%</text>\n<text x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"end\">-{:.1}%</text>",
            LEFT - 6.0,
            DRAW_TOP + 4.0,
            LEFT - 6.0,
            DRAW_BOTTOM + 4.0,
            deepest * 100.0
        );
        for (top, bottom) in [(TOP, EQUITY_BOTTOM), (DRAW_TOP, DRAW_BOTTOM)] {
            let _ = writeln!(
                svg,
                "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#ccc\"/>",
                RIGHT - LEFT,
                bottom - top
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text><text x=\"{RIGHT}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            DRAW_BOTTOM + 20.0,
            self.start.format("%Y-%m-%d"),
            DRAW_BOTTOM + 20.0,
            self.end.format("%Y-%m-%d")
        );
        for (k, ledger) in ledgers.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let dash = if k >= self.strategies.len() { " stroke-dasharray=\"5,4\"" } else { "" };
            let line = |points: Vec<(f64, f64)>| {
                points.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect::<Vec<_>>().join(" ")
            };
            let equity = line(ledger.equity.iter().map(|p| (x(p.at), y(p.equity_cents))).collect());
            let drawdown = line(ledger.equity.iter().map(|p| (x(p.at), dy(p.drawdown))).collect());
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"{dash} points=\"{equity}\"/>\n\
                 <polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"{dash} points=\"{drawdown}\"/>"
            );
            let ly = TOP + 16.0 * k as f64;
            let _ = writeln!(
                svg,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"3\"{dash}/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{} ({:+.1}%)</text>",
                RIGHT + 15.0,
                ly,
                RIGHT + 35.0,
                ly,
                RIGHT + 40.0,
                ly + 4.0,
                escape(&ledger.name),
                ledger.roi * 100.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// Text made safe inside SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
