//! Backtesting: a seeded simulated season replayed, hour by hour, through the decision code the
//! live agents run (`judge`, then `purchase` with its daily cap, protections and manual
//! approval), each strategy against a paper ledger of its own. What the replay knows at an
//! instant is only what the market had shown by then: the sales and box scores of the past
//! (a valuation reads nothing later), so a decision can never look ahead.
//!
//! The replay is pure: no database, no peer. `run` is where the service starts it, on a blocking
//! thread, and stores its progress and report.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use fastbreak_limits::{
    Figures, HISTORY, LimitKind, Limits, Periods, Suspicion, Suspicious, THRESHOLD_WINDOW, suspicious,
};
use fastbreak_market_sim::{self as sim, Event, Simulator};
use fastbreak_mesh::status::{self, timestamp};
use fastbreak_proto::common::v1::{ErrorReason, Rarity};
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::scouting::v1 as scouting;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::trading::v1 as trading;
use fastbreak_valuation as valuation;
use tonic::Status;
use uuid::Uuid;

use crate::domain::protections::{self, Outcome};
use crate::domain::{FORM_GAMES, Factor, PlayerForm};
use crate::engine::{Book, Candidate, Judged, Shared, factors_of, judge, purchase};
use crate::index::Indexed;
use crate::store::{Decision, DecisionOutcome};

pub(crate) mod report;
pub(crate) mod run;

pub(crate) use report::Report;
use report::{Account, Position};

/// The most strategies one backtest compares.
pub(crate) const MAX_STRATEGIES: usize = 10;
/// The longest season one backtest replays, in days.
pub(crate) const MAX_DAYS: u32 = 120;
/// The longest a position is held before it is sold, in days.
pub(crate) const MAX_HOLD_DAYS: u32 = 60;

/// What to replay.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The simulated market's seed.
    pub seed: u64,
    /// When the simulated season opens: the simulator's own calendar's start ([`season`]) for
    /// a backtest asked through the API.
    pub start: DateTime<Utc>,
    /// Simulated days.
    pub days: u32,
    /// The paper money each strategy starts with, in cents.
    pub starting_cents: i64,
    /// Days a moment bought is held before it is sold at its market value (less the
    /// marketplace's fee); 0 keeps every position to the end (marked, never sold).
    pub hold_days: u32,
    /// The strategies, each with a ledger of its own.
    pub strategies: Vec<strategy::Strategy>,
    /// The user's budget limits, applied to every ledger as risk applies them to a live
    /// purchase (by the same rules, `libs/limits`); `None` applies none.
    pub limits: Option<Limits>,
    /// When activity is suspicious, as the deployment's risk service judges it (with the
    /// limits).
    pub suspicion: Suspicion,
}

/// The simulated season of a seed: the simulator's own calendar from its fixed start.
pub fn season(seed: u64) -> sim::Config {
    sim::Config { seed, ..sim::Config::default() }
}

/// The pseudo-strategy of the baseline "buy every listing under fair value": no limit, no
/// protection, any discount and any confidence (run through the same decision code).
fn every_discount() -> strategy::Strategy {
    strategy::Strategy {
        strategy_id: Uuid::nil().to_string(),
        display_name: "buy every listing under fair value".to_owned(),
        rules: Some(strategy::StrategyRules { min_discount_bps: 1, min_confidence: 0.0, ..Default::default() }),
        ..Default::default()
    }
}

/// A paper ledger as a strategy's purchases meet it: its cash, its outcomes for the
/// protections, and the user's budget limits.
struct Paper {
    account: Mutex<Account>,
    limits: Option<Limits>,
    suspicion: Suspicion,
}

impl Paper {
    fn with<T>(&self, f: impl FnOnce(&mut Account) -> T) -> T {
        let mut account = self.account.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut account)
    }
}

