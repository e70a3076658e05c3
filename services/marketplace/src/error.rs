//! The marketplace's failures as gRPC statuses, beyond bad input (field violations) and the
//! database's own (the data crate's one rule).

use fastbreak_db::DatabaseError;
use fastbreak_mesh::status;
use fastbreak_proto::common::v1::ErrorReason;
use tonic::Status;

use crate::store::Listing;

/// A listing change that the database refused: a second active listing of a moment on one
/// source is ALREADY_EXISTS, a listing no longer active FAILED_PRECONDITION.
pub(crate) fn listing_change(error: DatabaseError) -> Status {
    match error {
        DatabaseError::UniqueViolation { constraint } if constraint == "listings_one_active_per_source" => {
            status::already_exists("moment_id", "the moment is already listed on this source")
        }
        // A concurrent listing of another moment under the same key committed first (listings
        // of one moment are created one after another, so a retry of the same finds its own).
        DatabaseError::UniqueViolation { constraint } if constraint == "listings_seller_key_unique" => {
            status::failed_precondition(
                "the idempotency key was used for another listing",
                ErrorReason::IdempotencyKeyReused,
                [],
            )
        }
        DatabaseError::NotFound("active listing") => {
            status::failed_precondition("the listing is no longer active", ErrorReason::ListingUnavailable, [])
        }
        other => Status::from(other),
    }
}

/// FAILED_PRECONDITION for a listing that cannot be taken or changed, with its state and price.
pub(crate) fn unavailable(listing: &Listing, message: &str) -> Status {
    status::failed_precondition(
        message.to_owned(),
        ErrorReason::ListingUnavailable,
        [
            ("listing_id".to_owned(), listing.id.to_string()),
            ("state".to_owned(), listing.state.as_str().to_owned()),
            ("price_cents".to_owned(), listing.price_cents.to_string()),
        ],
    )
}
