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

    // A salted run: the same events twice, never the ids of the unsalted run.
    let salted = run(Config { seed: 42, id_salt: 99, ..Config::default() }, 24 * 10);
    assert_eq!(salted, run(Config { seed: 42, id_salt: 99, ..Config::default() }, 24 * 10));
    let ids = |events: &[Timed]| -> Vec<Uuid> {
        events.iter().filter_map(|e| if let Event::MomentMinted(m) = &e.event { Some(m.id) } else { None }).collect()
    };
    assert!(ids(&salted).iter().all(|id| !ids(&first).contains(id)));
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
        for l in sim.listings.values() {
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