/// Checks a paper purchase of `price` at the ledger's instant as risk checks a live automated
/// one: first the user's limits (what the ledger spent in the periods of the instant, nothing on
/// hold, its cash as the balance), then suspicious activity by the deployment's rules (a burst,
/// a purchase far above the usual size, refusals in a row). Passing the emergency threshold
/// engages the ledger's emergency stop, and suspicious activity pauses its purchases; nobody
/// releases either in a replay.
fn within(limits: &Limits, suspicion: &Suspicion, account: &mut Account, price: i64) -> Result<(), Status> {
    if let Some(stop) = &account.emergency_stop {
        return Err(status::failed_precondition(
            format!(
                "the emergency stop engaged at {} is still engaged: nobody releases it in a replay",
                stop.at.format("%Y-%m-%d %H:%M UTC")
            ),
            ErrorReason::EmergencyStopEngaged,
            [("reason".to_owned(), stop.reason.clone())],
        ));
    }
    if let Some(pause) = &account.paused {
        return Err(status::failed_precondition(
            format!(
                "automated purchases are paused since {}: {}; nobody acknowledges the alert in a replay",
                pause.at.format("%Y-%m-%d %H:%M UTC"),
                pause.reason
            ),
            ErrorReason::SuspiciousActivity,
            [],
        ));
    }
    let now = account.now;
    let figures = figures_at(account, Periods::at(now, limits.zone), suspicion);
    if let Err(refusal) = fastbreak_limits::check(limits, &figures, price, account.cash_cents) {
        if refusal.kind == LimitKind::EmergencyThreshold {
            account.emergency_stop = Some(report::Stop { at: now, reason: refusal.message() });
        }
        account.refusals_in_a_row += 1;
        if account.refusals_in_a_row >= suspicion.refusals_in_a_row && account.emergency_stop.is_none() {
            let count = i32::try_from(account.refusals_in_a_row).unwrap_or(i32::MAX);
            account.paused = Some(report::Stop { at: now, reason: Suspicious::Refusals { count }.message() });
        }
        return Err(refusal.status());
    }
    account.refusals_in_a_row = 0;
    if let Some(suspicious) = suspicious(suspicion, &figures, price) {
        let reason = suspicious.message();
        account.paused = Some(report::Stop { at: now, reason: reason.clone() });
        return Err(status::failed_precondition(
            format!("{reason}; nobody acknowledges it in a replay"),
            ErrorReason::SuspiciousActivity,
            [],
        ));
    }
    Ok(())
}

/// What risk would read of the user at the ledger's instant: its spending in the periods of
/// the instant and the last hour, and the purchases of the burst window and of the history
/// before it (their count and mean); nothing is ever on hold.
fn figures_at(account: &Account, periods: Periods, suspicion: &Suspicion) -> Figures {
    let now = account.now;
    let hour = now - THRESHOLD_WINDOW;
    let burst = now - Duration::from_std(suspicion.burst_window).unwrap_or(Duration::minutes(10));
    let history = now - HISTORY;
    let mut figures = Figures::default();
    let mut history_cents = 0;
    for &(at, cents) in &account.spent {
        figures.spent_total += cents;
        for (start, sum) in [
            (periods.month, &mut figures.spent_month),
            (periods.week, &mut figures.spent_week),
            (periods.day, &mut figures.spent_day),
            (hour, &mut figures.spent_hour),
        ] {
            if at >= start {
                *sum += cents;
            }
        }
        if at >= burst {
            figures.burst_holds += 1;
        } else if at >= history {
            figures.history_holds += 1;
        }
        if at >= history {
            figures.history_purchases += 1;
            history_cents += cents;
        }
    }
    // Rounded to the nearest cent, as risk's average is.
    let n = figures.history_purchases;
    figures.history_mean_cents = if n > 0 { (2 * history_cents + n) / (2 * n) } else { 0 };
    figures
}

impl Book for Paper {
    /// The replayed instant: nobody approves on paper.
    fn asked_at(&self, judged: DateTime<Utc>) -> DateTime<Utc> {
        judged
    }

