//! Streaming Drain-class log template mining.
//!
//! [`TemplateMiner`] turns a stream of log lines into templates such as
//! `Connection to <*> timed out after <NUM> ms`, each with a stable id, so the
//! monitor can notice a new error template or a known one surging without
//! anyone writing a regex. The model is bounded in memory (an LRU cap on
//! clusters, capped line length and token count) and can be snapshotted and
//! restored with its ids. [`signals`] builds the monitor's evidence on top of
//! it, and [`mine_file`] is the offline engine of `selfheal logs templates`.
//!
//! ```
//! use selfheal_drain::{MinerConfig, TemplateMiner};
//!
//! let mut miner = TemplateMiner::new(MinerConfig::default());
//! let a = miner.add_line("Connection to db1 timed out after 30 ms");
//! let b = miner.add_line("Connection to cache-2 timed out after 4500 ms");
//! assert_eq!(a.template_id, b.template_id);
//! assert_eq!(b.template, "Connection to <*> timed out after <NUM> ms");
//!
//! // Templates and ids survive a restart.
//! let saved = miner.snapshot();
//! let mut miner = TemplateMiner::restore(&saved, MinerConfig::default()).unwrap();
//! assert_eq!(miner.add_line("Connection to db3 timed out after 1 ms").template_id, a.template_id);
//! ```
//!
//! Masking: regex masks ([`Mask::regex`]) run first over the whole line, as in
//! the logparser benchmark; the built-in masks ([`Mask::defaults`]: UUID,
//! timestamp, IP, path, hex, number) run per token in one hand-written pass.
//! Similarity: as in Drain, the share of identical tokens, except that
//! positions where both sides are masked variables are left out of the
//! comparison ([`MinerConfig::drain_similarity`] restores Drain's measure).

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
