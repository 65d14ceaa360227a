//! The diagnoser's error type. Few errors reach the runner: a missing repository or a
//! learner that is down become part of the diagnosis instead.

/// What can go wrong around a diagnosis.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoserError {
    /// The learning store could not be asked (down, timed out, refused).
    #[error("learning store unreachable: {0}")]
    KnowledgeUnavailable(String),
    /// The learning store answered something unexpected.
    #[error("learning store answered {0}")]
    KnowledgeProtocol(String),
    /// The repository does not exist or is not a git repository of its own.
    #[error("{0}")]
    RepositoryMissing(String),
    /// The catalog could not be loaded.
    #[error(transparent)]
    Catalog(#[from] selfheal_catalog::CatalogError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The analysis thread failed (a bug); the record is retried.
    #[error("internal: {0}")]
    Internal(String),
}
