//! The two stages of rollout: patches in ([`Rollout`]) and approvals in ([`ApprovalStage`]).
//!
//! Both share one [`RolloutCore`]: the catalog, the deploy policy, the deployer, the error
//! rates and the pending store. A `process` call returns every step it performed, in order,
//! because the runner publishes a stage's outputs when `process` returns.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use selfheal_catalog::{Autonomy, Catalog, ServiceEntry};
use selfheal_core::{RecordContext, Stage, StageError, now_ms};
use selfheal_events::{
    Approval, ApprovalDecision, ApprovalMode, Patch, PatchStatus, Rollout as RolloutRecord, RolloutStep,
};
use selfheal_governance::{DeployInput, DeployVerdict, PolicyEngine};

use crate::analysis::{AnalysisConfig, CanarySamples, Decision, Weights, analyze};
use crate::deployer::{CanaryHandle, Deployer};
use crate::error::RolloutError;
use crate::store::{FilePendingStore, PendingStore, valid_incident_id};

/// Canary share when the catalog names none.
pub const DEFAULT_CANARY_PERCENT: i64 = 25;
/// Who grants catalog approvals, in approval records.
pub const CATALOG_APPROVER: &str = "catalog";

/// How rollout behaves.
#[derive(Debug, Clone)]
pub struct RolloutConfig {
    /// How the canary is judged.
    pub analysis: AnalysisConfig,
    /// The environment named to the deploy policy, e.g. `production` or `demo`.
    pub environment: String,
    /// A change freeze is in force (the deploy policy denies every deploy).
    pub change_freeze: bool,
    /// Where pending patches and finished rollouts are kept.
    pub state_dir: PathBuf,
}

impl RolloutConfig {
    /// Defaults with state under `state_dir`: environment `production`, no freeze.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        RolloutConfig {
            analysis: AnalysisConfig::default(),
            environment: "production".into(),
            change_freeze: false,
            state_dir: state_dir.into(),
        }
    }
}

/// What both rollout stages share.
pub struct RolloutCore {
    catalog: Arc<Catalog>,
    policy: Arc<PolicyEngine>,
    deployer: Arc<dyn Deployer>,
    rates: Arc<dyn CanarySamples>,
    store: Arc<dyn PendingStore>,
    config: RolloutConfig,
    /// One rollout at a time per service: two canaries of one service would measure each other.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Canaries held for a person, by incident: an approval promotes one, a rejection rolls it
    /// back. In memory: after a restart the deployer's canary is gone too, and an approval
    /// runs the canary again.
    held: std::sync::Mutex<HashMap<String, Held>>,
}

/// A canary whose analysis stayed inconclusive, waiting for a person.
#[derive(Debug, Clone)]
struct Held {
    canary: CanaryHandle,
    /// The last step published for it (carries the canary report).
    last: RolloutRecord,
}

/// Moves a running canary's traffic share for the analysis.
struct DeployerWeights<'a> {
    deployer: &'a dyn Deployer,
    svc: &'a ServiceEntry,
    canary: &'a CanaryHandle,
}

#[async_trait]
impl Weights for DeployerWeights<'_> {
    async fn set(&self, percent: u8) -> Result<(), String> {
        self.deployer
            .set_canary_weight(self.svc, self.canary, percent)
            .await
            .map_err(|e| e.to_string())
    }
}

impl std::fmt::Debug for RolloutCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolloutCore")
            .field("deployer", &self.deployer.name())
            .field("config", &self.config)
            .finish()
    }
}

/// The steps of one `process` call; every step carries what is known so far.
struct Steps {
    current: RolloutRecord,
    out: Vec<RolloutRecord>,
}

impl Steps {
    fn new(patch: &Patch, deployer: &str) -> Self {
        let current = RolloutRecord {
            incident_id: patch.incident_id.clone(),
            service: patch.service.clone(),
            fingerprint: patch.fingerprint.clone(),
            deployer: deployer.to_string(),
            patch: patch.clone(),
            timeline: patch.timeline.clone(),
            ..Default::default()
        };
        Steps {
            current,
            out: Vec::new(),
        }
    }

