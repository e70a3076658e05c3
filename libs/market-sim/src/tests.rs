use std::collections::HashMap;

use super::*;

fn run(config: Config, steps: usize) -> Vec<Timed> {
    let mut sim = Simulator::new(config);
    (0..steps).flat_map(|_| sim.step()).collect()
}

#[test]
fn one_seed_gives_the_same_events_twice_and_another_seed_others() {
    let config = Config { seed: 42, ..Config::default() };
    let first = run(config.clone(), 24 * 10);
    let second = run(config, 24 * 10);
    assert!(first.len() > 500, "a busy market: {} events", first.len());
    assert_eq!(first, second);
    let other = run(Config { seed: 43, ..Config::default() }, 24 * 10);
    assert_ne!(first, other);
    let kinds = |events: &[Timed]| {
        let mut seen = std::collections::HashSet::new();
        for e in events {
            seen.insert(std::mem::discriminant(&e.event));
        }
        seen.len()
    };
    assert_eq!(kinds(&first), 7, "every kind of event happens");

    // A salted run: the same events twice, never the ids of the unsalted run, and the same
    // course of the market (the salt names things; it does not move them).
    let salted = run(Config { seed: 42, id_salt: 99, ..Config::default() }, 24 * 10);
    assert_eq!(salted, run(Config { seed: 42, id_salt: 99, ..Config::default() }, 24 * 10));
    let ids = |events: &[Timed]| -> Vec<Uuid> {
        events.iter().filter_map(|e| if let Event::MomentMinted(m) = &e.event { Some(m.id) } else { None }).collect()
    };
    assert!(ids(&salted).iter().all(|id| !ids(&first).contains(id)));
    assert_eq!(course(&salted, config_start()), course(&first, config_start()), "another salt, the same market");
}

fn config_start() -> DateTime<Utc> {
    Config::default().start
}

/// What happened, without ids or dates: each event's kind, its time from `start`, its prices,
/// players and serials. Two runs with the same course give the same list.
fn course(events: &[Timed], start: DateTime<Utc>) -> Vec<String> {
    events
        .iter()
        .map(|Timed { at, event }| {
            let offset = (*at - start).num_minutes();
            let what = match event {
                Event::PlayerSigned(p) => format!("signed {}", p.id),
                Event::GameFinal { lines, .. } => {
                    format!(
                        "game {}",
                        lines.iter().map(|l| format!("{}:{}", l.player_id, l.points)).collect::<Vec<_>>().join(",")
                    )
                }
                Event::MomentMinted(m) => format!(
                    "minted {} {} #{} {}m",
                    m.player_id,
                    m.tier.as_str(),
                    m.serial_number,
                    (m.play_at - start).num_minutes()
                ),
                Event::Listed(l) => format!("listed {} {} {}", l.marketplace, l.price_cents, l.seller),
                Event::PriceChanged { price_cents, .. } => format!("repriced {price_cents}"),
                Event::Sold { price_cents, buyer, .. } => format!("sold {price_cents} {buyer}"),
                Event::Withdrawn { .. } => "withdrawn".to_owned(),
                // Reported by real markets' feeds; in the course only if the simulator sent one.
                Event::MomentOwner { owner, .. } => format!("owner {owner}"),
                Event::SaleRecorded(sale) => format!("recorded sale {}", sale.price_cents),
                Event::MomentListingChanged { marketplace, change, .. } => format!("changed {marketplace} {change:?}"),
            };
            format!("{offset} {what}")
        })
        .collect()
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("a valid time")
}

