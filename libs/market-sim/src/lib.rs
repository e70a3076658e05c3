//! A deterministic NBA Top Shot market, for developing, demonstrating and testing FastBreak
//! without a real marketplace.
//!
//! A league of players (season averages, rookies among them) plays a schedule of games; each
//! game's box scores move every player's *form*; plays are minted as moments (set, tier,
//! serial, edition size); collectors list moments on several marketplaces, reprice them, buy
//! them and withdraw them, at prices that follow a latent value — tier, the player's standing
//! and form, scarce or jersey-number serials — with noise. Marketplaces disagree now and then,
//! so price gaps (arbitrage) appear; buyers compete, so a cheap listing is soon gone.
//!
//! The market is alive from its first step, whatever the date: the league starts with a
//! catalog (moments minted for plays of earlier game days, owned by collectors), the first step
//! lists part of it on every marketplace, and the schedule counts from the simulation's own
//! start (the first game day within the first simulated day, then one every other day), never
//! from the calendar.
//!
//! Everything comes from one seeded generator and ordered collections: the same [`Config`]
//! gives the same events, step by step. The id salt changes ids only, never the course of the
//! market (collections are ordered by creation, not by id). Time is simulated: the caller gives
//! the start, [`Simulator::step`] advances it by one step (an hour by default) and returns what
//! happened; the caller decides how fast steps follow each other.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// A marketplace of the simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Marketplace {
    /// Its id, as market sources are named.
    pub id: String,
    /// Its fee on sales, in basis points.
    pub fee_bps: i32,
    /// How its sellers price against the latent value (1.0: no bias).
    pub price_bias: f64,
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The seed of every random draw.
    pub seed: u64,
    /// Players in the league (a multiple of the 10 teams works best).
    pub players: usize,
    /// Collectors trading.
    pub collectors: usize,
    /// The simulated time of the first step, given by the caller (the schedule counts from it).
    pub start: DateTime<Utc>,
    /// How much simulated time one step covers.
    pub step: Duration,
    /// How long after the start the first game day's games end (within the first step that
    /// covers that time).
    pub first_games_after: Duration,
    /// The time between game days.
    pub games_every: Duration,
    /// Earlier game days whose plays make the starting catalog (each mints moments for the
    /// players who played above their averages, as a game day does).
    pub history_game_days: u32,
    /// The share of the starting catalog listed at the first step, spread over every
    /// marketplace.
    pub opening_listed: f64,
    /// The marketplaces; the first is the main one.
    pub marketplaces: Vec<Marketplace>,
    /// Mixed into every id (moments, listings, games), so that two runs never name two things
    /// alike; 0 leaves the ids as the seed alone makes them. The same seed and salt give the
    /// same events; another salt gives the same market with other ids.
    pub id_salt: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 7,
            players: 40,
            collectors: 200,
            start: Utc.with_ymd_and_hms(2026, 10, 21, 0, 0, 0).single().unwrap_or_default(),
            step: Duration::hours(1),
            first_games_after: Duration::hours(4),
            games_every: Duration::hours(48),
            history_game_days: 3,
            opening_listed: 0.25,
            marketplaces: vec![
                Marketplace { id: "simulator".to_owned(), fee_bps: 500, price_bias: 1.0 },
                Marketplace { id: "simulator-east".to_owned(), fee_bps: 250, price_bias: 0.97 },
            ],
            id_salt: 0,
        }
    }
}

/// Moment tiers, scarcest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Large editions.
    Common,
    /// Fan favourites.
    Fandom,
    /// Small editions.
    Rare,
    /// Very small editions.
    Legendary,
    /// One of a handful.
    Ultimate,
}

impl Tier {
    /// Its name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Common => "common",
            Tier::Fandom => "fandom",
            Tier::Rare => "rare",
            Tier::Legendary => "legendary",
            Tier::Ultimate => "ultimate",
        }
    }

    fn base_cents(self) -> f64 {
        match self {
            Tier::Common => 400.0,
            Tier::Fandom => 1_200.0,
            Tier::Rare => 6_000.0,
            Tier::Legendary => 50_000.0,
            Tier::Ultimate => 250_000.0,
        }
    }

    fn edition_size(self) -> i32 {
        match self {
            Tier::Common => 12_000,
            Tier::Fandom => 3_000,
            Tier::Rare => 250,
            Tier::Legendary => 49,
            Tier::Ultimate => 5,
        }
    }
}

