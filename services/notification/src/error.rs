//! The one mapping from the notification service's failures to gRPC statuses.

use fastbreak_db::DatabaseError;
use fastbreak_mesh::status;
use tonic::Status;

/// What can go wrong in the notification service, beyond bad input (field violations).
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A secret could not be drawn.
    #[error("cannot draw a signing secret: {0}")]
    Random(#[from] getrandom::Error),
}

impl From<NotificationError> for Status {
    fn from(error: NotificationError) -> Self {
        match error {
            NotificationError::Database(DatabaseError::ForeignKeyViolation { constraint })
                if constraint.starts_with("notifications_user_id") =>
            {
                status::not_found("user")
            }
            NotificationError::Database(error) => Status::from(error),
            other @ NotificationError::Random(_) => status::internal(&other),
        }
    }
}
