//! The learner's error type: callers decide between retrying (storage) and dead-lettering (bad record).

/// Why the learner could not store or answer.
#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// RocksDB failed (disk full, lock held by another process, corruption).
    #[error("learning store: {0}")]
    Storage(String),
    /// A stored value could not be decoded: the database was written by an incompatible version.
    #[error("learning store value at {key}: {message}")]
    Corrupt {
        /// The key whose value is unreadable.
        key: String,
        /// The decoder's message.
        message: String,
    },
    /// The outcome cannot be stored (e.g. no incident id): retrying will not help.
    #[error("invalid outcome: {0}")]
    Invalid(String),
    /// The database directory could not be prepared.
    #[error("cannot create {path}: {message}")]
    Io {
        /// The directory.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

impl From<rocksdb::Error> for LearnerError {
    fn from(e: rocksdb::Error) -> Self {
        LearnerError::Storage(e.into_string())
    }
}
