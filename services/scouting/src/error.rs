//! Scouting's failures as gRPC statuses, beyond bad input (field violations) and the
//! database's own (the data crate's one rule).

use fastbreak_mesh::status;
use fastbreak_proto::common::v1::ErrorReason;
use tonic::Status;
use uuid::Uuid;

/// FAILED_PRECONDITION for a moment with no comparable sale: the model does not guess.
pub(crate) fn no_comparables(moment_id: Uuid) -> Status {
    status::failed_precondition(
        "no comparable sale of this player's moments of this tier in the last 60 days: the model will not guess",
        ErrorReason::InvalidState,
        [("moment_id".to_owned(), moment_id.to_string()), ("comparables".to_owned(), "0".to_owned())],
    )
}
