//! Storage errors. The server maps each to one HTTP answer in one place.

use printfleet_domain::context::Forbidden;
use printfleet_domain::{Permission, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Absent, or outside the caller's tenant or scope: the caller cannot tell which.
    #[error("not found")]
    NotFound,
    #[error("missing permission {0}")]
    Forbidden(Permission),
    /// The caller's membership is limited to some device groups and the action is tenant-wide.
    #[error("a membership scoped to device groups cannot do this")]
    ScopeTooNarrow,
    /// API tokens may not mint tokens or act on sessions: a person must be signed in.
    #[error("this needs a signed-in person, not an API token")]
    SessionRequired,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A stored encrypted value or key did not open: damaged data or the wrong key.
    #[error("crypto: {0}")]
    Crypto(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Temporarily unable to store (the database failed a batch); the caller may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<Forbidden> for StoreError {
    fn from(f: Forbidden) -> Self {
        StoreError::Forbidden(f.0)
    }
}

impl StoreError {
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// True when the database refused a write because of a UNIQUE constraint.
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        match e {
            sqlx::Error::Database(d) => {
                d.is_unique_violation()
                    || d.message().contains("UNIQUE constraint")
                    || d.code().as_deref() == Some("23505")
            }
            _ => false,
        }
    }
}
