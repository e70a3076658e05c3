//! The listing loop: follows marketplace's listing stream from the sequence stored in the
//! database (so a restart or a lost connection resumes where it was left, and a replayed
//! event decides nothing twice), and decides on every new or repriced listing. A listing whose
//! decisions cannot be made (a strategy lookup that fails after retries) is tried again before
//! the loop moves past it.

use fastbreak_db::OrStatus as _;
use std::collections::HashMap;

use crate::store::{self as repo, RunTrigger};
use chrono::{DateTime, Utc};
use fastbreak_mesh::Draining;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::scouting::v1 as scouting;
use fastbreak_proto::scouting::v1::scouting_internal_service_client::ScoutingInternalServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use futures::FutureExt;
use tonic::Status;
use uuid::Uuid;

use crate::engine::{Candidate, Engine, Scope};
use crate::listings::{LISTINGS, Offered};

/// A stream followed from a stored sequence.
trait Follow {
    fn engine(&self) -> &Engine;

    /// Follows the stream until it ends, fails or draining begins.
    async fn follow(&self, draining: &mut Draining) -> Result<(), String>;
}

/// Follows a stream again and again (after a pause when it stopped) until draining begins.
async fn forever(stream: &impl Follow, name: &str, mut draining: Draining) {
    // Failures in a row; at the third, the operators hear of it (once an hour at most).
    let mut failures = 0u32;
    // Whether the stream ever worked: until then its peer may simply be starting beside us.
    let mut worked = false;
    loop {
        let started = tokio::time::Instant::now();
        match stream.follow(&mut draining).await {
            Ok(()) => {
                failures = 0;
                worked = true;
            }
            Err(error) => {
                // A stream that ran a while before it failed was working: the count starts over.
                if started.elapsed() > std::time::Duration::from_secs(30) {
                    failures = 0;
                    worked = true;
                }
                failures += 1;
                if worked || failures >= 3 {
                    tracing::warn!(%error, stream = name, failures, "a stream stopped; following it again shortly");
                } else {
                    tracing::info!(%error, stream = name, failures, "a stream is not up yet; following it again shortly");
                }
                if failures == 3 {
                    let hour = Utc::now().format("%Y-%m-%dT%H");
                    let message = format!("the agents cannot follow the {name} stream: {error}");
                    stream.engine().alert(&format!("agents:{name}-stream:{hour}"), &message, None).await;
                }
            }
        }
        if draining.sleep(stream.engine().settings.reconnect_pause).await {
            return;
        }
    }
}

/// The loop.
#[derive(Debug, Clone)]
pub struct ListingLoop {
    engine: Engine,
}

impl ListingLoop {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Follows the stream until draining begins.
    pub async fn run(self, draining: Draining) {
        forever(&self, "listing", draining).await;
    }
}

impl Follow for ListingLoop {
    fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Follows the stream from the stored sequence until it ends, fails or draining begins.
    async fn follow(&self, draining: &mut Draining) -> Result<(), String> {
        let after = self
            .engine
            .database
            .read(|conn| async move { repo::cursor(conn, LISTINGS).await }.boxed())
            .await
            .map_err(|e| e.to_string())?;
        let channel = self.engine.peers.marketplace.channel().map_err(|s| s.message().to_owned())?;
        let request = market::StreamListingEventsRequest { after_sequence: Some(after), ..Default::default() };
        let mut stream = MarketplaceServiceClient::new(channel)
            .stream_listing_events(request)
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        // The batch being stored while the next is decided: a batch is stored only after the
        // one before it (the cursor moves in order), and one that bought is stored before the
        // next is decided (its purchases count towards the daily caps).
        let mut storing: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
        let result = self.follow_batches(&mut stream, draining, &mut storing).await;
        let stored = match storing {
            Some(task) => task.await.map_err(|e| format!("storing decisions failed: {e}")).and_then(|r| r),
            None => Ok(()),
        };
        result.and(stored)
    }
}

