//! NBA Top Shot on Flow: the events of Dapper's marketplace contract (`TopShotMarketV3` at
//! `0xc1e4f4f4c4257510`) and the `Deposit` event of the `TopShot` contract (at
//! `0x0b2a3299cc857e29`), which names the buyer of a purchase in the same transaction. The
//! events' fields are those the public contracts declare:
//!
//! - `MomentListed(id: UInt64, price: UFix64, seller: Address?)`
//! - `MomentPriceChanged(id: UInt64, newPrice: UFix64, seller: Address?)`
//! - `MomentPurchased(id: UInt64, price: UFix64, seller: Address?, momentName: String, …)`
//! - `MomentWithdrawn(id: UInt64, owner: Address?)`
//! - `TopShot.Deposit(id: UInt64, to: Address?)`

use crate::cdc::{CdcError, CdcEvent};

/// Dapper's marketplace contract.
pub const MARKET_V3: &str = "A.c1e4f4f4c4257510.TopShotMarketV3";
/// The moments' contract.
pub const TOPSHOT: &str = "A.0b2a3299cc857e29.TopShot";
/// A moment listed.
pub const MOMENT_LISTED: &str = "A.c1e4f4f4c4257510.TopShotMarketV3.MomentListed";
/// A listing repriced.
pub const MOMENT_PRICE_CHANGED: &str = "A.c1e4f4f4c4257510.TopShotMarketV3.MomentPriceChanged";
/// A listing bought.
pub const MOMENT_PURCHASED: &str = "A.c1e4f4f4c4257510.TopShotMarketV3.MomentPurchased";
/// A listing withdrawn.
pub const MOMENT_WITHDRAWN: &str = "A.c1e4f4f4c4257510.TopShotMarketV3.MomentWithdrawn";
/// A moment deposited into a collection.
pub const DEPOSIT: &str = "A.0b2a3299cc857e29.TopShot.Deposit";

/// Every event type the feed asks an access node for, one request each per height range.
pub const FOLLOWED: [&str; 5] = [MOMENT_LISTED, MOMENT_PRICE_CHANGED, MOMENT_PURCHASED, MOMENT_WITHDRAWN, DEPOSIT];

/// What happened, by the moment's Flow id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    /// Listed at a price by its owner.
    Listed {
        /// The moment's Flow id.
        moment: u64,
        /// Asking price.
        price_cents: i64,
        /// The seller.
        seller: Option<String>,
    },
    /// Its listing's price changed.
    PriceChanged {
        /// The moment's Flow id.
        moment: u64,
        /// The new price.
        price_cents: i64,
        /// The seller.
        seller: Option<String>,
    },
    /// Its listing was bought.
    Purchased {
        /// The moment's Flow id.
        moment: u64,
        /// The price paid.
        price_cents: i64,
        /// The seller.
        seller: Option<String>,
    },
    /// Its listing was withdrawn.
    Withdrawn {
        /// The moment's Flow id.
        moment: u64,
        /// The owner.
        owner: Option<String>,
    },
    /// It was deposited into a collection.
    Deposit {
        /// The moment's Flow id.
        moment: u64,
        /// The collection's owner.
        to: Option<String>,
    },
}

impl MarketEvent {
    /// Decodes the payload of an event of type `type_id` (one of [`FOLLOWED`]).
    pub fn decode(type_id: &str, payload: &[u8]) -> Result<Self, CdcError> {
        let event = CdcEvent::decode(payload)?;
        if event.id != type_id {
            return Err(CdcError::NotAnEvent(format!("a {} payload in a {type_id} event", event.id)));
        }
        Ok(match type_id {
            MOMENT_LISTED => Self::Listed {
                moment: event.uint("id")?,
                price_cents: event.ufix64_cents("price")?,
                seller: event.optional_address("seller")?,
            },
            MOMENT_PRICE_CHANGED => Self::PriceChanged {
                moment: event.uint("id")?,
                price_cents: event.ufix64_cents("newPrice")?,
                seller: event.optional_address("seller")?,
            },
            MOMENT_PURCHASED => Self::Purchased {
                moment: event.uint("id")?,
                price_cents: event.ufix64_cents("price")?,
                seller: event.optional_address("seller")?,
            },
            MOMENT_WITHDRAWN => Self::Withdrawn { moment: event.uint("id")?, owner: event.optional_address("owner")? },
            DEPOSIT => Self::Deposit { moment: event.uint("id")?, to: event.optional_address("to")? },
            other => return Err(CdcError::NotAnEvent(format!("{other} is not an event this feed follows"))),
        })
    }

