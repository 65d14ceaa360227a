//! Why a code-host operation failed. No variant ever holds a token: messages are built from
//! what the host answered and what we asked, and [`crate::Token`] has no `Display`.

/// Everything that can go wrong talking to a code host.
#[derive(Debug, thiserror::Error)]
pub enum CodeHostError {
    /// The token could not be read; names the variable or file, never a value.
    #[error("code host token: {0}")]
    Token(String),
    /// The catalog names a provider without a client.
    #[error("no client for code host provider `{0}`")]
    Unsupported(String),
    /// The settings cannot be used (a bad URL or repository name).
    #[error("code host settings: {0}")]
    Settings(String),
    /// The host could not be reached, or the answer could not be read.
    #[error("{method} {path}: {message}")]
    Transport {
        /// The HTTP method.
        method: String,
        /// The API path (no host, no query, no credentials).
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The host answered with an error status.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        /// The HTTP method.
        method: String,
        /// The API path.
        path: String,
        /// The status code.
        status: u16,
        /// The host's message.
        message: String,
    },
    /// A pull request for the branch exists already (HTTP 409 or 422).
    #[error("a pull request for {0} exists already")]
    Conflict(String),
    /// `git push` failed.
    #[error("git push of {branch} failed: {message}")]
    Push {
        /// The branch.
        branch: String,
        /// git's message, with anything looking like the token removed.
        message: String,
    },
}

impl CodeHostError {
    /// Whether retrying later may succeed (the host is down or overloaded), as opposed to a
    /// request the host will refuse again.
    pub fn is_transient(&self) -> bool {
        match self {
            CodeHostError::Transport { .. } => true,
            CodeHostError::Status { status, .. } => *status == 429 || *status >= 500,
            CodeHostError::Push { .. } => true,
            _ => false,
        }
    }
}
