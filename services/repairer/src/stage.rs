//! The repairer stage: diagnosis in, one patch record out, whatever happens.
//!
//! The flow itself (localise → candidates → regression test → validate → gate → commit) is
//! in [`crate::flow`]; this module holds the repairer's parts, its configuration, the
//! `Stage` implementation and the replay of a diagnosis whose branch exists (answered from
//! that branch, nothing redone). Every failure becomes a patch status with attempts that
//! say why; nothing is dropped, nothing panics.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use selfheal_catalog::{Catalog, ServiceEntry};
use selfheal_core::{RecordContext, Stage, StageError, now_ms};
use selfheal_events::{Diagnosis, Patch, PatchAttempt, PatchStatus, RegressionTest, Validation};
use selfheal_governance::{PatchOrigin, PolicyEngine};
use selfheal_llm::LlmClient;

use crate::agent::{Agent, AgentSettings};
use crate::gate;
use crate::git::{Git, GitCli};
use crate::languages::{Languages, safe_chars};
use crate::pull_requests::{CodeHostPullRequests, PullRequestError, PullRequests};
use crate::sandbox::Sandbox;
use crate::templates::Registry;

/// Plain configuration values of the repairer (the binary fills them from flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairerConfig {
    /// Replaces a leading `python3`/`python` of the catalog's test command (e.g. a venv's python).
    pub python: Option<String>,
    /// Run tests without isolation when neither bwrap nor unshare works (never the default).
    pub allow_unsandboxed: bool,
    /// Where sandbox copies and temporary worktrees are made.
    pub work_dir: PathBuf,
}

impl Default for RepairerConfig {
    fn default() -> Self {
        RepairerConfig {
            python: None,
            allow_unsandboxed: false,
            work_dir: std::env::temp_dir().join("selfheal-repairer"),
        }
    }
}

/// The repairer: builds, proves, gates and commits fixes.
pub struct Repairer {
    pub(crate) catalog: Catalog,
    pub(crate) policy: PolicyEngine,
    pub(crate) sandbox: Arc<dyn Sandbox>,
    pub(crate) config: RepairerConfig,
    pub(crate) templates: Registry,
    pub(crate) languages: Languages,
    pub(crate) git: Arc<dyn Git>,
    pub(crate) pull_requests: Arc<dyn PullRequests>,
    pub(crate) agent: Option<Agent>,
}

impl Repairer {
    /// A repairer with the built-in templates, git on the command line, and pull requests on
    /// the code host each service's catalog entry names (a local branch when it names none).
    pub fn new(
        catalog: Catalog,
        policy_engine: PolicyEngine,
        sandbox: Arc<dyn Sandbox>,
        config: RepairerConfig,
    ) -> Self {
        let git = Arc::new(GitCli::new(config.work_dir.clone()));
        Repairer {
            catalog,
            policy: policy_engine,
            sandbox,
            config,
            templates: Registry::builtin(),
            languages: Languages::builtin(),
            git,
            pull_requests: Arc::new(CodeHostPullRequests::default()),
            agent: None,
        }
    }

    /// Lets a model write a fix when no template or learned fix was proven (`None`: no
    /// model, the deterministic path only). See [`crate::agent`].
    pub fn with_llm(mut self, client: Option<LlmClient>, settings: AgentSettings) -> Self {
        self.agent = client.map(|client| Agent::new(client, settings));
        self
    }

    /// Uses another git implementation.
    pub fn with_git(mut self, git: Arc<dyn Git>) -> Self {
        self.git = git;
        self
    }

    /// Uses another pull request implementation.
    pub fn with_pull_requests(mut self, pull_requests: Arc<dyn PullRequests>) -> Self {
        self.pull_requests = pull_requests;
        self
    }

    /// Uses another set of templates.
    pub fn with_templates(mut self, templates: Registry) -> Self {
        self.templates = templates;
        self
    }

    /// The patch for one diagnosis; never fails, failures are patch statuses.
    pub async fn repair(&self, diag: Diagnosis) -> Patch {
        self.repair_and_propose(diag).await.0
    }

