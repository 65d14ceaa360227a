//! Review on the code host is the approval: for services whose catalog entry names a code host,
//! the pull request the repairer opened decides the rollout, and the rollout reports back on it.
//!
//! - [`ReviewWatcher`] polls the pull request of every pending patch (a webhook can replace the
//!   polling later; polling also works where no webhook can reach selfheal). An approving review
//!   from an approver, or an approver's `/selfheal approve` comment, approves; "request changes",
//!   `/selfheal reject`, or closing the pull request rejects. The decision becomes an ordinary
//!   `Approval` record on `approvals` (by the reviewer, channel `<provider>-review`,
//!   `<provider>-comment` or `<provider>-closed`), so the approvals stage, its policy check and its
//!   replay handling are the same for every channel.
//! - [`CodeHostReporter`] wraps the deployer: as the canary starts, takes traffic, is promoted or
//!   rolled back, the pull request's head commit gets a `selfheal/canary` status and a comment;
//!   after promotion the pull request is merged and its branch deleted when the catalog says
//!   `merge = true`. Code-host failures are logged and never stop a deploy or a rollback.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use selfheal_catalog::{Catalog, ServiceEntry};
use selfheal_codehost::{CodeHost, CommitStatus, PullRequestState, STATUS_CONTEXT, StatusState, decide};
use selfheal_events::{Approval, ApprovalDecision, ApprovalMode, Patch};

use crate::deployer::{CanaryHandle, Deployer};
use crate::error::DeployError;

/// Code-host clients by service, made when first needed from the catalog entry.
#[derive(Default)]
pub struct CodeHosts {
    hosts: Mutex<HashMap<String, Arc<dyn CodeHost>>>,
}

impl std::fmt::Debug for CodeHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeHosts").finish_non_exhaustive()
    }
}

impl CodeHosts {
    /// The client for `svc`, `None` when its entry names no code host or the client cannot be
    /// made (logged: a missing token must not stop deploys of a service that has one).
    pub fn for_service(&self, svc: &ServiceEntry) -> Option<Arc<dyn CodeHost>> {
        let settings = svc.code_host.as_ref()?;
        let mut hosts = match self.hosts.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(host) = hosts.get(&svc.name) {
            return Some(host.clone());
        }
        match selfheal_codehost::connect(settings) {
            Ok(host) => {
                hosts.insert(svc.name.clone(), host.clone());
                Some(host)
            }
            Err(e) => {
                tracing::error!(service = %svc.name, error = %e, "code host unusable");
                None
            }
        }
    }

    /// Uses `host` for `service` (tests, and hosts built another way).
    pub fn insert(&self, service: &str, host: Arc<dyn CodeHost>) {
        let mut hosts = match self.hosts.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        hosts.insert(service.to_string(), host);
    }
}

/// Where the patches waiting for approval are (the rollout's pending store).
pub trait PendingPatches: Send + Sync {
    /// Every patch waiting for a decision.
    fn pending(&self) -> std::io::Result<Vec<Patch>>;
}

impl PendingPatches for crate::stage::RolloutCore {
    fn pending(&self) -> std::io::Result<Vec<Patch>> {
        crate::stage::RolloutCore::pending(self)
    }
}

/// Where decisions go: the `approvals` topic in the service, a list in tests.
#[async_trait]
pub trait ApprovalSink: Send + Sync {
    /// Publishes one decision.
    async fn send(&self, approval: &Approval) -> Result<(), String>;
}

/// [`ApprovalSink`] onto a Kafka topic through the core publisher.
pub struct KafkaApprovalSink {
    publisher: selfheal_core::Publisher,
    topic: String,
}

impl KafkaApprovalSink {
    /// Publishes to `topic` (its schema must be registered).
    pub fn new(publisher: selfheal_core::Publisher, topic: String) -> Self {
        KafkaApprovalSink { publisher, topic }
    }
}

#[async_trait]
impl ApprovalSink for KafkaApprovalSink {
    async fn send(&self, approval: &Approval) -> Result<(), String> {
        self.publisher
            .publish(&self.topic, approval, &HashMap::new())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Turns pull-request reviews into approval records (see the module docs).
pub struct ReviewWatcher {
    catalog: Arc<Catalog>,
    pending: Arc<dyn PendingPatches>,
    hosts: Arc<CodeHosts>,
    sink: Arc<dyn ApprovalSink>,
    /// Incidents decided by this process: a decision is sent once, while the approvals stage
    /// takes it up (after a restart it may be sent again; the approvals stage repeats the
    /// finished rollout's last step for a second decision).
    sent: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for ReviewWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewWatcher").finish_non_exhaustive()
    }
}

impl ReviewWatcher {
    /// A watcher over the pending patches of `pending`.
    pub fn new(
        catalog: Arc<Catalog>,
        pending: Arc<dyn PendingPatches>,
        hosts: Arc<CodeHosts>,
        sink: Arc<dyn ApprovalSink>,
    ) -> Self {
        ReviewWatcher {
            catalog,
            pending,
            hosts,
            sink,
            sent: Mutex::new(HashSet::new()),
        }
    }

