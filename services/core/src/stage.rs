//! The `Stage` trait: what a service implements, and how it tells the runner what failed.

use std::collections::HashMap;

use async_trait::async_trait;
use selfheal_events::Record;

/// Where the record in hand came from, for logs, dead letters and idempotency checks.
#[derive(Debug, Clone, Default)]
pub struct RecordContext {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The record's Kafka key, decoded lossily for logging.
    pub key: Option<String>,
    /// The record's headers (UTF-8 values only).
    pub headers: HashMap<String, String>,
    /// How many times this record was already attempted (0 on the first try).
    pub attempt: u32,
}

/// Why a stage could not finish a record. The variant decides what the runner does.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The record can never succeed (invalid content): dead-letter it and move on.
    #[error("invalid record: {0}")]
    Invalid(String),
    /// A dependency is down or busy: retry the same record with backoff, never skip it.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The stage cannot go on at all (misconfiguration): stop without storing the offset.
    #[error("fatal: {0}")]
    Fatal(String),
}

/// One stage of the pipeline: one input record in, zero or more output records out.
///
/// Implementations must be idempotent: the runner delivers at least once, so a replayed
/// record must not open a second pull request or deploy twice (key work by incident id).
#[async_trait]
pub trait Stage: Send + Sync + 'static {
    /// The record type read from the input topic.
    type Input: Record;
    /// The record type written to the output topic.
    type Output: Record;

    /// The stage's name: consumer group `selfheal-<name>`, dead-letter topic `<name>.dlq`, metric label.
    fn name(&self) -> &'static str;

    /// Processes one record.
    async fn process(&self, input: Self::Input, ctx: &RecordContext) -> Result<Vec<Self::Output>, StageError>;
}
