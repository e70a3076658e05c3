use fastbreak_proto::strategy::v1 as strategy;

use super::*;

fn hunter(id: u128, name: &str, rules: strategy::StrategyRules) -> strategy::Strategy {
    strategy::Strategy {
        strategy_id: Uuid::from_u128(id).to_string(),
        user_id: Uuid::from_u128(99).to_string(),
        display_name: name.to_owned(),
        rules: Some(rules),
        ..Default::default()
    }
}

fn value_rules() -> strategy::StrategyRules {
    strategy::StrategyRules {
        min_confidence: 0.3,
        min_discount_bps: 1_500,
        max_price_cents: 50_000,
        max_purchases_per_day: 5,
    }
}

fn plan(days: u32, strategies: Vec<strategy::Strategy>) -> Plan {
    Plan {
        seed: 11,
        start: season(11).start,
        days,
        starting_cents: 200_000,
        hold_days: 3,
        strategies,
        limits: None,
        suspicion: Suspicion::default(),
    }
}

fn run(plan: &Plan) -> Report {
    futures::executor::block_on(replay(plan, |_| {}, &AtomicBool::new(false))).expect("not stopped")
}

#[test]
fn a_seeded_season_gives_the_same_report_twice() {
    let plan = plan(6, vec![hunter(1, "value", value_rules())]);
    let (first, second) = (run(&plan), run(&plan));
    assert!(first.listing_events > 100, "the season lists: {}", first.listing_events);
    assert!(first.strategies[0].purchases > 0, "the strategy buys: {:?}", first.strategies[0]);
    assert!(first.strategies[0].closed > 0, "positions are sold after three days");
    assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&second).unwrap());
    assert_eq!(first.chart_svg(), second.chart_svg());
}

#[test]
fn what_was_bought_by_an_instant_does_not_depend_on_the_market_after_it() {
    // A replay of 3 days and one of 7: the purchases of the first 3 days are the same, so no
    // decision looked at a sale or a game that came after it.
    let strategies = vec![hunter(1, "value", value_rules())];
    let short = run(&plan(3, strategies.clone()));
    let long = run(&plan(7, strategies));
    let key = |t: &report::Trade| {
        (
            t.listing_id.clone(),
            t.bought_at,
            t.price_cents,
            t.fair_value_cents,
            t.confidence.to_bits(),
            t.reasons.clone(),
        )
    };
    let early: Vec<_> = long.strategies[0].trades.iter().filter(|t| t.bought_at < short.end).map(key).collect();
    let all: Vec<_> = short.strategies[0].trades.iter().map(key).collect();
    assert!(!all.is_empty());
    assert_eq!(early, all);
}

#[test]
fn the_strategys_rules_and_protections_decide_in_the_replay() {
    let capped = hunter(1, "capped", strategy::StrategyRules { max_purchases_per_day: 1, ..value_rules() });
    let approval = strategy::Strategy {
        protections: Some(strategy::StrategyProtections {
            manual_approval: Some(strategy::ManualApproval { expire_after_minutes: 30 }),
            ..Default::default()
        }),
        ..hunter(2, "approval", value_rules())
    };
    let cheap = hunter(3, "cheap", strategy::StrategyRules { max_price_cents: 1, ..value_rules() });
    let report = run(&plan(5, vec![capped, approval, cheap]));
    let [capped, approval, cheap] = &report.strategies[..] else { panic!("three ledgers") };
    let mut days: BTreeMap<chrono::NaiveDate, u64> = BTreeMap::new();
    for trade in &capped.trades {
        *days.entry(trade.bought_at.date_naive()).or_default() += 1;
    }
    assert!(!days.is_empty() && days.values().all(|n| *n == 1), "one a day: {days:?}");
    assert!(capped.skips.iter().any(|s| s.reason == "daily_cap" && s.rule == "max_purchases_per_day"));
    assert_eq!(approval.purchases, 0, "nothing is bought without an approval");
    assert!(approval.awaiting_approval > 0);
    assert_eq!(cheap.purchases, 0);
    assert!(cheap.skips.iter().any(|s| s.reason == "above_max_price" && s.rule == "max_price_cents"), "{cheap:?}");
    // The baselines: every discount bought, and nothing.
    assert_eq!(report.baselines.len(), 2);
    assert!(report.baselines[0].purchases > capped.purchases);
    assert_eq!(report.baselines[1].final_equity_cents, 200_000);
}

