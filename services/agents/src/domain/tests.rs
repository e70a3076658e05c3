use fastbreak_proto::agents::v1 as pb;
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::strategy::v1 as strategy;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::*;

fn rules(max_price: i64, min_confidence: f64, min_discount_bps: i32, per_day: i32) -> strategy::StrategyRules {
    strategy::StrategyRules {
        max_price_cents: max_price,
        min_confidence,
        min_discount_bps,
        max_purchases_per_day: per_day,
    }
}

#[test]
fn a_listing_is_skipped_before_valuation_by_the_first_rule_it_fails() {
    let r = rules(5_000, 0.5, 1_000, 0);
    let gone = before_valuation(false, Some("Other"), &r, "Mine", 9_000).unwrap();
    assert_eq!((gone.reason, gone.rule), (pb::DecisionReason::ListingGone, "listing_active"));
    let taken = before_valuation(true, Some("Other"), &r, "Mine", 9_000).unwrap();
    assert_eq!((taken.reason, taken.rule), (pb::DecisionReason::ListingGone, "one_purchase_per_listing"));
    assert!(taken.sentence.contains("\"Other\""), "{}", taken.sentence);
    let dear = before_valuation(true, None, &r, "Mine", 9_000).unwrap();
    assert_eq!((dear.reason, dear.rule), (pb::DecisionReason::AboveMaxPrice, "max_price_cents"));
    assert_eq!(dear.sentence, "Skipped: the price $90.00 is above \"Mine\"'s maximum of $50.00.");
    assert_eq!(before_valuation(true, None, &r, "Mine", 5_000), None);
    assert_eq!(before_valuation(true, None, &rules(0, 0.5, 0, 0), "Mine", 1_000_000), None, "0 means no maximum");
}

#[test]
fn a_valuation_passes_on_confidence_then_discount_and_says_why_it_buys() {
    let r = rules(0, 0.6, 1_000, 0);
    let unsure = valuation_rules(&r, "Mine", 8_000, 10_000, 0.5).unwrap_err();
    assert_eq!((unsure.reason, unsure.rule), (pb::DecisionReason::LowConfidence, "min_confidence"));
    assert_eq!(unsure.sentence, "Skipped: the valuation's confidence 0.50 is below \"Mine\"'s minimum of 0.60.");
    let small = valuation_rules(&r, "Mine", 9_500, 10_000, 0.9).unwrap_err();
    assert_eq!((small.reason, small.rule), (pb::DecisionReason::SmallDiscount, "min_discount_bps"));
    assert!(small.sentence.contains("a discount of 5.0%, below \"Mine\"'s minimum of 10.0%"), "{}", small.sentence);
    let bought = valuation_rules(&r, "Mine", 8_000, 10_000, 0.9).unwrap();
    assert_eq!(
        bought,
        "Bought: listed at $80.00 against a fair value of $100.00 (20.0% below) with confidence 0.90, by \"Mine\"."
    );
    assert_eq!(discount_bps(100, 0), 0, "no fair value, no discount");
    assert_eq!(discount_bps(12_000, 10_000), -2_000, "above the fair value is a negative discount");
}

#[test]
fn the_daily_cap_counts_todays_purchases_and_zero_means_none() {
    let capped = daily_cap(&rules(0, 0.0, 0, 2), "Mine", 2).unwrap();
    assert_eq!((capped.reason, capped.rule), (pb::DecisionReason::DailyCap, "max_purchases_per_day"));
    assert_eq!(daily_cap(&rules(0, 0.0, 0, 2), "Mine", 1), None);
    assert_eq!(daily_cap(&rules(0, 0.0, 0, 0), "Mine", 1_000), None);
}

fn refusal(code: Code, reason: ErrorReason, service: Option<&str>) -> Status {
    let metadata: std::collections::HashMap<String, String> =
        service.map(|s| [("service".to_owned(), s.to_owned())].into_iter().collect()).unwrap_or_default();
    Status::with_error_details(
        code,
        "refused",
        ErrorDetails::with_error_info(reason.as_str_name(), "fastbreak", metadata),
    )
}

#[test]
fn a_refused_purchase_is_decided_by_its_reason_and_an_unreached_trading_decides_nothing() {
    let limit = refusal(Code::FailedPrecondition, ErrorReason::LimitExceeded, None);
    assert_eq!(purchase_refused(&limit), Some((pb::DecisionReason::RiskRefused, "risk")));
    let funds = refusal(Code::FailedPrecondition, ErrorReason::InsufficientFunds, None);
    assert_eq!(purchase_refused(&funds), Some((pb::DecisionReason::InsufficientFunds, "trading")));
    let off = refusal(Code::FailedPrecondition, ErrorReason::WalletDisconnected, None);
    assert_eq!(purchase_refused(&off), Some((pb::DecisionReason::TradingOff, "trading")));
    let risk_down = refusal(Code::Unavailable, ErrorReason::DependencyUnavailable, Some("risk"));
    assert_eq!(purchase_refused(&risk_down), Some((pb::DecisionReason::ServiceUnavailable, "trading")));
    let trading_down = refusal(Code::Unavailable, ErrorReason::DependencyUnavailable, Some("trading"));
    assert_eq!(purchase_refused(&trading_down), None);
    assert_eq!(purchase_refused(&Status::unavailable("connection refused")), None);
}

