//! The one error type of the data crate; callers turn it into gRPC statuses.
//!
//! Server errors are told apart by their SQLSTATE, never by their message text: diesel names
//! a few codes itself, and every connection of the pool carries the rest in front of the
//! message (see [`crate::wire`]).

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::wire::split_sqlstate;

/// SQLSTATE `serialization_failure`.
const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE `deadlock_detected`.
const DEADLOCK_DETECTED: &str = "40P01";
/// SQLSTATE `query_canceled`: the statement timeout, or a cancel request.
const QUERY_CANCELED: &str = "57014";
/// SQLSTATE `lock_not_available`: the lock timeout.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The SQLSTATEs of a value the database cannot store as given: a character not in the
/// encoding (a NUL in text, say), one that cannot be translated, a string too long for its
/// column. The value came from the caller: their mistake, not the server's.
const UNSTORABLE_VALUE: [&str; 3] = ["22021", "22P05", "22001"];

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// No connection could be made to the server.
    #[error("database at {addr} is unreachable: {reason}")]
    Unreachable {
        /// Host and port of the server (never the password).
        addr: String,
        /// Why the connection failed.
        reason: String,
    },
    /// Every connection of the pool stayed busy for the pool's timeout: this process is
    /// overloaded (the server may be fine). Not transient in the sense of a quick retry.
    #[error("every one of the {size} database connections stayed busy")]
    PoolExhausted {
        /// The pool's size.
        size: usize,
    },
    /// The row asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique constraint refused the write.
    #[error("already exists (constraint {constraint})")]
    UniqueViolation {
        /// The constraint's name.
        constraint: String,
    },
    /// A check constraint refused the write.
    #[error("refused by the database check {constraint}")]
    CheckViolation {
        /// The constraint's name.
        constraint: String,
    },
    /// A foreign key refused the write: something it refers to does not exist.
    #[error("refers to something that does not exist (constraint {constraint})")]
    ForeignKeyViolation {
        /// The constraint's name.
        constraint: String,
    },
    /// A NOT NULL column was left empty.
    #[error("a required column was empty: {message}")]
    NotNullViolation {
        /// What the server said.
        message: String,
    },
    /// The server gave up a transaction for the sake of concurrent ones: a serialization
    /// failure (SQLSTATE 40001) or a deadlock (40P01). The transaction helpers try it again.
    #[error("the transaction conflicted with a concurrent one ({code}: {message})")]
    Conflict {
        /// The SQLSTATE.
        code: String,
        /// What the server said.
        message: String,
    },
    /// The server cancelled a statement: it ran past the statement timeout or waited past the
    /// lock timeout (SQLSTATE 57014, 55P03).
    #[error("the database cancelled a statement that took too long ({code}: {message})")]
    Cancelled {
        /// The SQLSTATE.
        code: String,
        /// What the server said.
        message: String,
    },
    /// A value could not be stored as given (see [`UNSTORABLE_VALUE`]).
    #[error("a value cannot be stored ({code}: {message})")]
    UnstorableValue {
        /// The SQLSTATE.
        code: String,
        /// What the server said.
        message: String,
    },
    /// A transaction kept conflicting with others after every retry.
    #[error("transaction conflicted with concurrent writes {attempts} times")]
    SerializationConflict {
        /// How many times it was tried.
        attempts: u32,
    },
    /// The schema is not at the version this build needs.
    #[error(
        "database schema is not at the version this build needs: {pending} migration(s) pending ({first}...); run `fastbreak migrate`"
    )]
    SchemaBehind {
        /// How many migrations are pending.
        pending: usize,
        /// The first pending migration.
        first: String,
    },
    /// The pool could not be set up (a malformed URL, say).
    #[error("cannot set up the database pool: {0}")]
    Pool(String),
    /// A name given to the database layer is not acceptable.
    #[error("{0}")]
    InvalidName(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Query(DieselError),
}

impl DatabaseError {
    /// True when retrying the same work later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Conflict { .. } | Self::SerializationConflict { .. })
    }

    /// The name of the constraint that refused a write, if one did.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            Self::UniqueViolation { constraint }
            | Self::CheckViolation { constraint }
            | Self::ForeignKeyViolation { constraint } => Some(constraint),
            _ => None,
        }
    }
}

impl From<DieselError> for DatabaseError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound("row"),
            DieselError::DatabaseError(kind, info) => {
                let constraint = info.constraint_name().unwrap_or("unnamed").to_owned();
                let (code, message) = split_sqlstate(info.message()).unwrap_or(("", info.message()));
                match (code, kind) {
                    (SERIALIZATION_FAILURE | DEADLOCK_DETECTED, _) | (_, DatabaseErrorKind::SerializationFailure) => {
                        let code = if code.is_empty() { SERIALIZATION_FAILURE } else { code };
                        return Self::Conflict { code: code.to_owned(), message: message.to_owned() };
                    }
                    (QUERY_CANCELED | LOCK_NOT_AVAILABLE, _) => {
                        return Self::Cancelled { code: code.to_owned(), message: message.to_owned() };
                    }
                    (code, _) if UNSTORABLE_VALUE.contains(&code) => {
                        return Self::UnstorableValue { code: code.to_owned(), message: message.to_owned() };
                    }
                    _ => {}
                }
                match kind {
                    DatabaseErrorKind::UniqueViolation => Self::UniqueViolation { constraint },
                    DatabaseErrorKind::CheckViolation => Self::CheckViolation { constraint },
                    DatabaseErrorKind::ForeignKeyViolation => Self::ForeignKeyViolation { constraint },
                    DatabaseErrorKind::NotNullViolation => Self::NotNullViolation { message: message.to_owned() },
                    DatabaseErrorKind::ClosedConnection => {
                        Self::Unreachable { addr: "the server".to_owned(), reason: message.to_owned() }
                    }
                    // Our own triggers raise check_violation too (SQLSTATE 23514) with a message.
                    other => Self::Query(DieselError::DatabaseError(other, info)),
                }
            }
            other => Self::Query(other),
        }
    }
}

/// True when the transaction helpers should run the work again.
pub(crate) fn is_conflict(error: &DatabaseError) -> bool {
    matches!(error, DatabaseError::Conflict { .. })
}
