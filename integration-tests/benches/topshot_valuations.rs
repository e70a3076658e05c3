//! Valuations on the real market's path, measured: a sales history in the shapes of Top Shot's
//! GraphQL API (SYNTHETIC: generated from a seed, no recorded sale) is paged by the sales feed
//! into the marketplace, reaches scouting through the catalog's messages, and each later sale
//! of a moment that sold before is predicted by a valuation made just before it. Prints the
//! mean absolute error of fair value against that sale beside the last-sale baseline (the
//! moment's previous price), as the simulator's measurement does. Asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench topshot_valuations`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fastbreak_db::testing::TestDatabase;
use fastbreak_flow::fake_graphql::{FakeTopShotApi, MintedMoment, Transaction};
use fastbreak_marketplace::MarketFeed;
use fastbreak_marketplace::flow_feed::moment_uuid;
use fastbreak_marketplace::sales_feed::SalesFeed;
use fastbreak_scouting::valuer::{self, Outcome};
use futures::FutureExt;

const TEAMS: [&str; 5] = ["Dallas Mavericks", "Boston Celtics", "Denver Nuggets", "Miami Heat", "Phoenix Suns"];
const TIERS: [(&str, f64, u32); 3] =
    [("MOMENT_TIER_COMMON", 1.0, 12_000), ("MOMENT_TIER_RARE", 12.0, 250), ("MOMENT_TIER_LEGENDARY", 90.0, 50)];

/// One edition: a player's play in a set and tier, with its latent price in dollars.
struct Edition {
    player: u64,
    set: u64,
    tier: usize,
    value: f64,
}

fn normal(rng: &mut fastrand::Rng) -> f64 {
    // Sum of twelve uniforms: close enough to a standard normal for noise.
    (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0
}

/// Ninety days of sales, about 600 a day, from seed 21.
fn history(start: DateTime<Utc>) -> Vec<Transaction> {
    let mut rng = fastrand::Rng::with_seed(21);
    let editions: Vec<Edition> = (0..180)
        .map(|i| {
            let tier = [0, 0, 0, 1, 1, 2][rng.usize(0..6)];
            Edition { player: i % 30, set: i / 30, tier, value: TIERS[tier].1 * (0.5 + 2.0 * rng.f64()) }
        })
        .collect();
    // Players' form drifts day by day.
    let mut form = vec![1.0_f64; 30];
    let mut moments_of: HashMap<usize, Vec<u32>> = HashMap::new();
    let mut sales = Vec::new();
    for day in 0..90_i64 {
        for f in &mut form {
            *f = (*f * (1.0 + 0.03 * normal(&mut rng))).clamp(0.5, 2.0);
        }
        for n in 0..600_i64 {
            let e = rng.usize(0..editions.len());
            let edition = &editions[e];
            let circulation = TIERS[edition.tier].2;
            // Half the sales are of a moment that sold before: its serial again.
            let known = moments_of.entry(e).or_default();
            let serial = if !known.is_empty() && rng.bool() {
                known[rng.usize(0..known.len())]
            } else {
                let s = 1 + rng.u32(0..circulation);
                known.push(s);
                s
            };
            let jersey = 1 + edition.player % 40;
            let premium = if serial == 1 {
                4.0
            } else if u64::from(serial) == jersey {
                2.5
            } else if serial <= 10 {
                1.6
            } else {
                1.0
            };
            let price =
                edition.value * form[edition.player as usize] * premium * (1.0 + 0.12 * normal(&mut rng)).max(0.3);
            let cents = (price * 100.0).round().max(1.0) as u64;
            let at = start + chrono::Duration::days(day) + chrono::Duration::seconds(n * 144);
            let flow_id = 10_000_000 + (e as u64) * 100_000 + u64::from(serial);
            sales.push(Transaction {
                id: format!("00000000-0000-4000-a000-{:012x}", sales.len()),
                price_cents: cents,
                updated_at: at.to_rfc3339(),
                tx_hash: format!("{:064x}", sales.len()),
                seller: format!("0x{:016x}", 1 + rng.u64(0..5_000)),
                buyer: format!("0x{:016x}", 1 + rng.u64(0..5_000)),
                moment: MintedMoment {
                    flow_id,
                    serial,
                    tier: TIERS[edition.tier].0.to_owned(),
                    set_name: format!("Series {} set", edition.set),
                    circulation,
                    player_id: format!("{}", 1_630_000 + edition.player),
                    player_name: format!("Synthetic Player {}", edition.player),
                    jersey: jersey.to_string(),
                    team: TEAMS[(edition.player % 5) as usize].to_owned(),
                    position: "G".to_owned(),
                    years: "3".to_owned(),
                    date: "2025-11-01T01:00:00Z".to_owned(),
                    play_category: "Dunk".to_owned(),
                },
            });
        }
    }
    sales
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let start = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let sales = history(start);
        println!("SYNTHETIC sales history (seed 21, in Top Shot's GraphQL shapes): {} sales over 90 days", sales.len());
        let api = FakeTopShotApi::new([]);
        api.add_transactions(sales.clone());
        let graphql = api.serve().await;
        let db = TestDatabase::create().await;
        let database = db.database();
        database
            .read(|conn| {
                async move { fastbreak_marketplace::store::ensure_source(conn, "topshot-sales", "Top Shot sales", 500).await }
                    .boxed()
            })
            .await
            .unwrap();

        let began = Instant::now();
        let mut feed = SalesFeed::new(&graphql.url(), 500, Duration::from_millis(100), Duration::from_secs(30));
        let mut stored = 0;
        loop {
            let events = feed.next_batch().await.unwrap();
            if events.is_empty() {
                break;
            }
            stored += events.len();
            let position = feed.position().map(|p| Arc::new(("topshot-sales".to_owned(), p)));
            fastbreak_marketplace::ingest::apply_batch(&database, Arc::new(events), position).await.unwrap();
        }
        let taken = fastbreak_scouting::catalog::catch_up(&database).await.unwrap();
        println!(
            "paged and stored: {stored} source events in {:.1} s; scouting took in {taken} catalog changes",
            began.elapsed().as_secs_f64()
        );

        // Every 60th sale after the first 30 days whose moment sold before, predicted just before it.
        let warm_up = start + chrono::Duration::days(30);
        let mut previous: HashMap<u64, u64> = HashMap::new();
        let (mut model, mut baseline, mut n, mut refused) = (0.0, 0.0, 0, 0);
        for (i, sale) in sales.iter().enumerate() {
            let at = DateTime::parse_from_rfc3339(&sale.updated_at).unwrap().with_timezone(&Utc);
            let last = previous.insert(sale.moment.flow_id, sale.price_cents);
            let Some(last) = last else { continue };
            if at < warm_up || i % 60 != 0 {
                continue;
            }
            let before = at - chrono::Duration::seconds(1);
            match valuer::value(&database, moment_uuid(sale.moment.flow_id), None, before).await.unwrap() {
                Outcome::Valued((valuation, _)) => {
                    model += (valuation.fair_value_cents as f64 - sale.price_cents as f64).abs();
                    baseline += (last as f64 - sale.price_cents as f64).abs();
                    n += 1;
                }
                Outcome::NoComparables => refused += 1,
            }
        }
        let dollars = |cents: f64| cents / 100.0 / f64::from(n.max(1));
        println!(
            "next-sale mean absolute error over {n} sales ({refused} without comparables): fair value ${:.2}, last sale ${:.2}",
            dollars(model),
            dollars(baseline)
        );
    });
}