#[test]
fn a_valuation_that_failed_says_whether_scouting_answered() {
    let answered = no_valuation(&Status::failed_precondition("no comparable sale"));
    assert_eq!(answered.reason, pb::DecisionReason::NoValuation);
    assert!(answered.sentence.contains("no comparable sale"));
    let unreached = no_valuation(&Status::unavailable("down"));
    assert_eq!((unreached.reason, unreached.rule), (pb::DecisionReason::ServiceUnavailable, "valuation"));
}

#[test]
fn reason_codes_round_trip_through_their_stored_form() {
    for reason in [pb::DecisionReason::Bought, pb::DecisionReason::DailyCap, pb::DecisionReason::ServiceUnavailable] {
        assert_eq!(reason_of(&reason_code(reason)), reason);
    }
    assert_eq!(reason_code(pb::DecisionReason::SmallDiscount), "small_discount");
    assert_eq!(reason_of("not a reason"), pb::DecisionReason::Unspecified);
}

#[test]
fn an_arbitrage_passes_on_its_marketplaces_spread_and_price_and_says_where_it_buys_and_relists() {
    use fastbreak_proto::marketplace::v1 as market;
    let params = strategy::ArbitrageModeParameters {
        min_spread_bps: 500,
        buy_source_ids: vec!["simulator".to_owned()],
        relist_source_ids: Vec::new(),
        ..Default::default()
    };
    let listing = market::Listing { source_id: "simulator".to_owned(), price_cents: 10_000, ..Default::default() };
    let opportunity = |spread_bps: i32, sell: &str| market::ArbitrageOpportunity {
        spread_bps,
        sell_source_id: sell.to_owned(),
        expected_sell_cents: 12_000,
        ..Default::default()
    };
    let r = rules(0, 0.0, 0, 0);
    let narrow = arbitrage_rules(&params, &r, "Arb", &opportunity(400, "other"), &listing).unwrap_err();
    assert_eq!((narrow.reason, narrow.rule), (pb::DecisionReason::SmallDiscount, "min_spread_bps"));
    let elsewhere = market::Listing { source_id: "elsewhere".to_owned(), ..listing.clone() };
    let foreign = arbitrage_rules(&params, &r, "Arb", &opportunity(900, "other"), &elsewhere).unwrap_err();
    assert_eq!(foreign.rule, "sources");
    let dear = arbitrage_rules(&params, &rules(5_000, 0.0, 0, 0), "Arb", &opportunity(900, "other"), &listing);
    assert_eq!(dear.unwrap_err().rule, "max_price_cents");
    assert_eq!(
        arbitrage_rules(&params, &r, "Arb", &opportunity(900, "other"), &listing).unwrap(),
        "Bought on simulator at $100.00 to relist on other at $120.00: a spread of 9.0% after fees, by \"Arb\"."
    );
}

#[test]
fn a_post_game_spike_fits_only_a_standout_game_inside_its_window_before_the_given_time() {
    let now = chrono::DateTime::parse_from_rfc3339("2027-01-01T04:30:00Z").unwrap().with_timezone(&chrono::Utc);
    let params =
        strategy::PostGameSpikeParameters { min_game_score: 30, buy_window_minutes: 120, ..Default::default() };
    let player = scouting::Player { full_name: "Jalen Test".to_owned(), ..Default::default() };
    let game = |minutes_before: i64, points: i32| scouting::PlayerGameStats {
        game_time: Some(prost_types::Timestamp {
            seconds: (now - chrono::Duration::minutes(minutes_before)).timestamp(),
            nanos: 0,
        }),
        opponent_code: "NYK".to_owned(),
        points,
        ..Default::default()
    };
    let fit = post_game_spike_fit(&params, &player, &[game(90, 41)], "Spike", now).unwrap();
    assert_eq!(fit, format!("Jalen Test had a game score of {} against NYK.", game_score(&game(90, 41))));
    let late = post_game_spike_fit(&params, &player, &[game(121, 41)], "Spike", now).unwrap_err();
    assert_eq!((late.reason, late.rule), (pb::DecisionReason::NotAMatch, "min_game_score"));
    assert!(late.sentence.contains("\"Spike\"'s window of 120 minutes"), "{}", late.sentence);
    let quiet = post_game_spike_fit(&params, &player, &[game(10, 2)], "Spike", now).unwrap_err();
    assert_eq!(quiet.rule, "min_game_score");
}

#[test]
fn a_skip_is_a_near_miss_within_half_the_discount_and_a_tenth_of_the_confidence() {
    let r = rules(0, 0.6, 2_000, 0);
    // Fair value 100.00: 10% off is half the 20% wanted.
    assert!(near_miss(&r, 9_000, 10_000, 0.6));
    assert!(!near_miss(&r, 9_100, 10_000, 0.6), "9% is under half of 20%");
    assert!(near_miss(&r, 7_000, 10_000, 0.5), "confidence 0.5 is within 0.1 of 0.6");
    assert!(!near_miss(&r, 7_000, 10_000, 0.49));
    assert!(!near_miss(&r, 10_500, 10_000, 0.9), "above fair value is no near miss");
    assert!(!near_miss(&r, 9_000, 0, 0.9), "no fair value, no discount");
    assert!(near_miss(&rules(0, 0.0, 0, 0), 9_999, 10_000, 0.0), "any discount against no minimum");
}