    async fn stopped(
        &self,
        strategy: &strategy::Strategy,
        _user: Uuid,
        player: Option<&str>,
        decision: &Decision,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        let rules = strategy.rules.unwrap_or_default();
        let pause = self.with(|a| {
            protections::paused(strategy.protections.as_ref(), &rules, &strategy.display_name, &a.outcomes, player, now)
        })?;
        Some(pause.skip().decide(decision.clone()))
    }

    async fn buy(&self, request: trading::ExecutePurchaseRequest) -> Result<trading::Trade, Status> {
        self.with(|a| {
            let price = request.max_price_cents;
            if let Some(limits) = &self.limits {
                within(limits, &self.suspicion, a, price)?;
            }
            if a.cash_cents < price {
                return Err(status::failed_precondition(
                    format!(
                        "the paper ledger holds {}, less than the price {}",
                        fastbreak_mesh::money::dollars(a.cash_cents),
                        fastbreak_mesh::money::dollars(price)
                    ),
                    ErrorReason::InsufficientFunds,
                    [],
                ));
            }
            a.cash_cents -= price;
            a.spent.push((a.now, price));
            a.bought += 1;
            Ok(trading::Trade { trade_id: Uuid::from_u128(u128::from(a.bought)).to_string(), ..Default::default() })
        })
    }
}

/// What the replay knows of the market at an instant: the players, moments and active listings
/// seen so far, the sales and box scores of the past.
#[derive(Default)]
struct Known {
    players: BTreeMap<String, sim::Player>,
    moments: BTreeMap<Uuid, sim::Moment>,
    listings: BTreeMap<Uuid, sim::Listing>,
    /// Sales by player and tier, oldest first: (moment, price, when).
    sales: BTreeMap<(String, sim::Tier), Vec<(Uuid, i64, DateTime<Utc>)>>,
    /// Box scores by player, oldest first, with when the game ended.
    games: BTreeMap<String, Vec<(sim::BoxScore, DateTime<Utc>)>>,
}

impl Known {
    fn moment(&self, moment: &sim::Moment) -> market::Moment {
        let player = self.players.get(&moment.player_id);
        let rarity = Rarity::from_str_name(&format!("RARITY_{}", moment.tier.as_str().to_ascii_uppercase()))
            .unwrap_or(Rarity::Unspecified);
        market::Moment {
            moment_id: moment.id.to_string(),
            player_id: moment.player_id.clone(),
            player_name: player.map(|p| p.full_name.clone()).unwrap_or_default(),
            team_code: player.map(|p| p.team_code.clone()).unwrap_or_default(),
            set_name: moment.set_name.clone(),
            play_category: moment.play_category.clone(),
            play_time: Some(timestamp(moment.play_at)),
            rarity: rarity.into(),
            serial_number: moment.serial_number,
            edition_size: moment.edition_size,
            floor_price_cents: None,
            last_sale_cents: None,
        }
    }

