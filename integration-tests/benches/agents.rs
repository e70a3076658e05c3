//! The agents at scale: 10,000 users with 30,000 active strategies spread over players,
//! rarities and kinds (a listing matches tens to hundreds of them), on the real strategy,
//! scouting, marketplace, trading, risk, user and notification services and one PostgreSQL.
//!
//! For 1k, 10k and 30k active strategies it replays a busy market at full speed (repricings
//! written at once) and prints listing events decided per second, decisions per second, the lag
//! from a listing event stored to its decisions stored (p50, p99) and the cursor's lag behind
//! the market over time; at the largest scale it then plays 50 events a second and prints the
//! same. Time to buy (a listing event to a settled purchase, one matching strategy) is measured
//! on the idle system first and again under the paced load. Prints figures; asserts only that
//! every event got its decisions.
//!
//! `cargo bench -p fastbreak-integration-tests --bench agents`
//! (`AGENTS_SCALES=1000,10000,30000`, `AGENTS_EVENTS=2000`, `AGENTS_PACED_SECONDS=10`,
//! `AGENTS_PACED_RATE=50`, `AGENTS_BUYS=20`)

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use fastbreak_db::Rarity;
use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_marketplace::store::{self as market, ListingState};
use fastbreak_mesh::testing::internal;
use fastbreak_proto::scouting::v1::ValueListingRequest;
use fastbreak_proto::scouting::v1::scouting_internal_service_client::ScoutingInternalServiceClient;
use fastbreak_strategy::domain::{Parameters, PostGameSpike, RookieRisers};
use fastbreak_strategy::store as strategy_store;
use futures::FutureExt;
use uuid::Uuid;

/// Players whose moments are listed.
const PLAYERS: usize = 300;
/// Rarities each player's moments come in (one listed moment of each).
const RARITIES: [Rarity; 4] = [Rarity::Common, Rarity::Fandom, Rarity::Rare, Rarity::Legendary];
/// Fair value of every listed moment (its comparable sales).
const FAIR: i64 = 2_000;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Lags {
    #[diesel(sql_type = diesel::sql_types::Double)]
    p50: f64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    p99: f64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small deterministic generator (the bench's choices repeat from run to run).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn number(mesh: &TradingMesh, sql: String) -> i64 {
    mesh.pool
        .read(move |conn| {
            let sql = sql.clone();
            async move {
                use diesel_async::RunQueryDsl;
                let found: Count = diesel::sql_query(sql).get_result(conn).await?;
                Ok(found.n)
            }
            .boxed()
        })
        .await
        .expect("a figure from the database")
}

async fn texts(mesh: &TradingMesh, sql: String) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    mesh.pool
        .read(move |conn| {
            let sql = sql.clone();
            async move {
                use diesel_async::RunQueryDsl;
                let found: Vec<Text> = diesel::sql_query(sql).load(conn).await?;
                Ok(found.into_iter().map(|t| t.text).collect())
            }
            .boxed()
        })
        .await
        .expect("texts from the database")
}

async fn cursor(mesh: &TradingMesh) -> i64 {
    number(
        mesh,
        "SELECT coalesce(max(sequence), 0) AS n FROM agent_cursors WHERE stream = 'marketplace.listing_events'".into(),
    )
    .await
}

async fn newest_event(mesh: &TradingMesh) -> i64 {
    number(mesh, "SELECT coalesce(max(sequence), 0) AS n FROM listing_events".into()).await
}

