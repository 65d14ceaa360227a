//! The subcommands of `selfheal`, one module each, and the command line itself ([`Cli`]):
//! `main.rs` only parses and dispatches, so tests parse exactly what the binary parses.

pub mod approve;
pub mod explain;
pub mod fix;
pub mod knowledge;
pub mod logs;
pub mod record;
pub mod tail;
pub mod trace;
pub mod up;

use clap::{Parser, Subcommand};
use selfheal_core::TelemetryArgs;

/// selfheal turns production failures into reviewed, tested, canary-verified code fixes.
#[derive(Debug, Parser)]
#[command(name = "selfheal", version, propagate_version = true)]
pub struct Cli {
    /// Logs and traces of selfheal itself.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each variant's doc comment is its line in `selfheal --help`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The end-to-end demo: a failing Python service is diagnosed, patched, canaried and verified.
    Demo(crate::demo::DemoArgs),
    /// Run all seven stages in one process (against a broker and registry, or embedded).
    Up(Box<up::UpArgs>),
    /// Print the records of a pipeline topic (one JSON line each; a summary line for outcomes).
    Tail(tail::TailArgs),
    /// Approve the pending patch of an incident.
    Approve(approve::DecideArgs),
    /// Reject the pending patch of an incident.
    Reject(approve::DecideArgs),
    /// List patches awaiting approval.
    Pending(approve::PendingArgs),
    /// What the learning store knows: fixes per failure fingerprint.
    Knowledge(knowledge::KnowledgeArgs),
    /// Record topics up to their current end into a JSON-lines file.
    Record(record::RecordArgs),
    /// Produce a recording made by `selfheal record` again.
    Replay(record::ReplayArgs),
    /// Why the agent did what it did for one incident: evidence, hypotheses, model exchanges,
    /// repair attempts, rollout and outcome (from the topics or a recording).
    Explain(Box<explain::ExplainArgs>),
    /// Diagnose and repair one crash offline: trace in, validated fix and test on a branch out.
    Fix(Box<fix::FixArgs>),
    /// Stack trace tools.
    #[command(subcommand)]
    Trace(trace::TraceCommand),
    /// Log tools.
    #[command(subcommand)]
    Logs(logs::LogsCommand),
}