#[test]
fn a_losing_streak_pauses_the_strategy_in_the_replay() {
    // Buying at any discount with short holds loses to the fee often: a streak of two losses
    // pauses the strategy for a day, and its purchases are skipped with the rule named.
    let guarded = strategy::Strategy {
        protections: Some(strategy::StrategyProtections {
            losing_streak: Some(strategy::LosingStreakGuard {
                losing_trades: 2,
                window_minutes: 7 * 1440,
                pause_minutes: 1440,
            }),
            ..Default::default()
        }),
        ..hunter(
            1,
            "guarded",
            strategy::StrategyRules { min_confidence: 0.0, min_discount_bps: 1, ..Default::default() },
        )
    };
    let report = run(&Plan { hold_days: 1, ..plan(6, vec![guarded]) });
    let ledger = &report.strategies[0];
    assert!(ledger.closed > 0 && ledger.wins < ledger.closed, "some losses: {} of {}", ledger.wins, ledger.closed);
    assert!(
        ledger.skips.iter().any(|s| s.reason == "protection" && s.rule == "protections.losing_streak"),
        "{:?}",
        ledger.skips
    );
    assert!(ledger.purchases < report.baselines[0].purchases);
}

#[test]
fn the_report_figures_add_up_and_the_chart_draws_every_ledger() {
    let report = run(&plan(
        4,
        vec![
            hunter(1, "value", value_rules()),
            hunter(2, "deep", strategy::StrategyRules { min_discount_bps: 3_000, ..value_rules() }),
        ],
    ));
    for ledger in report.strategies.iter().chain(&report.baselines) {
        assert_eq!(ledger.profit_cents, ledger.final_equity_cents - report.starting_balance_cents);
        assert_eq!(ledger.equity.len(), 5, "a point at the start and after each day");
        let realised: i64 = ledger.trades.iter().filter(|t| t.sold_at.is_some()).map(|t| t.pnl_cents).sum();
        assert_eq!(realised, ledger.realised_profit_cents);
        assert!(ledger.max_drawdown >= 0.0 && ledger.max_drawdown <= 1.0);
        assert!(ledger.best.iter().all(|t| t.pnl_cents > 0 && !t.factors.is_empty()));
    }
    let svg = report.chart_svg();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2 * 4, "equity and drawdown of 2 strategies and 2 baselines");
    assert!(svg.contains("hold nothing"));
}