#[test]
fn the_market_is_alive_from_its_first_step_whatever_the_start() {
    // Every hour of one day; New Year's Eve at 23:00; a leap day; the nights US/Eastern changes
    // to and from daylight saving time (02:00 local: 07:00 and 06:00 UTC).
    let mut starts: Vec<DateTime<Utc>> = (0..24).map(|h| utc(2026, 12, 4, h)).collect();
    starts.extend([
        utc(2026, 12, 31, 23),
        utc(2027, 12, 31, 23),
        utc(2028, 2, 29, 0),
        utc(2028, 2, 29, 12),
        utc(2027, 3, 14, 7),
        utc(2026, 11, 1, 6),
        utc(2028, 11, 5, 6),
    ]);
    let mut courses = Vec::new();
    for start in starts {
        let mut sim = Simulator::new(Config { start, ..Config::default() });
        let first = sim.step();
        let minted = first.iter().filter(|e| matches!(e.event, Event::MomentMinted(_))).count();
        assert!(minted >= 100, "{start}: a starting catalog at the first step: {minted} moments");
        assert!(
            first.iter().all(|e| match &e.event {
                Event::MomentMinted(m) => m.play_at < start,
                _ => e.at >= start && e.at < start + chrono::Duration::seconds(1),
            }),
            "{start}: the catalog's plays are earlier plays; the rest happens at the start"
        );
        let now: Vec<DateTime<Utc>> =
            first.iter().filter(|e| !matches!(e.event, Event::MomentMinted(_))).map(|e| e.at).collect();
        assert!(
            now.windows(2).all(|w| w[0] < w[1]),
            "{start}: each event at an instant of its own, in the step's order"
        );
        for market in &sim.config().marketplaces {
            let listed =
                first.iter().filter(|e| matches!(&e.event, Event::Listed(l) if l.marketplace == market.id)).count();
            assert!(listed >= 10, "{start}: {} has listings at the first step: {listed}", market.id);
        }
        // More listings each simulated hour after, and a game within the first simulated day.
        let mut events = first;
        for hour in 1..24 {
            let step = sim.step();
            assert!(
                step.iter().any(|e| matches!(e.event, Event::Listed(_))),
                "{start}: listings in simulated hour {hour}"
            );
            events.extend(step);
        }
        let game = events.iter().find(|e| matches!(e.event, Event::GameFinal { .. })).map(|e| e.at);
        assert!(game.is_some_and(|at| at < start + Duration::days(1)), "{start}: a game on the first day: {game:?}");
        courses.push((start, course(&events, start)));
    }
    // And the calendar moves none of it: every start gives the same market.
    let (first_start, first_course) = &courses[0];
    for (start, course) in &courses[1..] {
        assert!(course == first_course, "the market from {start} is the market from {first_start}");
    }
}

#[test]
fn big_games_raise_the_sale_prices_of_the_players_moments() {
    let mut sim = Simulator::new(Config { seed: 9, ..Config::default() });
    let mut moment_player: HashMap<Uuid, (String, Tier)> = HashMap::new();
    let mut listing_moment: HashMap<Uuid, Uuid> = HashMap::new();
    // (player, time, price relative to the tier's base)
    let mut sales: Vec<(String, DateTime<Utc>, f64)> = Vec::new();
    let mut big_games: Vec<(String, DateTime<Utc>)> = Vec::new();
    let mut gaps = 0;
    for _ in 0..24 * 150 {
        for Timed { at, event } in sim.step() {
            match event {
                Event::MomentMinted(m) => {
                    moment_player.insert(m.id, (m.player_id, m.tier));
                }
                Event::Listed(l) => {
                    listing_moment.insert(l.id, l.moment_id);
                }
                Event::Sold { listing_id, price_cents, .. } => {
                    let (player, tier) = &moment_player[&listing_moment[&listing_id]];
                    sales.push((player.clone(), at, price_cents as f64 / tier.base_cents()));
                }
                Event::GameFinal { lines, .. } => {
                    for line in lines.iter().filter(|l| l.career_high || l.points >= 40) {
                        big_games.push((line.player_id.clone(), at));
                    }
                }
                _ => {}
            }
        }
        // Price gaps: one moment listed on both marketplaces at prices 10% apart or more.
        let mut by_moment: HashMap<Uuid, Vec<i64>> = HashMap::new();
        for (l, _) in sim.listings.values() {
            by_moment.entry(l.moment_id).or_default().push(l.price_cents);
        }
        gaps += by_moment
            .values()
            .filter(|p| p.len() > 1 && p.iter().max().unwrap() * 10 > p.iter().min().unwrap() * 11)
            .count();
    }
    let window = Duration::days(6);
    let mut ratios = Vec::new();
    for (player, at) in &big_games {
        let mean = |from: DateTime<Utc>, to: DateTime<Utc>| {
            let prices: Vec<f64> =
                sales.iter().filter(|(p, t, _)| p == player && *t >= from && *t < to).map(|s| s.2).collect();
            (prices.len() >= 3).then(|| prices.iter().sum::<f64>() / prices.len() as f64)
        };
        if let (Some(before), Some(after)) = (mean(*at - window, *at), mean(*at, *at + window)) {
            ratios.push(after / before);
        }
    }
    let geometric = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    let raised = ratios.iter().filter(|r| **r > 1.0).count();
    println!(
        "{} big games with sales around them: prices after / before = {geometric:.3} (geometric mean), {raised} raised; {} sales; {gaps} hour-listings with a price gap",
        ratios.len(),
        sales.len()
    );
    assert!(ratios.len() >= 10, "enough big games to measure: {}", ratios.len());
    assert!(geometric > 1.05, "big games raise prices: {geometric:.3}");
    assert!(raised * 3 > ratios.len() * 2, "most big games raise prices: {raised} of {}", ratios.len());
    assert!(gaps > 0, "marketplaces disagree now and then");
}
