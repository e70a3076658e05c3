//! The listing loop's decisions, a batch of listing events at a time.
//!
//! For a batch: the strategies each listing may be bought by (from the index held in memory,
//! one small call to learn whether it is current), the users who paused and the decisions a
//! replay made before (one read), each listing valued once for all its strategies and each
//! player's form read once (a few at a time), then every strategy's decision by the rules alone.
//! Purchases the rules chose go through trading in lanes, one per user: a user's purchases in
//! the order of the events (a budget is spent in order), different users' at once. The batch's
//! decisions are written together with the users' runs of the hour and the cursor, in one
//! transaction. A purchase that cannot get through to trading stops the cursor before its event:
//! that event and those after it are decided again (what they decided is kept, not redone).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Timelike as _, Utc};
use fastbreak_db::OrStatus as _;
use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::scouting::v1 as scouting;
use fastbreak_proto::strategy::v1 as strategy;
use futures::{FutureExt, StreamExt};
use tonic::Status;
use uuid::Uuid;

use crate::domain::{Factor, PlayerForm, reason_code};
use crate::engine::{Candidate, Engine, Judged, Shared, factors_of, judge, purchase};
use crate::store::{self as repo, Decision, DecisionOutcome, RunShare};

/// The listing stream's name in the cursor table.
pub(crate) const LISTINGS: &str = "marketplace.listing_events";
/// How many valuations (and players' forms) are asked for at once.
const LOOKUPS_AT_ONCE: usize = 8;
/// How many users' purchases go through at once.
const LANES_AT_ONCE: usize = 16;
/// An active listing's state, as the contract gives it.
const ACTIVE: i32 = fastbreak_proto::marketplace::v1::ListingState::Active as i32;

/// One listing event of a batch: its sequence and, when it offers a listing (listed or
/// repriced), the listing to decide on.
pub(crate) struct Offered {
    pub sequence: i64,
    pub candidate: Option<Candidate>,
}

/// A listing's strategies of one user, from the first whose purchase the rules chose: decided
/// in the user's lane.
struct Pending<'a> {
    /// The listing's place in the batch's candidates.
    place: usize,
    strategies: Vec<&'a strategy::Strategy>,
}

/// What a user's lane decided, and the purchase it could not get through, if one.
struct LaneDone {
    decisions: Vec<Decision>,
    held_up: Option<HeldUp>,
}

/// A purchase the rules chose that could not get through to trading.
struct HeldUp {
    place: usize,
    user: Uuid,
    strategy_name: String,
    status: Status,
}

/// What every decision on one listing shares.
struct Looked {
    valued: Result<scouting::Valuation, Status>,
    factors: Vec<Factor>,
}

fn bad_id(what: &str) -> Status {
    Status::internal(format!("a bad {what} id from a peer"))
}

