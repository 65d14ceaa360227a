//! verifier: confirms the incident stopped and writes the outcome.
//!
//! Reads `rollouts` and writes exactly one [`Outcome`] per incident to `outcomes`:
//!
//! - `Promoted`: watches telemetry for the incident's fingerprint for a window after
//!   promotion ([`FingerprintWatch`]); any seen → `Recurred`; none seen while the failing
//!   operation (the route that failed with it before) served at least the minimum of
//!   requests → `Healed`; fewer → `Unverified`, with the window stated (no traffic is no
//!   evidence);
//! - `RolledBack`, `Rejected`, `PolicyDenied`, `Failed` → the matching status at once;
//! - `Skipped` → the status the patch explains (`NotLocalized`, `NoFixFound`, …);
//! - intermediate steps (`AwaitingApproval`, `Approved`, `CanaryStarted`, `CanaryAnalyzed`) → nothing.
//!
//! Idempotent: an incident that already has an Outcome gets no second one ([`emitted`]).

pub mod emitted;
pub mod outcome;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{Outcome, Rollout, Verification};

pub use emitted::{Emitted, EmittedLog};
pub use outcome::{Ending, ending_of};
/// The former name of [`MonitorFingerprinter`] (it was a stand-in until the monitor's function landed).
pub use watch::MonitorFingerprinter as StacktraceFingerprinter;
pub use watch::{
    FingerprintWatch, Fingerprinter, KafkaFingerprintWatch, MonitorFingerprinter, OperationReport, RecentEvents,
    WatchReport,
};

/// The stage's name: group `selfheal-verifier`, dead letters `verifier.dlq`.
pub const STAGE_NAME: &str = "verifier";

/// How the verifier judges a promotion.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// How long to watch after promotion.
    pub window: Duration,
    /// Extra wait after the window for telemetry still in flight (exporters batch).
    pub settle: Duration,
    /// Requests the failing operation (the service, when the operation is unknown) must serve
    /// in the window, without the failure, for Healed; fewer gives Unverified.
    pub low_traffic_below: i64,
    /// Where emitted outcomes are remembered across restarts; memory only when `None`.
    pub state_dir: Option<PathBuf>,
    /// Incidents remembered in memory.
    pub remember: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            window: Duration::from_secs(10),
            settle: Duration::from_secs(2),
            low_traffic_below: 10,
            state_dir: None,
            remember: 10_000,
        }
    }
}

/// Why the verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// The state directory is unusable.
    #[error("verifier state directory: {0}")]
    State(#[from] std::io::Error),
}

/// The verifier stage: `rollouts` → `outcomes`.
pub struct Verifier {
    watch: Arc<dyn FingerprintWatch>,
    config: VerifierConfig,
    emitted: EmittedLog,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("config", &self.config).finish()
    }
}

impl Verifier {
    /// A verifier asking `watch` about telemetry after promotion.
    pub fn new(watch: Arc<dyn FingerprintWatch>, config: VerifierConfig) -> Result<Self, VerifierError> {
        let emitted = EmittedLog::new(config.state_dir.clone(), config.remember)?;
        Ok(Verifier { watch, config, emitted })
    }

    async fn verify(&self, rollout: &Rollout) -> (Outcome, Verification) {
        let from_ms = rollout.timeline.promotion_ms.unwrap_or(rollout.step_ms);
        let window_ms = self.config.window.as_millis() as i64;
        let to_ms = from_ms + window_ms;
        let wait_ms = (to_ms + self.config.settle.as_millis() as i64 - selfheal_core::now_ms())
            // A promotion stamped in the future (skewed clock) must not stall the stage.
            .clamp(0, window_ms + self.config.settle.as_millis() as i64);
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
        }
        let report = self
            .watch
            .occurrences(&rollout.service, &rollout.fingerprint, from_ms, to_ms)
            .await;
        let op = self
            .watch
            .operation(&rollout.service, &rollout.fingerprint, from_ms, to_ms)
            .await;
        // An incident without an exception (error-rate or log-template symptom) has a derived
        // fingerprint no event carries: failed requests are its occurrences.
        let exception_based = rollout.patch.exception_type.is_some() || rollout.patch.root_cause.is_some();
        let occurrences = if exception_based {
            report.occurrences
        } else {
            report.occurrences.max(report.errors)
        };
        let verification = Verification {
            window_ms,
            occurrences,
            requests: report.requests,
            operation_requests: op.operation.is_some().then_some(op.requests),
            operation: op.operation,
            min_requests: Some(self.config.low_traffic_below.max(1)),
        };
        let (status, summary) = outcome::verified(rollout, &verification, report.errors, self.config.low_traffic_below);
        let out = outcome::build(
            rollout,
            status,
            summary,
            Some(verification.clone()),
            selfheal_core::now_ms(),
        );
        (out, verification)
    }
}

#[async_trait]
impl Stage for Verifier {
    type Input = Rollout;
    type Output = Outcome;

    fn name(&self) -> &'static str {
        STAGE_NAME
    }

    async fn process(&self, rollout: Rollout, ctx: &RecordContext) -> Result<Vec<Outcome>, StageError> {
        if rollout.incident_id.trim().is_empty() {
            return Err(StageError::Invalid("rollout step without an incident id".into()));
        }
        let ending = ending_of(&rollout);
        if ending == Ending::Pending {
            return Ok(Vec::new());
        }
        if let Some(previous) = self.emitted.get(&rollout.incident_id) {
            if previous.partition == ctx.partition && previous.offset == ctx.offset {
                // The runner redoes this very record (publishing failed): emit the same Outcome again.
                return Ok(vec![previous.outcome]);
            }
            tracing::info!(incident = %rollout.incident_id, step = ?rollout.step, "incident already has an outcome; ignoring the step");
            return Ok(Vec::new());
        }
        let outcome = match ending {
            Ending::Final(status) => {
                let summary = outcome::final_summary(&rollout, status);
                outcome::build(&rollout, status, summary, None, selfheal_core::now_ms())
            }
            _ => self.verify(&rollout).await.0,
        };
        self.emitted
            .put(Emitted {
                partition: ctx.partition,
                offset: ctx.offset,
                outcome: outcome.clone(),
            })
            .map_err(|e| StageError::Transient(format!("cannot record the outcome: {e}")))?;
        tracing::info!(incident = %outcome.incident_id, status = ?outcome.status, summary = %outcome.summary, "outcome");
        Ok(vec![outcome])
    }
}

#[cfg(test)]
mod tests;
