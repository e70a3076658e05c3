use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fastbreak_market_sim::{Config, Event, Simulator};
use uuid::Uuid;

use super::*;

fn performance() -> Performance {
    Performance {
        name: "Jalen Brooks".to_owned(),
        last_points: None,
        last_game_age_days: 0.5,
        average_points: 20.0,
        previous_high: 38,
        games: 10,
    }
}

fn sale(price: i64, age_days: f64) -> Comparable {
    Comparable { same_play: true, serial: 500, price_cents: price, age_days, after_last_game: false }
}

#[test]
fn serials_big_games_and_thin_markets_are_explained() {
    let target = Target { serial: 23, jersey: Some(23), tier: "rare".to_owned() };
    let sales = [sale(4_000, 1.0), sale(4_400, 2.0), sale(4_200, 3.0), sale(4_100, 5.0), sale(4_300, 8.0)];
    let big = Performance { last_points: Some(41), ..performance() };
    let e = estimate(&target, &sales, &big).unwrap();
    let names: Vec<_> = e.factors.iter().map(|f| f.name).collect();
    assert_eq!(names, vec!["serial", "comparable_sales", "recent_performance"], "{:#?}", e.factors);
    assert!(e.factors[0].explanation.contains("serial #23 matches his jersey"));
    assert!(e.factors[2].explanation.contains("scored 41 points last night, a career high"), "{:#?}", e.factors);
    assert!(e.factors.iter().all(|f| !f.explanation.is_empty() && (0.0..=1.0).contains(&f.weight)));
    let plain = estimate(&Target { serial: 400, ..target.clone() }, &sales, &performance()).unwrap();
    assert!((4_100..=4_300).contains(&plain.fair_value_cents), "{}", plain.fair_value_cents);
    assert!(e.fair_value_cents > plain.fair_value_cents * 2, "jersey serial and a big game add value");
    assert!(plain.confidence > LOW_CONFIDENCE, "{}", plain.confidence);

    let thin = estimate(&target, &[sale(4_000, 20.0)], &performance()).unwrap();
    assert!(thin.confidence < LOW_CONFIDENCE);
    assert!(thin.factors.last().unwrap().explanation.contains("only 1 comparable sales"), "{:#?}", thin.factors);
    assert!(estimate(&target, &[sale(4_000, 90.0)], &performance()).is_none(), "too old to compare");
    assert_eq!(advise(&plain, Some(3_000)), Advice::StrongBuy);
    assert_eq!(advise(&plain, Some(5_500)), Advice::Sell);
    assert_eq!(advise(&plain, None), Advice::Hold);
}