impl Engine {
    /// Decides a batch of listing events (in sequence order): every decision made, purchases
    /// included, ready to be stored with the cursor by [`Prepared::commit`]. An error names the
    /// step that failed (nothing was bought then).
    pub(crate) async fn decide_listings(&self, batch: &[Offered]) -> Result<Prepared, String> {
        let started = Instant::now();
        let Some(last) = batch.last().map(|o| o.sequence) else { return Ok(Prepared::default()) };
        let hour = Utc::now().with_minute(0).and_then(|t| t.with_second(0)).unwrap_or_else(Utc::now);
        let offered: Vec<(i64, &Candidate)> =
            batch.iter().filter_map(|o| o.candidate.as_ref().map(|c| (o.sequence, c))).collect();
        if offered.is_empty() {
            return Ok(Prepared { cursor: Some(last), ..Prepared::default() });
        }
        let indexed = self.indexed().await.map_err(|s| format!("the strategies could not be read: {}", s.message()))?;
        let mut matched: Vec<Vec<&strategy::Strategy>> =
            offered.iter().map(|(_, c)| indexed.matching(c.moment.as_ref())).collect();
        // Users who paused, and strategies that decided on an event before (a replay).
        let users: Vec<Uuid> = matched
            .iter()
            .flatten()
            .filter_map(|s| Uuid::parse_str(&s.user_id).ok())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let sequences: Vec<i64> = offered.iter().map(|(sequence, _)| *sequence).collect();
        let (paused, done) = self
            .database
            .read(move |conn| {
                let (users, sequences) = (users.clone(), sequences.clone());
                async move {
                    let paused = if users.is_empty() { Vec::new() } else { repo::paused_users(conn, &users).await? };
                    Ok((paused, repo::decided_on_events(conn, &sequences).await?))
                }
                .boxed()
            })
            .await
            .map_err(|e| format!("the decisions so far could not be read: {e}"))?;
        let paused: HashSet<String> = paused.iter().map(Uuid::to_string).collect();
        let mut decided: HashMap<i64, HashSet<String>> = HashMap::new();
        for (sequence, strategy) in done {
            decided.entry(sequence).or_default().insert(strategy.to_string());
        }
        for ((sequence, _), strategies) in offered.iter().zip(&mut matched) {
            let before = decided.get(sequence);
            strategies
                .retain(|s| !paused.contains(&s.user_id) && !before.is_some_and(|ids| ids.contains(&s.strategy_id)));
        }
        // Each listing valued once, each player's form read once, a few at a time.
        let looks: Vec<_> = offered
            .iter()
            .zip(&matched)
            .map(|((_, candidate), strategies)| self.look(candidate, !strategies.is_empty()))
            .collect();
        let looked: Vec<Looked> = futures::stream::iter(looks).buffered(LOOKUPS_AT_ONCE).collect().await;
        let looking = started.elapsed();
        // Each player's form as it stood at an event: once per player and instant (a feed's
        // batch stamps its events alike).
        let players: HashSet<(&str, Option<DateTime<Utc>>)> = offered
            .iter()
            .zip(&matched)
            .filter(|((_, c), strategies)| c.listing.state == ACTIVE && strategies.iter().any(|s| wants_form(s)))
            .filter_map(|((_, c), _)| c.moment.as_ref().map(|m| (m.player_id.as_str(), c.at)))
            .collect();
        let reads: Vec<_> = players.into_iter().map(|(player, at)| self.form_of(player, at)).collect();
        let forms: HashMap<(&str, Option<DateTime<Utc>>), Result<PlayerForm, Status>> =
            futures::stream::iter(reads).buffer_unordered(LOOKUPS_AT_ONCE).collect().await;
        // Each listing's player's form, when one of its strategies' kinds looks at it.
        let form_at: Vec<Option<&Result<PlayerForm, Status>>> = offered
            .iter()
            .zip(&matched)
            .map(|((_, candidate), strategies)| {
                let active = candidate.listing.state == ACTIVE;
                (active && strategies.iter().any(|s| wants_form(s)))
                    .then(|| candidate.moment.as_ref().and_then(|m| forms.get(&(m.player_id.as_str(), candidate.at))))
                    .flatten()
            })
            .collect();

        // Every strategy by the rules alone; a user's chosen purchases wait for the user's lane.
        let mut decisions = Vec::new();
        let mut lanes: HashMap<Uuid, Vec<Pending<'_>>> = HashMap::new();
        let mut runs: HashMap<Uuid, Uuid> = HashMap::new();
        for (place, strategies) in matched.iter().enumerate() {
            let candidate = offered[place].1;
            let form = form_at[place];
            let mut by_user: Vec<(Uuid, Vec<&strategy::Strategy>)> = Vec::new();
            let mut slot: HashMap<&str, usize> = HashMap::new();
            for strategy in strategies {
                let at = *slot.entry(strategy.user_id.as_str()).or_insert_with(|| {
                    by_user.push((Uuid::parse_str(&strategy.user_id).unwrap_or_default(), Vec::new()));
                    by_user.len() - 1
                });
                by_user[at].1.push(strategy);
            }
            for (user, theirs) in by_user {
                if user.is_nil() {
                    return Err(bad_id("user").message().to_owned());
                }
                // The run's id is a hash: made once per user and batch.
                let run = *runs.entry(user).or_insert_with(|| repo::listing_run(user, hour));
                for (k, strategy) in theirs.iter().enumerate() {
                    let strategy_id = Uuid::parse_str(&strategy.strategy_id).map_err(|_| "a bad strategy id")?;
                    let shared = Shared {
                        valued: &looked[place].valued,
                        factors: &looked[place].factors,
                        form,
                        taken_by: None,
                        now: candidate.judged_at(),
                    };
                    match judge(candidate, strategy, user, strategy_id, run, shared)
                        .map_err(|s| s.message().to_owned())?
                    {
                        Judged::Decided(decision) => decisions.push(decision),
                        Judged::Chosen(_) => {
                            lanes.entry(user).or_default().push(Pending { place, strategies: theirs[k..].to_vec() });
                            break;
                        }
                    }
                }
            }
        }

        let judging = started.elapsed();
        // The users' lanes: purchases in event order per user, users at once.
        let lanes: Vec<_> = lanes
            .into_iter()
            .map(|(user, pending)| self.lane(user, hour, pending, &offered, &looked, &form_at))
            .collect();
        let done: Vec<LaneDone> = futures::stream::iter(lanes).buffer_unordered(LANES_AT_ONCE).collect().await;
        let mut held_up: Option<HeldUp> = None;
        for lane in done {
            decisions.extend(lane.decisions);
            if let Some(held) = lane.held_up
                && held_up.as_ref().is_none_or(|h| held.place < h.place)
            {
                held_up = Some(held);
            }
        }
        // Past every event when nothing was held up, else up to the event before it.
        let cursor = match &held_up {
            None => Some(last),
            Some(held) => {
                let stop = offered[held.place].0;
                batch.iter().map(|o| o.sequence).take_while(|s| *s < stop).last()
            }
        };
        let failure = held_up.as_ref().map(|held| {
            (
                held.user,
                format!(
                    "listing {} could not be decided: {}",
                    offered[held.place].1.listing.listing_id,
                    held.status.message()
                ),
            )
        });
        let shares = shares(&decisions, hour, failure.as_ref());
        let told: Vec<(Uuid, String)> = decisions
            .iter()
            .filter(|d| d.reason_code == reason_code(pb::DecisionReason::ServiceUnavailable))
            .map(|d| {
                let id = d.strategy_id.to_string();
                let name = matched.iter().flatten().find(|s| s.strategy_id == id).map(|s| s.display_name.clone());
                let message = format!(
                    "A decision for strategy \"{}\" could not be completed: {}",
                    name.unwrap_or_default(),
                    d.reasons.first().cloned().unwrap_or_default()
                );
                (d.user_id, message)
            })
            .collect();
        let held_up = held_up.map(|held| {
            let listing = &offered[held.place].1.listing.listing_id;
            let message = format!(
                "Strategy \"{}\" chose to buy listing {listing}, but trading could not be reached: {}. The purchase \
                 is tried again, once, when trading is back.",
                held.strategy_name,
                held.status.message()
            );
            (held.user, message, failure.map(|(_, f)| f).unwrap_or_default())
        });
        let bought = decisions.iter().any(|d| d.outcome == DecisionOutcome::Buy);
        tracing::debug!(
            events = batch.len(),
            decisions = decisions.len(),
            looking_ms = looking.as_millis() as u64,
            judging_ms = (judging - looking).as_millis() as u64,
            buying_ms = (started.elapsed() - judging).as_millis() as u64,
            "a batch of listing events decided"
        );
        Ok(Prepared { shares, decisions, cursor, told, held_up, bought })
    }