    /// The moment valued at `now` by the model scouting runs, from the sales before `now` only.
    fn valuation(&self, moment: &sim::Moment, price: i64, now: DateTime<Utc>) -> Result<scouting::Valuation, Status> {
        let player = self.players.get(&moment.player_id);
        let target = valuation::Target {
            serial: moment.serial_number,
            jersey: player.map(|p| p.jersey),
            tier: moment.tier.as_str().to_owned(),
        };
        let name = player.map_or_else(|| moment.player_id.clone(), |p| p.full_name.clone());
        let games: Vec<valuation::Game> = self
            .games
            .get(&moment.player_id)
            .map(|games| {
                games
                    .iter()
                    .rev()
                    .take(valuation::GAMES_READ)
                    .map(|(g, at)| valuation::Game { points: g.points, played_at: *at })
                    .collect()
            })
            .unwrap_or_default();
        let sales: Vec<valuation::Sale> = self
            .sales
            .get(&(moment.player_id.clone(), moment.tier))
            .map(|sales| {
                sales
                    .iter()
                    .rev()
                    .take(valuation::SALES_READ)
                    .map(|(sold, price, at)| {
                        let sold = self.moments.get(sold);
                        valuation::Sale {
                            same_play: sold.is_some_and(|m| {
                                m.set_name == moment.set_name
                                    && m.play_category == moment.play_category
                                    && m.play_at == moment.play_at
                            }),
                            serial: sold.map_or(0, |m| m.serial_number),
                            price_cents: *price,
                            sold_at: *at,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let Some(estimate) = valuation::value_at(&target, &name, &games, &sales, now) else {
            return Err(status::failed_precondition(
                "no comparable sale of this player's moments of this tier in the last 60 days: the model will not guess",
                ErrorReason::InvalidState,
                [],
            ));
        };
        Ok(scouting::Valuation {
            valuation_id: String::new(),
            moment_id: moment.id.to_string(),
            fair_value_cents: estimate.fair_value_cents,
            confidence: estimate.confidence,
            recommendation: scouting::Recommendation::Unspecified.into(),
            risk_score: estimate.risk_score,
            price_cents: Some(price),
            discount_bps: Some(valuation::discount_bps(estimate.fair_value_cents, price)),
            factors: estimate
                .factors
                .into_iter()
                .map(|f| scouting::ValuationFactor {
                    name: f.name.to_owned(),
                    weight: f.weight,
                    impact_cents: f.impact_cents,
                    explanation: f.explanation,
                })
                .collect(),
            model_version: valuation::MODEL_VERSION.to_owned(),
            compute_time: Some(timestamp(now)),
            valuation_time: Some(timestamp(now)),
        })
    }

    /// A player's record and latest games, newest first, as scouting would answer at `now`.
    fn form(&self, player: &str) -> PlayerForm {
        let record = self.players.get(player).map(|p| scouting::Player {
            player_id: p.id.clone(),
            full_name: p.full_name.clone(),
            team_code: p.team_code.clone(),
            position: p.position.clone(),
            seasons_played: p.seasons_played,
            rookie: p.seasons_played == 1,
            jersey_number: Some(p.jersey),
        });
        let games = self
            .games
            .get(player)
            .map(|games| {
                games
                    .iter()
                    .rev()
                    .take(FORM_GAMES as usize)
                    .map(|(g, at)| scouting::PlayerGameStats {
                        game_id: g.game_id.clone(),
                        player_id: g.player_id.clone(),
                        game_time: Some(timestamp(*at)),
                        opponent_code: g.opponent_code.clone(),
                        minutes: g.minutes,
                        points: g.points,
                        rebounds: g.rebounds,
                        assists: g.assists,
                        steals: g.steals,
                        blocks: g.blocks,
                        turnovers: g.turnovers,
                    })
                    .collect()
            })
            .unwrap_or_default();
        PlayerForm { player: record, games }
    }
}

/// Replays `plan` and reports on it. `progress` is told the simulated days done, after each;
/// once `stop` is set the replay ends at the next simulated hour, with no report.
pub(crate) async fn replay(plan: &Plan, progress: impl FnMut(u32), stop: &AtomicBool) -> Option<Report> {
    replay_deciding(plan, progress, stop, |_, _| {}).await
}

/// Replays `plan` and tells `decided` every decision it makes, in order, with the place of its
/// strategy in the plan (the baseline "buy every listing under fair value" comes after them):
/// what a replay decided, to be set beside what the live agents decided. The replay's figures
/// are left out.
pub async fn replay_decisions(plan: &Plan, mut decided: impl FnMut(usize, &Decision)) {
    replay_deciding(plan, |_| {}, &AtomicBool::new(false), |k, d| decided(k, d)).await;
}

async fn replay_deciding(
    plan: &Plan,
    mut progress: impl FnMut(u32),
    stop: &AtomicBool,
    mut decided: impl FnMut(usize, &Decision),
) -> Option<Report> {
    let mut simulator = Simulator::new(sim::Config { start: plan.start, ..season(plan.seed) });
    let fee_bps = simulator.config().marketplaces.first().map_or(0, |m| m.fee_bps);
    let start = simulator.now();
    let mut strategies = plan.strategies.clone();
    strategies.push(every_discount());
    let books: Vec<Paper> = strategies
        .iter()
        .map(|s| Paper {
            account: Mutex::new(Account::new(s, plan.starting_cents, start)),
            limits: plan.limits.clone(),
            suspicion: plan.suspicion.clone(),
        })
        .collect();
    // Each strategy alone in the index, so that every strategy decides every listing it
    // matches (the ledgers are side by side, not one user's strategies competing).
    let indexes: Vec<Indexed> = strategies.iter().map(|s| Indexed::new(0, vec![s.clone()])).collect();
    let user = Uuid::nil();
    let mut known = Known::default();
    let steps_per_day = (Duration::days(1).num_seconds() / simulator.config().step.num_seconds().max(1)).max(1);
    let mut events_decided = 0u64;
    for day in 0..plan.days {
        for _ in 0..steps_per_day {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let now = simulator.now();
            for paper in &books {
                paper.with(|a| a.sell_held(&simulator, plan.hold_days, fee_bps, now));
            }
            for timed in simulator.step() {
                let at = timed.at;
                let offered = match timed.event {
                    Event::PlayerSigned(player) => {
                        known.players.insert(player.id.clone(), player);
                        None
                    }
                    Event::GameFinal { lines, .. } => {
                        for line in lines {
                            known.games.entry(line.player_id.clone()).or_default().push((line, at));
                        }
                        None
                    }
                    Event::MomentMinted(moment) => {
                        known.moments.insert(moment.id, moment);
                        None
                    }
                    Event::Listed(listing) => {
                        let id = listing.id;
                        known.listings.insert(id, listing);
                        Some(id)
                    }
                    Event::PriceChanged { listing_id, price_cents } => {
                        known.listings.get_mut(&listing_id).map(|l| l.price_cents = price_cents).map(|()| listing_id)
                    }
                    Event::Sold { listing_id, price_cents, .. } => {
                        if let Some(listing) = known.listings.remove(&listing_id)
                            && let Some(moment) = known.moments.get(&listing.moment_id)
                        {
                            let sales = known.sales.entry((moment.player_id.clone(), moment.tier)).or_default();
                            sales.push((moment.id, price_cents, at));
                        }
                        None
                    }
                    Event::Withdrawn { listing_id } => {
                        known.listings.remove(&listing_id);
                        None
                    }
                    Event::MomentOwner { .. } | Event::SaleRecorded(_) | Event::MomentListingChanged { .. } => None,
                };
                let Some(listing) = offered.and_then(|id| known.listings.get(&id)) else { continue };
                let Some(moment) = known.moments.get(&listing.moment_id) else { continue };
                events_decided += 1;
                for (k, decision) in decide(&known, listing, moment, &strategies, &indexes, &books, user, at).await {
                    decided(k, &decision);
                }
            }
        }
        let end = simulator.now();
        for paper in &books {
            paper.with(|a| a.mark(&simulator, fee_bps, end));
        }
        progress(day + 1);
    }
    let end = simulator.now();
    let accounts: Vec<Account> =
        books.into_iter().map(|p| p.account.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)).collect();
    Some(Report::new(plan, start, end, events_decided, accounts))
}

/// One listing event decided for every strategy that matches it, each on its own ledger, by the
/// decision code the live agents run: the decisions, with their strategies' places.
#[allow(clippy::too_many_arguments)]
async fn decide(
    known: &Known,
    listing: &sim::Listing,
    moment: &sim::Moment,
    strategies: &[strategy::Strategy],
    indexes: &[Indexed],
    books: &[Paper],
    user: Uuid,
    now: DateTime<Utc>,
) -> Vec<(usize, Decision)> {
    let moment_pb = known.moment(moment);
    let candidate = Candidate::new(
        market::Listing {
            listing_id: listing.id.to_string(),
            moment_id: moment.id.to_string(),
            source_id: listing.marketplace.clone(),
            price_cents: listing.price_cents,
            seller_address: listing.seller.clone(),
            state: market::ListingState::Active.into(),
            create_time: Some(timestamp(now)),
            update_time: Some(timestamp(now)),
        },
        Some(moment_pb),
    );
    let matching: Vec<usize> =
        (0..strategies.len()).filter(|&k| !indexes[k].matching(candidate.moment.as_ref()).is_empty()).collect();
    let mut made = Vec::new();
    if matching.is_empty() {
        return made;
    }
    let valued = known.valuation(moment, listing.price_cents, now);
    let factors: Vec<Factor> = valued.as_ref().map(factors_of).unwrap_or_default();
    let form = matching
        .iter()
        .any(|&k| crate::listings::wants_form(&strategies[k]))
        .then(|| Ok(known.form(&moment.player_id)));
    for k in matching {
        let strategy = &strategies[k];
        let paper = &books[k];
        let strategy_id = Uuid::parse_str(&strategy.strategy_id).unwrap_or_default();
        // A listing a strategy bought is not bought again when it is repriced: it left the market.
        let taken = paper.with(|a| {
            a.now = now;
            a.acted.contains(&listing.id)
        });
        let taken = taken.then(|| strategy.display_name.clone());
        let shared = Shared {
            valued: &valued,
            factors: &factors,
            form: form.as_ref().filter(|_| crate::listings::wants_form(strategy)),
            taken_by: taken.as_ref(),
            now,
        };
        let decision = match judge(&candidate, strategy, user, strategy_id, Uuid::nil(), shared) {
            Err(_) => continue,
            Ok(Judged::Decided(decision)) => decision,
            Ok(Judged::Chosen(chosen)) => {
                let today = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
                let bought_today = paper.with(|a| a.bought_since(today));
                match purchase(paper, &candidate, strategy, user, chosen, bought_today).await {
                    Ok(decision) => decision,
                    // The paper ledger always answers.
                    Err(_) => continue,
                }
            }
        };
        paper.with(|a| {
            a.decided(&decision);
            if decision.outcome == DecisionOutcome::Buy {
                let player = known.players.get(&moment.player_id).map_or("", |p| p.full_name.as_str());
                a.opened(Position::bought(&decision, moment, player));
            }
        });
        made.push((k, decision));
    }
    made
}

/// Validation of a plan's figures: each wrong one named.
pub(crate) fn check(days: u32, starting_cents: i64, hold_days: u32, strategies: usize) -> Vec<(&'static str, String)> {
    let mut wrong = Vec::new();
    if days == 0 || days > MAX_DAYS {
        wrong.push(("days", format!("must be 1 to {MAX_DAYS}")));
    }
    if starting_cents <= 0 || starting_cents > 1_000_000_000 {
        wrong.push(("starting_balance_cents", "must be more than 0 and at most 1000000000 ($10,000,000)".to_owned()));
    }
    if hold_days > MAX_HOLD_DAYS {
        wrong.push(("hold_days", format!("must be 0 to {MAX_HOLD_DAYS}")));
    }
    if strategies == 0 || strategies > MAX_STRATEGIES {
        wrong.push(("strategy_ids", format!("name 1 to {MAX_STRATEGIES} strategies")));
    }
    wrong
}

/// The outcomes a ledger's protections read: one per purchase (no profit yet) and per sale.
fn outcome(player: &str, pnl_cents: i64, at: DateTime<Utc>) -> Outcome {
    Outcome { player_id: Some(player.to_owned()), pnl_cents, at }
}

/// Which listings a ledger bought.
type Acted = HashSet<Uuid>;

#[cfg(test)]
mod tests;