    /// Looks at every pending patch's pull request once; sends and returns the decisions found.
    pub async fn poll_once(&self) -> Vec<Approval> {
        let patches = match self.pending.pending() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list pending patches");
                return Vec::new();
            }
        };
        let mut decided = Vec::new();
        for patch in patches {
            if self.already_sent(&patch.incident_id) {
                continue;
            }
            let Some(svc) = self.catalog.service(&patch.service) else {
                continue;
            };
            let (Some(settings), Some(branch)) = (&svc.code_host, &patch.branch) else {
                continue;
            };
            let Some(host) = self.hosts.for_service(svc) else {
                continue;
            };
            let approval = match review_decision(host.as_ref(), settings, branch, &patch).await {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(incident = %patch.incident_id, error = %e, "cannot read the pull request");
                    continue;
                }
            };
            if let Err(e) = self.sink.send(&approval).await {
                tracing::warn!(incident = %patch.incident_id, error = %e, "cannot publish the review decision; next poll retries");
                continue;
            }
            self.mark_sent(&patch.incident_id);
            tracing::info!(
                incident = %patch.incident_id,
                approved = approval.decision.approved,
                by = %approval.decision.by,
                channel = ?approval.decision.channel,
                "review decided the rollout"
            );
            decided.push(approval);
        }
        decided
    }

    /// Polls every `interval` until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: selfheal_core::Shutdown) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    fn already_sent(&self, incident: &str) -> bool {
        match self.sent.lock() {
            Ok(s) => s.contains(incident),
            Err(poisoned) => poisoned.into_inner().contains(incident),
        }
    }

    fn mark_sent(&self, incident: &str) {
        let mut sent = match self.sent.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        sent.insert(incident.to_string());
    }
}

/// The approval record the pull request of `branch` holds, if it holds a decision; the decision
/// is also acknowledged on the pull request (a status and a comment).
async fn review_decision(
    host: &dyn CodeHost,
    settings: &selfheal_catalog::CodeHostSettings,
    branch: &str,
    patch: &Patch,
) -> Result<Option<Approval>, selfheal_codehost::CodeHostError> {
    let Some(pr) = host.find_pull_request(branch).await? else {
        return Ok(None);
    };
    let (reviews, comments) = if pr.state == PullRequestState::Open {
        (host.reviews(pr.number).await?, host.comments(pr.number).await?)
    } else {
        (Vec::new(), Vec::new())
    };
    let Some(d) = decide(&pr, &reviews, &comments, |user| settings.is_approver(user)) else {
        return Ok(None);
    };
    let by = if d.by.is_empty() {
        format!("{} pull request #{}", host.provider(), pr.number)
    } else {
        d.by.clone()
    };
    let reason = if d.reason.is_empty() {
        format!("{} on {}", d.channel.as_str(), pr.url)
    } else {
        format!("{} ({} on {})", d.reason, d.channel.as_str(), pr.url)
    };
    let approval = Approval {
        incident_id: patch.incident_id.clone(),
        decision: ApprovalDecision {
            approved: d.approved,
            by: by.clone(),
            mode: ApprovalMode::Human,
            at_ms: if d.at_ms > 0 { d.at_ms } else { selfheal_core::now_ms() },
            reason: Some(reason),
            channel: Some(format!("{}-{}", host.provider(), d.channel.as_str())),
        },
    };
    if pr.state == PullRequestState::Open {
        let (state, description) = if d.approved {
            (StatusState::Pending, format!("approved by {by}; canary next"))
        } else {
            (StatusState::Failure, format!("rejected by {by}; nothing deployed"))
        };
        report(host, &pr.head_sha, pr.number, state, &description, None).await;
    }
    Ok(Some(approval))
}

/// Sets the status and, when `comment` is given, comments; failures are logged only.
async fn report(
    host: &dyn CodeHost,
    sha: &str,
    number: u64,
    state: StatusState,
    description: &str,
    comment: Option<&str>,
) {
    let status = CommitStatus {
        state,
        context: STATUS_CONTEXT.into(),
        description: description.chars().take(140).collect(),
    };
    if let Err(e) = host.set_status(sha, &status).await {
        tracing::warn!(pr = number, error = %e, "cannot set the commit status");
    }
    if let Some(text) = comment
        && let Err(e) = host.comment(number, text).await
    {
        tracing::warn!(pr = number, error = %e, "cannot comment on the pull request");
    }
}

/// The pull request a canary belongs to.
#[derive(Debug, Clone)]
struct PrRef {
    host: Arc<dyn CodeHost>,
    number: u64,
    sha: String,
    branch: String,
    merge: bool,
}

/// A [`Deployer`] that reports each canary step on the patch's pull request (see module docs).
pub struct CodeHostReporter {
    inner: Arc<dyn Deployer>,
    hosts: Arc<CodeHosts>,
    canaries: Mutex<HashMap<String, PrRef>>,
}

