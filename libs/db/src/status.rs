//! Database errors as gRPC statuses: the one rule every service's RPCs follow, so that no
//! service writes its own.

use std::time::Duration;

use fastbreak_mesh::status::{dependency_unavailable, internal, not_found, with_reason};
use fastbreak_proto::common::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::ErrorDetails;

use crate::DatabaseError;

/// The status for a database error that no rule of the service explains: the database being
/// unreachable, or cancelling a statement that took too long, is UNAVAILABLE naming it (worth a
/// retry); a conflict with concurrent changes ABORTED; a missing row NOT_FOUND; anything else
/// is this server's fault (INTERNAL, logged).
pub fn from_database(error: &DatabaseError) -> Status {
    use DatabaseError as E;
    match error {
        E::NotFound(what) => not_found(what),
        E::Unreachable { .. } | E::SchemaBehind { .. } => {
            tracing::warn!(%error, "database unavailable");
            dependency_unavailable("database", Duration::from_secs(1))
        }
        E::PoolExhausted { .. } => {
            tracing::warn!(%error, "database pool exhausted");
            with_reason(
                Code::ResourceExhausted,
                "the service is overloaded; try again shortly",
                ErrorReason::RateLimited,
                [],
                ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
            )
        }
        E::Cancelled { .. } => {
            tracing::warn!(%error, "database statement cancelled");
            with_reason(
                Code::Unavailable,
                "the database did not finish in time; try again later",
                ErrorReason::DependencyUnavailable,
                [("service".to_owned(), "database".to_owned())],
                ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
            )
        }
        E::Conflict { .. } | E::SerializationConflict { .. } => {
            tracing::warn!(%error, "transaction kept conflicting");
            with_reason(
                Code::Aborted,
                "the change conflicted with concurrent ones; try again",
                ErrorReason::Unspecified,
                [],
                ErrorDetails::with_retry_info(Some(Duration::from_millis(100))),
            )
        }
        E::UnstorableValue { message, .. } => with_reason(
            Code::InvalidArgument,
            format!("invalid request: a value cannot be stored ({message}); text must be UTF-8 without NUL characters"),
            ErrorReason::InvalidField,
            [],
            ErrorDetails::new(),
        ),
        other => internal(other),
    }
}

impl From<DatabaseError> for Status {
    fn from(error: DatabaseError) -> Self {
        from_database(&error)
    }
}

/// Turns the database error of a result into its status: `store_call().await.or_status()?`.
pub trait OrStatus<T> {
    /// The value, or the status for the database error.
    fn or_status(self) -> Result<T, Status>;
}

impl<T> OrStatus<T> for Result<T, DatabaseError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(|error| from_database(&error))
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn the_database_cancelling_a_statement_is_its_unavailability_and_a_conflict_is_aborted() {
        let cancelled = from_database(&DatabaseError::Cancelled {
            code: "57014".to_owned(),
            message: "canceling statement due to statement timeout".to_owned(),
        });
        assert_eq!(cancelled.code(), Code::Unavailable);
        let info = cancelled.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.metadata["service"].as_str()), ("DEPENDENCY_UNAVAILABLE", "database"));
        let conflict = from_database(&DatabaseError::Conflict {
            code: "40P01".to_owned(),
            message: "deadlock detected".to_owned(),
        });
        assert_eq!(conflict.code(), Code::Aborted);
    }
}