/// The market: `PLAYERS` players (every tenth in his first seasons), each with one listed
/// moment per rarity, two comparable sales per moment at `FAIR` and, for half of them, a
/// standout game an hour ago. The players' ids and every listing with its player's index.
async fn market_of(mesh: &TradingMesh) -> (Vec<String>, Vec<(Uuid, usize)>) {
    let run = Uuid::new_v4().simple().to_string();
    let players: Vec<String> = (0..PLAYERS).map(|i| format!("bench-{}-{i}", &run[..8])).collect();
    let given = players.clone();
    let listings = mesh
        .pool
        .read_committed(move |conn| {
            let players = given.clone();
            async move {
                let mut listings = Vec::new();
                let play_at = Utc::now() - chrono::Duration::days(10);
                for (p, player) in players.iter().enumerate() {
                    market::upsert_player(
                        conn,
                        &market::Player {
                            id: player.clone(),
                            full_name: format!("Bench Player {p}"),
                            team_code: "BOS".to_owned(),
                            position: "G".to_owned(),
                            seasons_played: if p % 10 == 0 { 2 } else { 6 },
                            jersey_number: Some(7),
                        },
                    )
                    .await?;
                    for (r, rarity) in RARITIES.iter().enumerate() {
                        let seller = format!("0x{:016x}", p * 16 + r + 1);
                        for serial in [1, 2] {
                            let moment = market::insert_moment(
                                conn,
                                &market::Moment {
                                    id: Uuid::new_v4(),
                                    player_id: player.clone(),
                                    set_name: format!("Base Set {}", rarity.as_str()),
                                    play_category: "Dunk".to_owned(),
                                    play_at,
                                    rarity: *rarity,
                                    serial_number: serial,
                                    edition_size: 1_000,
                                    owner_address: seller.clone(),
                                },
                            )
                            .await?;
                            if serial == 1 {
                                let now = Utc::now();
                                let listing = market::insert_listing(
                                    conn,
                                    &market::Listing {
                                        id: Uuid::new_v4(),
                                        moment_id: moment.id,
                                        source_id: "simulator".to_owned(),
                                        price_cents: FAIR,
                                        seller_address: seller.clone(),
                                        state: ListingState::Active,
                                        created_at: now,
                                        updated_at: now,
                                    },
                                )
                                .await?;
                                listings.push((listing.id, p));
                            }
                            for days in [1, 2] {
                                market::record_sale(
                                    conn,
                                    &market::Sale {
                                        id: Uuid::new_v4(),
                                        moment_id: moment.id,
                                        listing_id: None,
                                        source_id: "simulator".to_owned(),
                                        price_cents: FAIR,
                                        seller_address: seller.clone(),
                                        buyer_address: "0x00000000000000aa".to_owned(),
                                        sold_at: Utc::now() - chrono::Duration::days(days),
                                    },
                                )
                                .await?;
                            }
                        }
                    }
                }
                Ok(listings)
            }
            .boxed()
        })
        .await
        .expect("the market is set up");
    for player in players.iter().step_by(2) {
        mesh.standout_game(player).await;
    }
    (players, listings)
}