    /// The patch, and the error of a pull request that could not be opened for a reason that
    /// may pass (the host unreachable): the stage then retries the diagnosis, whose replay
    /// finds the branch and completes the pull request.
    async fn repair_and_propose(&self, diag: Diagnosis) -> (Patch, Option<PullRequestError>) {
        let mut patch = self.repair_only(&diag).await;
        let mut retry = None;
        if patch.status == PatchStatus::Proposed
            && let Some(entry) = self.catalog.service(&patch.service)
        {
            match self.pull_requests.propose(entry, &diag, &patch).await {
                Ok(url) => patch.pull_request_url = url,
                Err(err) => {
                    tracing::warn!(incident = %patch.incident_id, error = %err, transient = err.transient, "pull request not opened");
                    patch
                        .attempts
                        .push(attempt("pull-request", "error", err.message.clone()));
                    if err.transient {
                        retry = Some(err);
                    }
                }
            }
        }
        (patch, retry)
    }

    async fn repair_only(&self, diag: &Diagnosis) -> Patch {
        let mut patch = Patch {
            incident_id: diag.incident_id.clone(),
            service: diag.service.clone(),
            fingerprint: diag.fingerprint.clone(),
            status: PatchStatus::Error,
            root_cause: diag.root_cause.clone(),
            exception_type: diag
                .exception
                .as_ref()
                .map(|e| e.r#type.clone())
                .or_else(|| diag.root_cause.as_ref().map(|rc| rc.exception_type.clone())),
            repository: diag.repository.clone(),
            timeline: diag.timeline.clone(),
            ..Patch::default()
        };
        self.run_flow(diag, &mut patch).await;
        if patch.llm.is_none()
            && let Some(spent) = &diag.llm
        {
            // The incident's model spend travels on to the outcome even when the repairer did
            // not ask; the diagnoser's exchanges stay on the diagnosis.
            patch.llm = Some(selfheal_events::LlmReport {
                notes: vec!["the repairer did not ask the model; the totals are the diagnoser's".into()],
                exchanges: Vec::new(),
                budget_exhausted: false,
                ..spent.clone()
            });
        }
        patch.timeline.patch_ms = Some(now_ms());
        tracing::info!(incident = %patch.incident_id, status = ?patch.status, summary = %patch.summary, "patch");
        patch
    }

    /// The patch of an existing `selfheal/<incident-id>` branch: a replay does no work twice.
    pub(crate) async fn replay(&self, entry: &ServiceEntry, branch: &str, commit: &str, patch: &mut Patch) {
        let repo = &entry.repository;
        let rebuilt = async {
            let base = self.git.parent(repo, commit).await?;
            let diff = self.git.diff(repo, &base, commit).await?;
            let message = self.git.message(repo, commit).await?;
            Ok::<_, crate::git::GitError>((base, diff, message))
        }
        .await;
        let (base, diff, message) = match rebuilt {
            Ok(parts) => parts,
            Err(err) => {
                patch.status = PatchStatus::Error;
                patch.summary = format!("branch {branch} exists but cannot be read: {err}");
                return;
            }
        };
        let trailer = |key: &str| {
            message
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}: ")).map(|v| v.trim().to_string()))
        };
        let strategy = trailer("Strategy").unwrap_or_else(|| "unknown".into());
        let learned = trailer("Learned").is_some_and(|v| v == "true");
        let flag = |text: &str, key: &str| text.contains(&format!("{key}=true"));
        let number = |text: &str, key: &str| {
            text.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let validation = trailer("Validation").map(|v| Validation {
            failed_before: flag(&v, "failed_before"),
            passed_after: flag(&v, "passed_after"),
            suite_passed: flag(&v, "suite_passed"),
            tests_run: i32::try_from(number(&v, "tests_run")).unwrap_or(0),
            tests_failed: i32::try_from(number(&v, "tests_failed")).unwrap_or(0),
            duration_ms: number(&v, "duration_ms"),
            sandbox: trailer("Sandbox").unwrap_or_default(),
            output_tail: String::new(),
        });
        if let Some((file, name)) =
            trailer("Regression-Test").and_then(|t| t.split_once("::").map(|(f, n)| (f.to_string(), n.to_string())))
            && let Ok(code) = self.git.show_file(repo, commit, &file).await
        {
            patch.regression_test = Some(RegressionTest { file, name, code });
        }
        let proven = validation.as_ref().map(|v| selfheal_governance::Validation {
            failed_before: v.failed_before,
            passed_after: v.passed_after,
            suite_passed: v.suite_passed,
        });
        let origin = if strategy == crate::agent::STRATEGY {
            PatchOrigin::Llm
        } else if learned {
            PatchOrigin::Learned
        } else {
            PatchOrigin::Template
        };
        patch.policy = Some(gate::evaluate(
            &self.policy,
            entry,
            &diff,
            &strategy,
            origin,
            proven.unwrap_or_default(),
        ));
        patch.files_changed = changed_files(&diff);
        patch.diff = diff;
        patch.validation = validation;
        patch.strategy = Some(strategy.clone());
        patch.learned = learned;
        patch.base_commit = Some(base);
        patch.branch = Some(branch.to_string());
        patch.commit = Some(commit.to_string());
        patch.status = PatchStatus::Proposed;
        patch.summary = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("selfheal: ")
            .to_string();
        patch.attempts = vec![attempt(
            &strategy,
            "replayed",
            format!(
                "branch {branch} already exists at {}: the earlier fix is reused, nothing was redone",
                short(commit)
            ),
        )];
    }
}

#[async_trait]
impl Stage for Repairer {
    type Input = Diagnosis;
    type Output = Patch;