impl ListingLoop {
    async fn follow_batches(
        &self,
        stream: &mut tonic::Streaming<market::ListingEvent>,
        draining: &mut Draining,
        storing: &mut Option<tokio::task::JoinHandle<Result<(), String>>>,
    ) -> Result<(), String> {
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                () = draining.wait() => return Ok(()),
            };
            let Some(first) = next.map_err(|s| s.message().to_owned())? else { return Ok(()) };
            // The events already here join the first, up to a batch.
            let mut events = vec![first];
            let mut ended = false;
            while events.len() < self.engine.settings.batch {
                match stream.message().now_or_never() {
                    Some(Ok(Some(event))) => events.push(event),
                    Some(Ok(None)) => {
                        ended = true;
                        break;
                    }
                    Some(Err(status)) if events.is_empty() => return Err(status.message().to_owned()),
                    Some(Err(_)) | None => break,
                }
            }
            let batch: Vec<Offered> = events.into_iter().map(offered).collect();
            let decided = self.engine.decide_listings(&batch).await;
            if let Some(task) = storing.take() {
                task.await.map_err(|e| format!("storing decisions failed: {e}"))??;
            }
            let prepared = decided?;
            if prepared.bought || prepared.stops() {
                prepared.commit(&self.engine).await?;
            } else {
                let engine = self.engine.clone();
                *storing = Some(tokio::spawn(async move { prepared.commit(&engine).await }));
            }
            if ended {
                return Ok(());
            }
        }
    }
}

/// A listing event as the loop decides it: a listing listed or repriced is decided; one sold or
/// withdrawn since is decided too (skipped as gone), so that every listing the stream offered
/// has its decision. Other events only move the cursor.
fn offered(event: market::ListingEvent) -> Offered {
    let kind = market::ListingEventKind::try_from(event.kind).unwrap_or(market::ListingEventKind::Unspecified);
    let candidate = match (kind, event.listing) {
        (market::ListingEventKind::Created | market::ListingEventKind::PriceChanged, Some(listing)) => {
            let at = event.event_time.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?));
            Some(Candidate { sequence: Some(event.sequence), at, ..Candidate::new(listing, event.moment) })
        }
        _ => None,
    };
    Offered { sequence: event.sequence, candidate }
}

/// The game-event stream's name in the cursor table.
pub(crate) const GAMES: &str = "scouting.game_events";

/// The most listings a game event sets off evaluating.
const MAX_TRIGGERED_LISTINGS: usize = 50;

/// The game loop: follows scouting's game-event stream from the stored sequence; a final line
/// that meets a post-game-spike strategy's per-stat trigger (40+ points, say) starts an
/// evaluation of that player's listed moments for the strategies it triggered, in a run that
/// names the event.
#[derive(Debug, Clone)]
pub struct GameLoop {
    engine: Engine,
}

/// Whether a player's line meets any of a strategy's per-stat triggers.
pub(crate) fn triggered(triggers: &[strategy::StatTrigger], stats: &scouting::PlayerGameStats) -> bool {
    triggers.iter().any(|t| {
        let value = match strategy::Stat::try_from(t.stat).unwrap_or(strategy::Stat::Unspecified) {
            strategy::Stat::Points => stats.points,
            strategy::Stat::Rebounds => stats.rebounds,
            strategy::Stat::Assists => stats.assists,
            strategy::Stat::Steals => stats.steals,
            strategy::Stat::Blocks => stats.blocks,
            strategy::Stat::Unspecified => return false,
        };
        value >= t.at_least
    })
}

impl GameLoop {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Follows the stream until draining begins.
    pub async fn run(self, draining: Draining) {
        forever(&self, "game-event", draining).await;
    }
}

impl Follow for GameLoop {
    fn engine(&self) -> &Engine {
        &self.engine
    }

    async fn follow(&self, draining: &mut Draining) -> Result<(), String> {
        let after = self
            .engine
            .database
            .read(|conn| async move { repo::cursor(conn, GAMES).await }.boxed())
            .await
            .map_err(|e| e.to_string())?;
        let channel = self.engine.peers.scouting.channel().map_err(|s| s.message().to_owned())?;
        let request = scouting::StreamGameEventsRequest { after_sequence: Some(after) };
        let mut stream = ScoutingInternalServiceClient::new(channel)
            .stream_game_events(request)
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                () = draining.wait() => return Ok(()),
            };
            let Some(event) = next.map_err(|s| s.message().to_owned())? else { return Ok(()) };
            if event.r#final
                && let Some(stats) = &event.stats
            {
                self.on_game(&event, stats)
                    .await
                    .map_err(|s| format!("game event {}: {}", event.event_id, s.message()))?;
            }
            let sequence = event.sequence;
            self.engine
                .read_committed(move |conn| async move { repo::advance_cursor(conn, GAMES, sequence).await }.boxed())
                .await
                .map_err(|s| s.message().to_owned())?;
        }
    }
}

