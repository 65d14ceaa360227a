//! The stage runtime shared by every selfheal service.
//!
//! A stage is a library type implementing [`Stage`]: one decoded input record in, zero or
//! more output records out. The [`runner`] owns everything else so that every stage gets
//! the same delivery guarantees (ARCHITECTURE.md at the repository root, "Delivery rules"):
//!
//! 1. at-least-once: outputs are produced and their delivery awaited before the input
//!    offset is stored;
//! 2. undecodable or invalid records go to the stage's dead-letter topic with their
//!    original bytes and headers naming the stage, the error and the source position;
//! 3. dependencies that are down are retried with backoff, never dead-lettered;
//! 4. W3C trace context travels in Kafka headers from input to outputs;
//! 5. SIGTERM stops polling, finishes the record in hand, commits and flushes;
//! 6. `/healthz`, `/readyz` and Prometheus `/metrics` are served by [`http`].
//!
//! A service binary is its flags, its stage and a call to [`launch::run_stage`] (or
//! [`launch::run`]), which does the set-up every service shares.

pub mod backoff;
pub mod config;
pub mod dead_letter;
pub mod embedded;
pub mod headers;
pub mod http;
pub mod kafka;
pub mod launch;
pub mod metrics;
pub mod publisher;
pub mod registry;
pub mod runner;
pub mod service;
pub mod shutdown;
pub mod stage;
pub mod telemetry;

pub use config::{KafkaArgs, RegistryArgs, RuntimeArgs, TelemetryArgs};
pub use launch::{Service, ServiceArgs};
pub use publisher::Publisher;
pub use runner::{RunSummary, Runner, RunnerError};
pub use shutdown::Shutdown;
pub use stage::{RecordContext, Stage, StageError};

/// Names of the pipeline's stages (consumer groups `selfheal-<name>`, dead letters `<name>.dlq`).
pub const STAGE_NAMES: [&str; 8] = [
    "monitor",
    "diagnoser",
    "repairer",
    "rollout",
    "rollout-approvals",
    "verifier",
    "learner",
    "collector",
];

/// Current time as Unix epoch milliseconds (the unit of every timestamp on the topics).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