#[test]
fn the_users_budget_limits_hold_every_ledger_as_risk_holds_a_live_purchase() {
    let eager = vec![hunter(1, "value", strategy::StrategyRules { max_purchases_per_day: 100, ..value_rules() })];
    let limits = |values: fastbreak_limits::LimitValues| Some(Limits { values, zone: chrono_tz::Tz::UTC });
    let free = run(&plan(4, eager.clone()));
    assert_eq!(free.budget_limits, None);
    // A daily limit: what a ledger spends in a day stays within it, the rest refused by risk.
    let daily = fastbreak_limits::LimitValues { daily_cents: Some(3_000), ..Default::default() };
    let held = run(&Plan { limits: limits(daily), ..plan(4, eager.clone()) });
    assert_eq!(
        held.budget_limits.as_ref().map(|b| (b.limits.daily_cents, b.time_zone.as_str())),
        Some((Some(3_000), "UTC"))
    );
    for (ledger, unheld) in
        held.strategies.iter().zip(&free.strategies).chain([(&held.baselines[0], &free.baselines[0])])
    {
        let mut days: BTreeMap<chrono::NaiveDate, i64> = BTreeMap::new();
        for trade in &ledger.trades {
            *days.entry(trade.bought_at.date_naive()).or_default() += trade.price_cents;
        }
        assert!(!days.is_empty() && days.values().all(|spent| *spent <= 3_000), "{}: {days:?}", ledger.name);
        assert!(ledger.skips.iter().any(|s| s.reason == "risk_refused" && s.rule == "risk"), "{:?}", ledger.skips);
        assert!(ledger.purchases < unheld.purchases, "{}: {} of {}", ledger.name, ledger.purchases, unheld.purchases);
    }
    // The reserve: cash kept, whatever is sold meanwhile (the sales' proceeds count as cash).
    let reserve = fastbreak_limits::LimitValues { reserve_cents: Some(199_000), ..Default::default() };
    let kept = run(&Plan { limits: limits(reserve), hold_days: 0, ..plan(4, eager.clone()) });
    let spent: i64 = kept.baselines[0].trades.iter().map(|t| t.price_cents).sum();
    assert!(spent > 0 && spent <= 1_000, "$10 of $2,000 may be spent: {spent}");
    // A day in the user's time zone: New York's day begins at 04:00 UTC in October.
    let zoned = Some(Limits {
        values: fastbreak_limits::LimitValues { daily_cents: Some(3_000), ..Default::default() },
        zone: chrono_tz::America::New_York,
    });
    let local = run(&Plan { limits: zoned, ..plan(4, eager.clone()) });
    let mut days: BTreeMap<chrono::NaiveDate, i64> = BTreeMap::new();
    for trade in &local.baselines[0].trades {
        let day = trade.bought_at.with_timezone(&chrono_tz::America::New_York).date_naive();
        *days.entry(day).or_default() += trade.price_cents;
    }
    assert!(days.values().all(|spent| *spent <= 3_000), "{days:?}");
    assert_eq!(local.budget_limits.as_ref().map(|b| b.time_zone.as_str()), Some("America/New_York"));
    // The emergency threshold: once an hour's spending would pass it, the ledger's stop
    // engages and nothing is bought after it.
    let threshold = fastbreak_limits::LimitValues { emergency_threshold_cents: Some(2_000), ..Default::default() };
    let stopped = run(&Plan { limits: limits(threshold), ..plan(4, eager) });
    let every = &stopped.baselines[0];
    let stop = every.emergency_stop.as_ref().expect("buying every discount passes $20 within an hour");
    assert!(stop.reason.contains("emergency threshold"), "{}", stop.reason);
    assert!(every.purchases > 0 && every.trades.iter().all(|t| t.bought_at <= stop.at), "{every:?}");
    assert!(every.purchases < free.baselines[0].purchases);
}

#[test]
fn a_stopped_replay_ends_within_the_day_without_a_report() {
    let plan = plan(30, vec![hunter(1, "value", value_rules())]);
    let stop = AtomicBool::new(false);
    let mut days = Vec::new();
    let report = futures::executor::block_on(replay(
        &plan,
        |day| {
            days.push(day);
            if day == 2 {
                stop.store(true, Ordering::Relaxed);
            }
        },
        &stop,
    ));
    assert!(report.is_none());
    assert_eq!(days, [1, 2], "nothing replayed after the day it was stopped");
}

#[test]
fn a_plan_out_of_bounds_names_each_figure() {
    let wrong: Vec<&str> = check(0, 0, 61, 11).into_iter().map(|(field, _)| field).collect();
    assert_eq!(wrong, ["days", "starting_balance_cents", "hold_days", "strategy_ids"]);
    assert!(check(30, 100_000, 7, 1).is_empty());
}

/// A ledger whose user set no limit, at noon on its fourth day, having bought at `price` at
/// each of `bought` instants before then.
fn ledger_with(bought: &[Duration], price: i64) -> (Limits, report::Account) {
    let start = season(11).start;
    let mut account = report::Account::new(&hunter(1, "value", value_rules()), 1_000_000, start);
    account.now = start + Duration::days(3) + Duration::hours(12);
    account.spent = bought.iter().map(|ago| (account.now - *ago, price)).collect();
    (Limits { values: fastbreak_limits::LimitValues::default(), zone: chrono_tz::Tz::UTC }, account)
}