/// Users and active strategies, `count` of them (three a user): 1% rookie risers with one
/// rarity, the rest post-game spikes on one player, 60% of them on one rarity too. Rules that
/// skip the bench's prices (a discount of 10% or more wanted).
async fn add_strategies(mesh: &TradingMesh, players: &[String], count: usize, dice: &mut Dice) {
    let users: Vec<Uuid> = {
        let n = count.div_ceil(3);
        mesh.pool
            .read_committed(move |conn| {
                async move {
                    use diesel::sql_types::{BigInt, Uuid as SqlUuid};
                    use diesel_async::RunQueryDsl;
                    #[derive(diesel::QueryableByName)]
                    struct Id {
                        #[diesel(sql_type = SqlUuid)]
                        id: Uuid,
                    }
                    let ids: Vec<Id> = diesel::sql_query(
                        "INSERT INTO users (id, display_name, email, password_hash) \
                         SELECT gen_random_uuid(), 'Bench user', gen_random_uuid()::text || '@bench.example.com', \
                                'not a hash' FROM generate_series(1, $1) RETURNING id",
                    )
                    .bind::<BigInt, _>(n as i64)
                    .load(conn)
                    .await?;
                    Ok(ids.into_iter().map(|i| i.id).collect())
                }
                .boxed()
            })
            .await
            .expect("the users are created")
    };
    let rarity_names = ["common", "fandom", "rare", "legendary"];
    let mut rows = Vec::with_capacity(count);
    for i in 0..count {
        let user = users[i / 3];
        let (kind_parameters, name) = if i % 100 == 0 {
            let rarity = rarity_names[dice.below(4)].to_owned();
            (
                Parameters::RookieRisers(RookieRisers {
                    max_seasons_played: 3,
                    min_performance_rise_percent: 0.0,
                    rarities: vec![rarity],
                    team_codes: Vec::new(),
                }),
                "Rookies",
            )
        } else {
            let rarities = if dice.below(10) < 6 { vec![rarity_names[dice.below(4)].to_owned()] } else { Vec::new() };
            (
                Parameters::PostGameSpike(PostGameSpike {
                    min_game_score: 30,
                    buy_window_minutes: 1_440,
                    player_ids: vec![players[dice.below(players.len())].clone()],
                    rarities,
                    stat_triggers: Vec::new(),
                }),
                "Spikes",
            )
        };
        let now = Utc::now();
        rows.push(strategy_store::Strategy {
            id: Uuid::new_v4(),
            user_id: user,
            display_name: format!("{name} {}", i % 3),
            kind: kind_parameters.kind(),
            state: strategy_store::StrategyState::Active,
            parameters: kind_parameters.to_json(),
            min_confidence: 0.05,
            min_discount_bps: 1_000 + 500 * (dice.below(6) as i32),
            max_price_cents: 5_000,
            max_purchases_per_day: 3,
            template_id: None,
            created_at: now,
            updated_at: now,
            priority: 1 + dice.below(100) as i32,
            scan_time: None,
            scan_time_zone: None,
            protections: serde_json::json!({}),
            protections_reset_at: None,
        });
    }
    for chunk in rows.chunks(1_000) {
        let chunk = chunk.to_vec();
        mesh.pool
            .read_committed(move |conn| {
                let chunk = chunk.clone();
                async move {
                    use diesel_async::RunQueryDsl;
                    diesel::insert_into(fastbreak_db::schema::strategies::table).values(&chunk).execute(conn).await?;
                    diesel::sql_query(
                        "INSERT INTO strategy_performance (strategy_id) SELECT id FROM strategies \
                         ON CONFLICT DO NOTHING",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                }
                .boxed()
            })
            .await
            .expect("the strategies are stored");
    }
}

/// What the model values each listing at (a recent standout game lifts a player's value above
/// his sales).
async fn fair_values(mesh: &TradingMesh, listings: &[(Uuid, usize)]) -> Vec<(Uuid, i64)> {
    let addr = mesh.addrs.iter().find(|(n, _)| *n == "scouting").expect("scouting").1;
    let mut scouting = ScoutingInternalServiceClient::connect(format!("http://{addr}")).await.expect("scouting");
    let mut valued = Vec::with_capacity(listings.len());
    for (listing, _) in listings {
        let valuation = scouting
            .value_listing(internal(ValueListingRequest { listing_id: listing.to_string(), ..Default::default() }))
            .await
            .expect("a valuation")
            .into_inner();
        valued.push((*listing, valuation.fair_value_cents));
    }
    valued
}

/// Repricings of random listings within 8% of what the model values them at: the strategies
/// skip them (they want 10% or more), as they skip most of a busy market; a few are near
/// misses. One transaction per call.
async fn reprice(mesh: &TradingMesh, listings: &[(Uuid, i64)], count: usize, dice: &mut Dice) {
    let events: Vec<(Uuid, i64)> = (0..count)
        .map(|_| {
            let (listing, fair) = listings[dice.below(listings.len())];
            (listing, fair * (92 + dice.below(17) as i64) / 100)
        })
        .collect();
    mesh.pool
        .read_committed(move |conn| {
            let events = events.clone();
            async move { market::reprice_listings(conn, &events).await.map(drop) }.boxed()
        })
        .await
        .expect("the repricings are written");
}

/// Waits until the agents' cursor reaches `last`, sampling how far behind it is; the samples.
async fn caught_up(mesh: &TradingMesh, last: i64, started: Instant) -> Vec<(f64, i64)> {
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    loop {
        let at = cursor(mesh).await;
        if started.elapsed() >= next_sample {
            samples.push((started.elapsed().as_secs_f64(), (newest_event(mesh).await - at).max(0)));
            next_sample += Duration::from_millis(500);
        }
        if at >= last {
            return samples;
        }
        assert!(started.elapsed() < Duration::from_secs(900), "the agents fell behind: {at} of {last}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The lag from each listing event in `(after, last]` stored to its last decision stored, in ms.
async fn lags(mesh: &TradingMesh, after: i64, last: i64) -> Lags {
    mesh.pool
        .read(move |conn| {
            async move {
                use diesel::sql_types::BigInt;
                use diesel_async::RunQueryDsl;
                Ok(diesel::sql_query(
                    "SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), 0) AS p50, \
                            coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), 0) AS p99, count(*) AS n \
                       FROM (SELECT (extract(epoch FROM max(d.created_at) - e.occurred_at) * 1000)::float8 AS lag \
                               FROM listing_events e JOIN decisions d ON d.event_sequence = e.sequence \
                              WHERE e.sequence > $1 AND e.sequence <= $2 \
                              GROUP BY e.sequence, e.occurred_at) l",
                )
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(last)
                .get_result(conn)
                .await?)
            }
            .boxed()
        })
        .await
        .expect("the lags")
}

fn series(samples: &[(f64, i64)]) -> String {
    let step = samples.len().div_ceil(12).max(1);
    samples.iter().step_by(step).map(|(t, behind)| format!("{t:.1}s:{behind}")).collect::<Vec<_>>().join(" ")
}

/// A collector with one strategy that buys a 20% discount on any of the players of the
/// bargains offered to him (each a player of its own, whose value the purchase does not move).
struct Buyer {
    listings: Vec<Uuid>,
    next: usize,
}

async fn buyer(mesh: &TradingMesh, count: usize) -> Buyer {
    let (mut players, mut bargains) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let listings = mesh.list_market_moments(6, "simulator", FAIR).await;
        let player = mesh.record_sales(&listings[..5], FAIR).await;
        mesh.standout_game(&player).await;
        players.push(player);
        bargains.push(listings[5]);
    }
    let (user, _) = mesh.funded_user(100_000_000).await;
    mesh.raise_limits(user).await;
    let now = Utc::now();
    let parameters = Parameters::PostGameSpike(PostGameSpike {
        min_game_score: 30,
        buy_window_minutes: 1_440,
        player_ids: players,
        rarities: Vec::new(),
        stat_triggers: Vec::new(),
    });
    let row = strategy_store::Strategy {
        id: Uuid::new_v4(),
        user_id: user,
        display_name: "Bargains".to_owned(),
        kind: parameters.kind(),
        state: strategy_store::StrategyState::Active,
        parameters: parameters.to_json(),
        min_confidence: 0.05,
        min_discount_bps: 2_000,
        max_price_cents: 5_000,
        max_purchases_per_day: 1_000,
        template_id: None,
        created_at: now,
        updated_at: now,
        priority: 50,
        scan_time: None,
        scan_time_zone: None,
        protections: serde_json::json!({}),
        protections_reset_at: None,
    };
    mesh.pool
        .read_committed(move |conn| {
            let row = row.clone();
            async move { strategy_store::create_strategy(conn, &row).await.map(|_| ()) }.boxed()
        })
        .await
        .expect("the buyer's strategy");
    Buyer { listings: bargains, next: 0 }
}

/// Offers the buyer a listing at half its value and waits for the purchase to settle: the
/// time from the listing event stored to the trade settled, in ms.
async fn time_to_buy(mesh: &TradingMesh, buyer: &mut Buyer) -> f64 {
    let listing = buyer.listings[buyer.next];
    buyer.next += 1;
    mesh.pool
        .read_committed(move |conn| {
            async move { market::reprice_listings(conn, &[(listing, FAIR / 2)]).await.map(drop) }.boxed()
        })
        .await
        .expect("the bargain is offered");
    let started = Instant::now();
    loop {
        let settled = mesh
            .pool
            .read(move |conn| {
                async move {
                    use diesel::sql_types::Uuid as SqlUuid;
                    use diesel_async::RunQueryDsl;
                    #[derive(diesel::QueryableByName)]
                    struct Lag {
                        #[diesel(sql_type = diesel::sql_types::Double)]
                        ms: f64,
                    }
                    let found: Option<Lag> = diesel::sql_query(
                        "SELECT (extract(epoch FROM t.settled_at - e.occurred_at) * 1000)::float8 AS ms \
                           FROM trades t JOIN listing_events e ON e.listing_id = t.listing_id \
                          WHERE t.listing_id = $1 AND t.state = 'settled' AND e.kind = 'price_changed' \
                          ORDER BY e.sequence DESC LIMIT 1",
                    )
                    .bind::<SqlUuid, _>(listing)
                    .get_result(conn)
                    .await
                    .optional()?;
                    Ok(found.map(|l| l.ms))
                }
                .boxed()
            })
            .await
            .expect("the purchase's time");
        if let Some(ms) = settled {
            return ms;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let decided = texts(
                mesh,
                format!(
                    "SELECT concat_ws(' ', outcome, reason_code, rule, reasons::text) AS text FROM decisions \
                     WHERE listing_id = '{listing}'"
                ),
            )
            .await;
            panic!("the bargain {listing} was never bought: {decided:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn percentiles(mut samples: Vec<f64>) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {}", at(0.5), at(0.99), at(1.0), samples.len())
}

use diesel::OptionalExtension as _;

fn main() {
    let scales: Vec<usize> = std::env::var("AGENTS_SCALES")
        .unwrap_or_else(|_| "1000,10000,30000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let events = env("AGENTS_EVENTS", 2_000);
    let paced_seconds = env("AGENTS_PACED_SECONDS", 10);
    let paced_rate = env("AGENTS_PACED_RATE", 50);
    let buys = env("AGENTS_BUYS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let _telemetry = fastbreak_integration_tests::bench_telemetry();
        let mesh =
            Arc::new(TradingMesh::start(MeshOptions { agents: true, pool: 16, ..MeshOptions::default() }).await);
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
        let (players, listings) = market_of(&mesh).await;
        let listings = fair_values(&mesh, &listings).await;
        // A collector for each measure (risk pauses a collector's automation after 30 purchases
        // in its burst window).
        let mut buyer_when_idle = buyer(&mesh, buys).await;
        let buyer_under_load = buyer(&mesh, buys).await;
        // The agents reach the market's present before anything is measured.
        let newest = newest_event(&mesh).await;
        caught_up(&mesh, newest, Instant::now()).await;

        let mut idle = Vec::new();
        for _ in 0..buys {
            idle.push(time_to_buy(&mesh, &mut buyer_when_idle).await);
        }
        println!("time to buy, idle (one matching strategy): {}", percentiles(idle));

        let mut made = 0;
        for &scale in &scales {
            add_strategies(&mesh, &players, scale.saturating_sub(made), &mut dice).await;
            made = made.max(scale);
            // The first event after new strategies pays for reading them: not measured.
            let warm = newest_event(&mesh).await + 1;
            reprice(&mesh, &listings, 1, &mut dice).await;
            caught_up(&mesh, warm, Instant::now()).await;

            let before = newest_event(&mesh).await;
            // Said before the load starts, so that a profiler can be started on it.
            eprintln!("loading: {scale} strategies, {events} events at full speed");
            let started = Instant::now();
            reprice(&mesh, &listings, events, &mut dice).await;
            let last = newest_event(&mesh).await;
            let samples = caught_up(&mesh, last, started).await;
            let elapsed = started.elapsed().as_secs_f64();
            let decisions = number(
                &mesh,
                format!("SELECT count(*) AS n FROM decisions WHERE event_sequence > {before} AND event_sequence <= {last}"),
            )
            .await;
            let lag = lags(&mesh, before, last).await;
            assert!(decisions > 0, "the events were decided");
            println!(
                "agents, {} users, {scale} strategies, {} events at full speed: {:.1} events/s, {:.0} decisions/s \
                 ({decisions} decisions, {:.1} a listing); event stored to decisions stored p50 {:.0} ms, p99 {:.0} ms; \
                 cursor behind: {}",
                scale.div_ceil(3),
                last - before,
                (last - before) as f64 / elapsed,
                decisions as f64 / elapsed,
                decisions as f64 / (last - before) as f64,
                lag.p50,
                lag.p99,
                series(&samples)
            );
            let _ = lag.n;
            let outcomes = texts(
                &mesh,
                format!(
                    "SELECT concat(outcome, ' ', reason_code, ' ', count(*)) AS text FROM decisions \
                     WHERE event_sequence > {before} AND event_sequence <= {last} \
                     GROUP BY outcome, reason_code ORDER BY count(*) DESC"
                ),
            )
            .await;
            println!("  decided: {}", outcomes.join(", "));
        }

        // A busy hour after a big game: events at a steady rate, and bargains among them.
        let before = newest_event(&mesh).await;
        let started = Instant::now();
        let buying = {
            let (mesh, mut buyer) = (mesh.clone(), buyer_under_load);
            tokio::spawn(async move {
                let mut lags = Vec::new();
                tokio::time::sleep(Duration::from_secs(1)).await;
                for _ in 0..buys {
                    lags.push(time_to_buy(&mesh, &mut buyer).await);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                lags
            })
        };
        let interval = Duration::from_secs_f64(1.0 / paced_rate as f64);
        let mut next = tokio::time::Instant::now();
        let mut written = 0;
        let mut samples = Vec::new();
        while started.elapsed() < Duration::from_secs(paced_seconds as u64) {
            reprice(&mesh, &listings, 1, &mut dice).await;
            written += 1;
            if written % paced_rate == 0 {
                let behind = (newest_event(&mesh).await - cursor(&mesh).await).max(0);
                samples.push((started.elapsed().as_secs_f64(), behind));
            }
            next += interval;
            tokio::time::sleep_until(next).await;
        }
        let last = newest_event(&mesh).await;
        samples.extend(caught_up(&mesh, last, started).await);
        let under_load = buying.await.expect("the buyer's purchases");
        let lag = lags(&mesh, before, last).await;
        println!(
            "agents, {} strategies, {written} events at {paced_rate}/s for {paced_seconds} s: event stored to decisions \
             stored p50 {:.0} ms, p99 {:.0} ms; cursor behind: {}",
            made,
            lag.p50,
            lag.p99,
            series(&samples)
        );
        println!("time to buy, under that load: {}", percentiles(under_load));
        let bytes = number(
            &mesh,
            "SELECT (pg_total_relation_size('decisions') / greatest(count(*), 1))::bigint AS n FROM decisions".into(),
        )
        .await;
        let row = number(&mesh, "SELECT avg(pg_column_size(d.*))::bigint AS n FROM decisions d WHERE outcome = 'skip'".into()).await;
        let runs = number(&mesh, "SELECT count(*) AS n FROM agent_runs".into()).await;
        println!("a decision costs {bytes} bytes with its indexes (a skip's row {row} bytes); agent_runs holds {runs} runs");
    });
}