/// Replays a simulated season; for every sale of a moment sold before, compares the model's
/// fair value (from what was known just before) and the moment's last sale price with the price
/// actually paid.
#[test]
fn fair_value_predicts_the_next_sale_better_than_the_last_sale() {
    let mut sim = Simulator::new(Config { seed: 3, ..Config::default() });
    struct Known {
        player: String,
        play: (String, String, DateTime<Utc>),
        tier: String,
        serial: i32,
    }
    let mut moments: HashMap<Uuid, Known> = HashMap::new();
    let mut jerseys: HashMap<String, (i32, String)> = HashMap::new();
    let mut listing_moment: HashMap<Uuid, Uuid> = HashMap::new();
    let mut games: HashMap<String, Vec<(DateTime<Utc>, i32)>> = HashMap::new();
    // Sales by (player, tier): when, which moment, at what price.
    type Sales = Vec<(DateTime<Utc>, Uuid, i64)>;
    let mut group: HashMap<(String, String), Sales> = HashMap::new();
    let mut last_sale: HashMap<Uuid, i64> = HashMap::new();
    let (mut model_error, mut last_error, mut n) = (0.0, 0.0, 0);
    let mut confidence_by_size: HashMap<bool, (f64, usize)> = HashMap::new();
    let warm_up = sim.now() + chrono::Duration::days(20);
    for _ in 0..24 * 100 {
        for timed in sim.step() {
            let at = timed.at;
            match timed.event {
                Event::PlayerSigned(p) => {
                    jerseys.insert(p.id.clone(), (p.jersey, p.full_name));
                }
                Event::MomentMinted(m) => {
                    let known = Known {
                        player: m.player_id.clone(),
                        play: (m.set_name.clone(), m.play_category.clone(), m.play_at),
                        tier: m.tier.as_str().to_owned(),
                        serial: m.serial_number,
                    };
                    moments.insert(m.id, known);
                }
                Event::Listed(l) => {
                    listing_moment.insert(l.id, l.moment_id);
                }
                Event::GameFinal { lines, .. } => {
                    for line in lines {
                        games.entry(line.player_id).or_default().push((at, line.points));
                    }
                }
                Event::Sold { listing_id, price_cents, .. } => {
                    let moment_id = listing_moment[&listing_id];
                    let known = &moments[&moment_id];
                    let key = (known.player.clone(), known.tier.clone());
                    let history = group.entry(key).or_default();
                    if let (Some(last), true) = (last_sale.get(&moment_id), at > warm_up) {
                        let played = games.get(&known.player).cloned().unwrap_or_default();
                        let last_game = played.last().copied();
                        let comparables: Vec<Comparable> = history
                            .iter()
                            .rev()
                            .map(|(t, m, p)| Comparable {
                                same_play: moments[m].play == known.play,
                                serial: moments[m].serial,
                                price_cents: *p,
                                age_days: (at - *t).num_minutes() as f64 / 1_440.0,
                                after_last_game: last_game.is_some_and(|(g, _)| *t >= g),
                            })
                            .take_while(|c| c.age_days <= WINDOW_DAYS)
                            .collect();
                        let (jersey, name) = jerseys[&known.player].clone();
                        let points: Vec<i32> = played.iter().map(|g| g.1).collect();
                        let performance = Performance {
                            name,
                            last_points: last_game.map(|g| g.1),
                            last_game_age_days: last_game
                                .map_or(99.0, |(g, _)| (at - g).num_minutes() as f64 / 1_440.0),
                            average_points: points.iter().sum::<i32>() as f64 / points.len().max(1) as f64,
                            previous_high: points[..points.len().saturating_sub(1)].iter().copied().max().unwrap_or(0),
                            games: points.len(),
                        };
                        let target = Target { serial: known.serial, jersey: Some(jersey), tier: known.tier.clone() };
                        if let Some(e) = estimate(&target, &comparables, &performance) {
                            let price = price_cents as f64;
                            model_error += ((e.fair_value_cents as f64 - price) / price).abs();
                            last_error += ((*last as f64 - price) / price).abs();
                            n += 1;
                            let entry = confidence_by_size.entry(comparables.len() >= 10).or_default();
                            entry.0 += e.confidence;
                            entry.1 += 1;
                        }
                    }
                    history.push((at, moment_id, price_cents));
                    last_sale.insert(moment_id, price_cents);
                }
                _ => {}
            }
        }
    }
    let (model, last) = (model_error / n as f64, last_error / n as f64);
    let mean = |many: bool| confidence_by_size.get(&many).map_or(0.0, |(sum, count)| sum / *count as f64);
    println!(
        "{n} sales of moments sold before: mean absolute error of fair value {:.1}%, of the last sale price {:.1}%; mean confidence {:.2} with fewer than 10 comparables, {:.2} with 10 or more",
        model * 100.0,
        last * 100.0,
        mean(false),
        mean(true)
    );
    assert!(n >= 500, "enough repeat sales to judge: {n}");
    assert!(model < last, "fair value ({model:.3}) predicts the next sale better than the last sale ({last:.3})");
    assert!(mean(false) < mean(true), "confidence is lower where comparables are few");
}