impl GameLoop {
    async fn on_game(&self, event: &scouting::GameEvent, stats: &scouting::PlayerGameStats) -> Result<(), Status> {
        let strategies = self
            .engine
            .active(event.player_id.clone(), 0, strategy::StrategyKind::PostGameSpike as i32)
            .await?
            .into_iter()
            .filter(|s| match &s.parameters {
                Some(strategy::strategy::Parameters::PostGameSpike(p)) => triggered(&p.stat_triggers, stats),
                _ => false,
            })
            .collect::<Vec<_>>();
        if strategies.is_empty() {
            return Ok(());
        }
        let listed = self.listed_moments(&event.player_id).await?;
        let candidates = self
            .engine
            .rank(
                listed
                    .into_iter()
                    .map(|(listing, moment)| Candidate {
                        trigger_event: Some(event.event_id.clone()),
                        ..Candidate::new(listing, Some(moment))
                    })
                    .collect(),
            )
            .await;
        for strategy in strategies {
            let user = Uuid::parse_str(&strategy.user_id).map_err(|_| Status::internal("a bad user id"))?;
            let only = Uuid::parse_str(&strategy.strategy_id).ok();
            let mut runs = HashMap::new();
            let mut failure = None;
            for candidate in &candidates {
                let scope = Scope { user: Some(user), strategy: only };
                if let Err(status) = self.engine.decide(candidate, RunTrigger::GameEvent, scope, &mut runs).await {
                    failure = Some(status.message().to_owned());
                    break;
                }
            }
            let evaluated = i32::try_from(candidates.len()).unwrap_or(i32::MAX);
            self.engine.finish(&runs, evaluated, failure).await;
        }
        Ok(())
    }

    /// The player's moments listed now, the cheapest listing of each, up to a bound.
    async fn listed_moments(&self, player: &str) -> Result<Vec<(market::Listing, market::Moment)>, Status> {
        let mut client = MarketplaceServiceClient::new(self.engine.peers.marketplace.channel()?);
        let moments = client
            .search_moments(self.engine.request(market::SearchMomentsRequest {
                player_id: player.to_owned(),
                page_size: 100,
                ..Default::default()
            }))
            .await?
            .into_inner()
            .moments;
        let mut found = Vec::new();
        for moment in moments.into_iter().filter(|m| m.floor_price_cents.is_some()) {
            let listings = client
                .list_listings(self.engine.request(market::ListListingsRequest {
                    moment_id: moment.moment_id.clone(),
                    page_size: 1,
                    ..Default::default()
                }))
                .await?
                .into_inner()
                .listings;
            if let Some(listing) = listings.into_iter().next() {
                found.push((listing, moment));
            }
            if found.len() >= MAX_TRIGGERED_LISTINGS {
                break;
            }
        }
        Ok(found)
    }
}

/// The daily scans: each active strategy with a `daily_scan` is scanned once per slot (its
/// time of day in its time zone; the latest slot gone by), the slot taken in the database
/// before the scan runs, so that no slot runs twice across restarts and replicas.
#[derive(Debug, Clone)]
pub struct ScanSchedule {
    engine: Engine,
}

/// The latest slot of a daily scan at or before `now`: its time of day on a day of its zone,
/// `None` when the time or the zone cannot be read. On the nights the clocks change, a time
/// that happens twice is the first of the two (the scan runs once), and a time the clocks skip
/// is the moment they jump (the day's scan is not lost). (The cron crate's schedules walk past
/// a skipped time and take the later of two, so the slot is computed here, with chrono-tz's
/// zones.)
pub(crate) fn last_slot(scan: &strategy::DailyScan, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let time = chrono::NaiveTime::parse_from_str(&scan.time_of_day, "%H:%M").ok()?;
    let zone: chrono_tz::Tz = if scan.time_zone.is_empty() { chrono_tz::UTC } else { scan.time_zone.parse().ok()? };
    let today = now.with_timezone(&zone).date_naive();
    // Today's slot if it has come, else yesterday's (a day's slot never comes before its day).
    [today, today.pred_opt()?].into_iter().filter_map(|day| slot_on(day.and_time(time), zone)).find(|slot| *slot <= now)
}