/// Per-game figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Averages {
    /// Points.
    pub points: f64,
    /// Rebounds.
    pub rebounds: f64,
    /// Assists.
    pub assists: f64,
    /// Steals.
    pub steals: f64,
    /// Blocks.
    pub blocks: f64,
}

/// A player of the league.
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    /// Id, such as "p-007".
    pub id: String,
    /// Name.
    pub full_name: String,
    /// Three-letter team code.
    pub team_code: String,
    /// Position.
    pub position: String,
    /// Seasons played, this one included (1 for a rookie).
    pub seasons_played: i32,
    /// Jersey number.
    pub jersey: i32,
    /// Season averages.
    pub averages: Averages,
}

/// One player's line in one game.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxScore {
    /// The game.
    pub game_id: String,
    /// The player.
    pub player_id: String,
    /// The opponent's team code.
    pub opponent_code: String,
    /// Minutes played.
    pub minutes: i32,
    /// Points.
    pub points: i32,
    /// Rebounds.
    pub rebounds: i32,
    /// Assists.
    pub assists: i32,
    /// Steals.
    pub steals: i32,
    /// Blocks.
    pub blocks: i32,
    /// Turnovers.
    pub turnovers: i32,
    /// More points than ever before.
    pub career_high: bool,
}

/// A minted moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    /// Id.
    pub id: Uuid,
    /// The player.
    pub player_id: String,
    /// The set.
    pub set_name: String,
    /// The play, such as "Dunk".
    pub play_category: String,
    /// When the play happened.
    pub play_at: DateTime<Utc>,
    /// Tier.
    pub tier: Tier,
    /// Serial number, 1 to the edition size.
    pub serial_number: i32,
    /// Edition size.
    pub edition_size: i32,
    /// The first owner.
    pub owner: String,
}

/// A listing on a marketplace.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// Id.
    pub id: Uuid,
    /// The moment.
    pub moment_id: Uuid,
    /// The marketplace.
    pub marketplace: String,
    /// Asking price.
    pub price_cents: i64,
    /// The seller (the moment's owner).
    pub seller: String,
}

/// Something that happened in the market or the league.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A player joined the league (all of them at the first step).
    PlayerSigned(Player),
    /// A game ended with these box scores.
    GameFinal {
        /// The game.
        game_id: String,
        /// Its lines, one per player.
        lines: Vec<BoxScore>,
    },
    /// A moment was minted.
    MomentMinted(Moment),
    /// A moment was listed.
    Listed(Listing),
    /// A listing's price changed.
    PriceChanged {
        /// The listing.
        listing_id: Uuid,
        /// The new price.
        price_cents: i64,
    },
    /// A listing was bought by a collector.
    Sold {
        /// The listing.
        listing_id: Uuid,
        /// The price paid.
        price_cents: i64,
        /// The buyer.
        buyer: String,
    },
    /// A listing was withdrawn.
    Withdrawn {
        /// The listing.
        listing_id: Uuid,
    },
    /// A moment was seen in an owner's hands (a chain says so; the simulator never sends it).
    MomentOwner {
        /// The moment.
        moment_id: Uuid,
        /// Its owner.
        owner: String,
    },
    /// A sale from a marketplace's history (the simulator never sends it).
    SaleRecorded(RecordedSale),
    /// A moment's listing on a marketplace changed, named by the moment (a marketplace that
    /// keeps one listing per moment, as Top Shot's market on Flow does; the simulator never
    /// sends it).
    MomentListingChanged {
        /// The marketplace.
        marketplace: String,
        /// The moment.
        moment_id: Uuid,
        /// What changed.
        change: ListingChange,
    },
}

/// A sale a marketplace reported on its own, without a listing FastBreak saw (a sales
/// history; the simulator never sends it).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedSale {
    /// The sale's id, as the marketplace names it.
    pub id: Uuid,
    /// The moment sold.
    pub moment_id: Uuid,
    /// The marketplace.
    pub marketplace: String,
    /// The price paid.
    pub price_cents: i64,
    /// The seller.
    pub seller: String,
    /// The buyer.
    pub buyer: String,
    /// When.
    pub sold_at: DateTime<Utc>,
}