    fn push(&mut self, step: RolloutStep, detail: impl Into<String>) -> i64 {
        let at = now_ms();
        self.current.step = step;
        self.current.step_ms = at;
        self.current.detail = detail.into();
        self.out.push(self.current.clone());
        at
    }
}

fn transient(e: std::io::Error) -> StageError {
    StageError::Transient(format!("rollout state: {e}"))
}

impl RolloutCore {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn lock_for(&self, service: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        locks.entry(service.to_string()).or_default().clone()
    }

    /// Patches waiting for approval (for `selfheal pending`).
    pub fn pending(&self) -> std::io::Result<Vec<Patch>> {
        self.store.list()
    }

    fn evaluate(
        &self,
        patch: &Patch,
        svc: &ServiceEntry,
        approval: Option<selfheal_governance::Approval>,
    ) -> Result<DeployVerdict, String> {
        let input = DeployInput {
            service: svc.name.clone(),
            autonomy: svc.autonomy,
            approval,
            patch_policy_allowed: patch.policy.as_ref().is_some_and(|p| p.allowed),
            environment: self.config.environment.clone(),
            change_freeze: self.config.change_freeze,
        };
        self.policy.evaluate_deploy(&input).map_err(|e| e.to_string())
    }

    /// Ends the incident with `steps`: remembers the last step, returns them all.
    fn finish(&self, steps: Steps) -> Vec<RolloutRecord> {
        if let Some(last) = steps.out.last()
            && let Err(e) = self.store.finish(last)
        {
            // The steps still go out; only replay recognition is weakened.
            tracing::error!(incident = %last.incident_id, error = %e, "cannot record the finished rollout");
        }
        steps.out
    }

    fn policy_denied(&self, mut steps: Steps, why: String) -> Vec<RolloutRecord> {
        let at = now_ms();
        steps.current.approval = Some(ApprovalDecision {
            approved: false,
            by: "policy".into(),
            mode: ApprovalMode::Policy,
            at_ms: at,
            reason: Some(why.clone()),
            channel: Some("policy".into()),
        });
        steps.current.timeline.approval_ms = Some(at);
        steps.push(RolloutStep::PolicyDenied, format!("deploy denied by policy: {why}"));
        self.finish(steps)
    }

