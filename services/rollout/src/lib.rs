//! rollout: approval, canary deployment, promotion or rollback.
//!
//! Nothing deploys without approval. A patch (`patches`) whose service the catalog marks
//! `autonomy = "auto"` is approved by the catalog when the deploy policy allows it;
//! otherwise it waits in the [`PendingStore`] until `selfheal approve <id>` (or reject)
//! arrives on `approvals` ([`ApprovalStage`]). An approved patch runs as a canary beside
//! stable through a [`Deployer`], takes its steps of traffic, is compared with stable
//! from telemetry with `selfheal_observe`'s statistics ([`analysis`]) and is promoted,
//! rolled back, or held for a person when the evidence stays inconclusive (`CanaryHeld`:
//! an approval then promotes the held canary, a rejection rolls it back). Every step is one
//! `Rollout` record on `rollouts`; a patch that was not proposed gives one `Skipped` step,
//! so the verifier can close every incident.

pub mod analysis;
pub mod deployer;
pub mod error;
pub mod local;
pub mod observer;
pub mod proxy;
pub mod review;
pub mod stage;
pub mod store;

pub use analysis::{Analysis, AnalysisConfig, CanarySamples, Decision, ErrorRates, Weights};
pub use deployer::{CanaryHandle, Deployer};
pub use error::{DeployError, RolloutError};
pub use local::{LocalProcessConfig, LocalProcessDeployer};
pub use review::{ApprovalSink, CodeHostReporter, CodeHosts, KafkaApprovalSink, PendingPatches, ReviewWatcher};
pub use observer::KafkaErrorRates;
pub use proxy::WeightedProxy;
pub use stage::{APPROVALS_STAGE_NAME, ApprovalStage, Rollout, RolloutConfig, RolloutCore, STAGE_NAME};
pub use store::{FilePendingStore, PendingStore};

#[cfg(test)]
mod tests;
