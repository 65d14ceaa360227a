//! Streaming Drain-class log template mining.
//!
//! [`TemplateMiner`] turns a stream of log lines into templates such as
//! `Connection to <*> timed out after <NUM> ms`, each with a stable id, so the
//! monitor can notice a new error template or a known one surging without
//! anyone writing a regex. The model is bounded in memory (an LRU cap on
//! clusters, capped line length and token count) and can be snapshotted and
//! restored with its ids. [`signals`] builds the monitor's evidence on top of
//! it, and [`mine_file`] is the offline engine of `selfheal logs templates`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod file;
mod format;
mod hash;
mod mask;
mod miner;
pub mod signals;

pub use file::{FileReport, mine_file, mine_reader, write_lines, write_report, write_templates};
pub use format::LogFormat;
pub use mask::{Mask, MaskKind};
pub use miner::{LineMatch, MatchResult, MinerConfig, TRUNCATED, Template, TemplateMiner, WILDCARD};

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a snapshot.
    #[error("snapshot is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The snapshot was written by an incompatible version.
    #[error("unsupported snapshot version {0}")]
    Version(u32),
    /// The snapshot is well-formed but inconsistent.
    #[error("invalid snapshot: {0}")]
    Invalid(String),
}
