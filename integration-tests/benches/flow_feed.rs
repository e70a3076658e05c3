//! Figures for the Flow feed: market events read from a fake access node (the real Access API
//! over gRPC, JSON-CDC payloads, 250-block ranges), decoded, completed from a fake GraphQL API
//! and stored by the ingest, per second; then the lag behind the chain's head while the chain
//! grows at a steady pace. The chain is synthetic (generated from a seed, in the contracts'
//! event shapes). Prints figures; asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench flow_feed`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastbreak_db::testing::TestDatabase;
use fastbreak_flow::fake::{FakeChain, RecordedBlock, RecordedEvent};
use fastbreak_flow::fake_graphql::{FakeTopShotApi, MintedMoment};
use fastbreak_flow::topshot::{self, encode};
use fastbreak_marketplace::MarketFeed;
use fastbreak_marketplace::flow_feed::{FlowFeed, FlowFeedConfig};
use fastbreak_marketplace::store as market;
use futures::FutureExt;

const TEAMS: [&str; 4] = ["Dallas Mavericks", "Boston Celtics", "Denver Nuggets", "Miami Heat"];

fn address(n: u64) -> String {
    format!("0x{n:016x}")
}

/// Blocks `from..to` of a busy market: in each, `per_block` moments are listed, and the ones
/// listed 20 blocks earlier are repriced, bought (with the deposit naming the buyer) or
/// withdrawn. Moment ids follow the heights, so later blocks list new moments.
fn blocks(rng: &mut fastrand::Rng, from: u64, to: u64, per_block: u64) -> Vec<RecordedBlock> {
    (from..to)
        .map(|height| {
            let mut events = Vec::new();
            for i in 0..per_block {
                let moment = height * 100 + i;
                let seller = address(1 + moment % 500);
                let tx = u32::try_from(i).unwrap();
                events.push(RecordedEvent {
                    type_id: topshot::MOMENT_LISTED.to_owned(),
                    transaction_index: tx,
                    event_index: 0,
                    payload: encode::listed(moment, 50 + rng.u64(0..5_000), &seller),
                });
                if height >= from + 20 {
                    let earlier = (height - 20) * 100 + i;
                    let seller = address(1 + earlier % 500);
                    let (type_id, payload) = match rng.u8(0..3) {
                        0 => (
                            topshot::MOMENT_PRICE_CHANGED,
                            encode::price_changed(earlier, 40 + rng.u64(0..4_000), &seller),
                        ),
                        1 => (topshot::MOMENT_PURCHASED, encode::purchased(earlier, 53, &seller)),
                        _ => (topshot::MOMENT_WITHDRAWN, encode::withdrawn(earlier, &seller)),
                    };
                    let bought = type_id == topshot::MOMENT_PURCHASED;
                    events.push(RecordedEvent {
                        type_id: type_id.to_owned(),
                        transaction_index: tx + 1_000,
                        event_index: 0,
                        payload,
                    });
                    if bought {
                        events.push(RecordedEvent {
                            type_id: topshot::DEPOSIT.to_owned(),
                            transaction_index: tx + 1_000,
                            event_index: 1,
                            payload: encode::deposit(earlier, &address(9_000 + earlier % 300)),
                        });
                    }
                }
            }
            RecordedBlock { height, timestamp: 1_780_000_000 + i64::try_from(height).unwrap(), events }
        })
        .collect()
}

fn moments(from: u64, to: u64, per_block: u64) -> Vec<MintedMoment> {
    (from * 100..to * 100)
        .filter(|id| id % 100 < per_block)
        .map(|id| MintedMoment {
            flow_id: id,
            serial: u32::try_from(1 + id % 99).unwrap(),
            tier: ["MOMENT_TIER_COMMON", "MOMENT_TIER_RARE", "MOMENT_TIER_LEGENDARY"][(id % 3) as usize].to_owned(),
            set_name: format!("Series {}", id % 7),
            circulation: 99,
            player_id: format!("{}", 1_620_000 + id % 40),
            player_name: format!("Player {}", id % 40),
            jersey: format!("{}", id % 60),
            team: TEAMS[(id % 4) as usize].to_owned(),
            position: "G".to_owned(),
            years: "4".to_owned(),
            date: "2026-02-01T01:00:00Z".to_owned(),
            play_category: "Dunk".to_owned(),
        })
        .collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut rng = fastrand::Rng::with_seed(11);
        let (start, end, per_block) = (1_000_u64, 3_000_u64, 4_u64);
        let chain = FakeChain::new(blocks(&mut rng, start, end, per_block));
        let api = FakeTopShotApi::new(moments(start, end + 2_000, per_block));
        let (access, graphql) = (chain.serve().await, api.serve().await);
        let db = TestDatabase::create().await;
        let database = db.database();
        database
            .read(|conn| async move { market::ensure_source(conn, "topshot", "Top Shot", 500).await }.boxed())
            .await
            .unwrap();
        let mut feed = FlowFeed::new(FlowFeedConfig {
            access_node: access.address.to_string(),
            graphql_url: graphql.url(),
            start_height: Some(start),
            range_cap: 250,
            poll: Duration::from_millis(100),
            timeout: Duration::from_secs(10),
        })
        .unwrap();

        // Catching up: every batch read, decoded, completed and stored, as fast as it goes.
        let began = Instant::now();
        let (mut chain_events, mut stored) = (0_usize, 0_usize);
        let before = chain.asked().len();
        loop {
            let events = feed.next_batch().await.unwrap();
            if events.is_empty() {
                break;
            }
            stored += events.len();
            let position = feed.position().map(|p| Arc::new(("flow".to_owned(), p)));
            fastbreak_marketplace::ingest::apply_batch(&database, Arc::new(events), position).await.unwrap();
        }
        for block in blocks(&mut fastrand::Rng::with_seed(11), start, end, per_block) {
            chain_events += block.events.len();
        }
        let elapsed = began.elapsed().as_secs_f64();
        println!(
            "catch-up: {} blocks, {chain_events} chain events ({stored} source events) in {elapsed:.2} s: {:.0} chain events/s, {:.0} blocks/s, {} range requests",
            end - start,
            chain_events as f64 / elapsed,
            (end - start) as f64 / elapsed,
            chain.asked().len() - before,
        );

        // Following: the chain grows by 10 blocks every second for 8 seconds; the feed polls.
        let grower = {
            let chain = chain.clone();
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(12);
                for step in 0..80_u64 {
                    let from = end + step;
                    chain.append(blocks(&mut rng, from, from + 1, per_block));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let mut lags = Vec::new();
        let following = Instant::now();
        while following.elapsed() < Duration::from_secs(9) {
            tokio::time::sleep(feed.pace()).await;
            let events = feed.next_batch().await.unwrap();
            let position = feed.position().map(|p| Arc::new(("flow".to_owned(), p)));
            fastbreak_marketplace::ingest::apply_batch(&database, Arc::new(events), position).await.unwrap();
            lags.push(feed.lag().unwrap());
        }
        grower.await.unwrap();
        lags.sort_unstable();
        let pick = |q: f64| lags[((lags.len() - 1) as f64 * q) as usize];
        println!(
            "following a chain growing 10 blocks/s for 8 s: {} polls; lag (blocks, seconds) p50 {:?}, p90 {:?}, max {:?}",
            lags.len(),
            pick(0.5),
            pick(0.9),
            lags.last().unwrap()
        );
        println!("moments looked up once each: {}", api.lookups().values().all(|n| *n == 1));
    });
}