    /// A player's form up to `at`, named by the player and the instant.
    async fn form_of<'p>(
        &self,
        player: &'p str,
        at: Option<DateTime<Utc>>,
    ) -> ((&'p str, Option<DateTime<Utc>>), Result<PlayerForm, Status>) {
        ((player, at), self.player_form(player, at).await)
    }

    /// A listing's valuation and factors, when some strategy may want it and it is active.
    async fn look(&self, candidate: &Candidate, wanted: bool) -> Looked {
        let active = candidate.listing.state == ACTIVE;
        let valued = if !wanted {
            Err(Status::cancelled("no strategy wants the listing"))
        } else if let Some(valuation) = &candidate.valuation {
            Ok(valuation.clone())
        } else if active {
            self.valuation(&candidate.listing, candidate.at).await
        } else {
            Err(Status::failed_precondition("the listing is no longer active"))
        };
        let factors = valued.as_ref().map(factors_of).unwrap_or_default();
        Looked { valued, factors }
    }

    /// One user's chosen purchases, in event order: each bought unless its strategy's daily
    /// cap is reached (counting what this batch bought), then the user's other strategies on
    /// that listing decided knowing it was acted on. Stops at a purchase that cannot get
    /// through to trading.
    async fn lane(
        &self,
        user: Uuid,
        hour: DateTime<Utc>,
        pending: Vec<Pending<'_>>,
        offered: &[(i64, &Candidate)],
        looked: &[Looked],
        form_at: &[Option<&Result<PlayerForm, Status>>],
    ) -> LaneDone {
        let run = repo::listing_run(user, hour);
        let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let mut bought: HashMap<Uuid, i64> = HashMap::new();
        let mut decisions = Vec::new();
        for Pending { place, strategies } in pending {
            let candidate = offered[place].1;
            let form = form_at[place];
            let mut taken_by: Option<String> = None;
            for strategy in strategies {
                let Ok(strategy_id) = Uuid::parse_str(&strategy.strategy_id) else { continue };
                let shared = Shared {
                    valued: &looked[place].valued,
                    factors: &looked[place].factors,
                    form,
                    taken_by: taken_by.as_ref(),
                    now: candidate.judged_at(),
                };
                let decision = match judge(candidate, strategy, user, strategy_id, run, shared) {
                    Err(_) => continue,
                    Ok(Judged::Decided(decision)) => decision,
                    Ok(Judged::Chosen(chosen)) => {
                        let so_far = match bought.get(&strategy_id) {
                            Some(n) => Ok(*n),
                            None => self.bought_since(strategy_id, today).await,
                        };
                        let purchased = match so_far {
                            Ok(n) => {
                                bought.insert(strategy_id, n);
                                purchase(self, candidate, strategy, user, chosen, n).await
                            }
                            Err(status) => Err(status),
                        };
                        match purchased {
                            Ok(decision) => decision,
                            Err(status) => {
                                let strategy_name = strategy.display_name.clone();
                                let held_up = Some(HeldUp { place, user, strategy_name, status });
                                return LaneDone { decisions, held_up };
                            }
                        }
                    }
                };
                if decision.outcome == DecisionOutcome::Buy {
                    *bought.entry(strategy_id).or_default() += 1;
                }
                if decision.acted_on() {
                    taken_by = Some(strategy.display_name.clone());
                }
                decisions.push(decision);
            }
        }
        LaneDone { decisions, held_up: None }
    }
}

