//! What can go wrong in the monitor, and what the caller should do about it.

/// Errors of the monitor library.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The event can never be processed (dead-letter it).
    #[error("invalid telemetry event: {0}")]
    Invalid(String),
    /// Reading or writing persisted state failed.
    #[error("monitor state {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Persisted state is unreadable.
    #[error("monitor state {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}
