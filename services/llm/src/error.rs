//! The one error type of this crate: callers decide between "skip the LLM and go on with
//! what we have" (budget, malformed, provider down) and "configuration is wrong" (fail at start).

use std::time::Duration;

use crate::structured::Exchange;

/// Everything that can go wrong talking to a model.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The configuration is incomplete or contradictory (fail at start-up).
    #[error("LLM configuration: {0}")]
    Config(String),
    /// The environment variable that should hold the API key is unset or empty.
    #[error("LLM API key: environment variable {env} is not set")]
    MissingKey {
        /// Name of the variable (never its value).
        env: String,
    },
    /// The provider answered with a status we do not retry, or kept failing after retries.
    #[error("LLM provider answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the response body, redacted and bounded.
        body: String,
    },
    /// The connection failed (after retries).
    #[error("LLM transport: {0}")]
    Transport(String),
    /// The call did not finish in time.
    #[error("LLM call timed out after {after:?}")]
    Timeout {
        /// The limit that was hit.
        after: Duration,
    },
    /// The provider's response was not what its protocol promises.
    #[error("LLM response could not be decoded: {0}")]
    Decode(String),
    /// The per-incident budget is spent; the stage records this and goes on without the LLM.
    #[error("LLM budget exhausted: {what}")]
    BudgetExhausted {
        /// Which limit (calls, tokens or cost) and its value.
        what: String,
    },
    /// The answer was not valid JSON for the expected shape, twice.
    #[error("LLM answer malformed after retry: {reason}")]
    Malformed {
        /// Why the last answer was rejected.
        reason: String,
        /// Every exchange of the attempt, raw answers included, for the audit log.
        exchanges: Vec<Exchange>,
    },
}

impl LlmError {
    /// Short machine-readable name of the variant, for metrics labels and records.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Config(_) => "config",
            LlmError::MissingKey { .. } => "missing_key",
            LlmError::Status { .. } => "status",
            LlmError::Transport(_) => "transport",
            LlmError::Timeout { .. } => "timeout",
            LlmError::Decode(_) => "decode",
            LlmError::BudgetExhausted { .. } => "budget_exhausted",
            LlmError::Malformed { .. } => "malformed",
        }
    }
}