/// A change of a listing named by its moment.
#[derive(Debug, Clone, PartialEq)]
pub enum ListingChange {
    /// Repriced.
    Repriced {
        /// The new price.
        price_cents: i64,
    },
    /// Bought.
    Sold {
        /// The price paid.
        price_cents: i64,
        /// The buyer.
        buyer: String,
    },
    /// Withdrawn.
    Withdrawn,
}

/// An event and its simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: Event,
}

#[derive(Debug, Clone)]
struct PlayerState {
    player: Player,
    /// Recent performance against the averages: 1.0 is usual.
    form: f64,
    career_high: i32,
}

#[derive(Debug, Clone)]
struct MomentState {
    moment: Moment,
    owner: String,
    /// Its own taste premium (some plays are simply liked more).
    taste: f64,
}

const TEAMS: [&str; 10] = ["BOS", "LAL", "GSW", "MIA", "DEN", "MIL", "PHX", "NYK", "DAL", "CHI"];
const FIRST: [&str; 12] =
    ["Jalen", "Marcus", "Darius", "Tyrese", "Luka", "Zion", "Devin", "Jaylen", "Cade", "Evan", "Scottie", "Paolo"];
const LAST: [&str; 12] =
    ["Brooks", "Carter", "Hayes", "Mitchell", "Reed", "Walker", "Banks", "Price", "Ellis", "Fox", "Grant", "Hunter"];
const POSITIONS: [&str; 5] = ["PG", "SG", "SF", "PF", "C"];
const PLAYS: [&str; 6] = ["Dunk", "3 Pointer", "Assist", "Block", "Steal", "Layup"];

/// The market and the league, one step at a time.
#[derive(Debug, Clone)]
pub struct Simulator {
    config: Config,
    rng: fastrand::Rng,
    now: DateTime<Utc>,
    players: Vec<PlayerState>,
    collectors: Vec<String>,
    /// Moments by creation number (never by id, which the salt changes).
    moments: BTreeMap<u64, MomentState>,
    /// The creation number of each moment id.
    moment_numbers: BTreeMap<Uuid, u64>,
    /// Active listings by creation number, with their moment's number.
    listings: BTreeMap<u64, (Listing, u64)>,
    /// Moments (by number) with active listings, and how many.
    listed: BTreeMap<u64, usize>,
    /// Things created so far (moments and listings), numbering them.
    created: u64,
    games: u64,
    /// Steps taken.
    steps: u64,
    /// When the next game day's games end.
    next_games: DateTime<Utc>,
}

impl Simulator {
    /// A league at `config.start`; its starting catalog comes with the first step.
    pub fn new(config: Config) -> Self {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let players = (0..config.players)
            .map(|i| {
                let rookie = rng.u8(0..5) == 0;
                let star = rng.f64();
                let points = 6.0 + 24.0 * star * star;
                let player = Player {
                    id: format!("p-{:03}", i + 1),
                    full_name: format!("{} {}", FIRST[rng.usize(0..FIRST.len())], LAST[rng.usize(0..LAST.len())]),
                    team_code: TEAMS[i % TEAMS.len()].to_owned(),
                    position: POSITIONS[rng.usize(0..POSITIONS.len())].to_owned(),
                    seasons_played: if rookie { 1 } else { rng.i32(2..=15) },
                    jersey: rng.i32(0..=99),
                    averages: Averages {
                        points,
                        rebounds: 2.0 + 9.0 * rng.f64(),
                        assists: 1.0 + 8.0 * rng.f64(),
                        steals: 0.4 + 1.4 * rng.f64(),
                        blocks: 0.2 + 1.8 * rng.f64(),
                    },
                };
                let career_high = (points * 2.0).round() as i32 + rng.i32(0..8);
                PlayerState { player, form: 1.0, career_high }
            })
            .collect();
        let collectors = (0..config.collectors).map(|_| format!("0x{:016x}", rng.u64(..))).collect();
        let now = config.start;
        let next_games = config.start + config.first_games_after;
        Self {
            config,
            rng,
            now,
            players,
            collectors,
            moments: BTreeMap::new(),
            moment_numbers: BTreeMap::new(),
            listings: BTreeMap::new(),
            listed: BTreeMap::new(),
            created: 0,
            games: 0,
            steps: 0,
            next_games,
        }
    }