/// The instant a local time of `zone` happens: the first of two, or the jump over a gap.
fn slot_on(local: chrono::NaiveDateTime, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    // Gaps are an hour or less (two at the most anywhere); the first minute past one is when
    // the clocks jumped.
    (0..=180).find_map(|minutes| {
        zone.from_local_datetime(&(local + chrono::Duration::minutes(minutes)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

impl ScanSchedule {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Looks at the schedule until draining begins.
    pub async fn run(self, mut draining: Draining) {
        loop {
            match self.round(&draining).await {
                Ok(0) => {}
                Ok(scans) => tracing::info!(scans, "daily scans run"),
                Err(error) => tracing::warn!(error = %error.message(), "the daily scans' schedule could not be read"),
            }
            // Purchases that waited for approval in vain expire on the same beat.
            if let Err(error) = self.engine.expire(Utc::now()).await {
                tracing::warn!(error = %error.message(), "purchases waiting for approval could not be expired");
            }
            if draining.sleep(self.engine.settings.schedule_interval).await {
                return;
            }
        }
    }

    /// Runs every scan whose latest slot has not run; how many ran. Once draining begins, no
    /// other slot is taken (the scan at hand is finished).
    pub(crate) async fn round(&self, draining: &Draining) -> Result<usize, Status> {
        let now = Utc::now();
        let strategies = self.engine.active(String::new(), 0, 0).await?;
        let mut listings = None;
        let mut ran = 0;
        for strategy in strategies.into_iter().take_while(|_| !draining.is_draining()) {
            let Some(slot) = strategy.daily_scan.as_ref().and_then(|scan| last_slot(scan, now)) else { continue };
            let (Ok(user), Ok(strategy_id)) =
                (Uuid::parse_str(&strategy.user_id), Uuid::parse_str(&strategy.strategy_id))
            else {
                continue;
            };
            let run = Uuid::new_v4();
            let taken = self
                .engine
                .read_committed(move |conn| {
                    async move {
                        if !repo::take_scan_slot(conn, strategy_id, slot, run).await? {
                            return Ok(false);
                        }
                        repo::start_run(conn, run, user, RunTrigger::ScheduledScan).await?;
                        Ok(true)
                    }
                    .boxed()
                })
                .await?;
            if !taken {
                continue;
            }
            if listings.is_none() {
                listings = Some(self.engine.market_listings().await?);
            }
            let scope = Scope { user: Some(user), strategy: Some(strategy_id) };
            self.engine
                .scan(run, user, scope, RunTrigger::ScheduledScan, listings.as_deref().unwrap_or_default())
                .await;
            ran += 1;
        }
        Ok(ran)
    }
}

/// The arbitrage loop: now and then, the market's arbitrage opportunities, acted on for every
/// active arbitrage-mode strategy (highest priority first; one user's strategies take an
/// opportunity once).
#[derive(Debug, Clone)]
pub struct ArbitrageLoop {
    engine: Engine,
}

impl ArbitrageLoop {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Looks for opportunities until draining begins.
    pub async fn run(self, mut draining: Draining) {
        loop {
            if let Err(error) = self.round(&draining).await {
                tracing::warn!(error = %error.message(), "arbitrage opportunities could not be acted on");
            }
            if draining.sleep(self.engine.settings.schedule_interval).await {
                return;
            }
        }
    }

    /// One look: how many decisions were made. Once draining begins, the opportunity at hand is
    /// finished and no other is taken up.
    pub(crate) async fn round(&self, draining: &Draining) -> Result<usize, Status> {
        let strategies = self.engine.active(String::new(), 0, strategy::StrategyKind::ArbitrageMode as i32).await?;
        if strategies.is_empty() {
            return Ok(0);
        }
        let mut client = MarketplaceServiceClient::new(self.engine.peers.marketplace.channel()?);
        let opportunities = client
            .list_arbitrage_opportunities(self.engine.request(market::ListArbitrageOpportunitiesRequest {
                min_spread_bps: 1,
                page_size: 100,
                page_token: String::new(),
            }))
            .await?
            .into_inner()
            .opportunities;
        let mut decided = 0;
        for strategy in &strategies {
            let Ok(user) = Uuid::parse_str(&strategy.user_id) else { continue };
            let paused = self
                .engine
                .database
                .read(move |conn| async move { repo::paused_users(conn, &[user]).await }.boxed())
                .await
                .or_status()?;
            if !paused.is_empty() {
                continue;
            }
            let mut run = None;
            for opportunity in opportunities.iter().take_while(|_| !draining.is_draining()) {
                if self.engine.decide_arbitrage(opportunity, strategy, &mut run).await?.is_some() {
                    decided += 1;
                }
            }
            if let Some(id) = run {
                let runs = HashMap::from([(user, id)]);
                self.engine.finish(&runs, i32::try_from(opportunities.len()).unwrap_or(i32::MAX), None).await;
            }
        }
        Ok(decided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(time: &str, zone: &str) -> strategy::DailyScan {
        strategy::DailyScan { time_of_day: time.to_owned(), time_zone: zone.to_owned() }
    }

    #[test]
    fn the_latest_slot_is_today_or_yesterday_in_the_strategys_zone() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        // 09:30 in New York (UTC-5 in January) is 14:30 UTC.
        let now = at("2026-01-15T15:00:00Z");
        assert_eq!(last_slot(&scan("09:30", "America/New_York"), now), Some(at("2026-01-15T14:30:00Z")));
        // Before today's slot: yesterday's.
        let early = at("2026-01-15T14:00:00Z");
        assert_eq!(last_slot(&scan("09:30", "America/New_York"), early), Some(at("2026-01-14T14:30:00Z")));
        // Summer time moves the slot an hour in UTC.
        assert_eq!(
            last_slot(&scan("09:30", "America/New_York"), at("2026-07-15T15:00:00Z")),
            Some(at("2026-07-15T13:30:00Z"))
        );
        assert_eq!(last_slot(&scan("00:00", ""), now), Some(at("2026-01-15T00:00:00Z")));
        assert_eq!(last_slot(&scan("25:00", "UTC"), now), None);
        assert_eq!(last_slot(&scan("09:30", "Mars/Olympus"), now), None);
    }

    #[test]
    fn a_daily_scan_runs_once_on_the_nights_the_clocks_change() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        let ny = |time: &str| scan(time, "America/New_York");
        // 14 March 2027: at 02:00 EST (07:00 UTC) New York's clocks jump to 03:00 EDT. A 02:30
        // scan runs at the jump, not never.
        assert_eq!(last_slot(&ny("02:30"), at("2027-03-14T06:59:00Z")), Some(at("2027-03-13T07:30:00Z")));
        assert_eq!(last_slot(&ny("02:30"), at("2027-03-14T07:00:00Z")), Some(at("2027-03-14T07:00:00Z")));
        assert_eq!(last_slot(&ny("02:30"), at("2027-03-14T12:00:00Z")), Some(at("2027-03-14T07:00:00Z")));
        assert_eq!(last_slot(&ny("02:30"), at("2027-03-15T07:00:00Z")), Some(at("2027-03-15T06:30:00Z")));
        // 7 November 2027: 01:30 happens twice (05:30 UTC in EDT, 06:30 UTC in EST). The slot is
        // the first, and stays the day's slot after the second: one scan.
        assert_eq!(last_slot(&ny("01:30"), at("2027-11-07T05:00:00Z")), Some(at("2027-11-06T05:30:00Z")));
        assert_eq!(last_slot(&ny("01:30"), at("2027-11-07T05:30:00Z")), Some(at("2027-11-07T05:30:00Z")));
        assert_eq!(last_slot(&ny("01:30"), at("2027-11-07T06:00:00Z")), Some(at("2027-11-07T05:30:00Z")));
        assert_eq!(last_slot(&ny("01:30"), at("2027-11-07T07:00:00Z")), Some(at("2027-11-07T05:30:00Z")));
        assert_eq!(last_slot(&ny("01:30"), at("2027-11-08T06:30:00Z")), Some(at("2027-11-08T06:30:00Z")));
        // Every hour of both nights: the slot never lies ahead, and each day has one slot.
        for (time, night) in [("02:30", "2027-03-14T00:00:00Z"), ("01:30", "2027-11-07T00:00:00Z")] {
            let mut slots = std::collections::BTreeSet::new();
            for minutes in (0..48 * 60).step_by(10) {
                let now = at(night) + chrono::Duration::minutes(minutes);
                let slot = last_slot(&ny(time), now).unwrap();
                assert!(slot <= now && now - slot < chrono::Duration::hours(25), "{time} at {now}: {slot}");
                slots.insert(slot);
            }
            assert_eq!(slots.len(), 3, "{time} around {night}: one slot a day: {slots:?}");
        }
        // New Year's Eve and a leap day, in UTC and in Tokyo.
        assert_eq!(last_slot(&scan("23:30", ""), at("2027-12-31T23:59:00Z")), Some(at("2027-12-31T23:30:00Z")));
        assert_eq!(last_slot(&scan("23:30", ""), at("2028-01-01T00:10:00Z")), Some(at("2027-12-31T23:30:00Z")));
        assert_eq!(
            last_slot(&scan("08:00", "Asia/Tokyo"), at("2028-02-29T00:00:00Z")),
            Some(at("2028-02-28T23:00:00Z"))
        );
    }
}
