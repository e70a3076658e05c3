//! A small real-market day for the fakes, generated from a seed and the time it is made at
//! (SYNTHETIC: in the public shapes, with no recorded data): a few players' moments of three
//! tiers, their sales of the last three weeks on Top Shot's GraphQL API, a chain of recent
//! blocks in which every moment is listed (one in four well under what it sold for), and
//! today's NBA scoreboard with one finished game.

use chrono::{DateTime, Utc};

use crate::fake::{RecordedBlock, RecordedEvent};
use crate::fake_graphql::{MintedMoment, Transaction};
use crate::fake_nba::{Game, PlayerLine};
use crate::topshot::{self, encode};

/// The first block of the demo chain.
pub const FIRST_HEIGHT: u64 = 90_000_000;

/// Blocks in the demo chain (a second apart, the last one a second before the time given).
pub const BLOCKS: u64 = 600;

const TEAMS: [(&str, &str); 4] =
    [("Dallas Mavericks", "DAL"), ("Boston Celtics", "BOS"), ("Denver Nuggets", "DEN"), ("Miami Heat", "MIA")];
const TIERS: [(&str, u64); 3] =
    [("MOMENT_TIER_COMMON", 300), ("MOMENT_TIER_RARE", 4_000), ("MOMENT_TIER_LEGENDARY", 30_000)];

/// Everything the three fakes serve.
#[derive(Debug, Clone)]
pub struct DemoMarket {
    /// The chain.
    pub blocks: Vec<RecordedBlock>,
    /// The moments Top Shot shows.
    pub moments: Vec<MintedMoment>,
    /// Their recorded sales, oldest first.
    pub sales: Vec<Transaction>,
    /// Today's date on the scoreboard.
    pub date: String,
    /// Today's games.
    pub games: Vec<Game>,
}

fn address(n: u64) -> String {
    format!("0x{n:016x}")
}

/// The demo market of `seed`, made at `now`.
pub fn demo_market(seed: u64, now: DateTime<Utc>) -> DemoMarket {
    let mut rng = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    let mut moments = Vec::new();
    let mut sales = Vec::new();
    let mut listings = Vec::new();
    for player in 0..8_u64 {
        let (team, _) = TEAMS[(player % 4) as usize];
        for (tier, (tier_name, base)) in TIERS.iter().enumerate() {
            let value = base * (80 + next(60)) / 100;
            for copy in 0..6_u64 {
                let flow_id = 50_000_000 + player * 1_000 + tier as u64 * 100 + copy;
                let moment = MintedMoment {
                    flow_id,
                    serial: u32::try_from(20 + copy * 7).unwrap_or(20),
                    tier: (*tier_name).to_owned(),
                    set_name: format!("Demo Series {}", 1 + tier),
                    circulation: 500,
                    player_id: (1_630_100 + player).to_string(),
                    player_name: format!("Demo Player {}", player + 1),
                    jersey: (player + 3).to_string(),
                    team: team.to_owned(),
                    position: ["G", "F", "C"][(player % 3) as usize].to_owned(),
                    years: (player % 5).to_string(),
                    date: (now - chrono::Duration::days(40)).to_rfc3339(),
                    play_category: "Dunk".to_owned(),
                };
                for sale in 0..3_u64 {
                    let price = value * (90 + next(20)) / 100;
                    let days = i64::try_from(3 + sale * 6 + next(3)).unwrap_or(3);
                    sales.push((now - chrono::Duration::days(days), flow_id, price, moment.clone()));
                }
                let price = if copy % 4 == 0 { value * 55 / 100 } else { value * (105 + next(20)) / 100 };
                listings.push((flow_id, price.max(1), address(1_000 + flow_id % 97)));
                moments.push(moment);
            }
        }
    }
    sales.sort_by_key(|s| s.0);
    let sales = sales
        .into_iter()
        .enumerate()
        .map(|(n, (at, _, price, moment))| Transaction {
            id: format!("00000000-0000-4000-b000-{n:012x}"),
            price_cents: price,
            updated_at: at.to_rfc3339(),
            tx_hash: format!("{n:064x}"),
            seller: address(2_000 + n as u64 % 50),
            buyer: address(3_000 + n as u64 % 50),
            moment,
        })
        .collect();
    let blocks = (0..BLOCKS)
        .map(|i| {
            let height = FIRST_HEIGHT + i;
            let events = listings
                .iter()
                .enumerate()
                .filter(|(n, _)| *n as u64 * 2 == i)
                .map(|(_, (moment, price, seller))| RecordedEvent {
                    type_id: topshot::MOMENT_LISTED.to_owned(),
                    transaction_index: 0,
                    event_index: 0,
                    payload: encode::listed(*moment, *price, seller),
                })
                .collect();
            RecordedBlock {
                height,
                timestamp: (now - chrono::Duration::seconds((BLOCKS - i) as i64)).timestamp(),
                events,
            }
        })
        .collect();
    let line = |player: u64, points: u32| PlayerLine {
        person_id: 1_630_100 + player,
        name: format!("Demo Player {}", player + 1),
        minutes: 36,
        seconds: 5,
        points,
        rebounds: 8,
        assists: 6,
        steals: 1,
        blocks: 1,
        turnovers: 2,
    };
    let games = vec![Game {
        game_id: "0022600999".to_owned(),
        status: 3,
        time_utc: (now - chrono::Duration::hours(3)).to_rfc3339(),
        home: (TEAMS[0].1.to_owned(), vec![line(0, 44), line(4, 12)]),
        away: (TEAMS[1].1.to_owned(), vec![line(1, 25), line(5, 9)]),
    }];
    DemoMarket { blocks, moments, sales, date: now.format("%Y-%m-%d").to_string(), games }
}