    /// The simulated time of the next step.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The price a moment would fetch now without noise, in cents (for tests and diagnostics).
    pub fn latent_value(&self, moment_id: Uuid) -> Option<i64> {
        let number = self.moment_numbers.get(&moment_id)?;
        self.moments.get(number).map(|m| self.value_of(m).round() as i64)
    }

    /// A new id and its creation number.
    fn id(&mut self) -> (Uuid, u64) {
        let salt = u128::from(self.config.id_salt) << 64 | u128::from(self.config.id_salt);
        self.created += 1;
        (uuid::Builder::from_random_bytes((self.rng.u128(..) ^ salt).to_le_bytes()).into_uuid(), self.created)
    }

    fn player(&self, id: &str) -> Option<&PlayerState> {
        self.players.iter().find(|p| p.player.id == id)
    }

    fn value_of(&self, m: &MomentState) -> f64 {
        let Some(p) = self.player(&m.moment.player_id) else { return 0.0 };
        let standing = (p.player.averages.points / 15.0).powf(1.3);
        let rookie = if p.player.seasons_played == 1 { 1.25 } else { 1.0 };
        let serial = m.moment.serial_number;
        let scarcity = if serial == 1 {
            8.0
        } else if serial == p.player.jersey {
            3.0
        } else if serial <= 10 {
            2.0
        } else {
            1.0 + 0.3 / f64::from(serial).sqrt()
        };
        m.moment.tier.base_cents() * standing * rookie * p.form * scarcity * m.taste
    }

    fn noise(&mut self, spread: f64) -> f64 {
        1.0 + spread * (self.rng.f64() * 2.0 - 1.0)
    }

    /// Advances simulated time by one step and returns what happened in it, in order.
    pub fn step(&mut self) -> Vec<Timed> {
        let at = self.now;
        let mut out = Vec::new();
        if self.steps == 0 {
            for p in &self.players {
                out.push(Timed { at, event: Event::PlayerSigned(p.player.clone()) });
            }
            self.open(at, &mut out);
        }
        // Every team plays on a game day; game days follow each other from the simulation's
        // own start, whatever the calendar says.
        let end = at + self.config.step;
        if self.next_games < end {
            self.play_games(at, &mut out);
            while self.next_games < end {
                self.next_games += self.config.games_every.max(self.config.step).max(Duration::minutes(1));
            }
        }
        self.trade(at, &mut out);
        // Each event at an instant of its own, a microsecond after the one before it (the
        // step's order), so that time alone tells what happened before an event.
        for (k, timed) in out.iter_mut().enumerate() {
            timed.at += Duration::microseconds(i64::try_from(k).unwrap_or(i64::MAX));
        }
        self.now = end;
        self.steps += 1;
        out
    }

    /// The starting catalog: moments of earlier game days' plays, owned by collectors, a share
    /// of them listed on every marketplace.
    fn open(&mut self, at: DateTime<Utc>, out: &mut Vec<Timed>) {
        for day in (1..=self.config.history_game_days).rev() {
            let played = self.config.start + self.config.first_games_after - self.config.games_every * day as i32;
            for index in 0..self.players.len() {
                // About half the players beat their averages on a game day, as in play_games.
                if self.rng.bool() {
                    let player_id = self.players[index].player.id.clone();
                    self.mint(played, &player_id, out);
                }
            }
        }
        let markets = self.config.marketplaces.len();
        if markets == 0 {
            return;
        }
        // Every moment is unlisted yet; the list keeps the moments' order as listed ones leave.
        let mut unlisted: Vec<u64> = self.moments.keys().copied().collect();
        let wanted = ((unlisted.len() as f64 * self.config.opening_listed.clamp(0.0, 1.0)).round() as usize)
            .max(markets)
            .min(unlisted.len());
        for turn in 0..wanted {
            let moment = unlisted.remove(self.rng.usize(0..unlisted.len()));
            // Round the marketplaces, so each has listings from the start.
            self.list_by_seller(at, moment, turn % markets, out);
        }
    }