/// A batch's decisions, ready to be stored.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    shares: Vec<RunShare>,
    decisions: Vec<Decision>,
    /// Where the cursor goes: past the batch, or up to the event before a purchase held up.
    cursor: Option<i64>,
    /// Users to tell that scouting's absence left decisions incomplete, with what to tell.
    told: Vec<(Uuid, String)>,
    /// The user whose purchase could not get through to trading, what to tell, and the error.
    held_up: Option<(Uuid, String, String)>,
    /// Whether something was bought (the next batch's daily caps count it once it is stored).
    pub bought: bool,
}

impl Prepared {
    /// Whether the loop must stop after storing it: a purchase was held up.
    pub(crate) fn stops(&self) -> bool {
        self.held_up.is_some()
    }

    /// Stores the decisions with their runs' shares and the cursor in one transaction (each
    /// decision stamped with the time it is stored), then tells whom it concerns. An error when
    /// they could not be stored, or names the purchase that was held up.
    pub(crate) async fn commit(self, engine: &Engine) -> Result<(), String> {
        let Prepared { shares, mut decisions, cursor, told, held_up, .. } = self;
        let started = Instant::now();
        let now = Utc::now();
        for decision in &mut decisions {
            decision.created_at = now;
        }
        let count = decisions.len();
        let awaiting: Vec<Decision> =
            decisions.iter().filter(|d| d.outcome == DecisionOutcome::AwaitingApproval).cloned().collect();
        engine
            .database
            .read_committed(move |conn| {
                let (shares, decisions) = (shares.clone(), decisions.clone());
                async move {
                    let cursor = cursor.map(|sequence| (LISTINGS, sequence));
                    repo::record_listing_decisions(conn, &shares, &decisions, cursor).await.map(|_| ())
                }
                .boxed()
            })
            .await
            .or_status()
            .map_err(|s| format!("the decisions could not be stored: {}", s.message()))?;
        tracing::debug!(decisions = count, storing_ms = started.elapsed().as_millis() as u64, "decisions stored");
        engine.tell_awaiting(&awaiting).await;
        let hour = Utc::now().format("%Y-%m-%dT%H");
        let mut seen = HashSet::new();
        for (user, message) in told {
            // One alert a user a batch (and the notification service keeps one an hour).
            if seen.insert(user) {
                engine.alert(&format!("agents:unavailable:{hour}"), &message, Some(user)).await;
            }
        }
        if let Some((user, message, failure)) = held_up {
            engine.alert(&format!("agents:trading-unavailable:{hour}"), &message, Some(user)).await;
            return Err(failure);
        }
        Ok(())
    }
}

/// Whether a strategy's kind looks at the player's form.
pub(crate) fn wants_form(strategy: &strategy::Strategy) -> bool {
    matches!(
        strategy.parameters,
        Some(strategy::strategy::Parameters::RookieRisers(_) | strategy::strategy::Parameters::PostGameSpike(_))
    )
}

/// Each user's share of the batch: the run of the hour, the listings looked at for the user,
/// and the failure that stopped the user's purchases, if one did.
fn shares(decisions: &[Decision], hour: DateTime<Utc>, failure: Option<&(Uuid, String)>) -> Vec<RunShare> {
    let mut listings: HashMap<Uuid, HashSet<(i64, Uuid)>> = HashMap::new();
    for decision in decisions {
        listings
            .entry(decision.user_id)
            .or_default()
            .insert((decision.event_sequence.unwrap_or(0), decision.listing_id));
    }
    if let Some((user, _)) = failure {
        listings.entry(*user).or_default();
    }
    listings
        .into_iter()
        .map(|(user, seen)| RunShare {
            run: repo::listing_run(user, hour),
            user,
            listings: i32::try_from(seen.len()).unwrap_or(i32::MAX),
            failure: failure.filter(|(u, _)| *u == user).map(|(_, f)| f.clone()),
        })
        .collect()
}
