//! Recovery: a trade that a crash or a lost answer left pending is finished or undone from
//! what the database says; a repeated request answers with the first one's trade.

use std::time::Duration;

use crate::store::{self as repo, Trade, TradeKind, TradeState};

use fastbreak_mesh::status::is_answer;
use fastbreak_mesh::status::{self};
use fastbreak_proto::common::v1::ErrorReason;
use futures::FutureExt;
use tonic::{Code, Status};

use crate::convert::{self};
use crate::error::key_reused;
use crate::purchase::answer;
use crate::trader::{REPLAY_WAIT, Trader};

impl Trader {
    /// The worker's repair of a pending trade left behind by a crash or a lost call: a
    /// purchase without a hold is failed (risk releases any hold under its key when it asks);
    /// one with a hold asks the marketplace for the listing again, and settles or fails as it
    /// answers; a listing is made again (the marketplace answers the same one).
    pub(crate) async fn recover(&self, trade: Trade) -> Result<Trade, Status> {
        match (trade.kind, trade.hold_id) {
            (TradeKind::Purchase, None) => {
                let status = status::with_reason(
                    Code::Aborted,
                    "the purchase was interrupted before its hold was noted; nothing moved",
                    ErrorReason::InvalidState,
                    [],
                    tonic_types::ErrorDetails::new(),
                );
                let (message, code, details) = convert::failure_of(&status);
                let id = trade.id;
                // Only while no hold is noted: a live call may have gone on meanwhile.
                self.read_committed(move |conn| {
                    let (message, details) = (message.clone(), details.clone());
                    async move { repo::fail_unheld_trade(conn, id, &message, code, &details).await }.boxed()
                })
                .await?;
                self.current(trade.id).await
            }
            (TradeKind::Purchase, Some(_)) => match self.take_and_settle(trade.clone()).await {
                Ok(trade) => Ok(trade),
                Err(status) if is_answer(&status) => self.current(trade.id).await,
                Err(status) => Err(status),
            },
            (TradeKind::SaleListing | TradeKind::Relist, _) => self.finish_listing(trade).await,
            (TradeKind::Sale, _) => Ok(trade),
        }
    }

    /// A repeat of a request under a key used before: the first answer, once it is known.
    pub(crate) async fn replay(&self, trade: Trade, hash: &str) -> Result<Trade, Status> {
        if trade.request_hash != hash {
            return Err(key_reused(&trade));
        }
        let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
        let mut trade = trade;
        while trade.state == TradeState::Pending && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trade = self.current(trade.id).await?;
        }
        answer(trade)
    }
}