    fn play_games(&mut self, at: DateTime<Utc>, out: &mut Vec<Timed>) {
        let mut order: Vec<usize> = (0..TEAMS.len()).collect();
        self.rng.shuffle(&mut order);
        for pair in order.chunks(2) {
            let [home, away] = [pair[0], pair[1]];
            self.games += 1;
            let game_id = if self.config.id_salt == 0 {
                format!("g-{:05}", self.games)
            } else {
                format!("g-{:x}-{:05}", self.config.id_salt, self.games)
            };
            let mut lines = Vec::new();
            for index in 0..self.players.len() {
                let team = TEAMS.iter().position(|t| *t == self.players[index].player.team_code).unwrap_or(0);
                if team != home && team != away {
                    continue;
                }
                let opponent = if team == home { TEAMS[away] } else { TEAMS[home] };
                let line = self.box_score(index, &game_id, opponent);
                lines.push(line);
            }
            let mut minted = Vec::new();
            for line in &lines {
                let avg = self.players.iter().find(|p| p.player.id == line.player_id).map(|p| p.player.averages);
                if let Some(avg) = avg
                    && f64::from(line.points) >= avg.points
                {
                    minted.push(line.player_id.clone());
                }
            }
            out.push(Timed { at, event: Event::GameFinal { game_id, lines } });
            for player_id in minted {
                self.mint(at, &player_id, out);
            }
        }
    }

    fn box_score(&mut self, index: usize, game_id: &str, opponent: &str) -> BoxScore {
        let avg = self.players[index].player.averages;
        let hot = self.rng.u8(0..40) == 0;
        let factor = if hot { 1.6 + 0.6 * self.rng.f64() } else { self.noise(0.35) };
        let stat =
            |rng: &mut fastrand::Rng, mean: f64| (mean * factor * (0.8 + 0.4 * rng.f64())).round().max(0.0) as i32;
        let points = stat(&mut self.rng, avg.points);
        let line = BoxScore {
            game_id: game_id.to_owned(),
            player_id: self.players[index].player.id.clone(),
            opponent_code: opponent.to_owned(),
            minutes: (18.0 + avg.points * 0.7 + 6.0 * self.rng.f64()).round().min(48.0) as i32,
            points,
            rebounds: stat(&mut self.rng, avg.rebounds),
            assists: stat(&mut self.rng, avg.assists),
            steals: stat(&mut self.rng, avg.steals),
            blocks: stat(&mut self.rng, avg.blocks),
            turnovers: self.rng.i32(0..=5),
            career_high: points > self.players[index].career_high,
        };
        let state = &mut self.players[index];
        let score = f64::from(points) / avg.points.max(1.0);
        let big = line.career_high || points >= 40;
        state.form = (0.75 * state.form + 0.25 * score + if big { 0.35 } else { 0.0 }).clamp(0.4, 3.0);
        state.career_high = state.career_high.max(points);
        line
    }

    fn mint(&mut self, at: DateTime<Utc>, player_id: &str, out: &mut Vec<Timed>) {
        let tier = match self.rng.u8(0..100) {
            0..=69 => Tier::Common,
            70..=84 => Tier::Fandom,
            85..=94 => Tier::Rare,
            95..=98 => Tier::Legendary,
            _ => Tier::Ultimate,
        };
        let play = PLAYS[self.rng.usize(0..PLAYS.len())];
        let serials = match tier {
            Tier::Common | Tier::Fandom => 6,
            Tier::Rare => 4,
            Tier::Legendary | Tier::Ultimate => 2,
        };
        let edition = tier.edition_size();
        let jersey = self.player(player_id).map_or(0, |p| p.player.jersey);
        let mut taken = Vec::new();
        for n in 0..serials {
            let serial = match n {
                0 if self.rng.u8(0..6) == 0 => 1,
                1 if jersey >= 1 && jersey <= edition && self.rng.u8(0..4) == 0 => jersey,
                _ => self.rng.i32(1..=edition),
            };
            if taken.contains(&serial) {
                continue;
            }
            taken.push(serial);
            let owner = self.collectors[self.rng.usize(0..self.collectors.len())].clone();
            let (id, number) = self.id();
            let moment = Moment {
                id,
                player_id: player_id.to_owned(),
                set_name: format!("Series {} {}", at.format("%Y"), tier.as_str()),
                play_category: play.to_owned(),
                play_at: at,
                tier,
                serial_number: serial,
                edition_size: edition,
                owner: owner.clone(),
            };
            let taste = 0.85 + 0.3 * self.rng.f64();
            self.moment_numbers.insert(moment.id, number);
            self.moments.insert(number, MomentState { moment: moment.clone(), owner, taste });
            out.push(Timed { at, event: Event::MomentMinted(moment) });
        }
    }