    /// Checks that the service can be deployed here; `Err` holds the finished steps.
    fn service_for<'a>(&'a self, patch: &Patch) -> Result<&'a ServiceEntry, Vec<RolloutRecord>> {
        let mut steps = Steps::new(patch, self.deployer.name());
        let Some(svc) = self.catalog.service(&patch.service) else {
            steps.push(
                RolloutStep::Failed,
                format!("{} is not in the service catalog; nothing deployed", patch.service),
            );
            return Err(self.finish(steps));
        };
        if svc.deployer != self.deployer.name() {
            steps.current.deployer = svc.deployer.clone();
            steps.push(
                RolloutStep::Failed,
                format!(
                    "deployer `{}` is not available here (this rollout runs `{}`)",
                    svc.deployer,
                    self.deployer.name()
                ),
            );
            return Err(self.finish(steps));
        }
        Ok(svc)
    }

    /// A new patch: skip, deny, wait for a person, or approve and deploy.
    async fn on_patch(&self, patch: Patch) -> Result<Vec<RolloutRecord>, StageError> {
        if let Some(done) = self.store.finished(&patch.incident_id).map_err(transient)? {
            tracing::info!(incident = %patch.incident_id, step = ?done.step, "patch replayed for a finished rollout; repeating its last step");
            return Ok(vec![done]);
        }
        let mut steps = Steps::new(&patch, self.deployer.name());
        if patch.status != PatchStatus::Proposed {
            steps.push(
                RolloutStep::Skipped,
                format!("nothing to deploy ({:?}): {}", patch.status, patch.summary),
            );
            return Ok(self.finish(steps));
        }
        let svc = match self.service_for(&patch) {
            Ok(svc) => svc,
            Err(out) => return Ok(out),
        };
        if svc.autonomy == Autonomy::Auto {
            let auto = selfheal_governance::Approval {
                approved: true,
                by: CATALOG_APPROVER.into(),
                mode: selfheal_governance::ApprovalMode::Auto,
            };
            match self.evaluate(&patch, svc, Some(auto)) {
                Err(e) => return Ok(self.policy_denied(steps, format!("no verdict ({e})"))),
                Ok(v) if !v.allowed => return Ok(self.policy_denied(steps, v.violations.join("; "))),
                Ok(v) if v.allow_auto_approval => {
                    let decision = ApprovalDecision {
                        approved: true,
                        by: CATALOG_APPROVER.into(),
                        mode: ApprovalMode::Automatic,
                        at_ms: now_ms(),
                        reason: Some(format!("{} autonomy=auto; policy allowed", svc.name)),
                        channel: Some(CATALOG_APPROVER.into()),
                    };
                    return Ok(self.deploy(steps, svc, decision).await);
                }
                // Allowed but not for automatic approval: a person decides.
                Ok(_) => {}
            }
        } else {
            // Ask policy now, so a person is never asked to approve what policy will deny anyway.
            match self.evaluate(&patch, svc, None) {
                Err(e) => return Ok(self.policy_denied(steps, format!("no verdict ({e})"))),
                Ok(v) => {
                    let blocking: Vec<&String> = v
                        .violations
                        .iter()
                        .filter(|m| !m.starts_with("approval-required:"))
                        .collect();
                    if !blocking.is_empty() {
                        let why = blocking.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ");
                        return Ok(self.policy_denied(steps, why));
                    }
                }
            }
        }
        self.store.put(&patch).map_err(transient)?;
        steps.push(
            RolloutStep::AwaitingApproval,
            format!(
                "waiting for approval: `selfheal approve {}` (or reject)",
                patch.incident_id
            ),
        );
        Ok(steps.out)
    }

    /// A person's decision on a pending patch.
    async fn on_approval(&self, approval: Approval) -> Result<Vec<RolloutRecord>, StageError> {
        if let Some(done) = self.store.finished(&approval.incident_id).map_err(transient)? {
            tracing::info!(incident = %approval.incident_id, step = ?done.step, "approval for a finished rollout; repeating its last step");
            return Ok(vec![done]);
        }
        let Some(patch) = self.store.get(&approval.incident_id).map_err(transient)? else {
            return Err(StageError::Invalid(format!(
                "no patch is pending approval for incident {}",
                approval.incident_id
            )));
        };
        let svc = match self.service_for(&patch) {
            Ok(svc) => svc,
            Err(out) => return Ok(out),
        };
        let mut steps = Steps::new(&patch, self.deployer.name());
        let mut decision = approval.decision;
        if decision.at_ms <= 0 {
            decision.at_ms = now_ms();
        }
        let held = self.held().remove(&patch.incident_id);
        if let Some(held) = held {
            return Ok(self.decide_held(svc, held, decision).await);
        }
        if !decision.approved {
            let by = decision.by.clone();
            let reason = decision.reason.clone().unwrap_or_default();
            steps.current.timeline.approval_ms = Some(decision.at_ms);
            steps.current.approval = Some(decision);
            steps.push(
                RolloutStep::Rejected,
                format!("rejected by {by}: {reason}")
                    .trim_end_matches([':', ' '])
                    .to_string(),
            );
            return Ok(self.finish(steps));
        }
        let mode = match decision.mode {
            ApprovalMode::Automatic => selfheal_governance::ApprovalMode::Auto,
            ApprovalMode::Human | ApprovalMode::Policy => selfheal_governance::ApprovalMode::Human,
        };
        let approval = selfheal_governance::Approval {
            approved: true,
            by: decision.by.clone(),
            mode,
        };
        match self.evaluate(&patch, svc, Some(approval)) {
            Err(e) => Ok(self.policy_denied(steps, format!("no verdict ({e})"))),
            Ok(v) if !v.allowed => Ok(self.policy_denied(steps, v.violations.join("; "))),
            Ok(_) => Ok(self.deploy(steps, svc, decision).await),
        }
    }

    /// Approved: canary, analysis, then promotion or rollback. Stable serves throughout.
    async fn deploy(&self, mut steps: Steps, svc: &ServiceEntry, decision: ApprovalDecision) -> Vec<RolloutRecord> {
        let by = decision.by.clone();
        steps.current.timeline.approval_ms = Some(now_ms());
        steps.current.approval = Some(decision);
        steps.push(RolloutStep::Approved, format!("approved by {by}"));
        let patch = steps.current.patch.clone();

        let stable_version = match self.deployer.stable_version(svc).await {
            Ok(v) => v,
            Err(e) => {
                steps.push(
                    RolloutStep::Failed,
                    format!("stable version unknown: {e}; nothing deployed"),
                );
                return self.finish(steps);
            }
        };
        steps.current.stable_version = Some(stable_version.clone());
        let canary = match self.deployer.start_canary(svc, &patch).await {
            Ok(c) => c,
            Err(e) => {
                steps.push(
                    RolloutStep::Failed,
                    format!("canary did not start: {e}; stable {stable_version} keeps serving"),
                );
                return self.finish(steps);
            }
        };
        steps.current.canary_version = Some(canary.version.clone());
        let default_weight = svc
            .deploy_int("canary_traffic_percent")
            .ok()
            .flatten()
            .unwrap_or(DEFAULT_CANARY_PERCENT)
            .clamp(1, 100) as u8;
        let canary_config = match self.config.analysis.for_service(svc, default_weight) {
            Ok(c) => c,
            Err(e) => {
                let undo = self
                    .deployer
                    .rollback(svc, &canary)
                    .await
                    .err()
                    .map(|e| format!("; rollback failed too: {e}"))
                    .unwrap_or_default();
                steps.push(
                    RolloutStep::Failed,
                    format!("catalog entry of {}: {e}{undo}; stable keeps serving", svc.name),
                );
                return self.finish(steps);
            }
        };
        let percent = canary_config.steps.first().map_or(default_weight, |s| s.weight);
        if let Err(e) = self.deployer.set_canary_weight(svc, &canary, percent).await {
            let undo = self
                .deployer
                .rollback(svc, &canary)
                .await
                .err()
                .map(|e| format!("; rollback failed too: {e}"))
                .unwrap_or_default();
            steps.push(
                RolloutStep::Failed,
                format!("cannot route traffic to the canary: {e}{undo}; stable keeps serving"),
            );
            return self.finish(steps);
        }
        steps.current.traffic_percent = i32::from(percent);
        let since = now_ms();
        steps.current.timeline.canary_ms = Some(since);
        steps.push(
            RolloutStep::CanaryStarted,
            format!(
                "canary {} on {} · {percent}% traffic · stable {stable_version} · {} step(s)",
                canary.version,
                canary.address,
                canary_config.steps.len()
            ),
        );

        let weights = DeployerWeights {
            deployer: self.deployer.as_ref(),
            svc,
            canary: &canary,
        };
        let analysis = analyze(
            self.rates.as_ref(),
            &weights,
            &svc.name,
            &stable_version,
            &canary.version,
            since,
            &canary_config,
            self.config.analysis.poll,
        )
        .await;
        steps.current.canary_error_rate = Some(analysis.canary.error_rate());
        steps.current.stable_error_rate = Some(analysis.stable.error_rate());
        steps.current.canary_requests = i64::try_from(analysis.canary.requests).unwrap_or(i64::MAX);
        steps.current.stable_requests = i64::try_from(analysis.stable.requests).unwrap_or(i64::MAX);
        steps.current.traffic_percent = i32::from(analysis.weight);
        steps.current.canary_report = Some(analysis.report.clone());
        let over = format!("over {:.0}s", analysis.observed.as_secs_f64());
        steps.push(RolloutStep::CanaryAnalyzed, format!("{} {over}", analysis.reason));

        match analysis.decision {
            Decision::Promote => {
                self.promote(
                    steps,
                    svc,
                    &canary,
                    &stable_version,
                    &format!("{} {over}", analysis.reason),
                )
                .await
            }
            Decision::RollBack => {
                self.roll_back(
                    steps,
                    svc,
                    &canary,
                    &stable_version,
                    &format!("{} {over}", analysis.reason),
                )
                .await
            }
            Decision::Hold => {
                // The patch goes back to the pending store so `selfheal pending` lists it and
                // an approval finds it; the canary keeps its share of traffic meanwhile.
                if let Err(e) = self.store.put(&steps.current.patch) {
                    tracing::error!(incident = %steps.current.incident_id, error = %e, "cannot keep the held patch; rolling back");
                    return self
                        .roll_back(
                            steps,
                            svc,
                            &canary,
                            &stable_version,
                            &format!("{} {over}; cannot hold it: {e}", analysis.reason),
                        )
                        .await;
                }
                steps.push(
                    RolloutStep::CanaryHeld,
                    format!(
                        "canary held for a person ({} {over}): `selfheal approve {}` promotes it, reject rolls it back",
                        analysis.reason, steps.current.incident_id
                    ),
                );
                let last = steps.current.clone();
                self.held().insert(last.incident_id.clone(), Held { canary, last });
                steps.out
            }
        }
    }

    /// Promotes the canary (or says why it could not).
    async fn promote(
        &self,
        mut steps: Steps,
        svc: &ServiceEntry,
        canary: &CanaryHandle,
        stable_version: &str,
        why: &str,
    ) -> Vec<RolloutRecord> {
        match self.deployer.promote(svc, canary).await {
            Ok(()) => {
                steps.current.timeline.promotion_ms = Some(now_ms());
                steps.current.traffic_percent = 100;
                steps.push(RolloutStep::Promoted, format!("{why} · promoted"));
            }
            Err(e) => {
                let undo = self
                    .deployer
                    .rollback(svc, canary)
                    .await
                    .err()
                    .map(|e| format!("; rollback failed too: {e}"))
                    .unwrap_or_default();
                steps.current.traffic_percent = 0;
                steps.push(
                    RolloutStep::Failed,
                    format!("promotion failed: {e}{undo}; stable {stable_version} keeps serving"),
                );
            }
        }
        self.finish(steps)
    }

    /// Rolls the canary back (or says why it could not).
    async fn roll_back(
        &self,
        mut steps: Steps,
        svc: &ServiceEntry,
        canary: &CanaryHandle,
        stable_version: &str,
        why: &str,
    ) -> Vec<RolloutRecord> {
        match self.deployer.rollback(svc, canary).await {
            Ok(()) => {
                steps.current.timeline.rollback_ms = Some(now_ms());
                steps.current.traffic_percent = 0;
                steps.push(
                    RolloutStep::RolledBack,
                    format!("{why} · rolled back; stable {stable_version} keeps serving"),
                );
            }
            Err(e) => {
                steps.push(RolloutStep::Failed, format!("{why}; rollback failed: {e}"));
            }
        }
        self.finish(steps)
    }

    /// A person's decision on a held canary: approval promotes it, rejection rolls it back.
    async fn decide_held(&self, svc: &ServiceEntry, held: Held, decision: ApprovalDecision) -> Vec<RolloutRecord> {
        let mut steps = Steps {
            current: held.last,
            out: Vec::new(),
        };
        let by = decision.by.clone();
        let approved = decision.approved;
        steps.current.approval = Some(decision);
        let stable_version = steps.current.stable_version.clone().unwrap_or_default();
        if approved {
            self.promote(
                steps,
                svc,
                &held.canary,
                &stable_version,
                &format!("held canary approved by {by}"),
            )
            .await
        } else {
            self.roll_back(
                steps,
                svc,
                &held.canary,
                &stable_version,
                &format!("held canary rejected by {by}"),
            )
            .await
        }
    }
}