    fn name(&self) -> &'static str {
        "repairer"
    }

    async fn process(&self, input: Diagnosis, _ctx: &RecordContext) -> Result<Vec<Patch>, StageError> {
        match self.repair_and_propose(input).await {
            (_, Some(err)) => Err(StageError::Transient(err.to_string())),
            (patch, None) => Ok(vec![patch]),
        }
    }
}

pub(crate) fn attempt(strategy: &str, result: &str, reason: String) -> PatchAttempt {
    PatchAttempt {
        strategy: strategy.to_string(),
        result: result.to_string(),
        reason,
        ..PatchAttempt::default()
    }
}

pub(crate) fn commit_message(patch: &Patch, what: &str, v: &Validation) -> String {
    let test = patch
        .regression_test
        .as_ref()
        .map(|t| format!("{}::{}", t.file, t.name))
        .unwrap_or_default();
    format!(
        "selfheal: {what}\n\n\
         Automatic fix for incident {id}, proven in a sandbox: the regression test\n\
         fails on the parent commit and passes here, and the test suite passes.\n\n\
         Incident: {id}\n\
         Fingerprint: {fp}\n\
         Strategy: {strategy}\n\
         Learned: {learned}\n\
         Regression-Test: {test}\n\
         Validation: failed_before={} passed_after={} suite_passed={} tests_run={} tests_failed={} duration_ms={}\n\
         Sandbox: {sandbox}\n",
        v.failed_before,
        v.passed_after,
        v.suite_passed,
        v.tests_run,
        v.tests_failed,
        v.duration_ms,
        id = patch.incident_id,
        fp = safe_chars(&patch.fingerprint),
        strategy = patch.strategy.as_deref().unwrap_or_default(),
        learned = patch.learned,
        sandbox = v.sandbox,
    )
}

/// Files named by a unified diff's `+++`/`---` headers.
fn changed_files(diff: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let lines: Vec<&str> = diff.lines().collect();
    for pair in lines.windows(2) {
        if let (Some(old), Some(new)) = (pair[0].strip_prefix("--- "), pair[1].strip_prefix("+++ ")) {
            let name = if new == "/dev/null" { old } else { new };
            let name = name
                .strip_prefix("a/")
                .or_else(|| name.strip_prefix("b/"))
                .unwrap_or(name);
            if !files.iter().any(|f| f == name) {
                files.push(name.to_string());
            }
        }
    }
    files
}

/// Branch names come from incident ids: only characters git and shells take literally.
pub(crate) fn check_incident_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with(['.', '-'])
        && !id.contains("..")
        && !id.ends_with(".lock")
        && !id.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "incident id `{}` cannot name a branch (allowed: letters, digits, - _ .)",
            bounded(id, 80)
        ))
    }
}

/// A repository-relative path that stays inside the repository.
pub(crate) fn check_relative_path(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && !path.starts_with(['/', '-'])
        && !path.contains(['\0', '\\', '\n'])
        && path.split('/').all(|s| !s.is_empty() && s != ".." && s != ".")
        && path.split('/').next() != Some(".git");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "path `{}` is not a plain path inside the repository",
            bounded(path, 200)
        ))
    }
}

pub(crate) fn write_file(root: &Path, path: &str, content: &[u8]) -> std::io::Result<()> {
    let target = root.join(path);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(target, content)
}

/// Makes `path` in `to` what it is in `from` (written, or removed when `from` lacks it).
pub(crate) fn sync_file(from: &Path, to: &Path, path: &str) -> std::io::Result<()> {
    match std::fs::read(from.join(path)) {
        Ok(content) => write_file(to, path, &content),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => match std::fs::remove_file(to.join(path)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        },
        Err(err) => Err(err),
    }
}

pub(crate) fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

pub(crate) fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

pub(crate) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn fmt_secs(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}
