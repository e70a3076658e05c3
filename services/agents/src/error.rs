//! The agents' own failures as gRPC statuses (a peer's answers pass through as they are; a
//! database error becomes its status through the data crate's one rule).

use tonic::Status;

/// INTERNAL for an id a peer sent that is not a UUID: the peer broke its contract, not the
/// caller.
pub(crate) fn bad_peer_id(what: &str) -> Status {
    Status::internal(format!("a bad {what} id"))
}