/// The rollout stage: `patches` → `rollouts`.
#[derive(Debug, Clone)]
pub struct Rollout {
    core: Arc<RolloutCore>,
}

impl Rollout {
    /// A rollout stage keeping its state in a [`FilePendingStore`] under `config.state_dir`.
    pub fn new(
        catalog: Arc<Catalog>,
        policy: Arc<PolicyEngine>,
        deployer: Arc<dyn Deployer>,
        rates: Arc<dyn CanarySamples>,
        config: RolloutConfig,
    ) -> Result<Self, RolloutError> {
        let store = Arc::new(FilePendingStore::open(&config.state_dir)?);
        Ok(Self::with_store(catalog, policy, deployer, rates, store, config))
    }

    /// A rollout stage with the given store.
    pub fn with_store(
        catalog: Arc<Catalog>,
        policy: Arc<PolicyEngine>,
        deployer: Arc<dyn Deployer>,
        rates: Arc<dyn CanarySamples>,
        store: Arc<dyn PendingStore>,
        config: RolloutConfig,
    ) -> Self {
        let core = RolloutCore {
            catalog,
            policy,
            deployer,
            rates,
            store,
            config,
            locks: std::sync::Mutex::new(HashMap::new()),
            held: std::sync::Mutex::new(HashMap::new()),
        };
        Rollout { core: Arc::new(core) }
    }