    /// The moment's Flow id.
    pub fn moment(&self) -> u64 {
        match self {
            Self::Listed { moment, .. }
            | Self::PriceChanged { moment, .. }
            | Self::Purchased { moment, .. }
            | Self::Withdrawn { moment, .. }
            | Self::Deposit { moment, .. } => *moment,
        }
    }
}

/// Payloads as the contracts emit them (for fakes and tests).
pub mod encode {
    use crate::cdc::encode::*;

    /// `MomentListed`.
    pub fn listed(moment: u64, price_cents: u64, seller: &str) -> Vec<u8> {
        event(
            super::MOMENT_LISTED,
            &[("id", uint64(moment)), ("price", ufix64_cents(price_cents)), ("seller", optional_address(Some(seller)))],
        )
    }

    /// `MomentPriceChanged`.
    pub fn price_changed(moment: u64, price_cents: u64, seller: &str) -> Vec<u8> {
        event(
            super::MOMENT_PRICE_CHANGED,
            &[
                ("id", uint64(moment)),
                ("newPrice", ufix64_cents(price_cents)),
                ("seller", optional_address(Some(seller))),
            ],
        )
    }

    /// `MomentPurchased`, with the display fields the contract adds.
    pub fn purchased(moment: u64, price_cents: u64, seller: &str) -> Vec<u8> {
        event(
            super::MOMENT_PURCHASED,
            &[
                ("id", uint64(moment)),
                ("price", ufix64_cents(price_cents)),
                ("seller", optional_address(Some(seller))),
                ("momentName", string("A moment")),
                ("momentDescription", string("")),
                ("momentThumbnailURL", string("https://assets.nbatopshot.com/media/0")),
            ],
        )
    }

    /// `MomentWithdrawn`.
    pub fn withdrawn(moment: u64, owner: &str) -> Vec<u8> {
        event(super::MOMENT_WITHDRAWN, &[("id", uint64(moment)), ("owner", optional_address(Some(owner)))])
    }

    /// `TopShot.Deposit`.
    pub fn deposit(moment: u64, to: &str) -> Vec<u8> {
        event(super::DEPOSIT, &[("id", uint64(moment)), ("to", optional_address(Some(to)))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_followed_event_decodes_with_its_own_field_names() {
        let seller = "0x1111222233334444";
        assert_eq!(
            MarketEvent::decode(MOMENT_LISTED, &encode::listed(7, 1_999, seller)),
            Ok(MarketEvent::Listed { moment: 7, price_cents: 1_999, seller: Some(seller.to_owned()) })
        );
        assert_eq!(
            MarketEvent::decode(MOMENT_PRICE_CHANGED, &encode::price_changed(7, 1_500, seller)),
            Ok(MarketEvent::PriceChanged { moment: 7, price_cents: 1_500, seller: Some(seller.to_owned()) })
        );
        assert_eq!(
            MarketEvent::decode(MOMENT_PURCHASED, &encode::purchased(7, 1_500, seller)),
            Ok(MarketEvent::Purchased { moment: 7, price_cents: 1_500, seller: Some(seller.to_owned()) })
        );
        assert_eq!(
            MarketEvent::decode(MOMENT_WITHDRAWN, &encode::withdrawn(7, seller)),
            Ok(MarketEvent::Withdrawn { moment: 7, owner: Some(seller.to_owned()) })
        );
        assert_eq!(
            MarketEvent::decode(DEPOSIT, &encode::deposit(7, seller)),
            Ok(MarketEvent::Deposit { moment: 7, to: Some(seller.to_owned()) })
        );
        assert!(
            MarketEvent::decode(MOMENT_PURCHASED, &encode::listed(7, 1, seller)).is_err(),
            "the payload's own id must match"
        );
    }
}

/// The property the `chain_events` fuzz target checks, on any bytes an access node could send:
/// the first byte picks one of the followed event types, the rest is its payload; decoding
/// never panics, and a `UFix64` read as cents is never negative and reads back the same.
pub fn fuzz_chain_events(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else { return };
    let type_id = FOLLOWED[usize::from(pick) % FOLLOWED.len()];
    if let Ok(event) = MarketEvent::decode(type_id, payload) {
        let _ = event.moment();
    }
    if let Ok(text) = std::str::from_utf8(payload)
        && let Ok(cents) = crate::cdc::ufix64_to_cents(text)
    {
        assert!(cents >= 0, "{text:?}");
        let again = format!("{}.{:02}000000", cents / 100, cents % 100);
        assert_eq!(crate::cdc::ufix64_to_cents(&again), Ok(cents), "{text:?}");
    }
}