    fn list(&mut self, at: DateTime<Utc>, moment: u64, market: usize, out: &mut Vec<Timed>) {
        let Some(state) = self.moments.get(&moment) else { return };
        let value = self.value_of(state);
        let seller = state.owner.clone();
        let moment_id = state.moment.id;
        let bias = self.config.marketplaces[market].price_bias;
        // Now and then a seller misjudges badly, which is where arbitrage comes from.
        let spread = if self.rng.u8(0..12) == 0 { 0.45 } else { 0.2 };
        let price = (value * bias * self.noise(spread) * 1.05).round().max(100.0) as i64;
        let (id, number) = self.id();
        let listing = Listing {
            id,
            moment_id,
            marketplace: self.config.marketplaces[market].id.clone(),
            price_cents: price,
            seller,
        };
        self.listings.insert(number, (listing.clone(), moment));
        *self.listed.entry(moment).or_default() += 1;
        out.push(Timed { at, event: Event::Listed(listing) });
    }

    /// A seller lists a moment on `market`, and now and then on the next marketplace too.
    fn list_by_seller(&mut self, at: DateTime<Utc>, moment: u64, market: usize, out: &mut Vec<Timed>) {
        self.list(at, moment, market, out);
        let markets = self.config.marketplaces.len();
        if markets > 1 && self.rng.u8(0..5) == 0 {
            self.list(at, moment, (market + 1) % markets, out);
        }
    }

    fn unlist(&mut self, number: u64) -> Option<Listing> {
        let (listing, moment) = self.listings.remove(&number)?;
        if let Some(count) = self.listed.get_mut(&moment) {
            *count -= 1;
            if *count == 0 {
                self.listed.remove(&moment);
            }
        }
        Some(listing)
    }

    fn trade(&mut self, at: DateTime<Utc>, out: &mut Vec<Timed>) {
        // New listings: a few owners decide to sell each hour.
        let unlisted: Vec<u64> = self.moments.keys().filter(|n| !self.listed.contains_key(*n)).copied().collect();
        if !unlisted.is_empty() {
            let count = (unlisted.len() / 12).clamp(1, 12);
            for _ in 0..count {
                let moment = unlisted[self.rng.usize(0..unlisted.len())];
                if self.listed.contains_key(&moment) {
                    continue;
                }
                let market = self.rng.usize(0..self.config.marketplaces.len());
                self.list_by_seller(at, moment, market, out);
            }
        }
        // Buyers, repricing and withdrawals on what is listed.
        let numbers: Vec<u64> = self.listings.keys().copied().collect();
        for number in numbers {
            let Some((listing, moment)) = self.listings.get(&number).cloned() else { continue };
            let Some(state) = self.moments.get(&moment) else { continue };
            let id = listing.id;
            let value = self.value_of(state);
            let cheapness = value / listing.price_cents as f64;
            let buy = (0.12 * cheapness.powi(4)).min(0.9);
            let roll = self.rng.f64();
            if roll < buy {
                let buyer = self.collectors[self.rng.usize(0..self.collectors.len())].clone();
                self.unlist(number);
                out.push(Timed {
                    at,
                    event: Event::Sold { listing_id: id, price_cents: listing.price_cents, buyer: buyer.clone() },
                });
                if let Some(state) = self.moments.get_mut(&moment) {
                    state.owner = buyer;
                }
                // The moment changed hands: its other listings are gone.
                let stale: Vec<u64> =
                    self.listings.iter().filter(|(_, (_, m))| *m == moment).map(|(n, _)| *n).collect();
                for stale in stale {
                    if let Some(gone) = self.unlist(stale) {
                        out.push(Timed { at, event: Event::Withdrawn { listing_id: gone.id } });
                    }
                }
            } else if roll < buy + 0.01 {
                self.unlist(number);
                out.push(Timed { at, event: Event::Withdrawn { listing_id: id } });
            } else if roll < buy + 0.05 {
                // Reprice toward what the market says, with noise.
                let target = value * self.noise(0.15) * 1.05;
                let price = ((listing.price_cents as f64 + target) / 2.0).round().max(100.0) as i64;
                if price != listing.price_cents {
                    if let Some((l, _)) = self.listings.get_mut(&number) {
                        l.price_cents = price;
                    }
                    out.push(Timed { at, event: Event::PriceChanged { listing_id: id, price_cents: price } });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