    /// The approvals stage sharing this stage's store and deployer.
    pub fn approvals(&self) -> ApprovalStage {
        ApprovalStage::new(self.core.clone())
    }

    /// The shared parts.
    pub fn core(&self) -> &Arc<RolloutCore> {
        &self.core
    }

    /// Patches waiting for approval (for `selfheal pending`).
    pub fn pending(&self) -> std::io::Result<Vec<Patch>> {
        self.core.pending()
    }
}

/// The approvals stage: `approvals` → `rollouts`.
#[derive(Debug, Clone)]
pub struct ApprovalStage {
    core: Arc<RolloutCore>,
}

impl ApprovalStage {
    /// An approvals stage over the shared parts of a [`Rollout`].
    pub fn new(core: Arc<RolloutCore>) -> Self {
        ApprovalStage { core }
    }
}

/// The stage name of the patches stage: group `selfheal-rollout`.
pub const STAGE_NAME: &str = "rollout";
/// The stage name of the approvals stage: group `selfheal-rollout-approvals`.
pub const APPROVALS_STAGE_NAME: &str = "rollout-approvals";

#[async_trait]
impl Stage for Rollout {
    type Input = Patch;
    type Output = RolloutRecord;

    fn name(&self) -> &'static str {
        STAGE_NAME
    }

    async fn process(&self, patch: Patch, _ctx: &RecordContext) -> Result<Vec<RolloutRecord>, StageError> {
        if !valid_incident_id(&patch.incident_id) {
            return Err(StageError::Invalid(format!(
                "incident id `{}` is not a plain name",
                patch.incident_id.escape_debug()
            )));
        }
        let lock = self.core.lock_for(&patch.service);
        let _guard = lock.lock().await;
        self.core.on_patch(patch).await
    }
}

#[async_trait]
impl Stage for ApprovalStage {
    type Input = Approval;
    type Output = RolloutRecord;

    fn name(&self) -> &'static str {
        APPROVALS_STAGE_NAME
    }

    async fn process(&self, approval: Approval, _ctx: &RecordContext) -> Result<Vec<RolloutRecord>, StageError> {
        if !valid_incident_id(&approval.incident_id) {
            return Err(StageError::Invalid(format!(
                "incident id `{}` is not a plain name",
                approval.incident_id.escape_debug()
            )));
        }
        let service = self
            .core
            .store
            .get(&approval.incident_id)
            .map_err(transient)?
            .map(|p| p.service)
            .unwrap_or_default();
        let lock = self.core.lock_for(&service);
        let _guard = lock.lock().await;
        self.core.on_approval(approval).await
    }
}