impl std::fmt::Debug for CodeHostReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeHostReporter")
            .field("deployer", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl CodeHostReporter {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Deployer>, hosts: Arc<CodeHosts>) -> Self {
        CodeHostReporter {
            inner,
            hosts,
            canaries: Mutex::new(HashMap::new()),
        }
    }

    fn pr_of(&self, canary: &CanaryHandle) -> Option<PrRef> {
        match self.canaries.lock() {
            Ok(c) => c.get(&canary.incident_id).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&canary.incident_id).cloned(),
        }
    }

    fn forget(&self, canary: &CanaryHandle) {
        let mut canaries = match self.canaries.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        canaries.remove(&canary.incident_id);
    }

    async fn find_pr(&self, svc: &ServiceEntry, patch: &Patch) -> Option<PrRef> {
        let host = self.hosts.for_service(svc)?;
        let branch = patch.branch.clone()?;
        match host.find_pull_request(&branch).await {
            Ok(Some(pr)) => Some(PrRef {
                host,
                number: pr.number,
                sha: pr.head_sha,
                branch,
                merge: svc.code_host.as_ref().is_some_and(|c| c.merge),
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(incident = %patch.incident_id, error = %e, "cannot find the pull request");
                None
            }
        }
    }
}

#[async_trait]
impl Deployer for CodeHostReporter {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn stable_version(&self, svc: &ServiceEntry) -> Result<String, DeployError> {
        self.inner.stable_version(svc).await
    }

    async fn start_canary(&self, svc: &ServiceEntry, patch: &Patch) -> Result<CanaryHandle, DeployError> {
        let result = self.inner.start_canary(svc, patch).await;
        let Some(pr) = self.find_pr(svc, patch).await else {
            return result;
        };
        match &result {
            Ok(canary) => {
                let text = format!("canary {} started on {}", canary.version, canary.address);
                report(pr.host.as_ref(), &pr.sha, pr.number, StatusState::Pending, &text, None).await;
                let mut canaries = match self.canaries.lock() {
                    Ok(c) => c,
                    Err(poisoned) => poisoned.into_inner(),
                };
                canaries.insert(canary.incident_id.clone(), pr);
            }
            Err(e) => {
                let text = format!("canary did not start: {e}");
                report(
                    pr.host.as_ref(),
                    &pr.sha,
                    pr.number,
                    StatusState::Error,
                    &text,
                    Some(&text),
                )
                .await;
            }
        }
        result
    }

    async fn set_canary_weight(
        &self,
        svc: &ServiceEntry,
        canary: &CanaryHandle,
        percent: u8,
    ) -> Result<(), DeployError> {
        let result = self.inner.set_canary_weight(svc, canary, percent).await;
        if result.is_ok()
            && let Some(pr) = self.pr_of(canary)
        {
            let text = format!("canary {} takes {percent}% of the traffic", canary.version);
            report(pr.host.as_ref(), &pr.sha, pr.number, StatusState::Pending, &text, None).await;
        }
        result
    }

    async fn promote(&self, svc: &ServiceEntry, canary: &CanaryHandle) -> Result<(), DeployError> {
        let result = self.inner.promote(svc, canary).await;
        let Some(pr) = self.pr_of(canary) else {
            return result;
        };
        self.forget(canary);
        let host = pr.host.as_ref();
        match &result {
            Ok(()) => {
                let text = format!("canary {} promoted: it serves all traffic", canary.version);
                report(
                    host,
                    &pr.sha,
                    pr.number,
                    StatusState::Success,
                    &text,
                    Some(&format!("selfheal: {text}.")),
                )
                .await;
                if pr.merge {
                    match host.merge(pr.number).await {
                        Ok(()) => {
                            if let Err(e) = host.delete_branch(&pr.branch).await {
                                tracing::warn!(pr = pr.number, error = %e, "merged; cannot delete the branch");
                            }
                            tracing::info!(pr = pr.number, "pull request merged after promotion");
                        }
                        Err(e) => {
                            let text = format!("selfheal: promoted, but the merge failed: {e}");
                            report(
                                host,
                                &pr.sha,
                                pr.number,
                                StatusState::Success,
                                "promoted; merge failed",
                                Some(&text),
                            )
                            .await;
                        }
                    }
                }
            }
            Err(e) => {
                let text = format!("promotion failed: {e}");
                report(
                    host,
                    &pr.sha,
                    pr.number,
                    StatusState::Error,
                    &text,
                    Some(&format!("selfheal: {text}")),
                )
                .await;
            }
        }
        result
    }

    async fn rollback(&self, svc: &ServiceEntry, canary: &CanaryHandle) -> Result<(), DeployError> {
        let result = self.inner.rollback(svc, canary).await;
        if let Some(pr) = self.pr_of(canary) {
            self.forget(canary);
            let text = match &result {
                Ok(()) => format!("canary {} rolled back; stable keeps serving", canary.version),
                Err(e) => format!("canary {} rollback failed: {e}", canary.version),
            };
            report(
                pr.host.as_ref(),
                &pr.sha,
                pr.number,
                StatusState::Failure,
                &text,
                Some(&format!("selfheal: {text}.")),
            )
            .await;
        }
        result
    }
}
