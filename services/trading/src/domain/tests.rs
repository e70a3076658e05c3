use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::user::v1 as user;
use tonic_types::StatusExt;
use uuid::Uuid;

use super::*;

fn order(max_price: i64, expected_value: i64) -> Order {
    Order {
        user: Uuid::nil(),
        listing: Uuid::nil(),
        max_price,
        key: "k".to_owned(),
        origin: TradeOrigin::Manual,
        strategy: None,
        decision: None,
        valuation: None,
        reasoning: Vec::new(),
        factors: Vec::new(),
        expected_value,
        relist: None,
    }
}

fn listing(price: i64, seller: &str) -> market::Listing {
    market::Listing {
        listing_id: Uuid::nil().to_string(),
        price_cents: price,
        seller_address: seller.to_owned(),
        state: market::ListingState::Active as i32,
        ..Default::default()
    }
}

fn wallet(on: bool) -> user::UserStatus {
    user::UserStatus { trading_enabled: on, flow_address: "0x00000000000000aa".to_owned(), ..Default::default() }
}

fn reason(status: Option<Status>) -> String {
    status.expect("refused").get_details_error_info().expect("a reason").reason
}

#[test]
fn a_purchase_is_refused_by_the_first_rule_it_breaks() {
    let seller = "0x00000000000000bb";
    assert_eq!(
        reason(refusal(&order(1_000, 0), &listing(500, seller), &wallet(false), 0, 10_000, None)),
        "WALLET_DISCONNECTED"
    );
    let mut sold = listing(500, seller);
    sold.state = market::ListingState::Sold as i32;
    assert_eq!(reason(refusal(&order(1_000, 0), &sold, &wallet(true), 0, 10_000, None)), "LISTING_UNAVAILABLE");
    let own = listing(500, "0x00000000000000aa");
    assert_eq!(reason(refusal(&order(1_000, 0), &own, &wallet(true), 0, 10_000, None)), "LISTING_UNAVAILABLE");
    let dear = refusal(&order(400, 0), &listing(500, seller), &wallet(true), 0, 10_000, None);
    assert!(dear.as_ref().unwrap().message().contains("above the most the buyer pays (400)"));
    // Expected 520, less a 5% fee (26), leaves 494: not more than the price.
    let thin = refusal(&order(1_000, 520), &listing(500, seller), &wallet(true), 500, 10_000, None);
    assert_eq!(reason(thin), "UNPROFITABLE");
    assert_eq!(
        reason(refusal(&order(1_000, 0), &listing(500, seller), &wallet(true), 0, 499, None)),
        "INSUFFICIENT_FUNDS"
    );
    assert!(refusal(&order(1_000, 600), &listing(500, seller), &wallet(true), 500, 500, None).is_none());
}

#[test]
fn fees_round_down_and_never_overflow() {
    assert_eq!(fee(10_000, 500), 500);
    assert_eq!(fee(999, 500), 49);
    assert_eq!(fee(i64::MAX, 10_000), i64::MAX);
}

#[test]
fn the_same_key_with_any_other_parameter_hashes_differently() {
    let first = order(1_000, 0);
    assert_eq!(first.hash(), order(1_000, 0).hash());
    assert_ne!(first.hash(), order(1_001, 0).hash());
    let relisted = Order { relist: Some(("other".to_owned(), 1_200)), ..order(1_000, 0) };
    assert_ne!(first.hash(), relisted.hash());
    assert_eq!(relist_key(Uuid::nil()), format!("relist:{}", Uuid::nil()));
}
