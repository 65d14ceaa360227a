//! The deployer interface: how rollout puts a patched version beside stable and moves traffic.
//!
//! Local processes today ([`crate::local::LocalProcessDeployer`]); Kubernetes (Argo Rollouts)
//! and GitOps deployers implement the same trait later.

use async_trait::async_trait;
use selfheal_catalog::ServiceEntry;
use selfheal_events::Patch;

use crate::error::DeployError;

/// A running canary, as the deployer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryHandle {
    /// The service.
    pub service: String,
    /// The incident whose patch the canary runs.
    pub incident_id: String,
    /// The canary's version label (short commit), as its telemetry reports `service.version`.
    pub version: String,
    /// The full commit the canary runs.
    pub commit: String,
    /// Where the canary listens, for a person (`127.0.0.1:8082`).
    pub address: String,
}

/// Puts versions of a service in front of traffic.
#[async_trait]
pub trait Deployer: Send + Sync {
    /// The catalog spelling of this deployer, e.g. `local-process`.
    fn name(&self) -> &'static str;
    /// The version label of what serves now (starting it if the deployer owns it and it is not running).
    async fn stable_version(&self, svc: &ServiceEntry) -> Result<String, DeployError>;
    /// Starts the patched version beside stable, healthy but without traffic.
    async fn start_canary(&self, svc: &ServiceEntry, patch: &Patch) -> Result<CanaryHandle, DeployError>;
    /// Sends `percent` of the traffic to the canary.
    async fn set_canary_weight(
        &self,
        svc: &ServiceEntry,
        canary: &CanaryHandle,
        percent: u8,
    ) -> Result<(), DeployError>;
    /// Makes the canary the stable version and retires the old one.
    async fn promote(&self, svc: &ServiceEntry, canary: &CanaryHandle) -> Result<(), DeployError>;
    /// Removes the canary; stable is untouched.
    async fn rollback(&self, svc: &ServiceEntry, canary: &CanaryHandle) -> Result<(), DeployError>;
}
