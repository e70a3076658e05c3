//! Trading's own refusals, as gRPC statuses (a peer's answers pass through as they are; a
//! database error becomes its status through the data crate's one rule).

use fastbreak_mesh::status;
use fastbreak_proto::common::v1::ErrorReason;
use tonic::{Code, Status};

use crate::store::Trade;

/// FAILED_PRECONDITION while the user's wallet is disconnected: trading is off.
pub(crate) fn wallet_disconnected() -> Status {
    status::failed_precondition(
        "the user's wallet is disconnected (or none is registered): trading is off",
        ErrorReason::WalletDisconnected,
        [],
    )
}

/// FAILED_PRECONDITION for a key used before with other parameters, naming the first trade.
pub(crate) fn key_reused(trade: &Trade) -> Status {
    status::with_reason(
        Code::FailedPrecondition,
        "the idempotency key was used before with other parameters",
        ErrorReason::IdempotencyKeyReused,
        [("trade_id".to_owned(), trade.id.to_string())],
        tonic_types::ErrorDetails::new(),
    )
}
