//! Topic names of the pipeline, defined once.

/// Every signal normalised by the collector.
pub const TELEMETRY_RAW: &str = "telemetry.raw";
/// Incidents opened by the monitor.
pub const ANOMALIES: &str = "anomalies";
/// Root-cause analyses written by the diagnoser.
pub const DIAGNOSES: &str = "diagnoses";
/// Validated (or refused) fixes written by the repairer.
pub const PATCHES: &str = "patches";
/// Human or policy decisions on pending patches, written by `selfheal approve`/`reject`.
pub const APPROVALS: &str = "approvals";
/// Each step of a canary rollout, written by the rollout service.
pub const ROLLOUTS: &str = "rollouts";
/// One final record per incident, written by the verifier.
pub const OUTCOMES: &str = "outcomes";

/// All pipeline topics, in the order records flow through them.
pub const ALL: [&str; 7] = [
    TELEMETRY_RAW,
    ANOMALIES,
    DIAGNOSES,
    PATCHES,
    APPROVALS,
    ROLLOUTS,
    OUTCOMES,
];

/// The dead-letter topic of a stage: `<stage>.dlq`.
pub fn dead_letter_topic(stage: &str) -> String {
    format!("{stage}.dlq")
}
