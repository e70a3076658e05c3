//! From the marketplace's rows to the contract's messages.

use crate::store::{
    Arbitrage, Listing, ListingEventKind, ListingEventView, ListingState, MarketSource, MomentView, PriceBucket, Sale,
};
use fastbreak_db::Rarity;
use fastbreak_mesh::status::timestamp;
use fastbreak_proto::common::v1 as common;
use fastbreak_proto::marketplace::v1 as pb;

fn rarity_to_pb(rarity: Rarity) -> i32 {
    (match rarity {
        Rarity::Common => common::Rarity::Common,
        Rarity::Fandom => common::Rarity::Fandom,
        Rarity::Rare => common::Rarity::Rare,
        Rarity::Legendary => common::Rarity::Legendary,
        Rarity::Ultimate => common::Rarity::Ultimate,
    }) as i32
}

fn state_to_pb(state: ListingState) -> i32 {
    (match state {
        ListingState::Active => pb::ListingState::Active,
        ListingState::Sold => pb::ListingState::Sold,
        ListingState::Withdrawn => pb::ListingState::Withdrawn,
    }) as i32
}

pub(crate) fn moment_to_pb(m: &MomentView) -> pb::Moment {
    pb::Moment {
        moment_id: m.id.to_string(),
        player_id: m.player_id.clone(),
        player_name: m.player_name.clone(),
        team_code: m.team_code.clone(),
        set_name: m.set_name.clone(),
        play_category: m.play_category.clone(),
        play_time: Some(timestamp(m.play_at)),
        rarity: rarity_to_pb(m.rarity),
        serial_number: m.serial_number,
        edition_size: m.edition_size,
        floor_price_cents: m.floor_price_cents,
        last_sale_cents: m.last_sale_cents,
    }
}

pub(crate) fn listing_to_pb(l: &Listing) -> pb::Listing {
    pb::Listing {
        listing_id: l.id.to_string(),
        moment_id: l.moment_id.to_string(),
        source_id: l.source_id.clone(),
        price_cents: l.price_cents,
        seller_address: l.seller_address.clone(),
        state: state_to_pb(l.state),
        create_time: Some(timestamp(l.created_at)),
        update_time: Some(timestamp(l.updated_at)),
    }
}

pub(crate) fn sale_to_pb(s: &Sale) -> pb::Sale {
    pb::Sale {
        sale_id: s.id.to_string(),
        moment_id: s.moment_id.to_string(),
        source_id: s.source_id.clone(),
        price_cents: s.price_cents,
        sale_time: Some(timestamp(s.sold_at)),
        listing_id: s.listing_id.map(|id| id.to_string()).unwrap_or_default(),
        buyer_address: s.buyer_address.clone(),
        seller_address: s.seller_address.clone(),
    }
}

pub(crate) fn event_to_pb(e: &ListingEventView) -> pb::ListingEvent {
    let (kind, state) = match e.kind {
        ListingEventKind::Created => (pb::ListingEventKind::Created, ListingState::Active),
        ListingEventKind::PriceChanged => (pb::ListingEventKind::PriceChanged, ListingState::Active),
        ListingEventKind::Sold => (pb::ListingEventKind::Sold, ListingState::Sold),
        ListingEventKind::Withdrawn => (pb::ListingEventKind::Withdrawn, ListingState::Withdrawn),
    };
    pb::ListingEvent {
        event_id: e.sequence.to_string(),
        kind: kind as i32,
        listing: Some(pb::Listing {
            listing_id: e.listing_id.to_string(),
            moment_id: e.moment.id.to_string(),
            source_id: e.source_id.clone(),
            price_cents: e.price_cents,
            seller_address: e.seller_address.clone(),
            state: state_to_pb(state),
            create_time: Some(timestamp(e.listed_at)),
            update_time: Some(timestamp(e.occurred_at)),
        }),
        event_time: Some(timestamp(e.occurred_at)),
        sequence: e.sequence,
        moment: Some(moment_to_pb(&e.moment)),
    }
}

pub(crate) fn bucket_to_pb(b: &PriceBucket) -> pb::PricePoint {
    pb::PricePoint {
        start_time: Some(timestamp(b.start)),
        open_cents: b.open_cents,
        high_cents: b.high_cents,
        low_cents: b.low_cents,
        close_cents: b.close_cents,
        sale_count: b.sale_count,
    }
}

pub(crate) fn arbitrage_to_pb(a: &Arbitrage) -> pb::ArbitrageOpportunity {
    let b = &a.buy;
    pb::ArbitrageOpportunity {
        moment_id: b.moment_id.to_string(),
        buy_listing: Some(pb::Listing {
            listing_id: b.id.to_string(),
            moment_id: b.moment_id.to_string(),
            source_id: b.source_id.clone(),
            price_cents: b.price_cents,
            seller_address: b.seller_address.clone(),
            state: pb::ListingState::Active as i32,
            create_time: Some(timestamp(b.created_at)),
            update_time: Some(timestamp(b.updated_at)),
        }),
        sell_source_id: a.sell_source_id.clone(),
        expected_sell_cents: a.sell_cents,
        spread_bps: i32::try_from(a.spread_bps).unwrap_or(i32::MAX),
        expected_profit_cents: a.profit_cents,
    }
}

pub(crate) fn source_to_pb(s: &MarketSource) -> pb::MarketSource {
    pb::MarketSource {
        source_id: s.id.clone(),
        display_name: s.display_name.clone(),
        fee_bps: s.fee_bps,
        enabled: s.enabled,
        healthy: s.healthy,
        last_error: s.last_error.clone(),
        last_success_time: s.last_success_at.map(timestamp),
        lag_blocks: s.lag_blocks,
        lag_seconds: s.lag_seconds,
    }
}
