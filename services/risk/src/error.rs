//! The one mapping from the risk service's failures to gRPC statuses.

use fastbreak_db::DatabaseError;
use fastbreak_mesh::status;
use fastbreak_proto::common::v1::ErrorReason;
use tonic::Status;

/// What can go wrong in the risk service, beyond bad input (field violations) and refusals
/// (which are answers, built where they are decided).
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A limit change that is no longer pending.
    #[error("the limit change is {0}, not pending")]
    ChangeNotPending(&'static str),
}

impl From<RiskError> for Status {
    fn from(error: RiskError) -> Self {
        match error {
            RiskError::Database(DatabaseError::ForeignKeyViolation { constraint })
                if constraint.ends_with("_user_id_fkey") =>
            {
                status::not_found("user")
            }
            RiskError::Database(error) => Status::from(error),
            RiskError::ChangeNotPending(state) => status::failed_precondition(
                format!("the limit change is {state}, not pending; propose a new one"),
                ErrorReason::InvalidState,
                [("state".to_owned(), state.to_owned())],
            ),
        }
    }
}
