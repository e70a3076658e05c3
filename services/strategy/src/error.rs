//! The one mapping from the strategy service's failures to gRPC statuses.

use fastbreak_db::DatabaseError;
use fastbreak_mesh::status;
use fastbreak_proto::common::v1::ErrorReason;
use tonic::Status;

use crate::domain::StoredParametersError;

/// What can go wrong in the strategy service, beyond bad input (reported as field violations).
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A stored strategy could not be read back.
    #[error(transparent)]
    Stored(#[from] StoredParametersError),
    /// Another call changed the strategy while this one was updating it.
    #[error("the strategy changed meanwhile")]
    ChangedMeanwhile,
    /// The strategy is already in the state asked for.
    #[error("the strategy is already {0}")]
    AlreadyInState(&'static str),
}

impl From<StrategyError> for Status {
    fn from(error: StrategyError) -> Self {
        match error {
            StrategyError::Database(DatabaseError::NotFound(_)) => status::not_found("strategy"),
            StrategyError::Database(DatabaseError::ForeignKeyViolation { constraint })
                if constraint.starts_with("strategy_outcomes") =>
            {
                status::not_found("strategy")
            }
            StrategyError::Database(error) => Status::from(error),
            StrategyError::AlreadyInState(state) => status::failed_precondition(
                format!("the strategy is already {state}"),
                ErrorReason::InvalidState,
                [("state".to_owned(), state.to_owned())],
            ),
            StrategyError::ChangedMeanwhile => status::with_reason(
                tonic::Code::Aborted,
                "the strategy changed while this update was made; read it again and retry",
                ErrorReason::InvalidState,
                [],
                tonic_types::ErrorDetails::new(),
            ),
            other @ StrategyError::Stored(_) => status::internal(&other),
        }
    }
}
