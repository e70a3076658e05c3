//! A listing: a sale listing, an arbitrage's relist, or a new price, driven from what the
//! database says so that the worker can finish what a crash interrupted.

use crate::store::{self as repo, Trade, TradeKind, TradeState};
use fastbreak_db::DatabaseError;

use fastbreak_mesh::status::is_answer;
use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::marketplace::v1::marketplace_internal_service_client::MarketplaceInternalServiceClient;
use futures::FutureExt;
use tonic::Status;
use uuid::Uuid;

use crate::purchase::answer;
use crate::trader::{Trader, fail_point};

impl Trader {
    /// Lists a moment (a sale listing or an arbitrage's relist) or changes a listing's price,
    /// as a pending trade says; repeated, the marketplace answers the same listing.
    pub(crate) async fn finish_listing(&self, trade: Trade) -> Result<Trade, Status> {
        if trade.state != TradeState::Pending {
            return answer(trade);
        }
        fail_point!(self, "trading::before-listing", |_| Err(Status::unavailable("the listing call was cut off")));
        let outcome = match trade.kind {
            TradeKind::SaleListing => {
                let mut client = MarketplaceInternalServiceClient::new(self.peers.marketplace.channel()?);
                let request = self.request(market::CreateListingRequest {
                    seller_address: trade.buyer_address.clone(),
                    moment_id: trade.moment_id.to_string(),
                    source_id: trade.source_id.clone(),
                    price_cents: trade.price_cents,
                    idempotency_key: format!("trade:{}", trade.id),
                });
                client.create_listing(request).await.map(|r| r.into_inner())
            }
            TradeKind::Relist => {
                let mut client = MarketplaceInternalServiceClient::new(self.peers.marketplace.channel()?);
                let request = self.request(market::UpdateListingPriceRequest {
                    seller_address: trade.buyer_address.clone(),
                    listing_id: trade.listing_id.map(|l| l.to_string()).unwrap_or_default(),
                    price_cents: trade.price_cents,
                });
                client.update_listing_price(request).await.map(|r| r.into_inner())
            }
            _ => return Err(Status::internal("not a listing trade")),
        };
        match outcome {
            Ok(listing) => {
                let listing_id =
                    Uuid::parse_str(&listing.listing_id).map_err(|_| Status::internal("bad listing id"))?;
                let (trade_id, user, moment) = (trade.id, trade.user_id, trade.moment_id);
                self.read_committed(move |conn| {
                    async move {
                        repo::set_trade_listing(conn, trade_id, listing_id).await?;
                        repo::set_holding_listing(conn, user, moment, Some(listing_id)).await?;
                        match repo::complete_trade(conn, trade_id).await? {
                            Some(trade) => Ok(trade),
                            None => {
                                repo::find_trade_by_id(conn, trade_id).await?.ok_or(DatabaseError::NotFound("trade"))
                            }
                        }
                    }
                    .boxed()
                })
                .await
            }
            // A definite refusal ends the listing trade (an arbitrage's moment stays owned and
            // unlisted, the refusal recorded on the relist); a call that did not get through is
            // tried again by the worker while the trade stays pending (an open position).
            Err(status) if is_answer(&status) => {
                self.fail(&trade, &status, None).await?;
                Err(status)
            }
            Err(status) => Err(Self::through(&self.peers.marketplace, status)),
        }
    }
}