/// Refused as risk refuses an automated purchase of a user whose activity looks suspicious:
/// decided `risk_refused` by rule `risk`, with the reason named.
fn refused_as_suspicious(outcome: Result<(), Status>, named: &str) {
    let status = outcome.expect_err("refused");
    assert_eq!(
        crate::domain::purchase_refused(&status),
        Some((fastbreak_proto::agents::v1::DecisionReason::RiskRefused, "risk"))
    );
    let reason = tonic_types::StatusExt::get_details_error_info(&status).map(|i| i.reason).unwrap_or_default();
    assert_eq!(reason, "SUSPICIOUS_ACTIVITY", "{status:?}");
    assert!(status.message().contains(named), "{}", status.message());
}

#[test]
fn activity_risk_calls_suspicious_pauses_a_ledger_for_the_rest_of_the_replay() {
    let usual_rules = Suspicion::default();
    // A burst: 30 purchases in the last ten minutes are as many as risk lets through without
    // a usual rate; the 31st pauses the ledger, and nothing is bought after it.
    let minutes: Vec<Duration> = (0..30).map(|i| Duration::seconds(10 + 19 * i)).collect();
    let (limits, mut busy) = ledger_with(&minutes, 500);
    refused_as_suspicious(within(&limits, &usual_rules, &mut busy, 500), "31 purchases within the burst window");
    assert!(busy.paused.is_some());
    busy.now += Duration::days(2);
    refused_as_suspicious(within(&limits, &usual_rules, &mut busy, 500), "paused since");
    // One purchase fewer is no burst.
    let (limits, mut calm) = ledger_with(&minutes[1..], 500);
    assert!(within(&limits, &usual_rules, &mut calm, 500).is_ok());

    // A purchase more than ten times the usual size, once five were made in the last 30 days.
    let days: Vec<Duration> = (1..=5).map(Duration::days).collect();
    let (limits, mut usual) = ledger_with(&days, 1_000);
    assert!(within(&limits, &usual_rules, &mut usual, 10_000).is_ok(), "ten times the mean is usual enough");
    let (limits, mut large) = ledger_with(&days, 1_000);
    refused_as_suspicious(within(&limits, &usual_rules, &mut large, 10_001), "far above your usual 10.00");
    // With four purchases there is no usual size yet.
    let (limits, mut new) = ledger_with(&days[1..], 1_000);
    assert!(within(&limits, &usual_rules, &mut new, 50_000).is_ok());

    // Ten refusals in a row by a limit pause the ledger; a granted purchase between them
    // starts the count again.
    let (mut limits, mut refused) = ledger_with(&[], 0);
    limits.values.per_moment_cents = Some(1_000);
    for n in 1..=9 {
        let status = within(&limits, &usual_rules, &mut refused, 2_000).expect_err("above the per-moment limit");
        assert!(status.message().contains("per-moment"), "{n}: {}", status.message());
    }
    assert!(within(&limits, &usual_rules, &mut refused, 500).is_ok());
    for _ in 1..=9 {
        within(&limits, &usual_rules, &mut refused, 2_000).expect_err("above the per-moment limit");
    }
    assert!(refused.paused.is_none(), "nine in a row since the last purchase");
    within(&limits, &usual_rules, &mut refused, 2_000).expect_err("the tenth");
    refused_as_suspicious(within(&limits, &usual_rules, &mut refused, 500), "10 purchases in a row were refused");

    // A deployment's own rules, as its risk service sends them: a burst from six purchases.
    let strict = Suspicion { burst_min: 5, ..Suspicion::default() };
    let (limits, mut five) = ledger_with(&minutes[..5], 500);
    refused_as_suspicious(within(&limits, &strict, &mut five, 500), "6 purchases within the burst window");
    let (limits, mut four) = ledger_with(&minutes[..4], 500);
    assert!(within(&limits, &strict, &mut four, 500).is_ok());
}
