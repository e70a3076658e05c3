//! Trading's rules, pure: what a purchase asks for (and the hash that tells a repeated request
//! from a reused key), the marketplace's fee, and why a purchase cannot begin. No database, no
//! peer: unit-tested here.

use fastbreak_mesh::status;
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::trading::v1 as pb;
use fastbreak_proto::user::v1 as user;
use sha2::{Digest, Sha256};
use tonic::Status;
use uuid::Uuid;

use crate::error::wallet_disconnected;
use crate::store::{TradeOrigin, TradeState};

/// The key of an arbitrage's relist: its purchase's id.
pub(crate) fn relist_key(purchase: Uuid) -> String {
    format!("relist:{purchase}")
}

/// A purchase asked for: by the user, by the agents, or as an arbitrage's first half.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub user: Uuid,
    pub listing: Uuid,
    pub max_price: i64,
    pub key: String,
    pub origin: TradeOrigin,
    pub strategy: Option<Uuid>,
    pub decision: Option<Uuid>,
    pub valuation: Option<Uuid>,
    pub reasoning: Vec<String>,
    pub factors: Vec<pb::ReasoningFactor>,
    pub expected_value: i64,
    /// Where and at what price to relist, for an arbitrage.
    pub relist: Option<(String, i64)>,
}

impl Order {
    /// A hash of every parameter: the same key with any other parameter is refused.
    pub(crate) fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        let text = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{}",
            self.listing,
            self.max_price,
            self.origin,
            self.strategy,
            self.decision,
            self.valuation,
            self.reasoning,
            self.relist,
            self.expected_value,
            self.factors.iter().map(|f| (&f.name, f.weight.to_bits(), f.impact_cents)).collect::<Vec<_>>(),
            self.key
        );
        hasher.update(text.as_bytes());
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A marketplace fee, in cents, rounded down.
pub(crate) fn fee(price: i64, fee_bps: i64) -> i64 {
    i64::try_from(i128::from(price) * i128::from(fee_bps) / 10_000).unwrap_or(i64::MAX)
}

/// Why a purchase cannot begin, checked in this order: the wallet, the listing, the price, the
/// profit after fees, another purchase of the listing, the balance.
pub(crate) fn refusal(
    order: &Order,
    listing: &market::Listing,
    wallet: &user::UserStatus,
    fee_bps: i64,
    available: i64,
    live: Option<TradeState>,
) -> Option<Status> {
    let price = listing.price_cents;
    let listing_id = ("listing_id".to_owned(), listing.listing_id.clone());
    if !wallet.trading_enabled || wallet.flow_address.is_empty() {
        return Some(wallet_disconnected());
    }
    if listing.state != market::ListingState::Active as i32 {
        return Some(status::failed_precondition(
            "the listing is no longer for sale",
            ErrorReason::ListingUnavailable,
            [listing_id],
        ));
    }
    if listing.seller_address == wallet.flow_address {
        return Some(status::failed_precondition(
            "the listing is the user's own",
            ErrorReason::ListingUnavailable,
            [listing_id],
        ));
    }
    if price > order.max_price {
        return Some(status::failed_precondition(
            format!("the listing costs {price} cents, above the most the buyer pays ({})", order.max_price),
            ErrorReason::ListingUnavailable,
            [
                listing_id,
                ("price_cents".to_owned(), price.to_string()),
                ("max_price_cents".to_owned(), order.max_price.to_string()),
            ],
        ));
    }
    // Selling at the expected value (an arbitrage's relist price) pays the fee of the source
    // it sells on: what is left must beat the price.
    let expected = order.relist.as_ref().map_or(order.expected_value, |(_, relist_price)| *relist_price);
    if expected > 0 {
        let resale_fee = fee(expected, fee_bps);
        if expected - resale_fee <= price {
            return Some(status::failed_precondition(
                format!(
                    "unprofitable after fees: selling at the expected {expected} cents leaves {} after a {resale_fee} cent fee, not more than the price of {price}",
                    expected - resale_fee
                ),
                ErrorReason::Unprofitable,
                [
                    ("expected_value_cents".to_owned(), expected.to_string()),
                    ("fee_cents".to_owned(), resale_fee.to_string()),
                    ("price_cents".to_owned(), price.to_string()),
                ],
            ));
        }
    }
    if let Some(live) = live {
        return Some(status::failed_precondition(
            "the listing is being bought by another purchase",
            ErrorReason::ListingUnavailable,
            [listing_id, ("trade_state".to_owned(), live.as_str().to_owned())],
        ));
    }
    if available < price {
        return Some(status::failed_precondition(
            format!("the balance available ({available} cents) is less than the price ({price} cents)"),
            ErrorReason::InsufficientFunds,
            [("available_cents".to_owned(), available.to_string()), ("price_cents".to_owned(), price.to_string())],
        ));
    }
    None
}

#[cfg(test)]
mod tests;
