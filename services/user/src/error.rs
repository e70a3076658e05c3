//! The one mapping from the user service's failures to gRPC statuses.

use std::time::Duration;

use fastbreak_db::DatabaseError;
use fastbreak_mesh::status;
use tonic::Status;

use crate::domain::credentials::CredentialError;

/// What can go wrong in the user service, beyond bad input (reported as field violations).
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// Hashing or drawing a secret failed.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The email is already someone's.
    #[error("email taken")]
    EmailTaken,
    /// The wallet address is already another user's.
    #[error("wallet address taken")]
    WalletTaken,
    /// The email or password is wrong (which one is never said).
    #[error("wrong email or password")]
    WrongCredentials,
    /// Too many failed sign-ins for the email.
    #[error("sign-ins locked for {0:?}")]
    SignInLocked(Duration),
    /// The access token is unknown, expired or revoked.
    #[error("access token refused")]
    TokenRefused,
    /// Every password-hashing slot stayed busy.
    #[error("too many sign-ins at once")]
    Busy,
    /// A blocking task died.
    #[error("a worker thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl From<UserError> for Status {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Database(error) => Status::from(error),
            UserError::EmailTaken => status::already_exists("email", "a user with this email exists"),
            UserError::WalletTaken => {
                status::already_exists("flow_address", "this wallet is registered to another user")
            }
            UserError::WrongCredentials => status::unauthenticated("the email or the password is wrong"),
            UserError::SignInLocked(wait) => status::rate_limited(
                format!("too many failed sign-ins for this email; try again in {} s", wait.as_secs().max(1)),
                wait,
            ),
            UserError::Busy => status::rate_limited(
                "too many sign-ins and sign-ups at once; try again shortly",
                Duration::from_secs(1),
            ),
            UserError::TokenRefused => status::unauthenticated("the access token is unknown, expired or revoked"),
            other @ (UserError::Credential(_) | UserError::Join(_)) => status::internal(&other),
        }
    }
}
