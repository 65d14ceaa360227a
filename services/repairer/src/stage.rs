//! The repairer stage: diagnosis in, one patch record out, whatever happens.
//!
//! For a localised diagnosis: candidates (the learned fix first, then every template that
//! applies) → one regression test → per candidate, in a fresh sandboxed copy: the test must
//! fail on the old code, pass on the new, and the whole suite must pass → the policy gate
//! → a commit on `selfheal/<incident-id>` made in a temporary worktree. Every failure
//! becomes a patch status with attempts that say why; nothing is dropped, nothing panics.
//! A replayed diagnosis whose branch exists is answered from that branch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use selfheal_catalog::{Catalog, ServiceEntry};
use selfheal_core::{RecordContext, Stage, StageError, now_ms};
use selfheal_events::{
    Diagnosis, DiagnosisStatus, Patch, PatchAttempt, PatchStatus, RegressionTest, RootCause, Validation,
};
use selfheal_governance::{PatchOrigin, PolicyEngine};
use selfheal_llm::{IncidentLlm, LlmClient};

use crate::agent::{Agent, AgentInput, AgentSettings};
use crate::gate;
use crate::git::{FileChange, Git, GitCli};
use crate::pull_requests::{LocalPullRequests, PullRequest, PullRequests};
use crate::regression;
use crate::sandbox::{Isolation, Limits, ProcessSandbox, RunResult, Sandbox, SandboxError};
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

/// One fix to try.
#[derive(Debug, Clone)]
struct Candidate {
    /// The strategy recorded in the patch.
    strategy: String,
    /// The name of the attempt (`learned:<strategy>` for learned fixes).
    attempt_name: String,
    learned: bool,
    /// Where it came from, for the policy gate.
    origin: PatchOrigin,
    /// The self-critique of a model-written candidate.
    critique: Option<String>,
    /// A model-written candidate's own one-line summary.
    summary: Option<String>,
    change: Change,
}

impl Candidate {
    fn deterministic(strategy: &str, attempt_name: String, learned: bool, change: Change) -> Self {
        Candidate {
            strategy: strategy.to_string(),
            attempt_name,
            learned,
            origin: if learned {
                PatchOrigin::Learned
            } else {
                PatchOrigin::Template
            },
            critique: None,
            summary: None,
            change,
        }
    }

    /// An attempt of this candidate, carrying its critique.
    fn attempt(&self, result: &str, reason: String) -> PatchAttempt {
        PatchAttempt {
            critique: self.critique.clone(),
            ..attempt(&self.attempt_name, result, reason)
        }
    }
}

#[derive(Debug, Clone)]
enum Change {
    /// New content of one file.
    Rewrite { path: String, content: String },
    /// A unified diff remembered by the learning store.
    Diff(String),
    /// New contents of several files (a model's search/replace edits, applied).
    Files(Vec<(String, String)>),
}

/// Where a fix goes: the service, its repository, the base commit, the branch, the culprit.
#[derive(Clone, Copy)]
struct Place<'a> {
    entry: &'a ServiceEntry,
    repo: &'a Path,
    base: &'a str,
    branch: &'a str,
    root_cause: &'a RootCause,
}

/// A candidate that passed the sandbox.
struct Validated {
    validation: Validation,
    diff: String,
    files: Vec<FileChange>,
}

/// Why a candidate lost.
struct Lost {
    result: &'static str,
    reason: String,
    validation: Option<Validation>,
}

/// The repairer: builds, proves, gates and commits fixes.
pub struct Repairer {
    catalog: Catalog,
    policy: PolicyEngine,
    sandbox: Arc<dyn Sandbox>,
    config: RepairerConfig,
    templates: Registry,
    git: Arc<dyn Git>,
    pull_requests: Arc<dyn PullRequests>,
    agent: Option<Agent>,
}

impl Repairer {
    /// A repairer with the built-in templates, git on the command line and local pull requests.
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
            git,
            pull_requests: Arc::new(LocalPullRequests),
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
        self.fill(&diag, &mut patch).await;
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

    async fn fill(&self, diag: &Diagnosis, patch: &mut Patch) {
        if diag.status != DiagnosisStatus::Localized {
            patch.status = PatchStatus::NotLocalized;
            patch.summary = format!(
                "nothing attempted: the diagnosis is {:?}: {}",
                diag.status,
                bounded(&diag.summary, 300)
            );
            return;
        }
        let Some(root_cause) = diag.root_cause.clone() else {
            patch.status = PatchStatus::NotLocalized;
            patch.summary = "nothing attempted: the diagnosis names no root cause".into();
            return;
        };
        let Some(entry) = self.catalog.service(&diag.service) else {
            patch.summary = format!("service `{}` is not in the catalog", bounded(&diag.service, 100));
            return;
        };
        let repo = entry.repository.clone();
        patch.repository = Some(repo.display().to_string());
        if let Err(why) = check_incident_id(&diag.incident_id) {
            patch.summary = why;
            return;
        }
        if let Err(why) = check_relative_path(&root_cause.file) {
            patch.summary = why;
            return;
        }
        if let Err(err) = std::fs::create_dir_all(&self.config.work_dir) {
            patch.summary = format!("cannot create work dir {}: {err}", self.config.work_dir.display());
            return;
        }
        let branch = format!("selfheal/{}", diag.incident_id);
        match self.git.resolve_commit(&repo, &format!("refs/heads/{branch}")).await {
            Ok(Some(commit)) => return self.replay(entry, &branch, &commit, patch).await,
            Ok(None) => {}
            Err(err) => {
                patch.summary = format!("cannot read repository {}: {err}", repo.display());
                return;
            }
        }
        let base = match self.base_commit(&repo, diag).await {
            Ok(base) => base,
            Err(why) => {
                patch.summary = why;
                return;
            }
        };
        patch.base_commit = Some(base.clone());
        let source = match self.git.show_file(&repo, &base, &root_cause.file).await {
            Ok(source) => source,
            Err(err) => {
                patch.summary = format!("cannot read {} at {}: {err}", root_cause.file, short(&base));
                return;
            }
        };

        let candidates = self.candidates(diag, &root_cause, &source, &mut patch.attempts);
        let place = Place {
            entry,
            repo: &repo,
            base: &base,
            branch: &branch,
            root_cause: &root_cause,
        };
        if candidates.is_empty() {
            patch.status = PatchStatus::NoFixFound;
            patch.summary = format!(
                "no template or learned fix applies to {}:{}",
                root_cause.file, root_cause.line
            );
        } else if self.prove(&place, diag, &source, &candidates, patch).await {
            return;
        }
        self.ask_model(&place, diag, &source, patch).await;
    }

    /// Proves the deterministic candidates in order; the first proven one goes to the gate.
    /// `true` when that decided the patch (proven, or the sandbox refused to run), `false`
    /// when none was proven (the status says so and a model may still try).
    async fn prove(
        &self,
        place: &Place<'_>,
        diag: &Diagnosis,
        source: &str,
        candidates: &[Candidate],
        patch: &mut Patch,
    ) -> bool {
        let Place {
            entry,
            repo,
            base,
            root_cause,
            ..
        } = *place;
        let test = match regression::build(diag, root_cause, source, &entry.source_root) {
            Ok(mut test) => {
                if self.git.show_file(repo, base, &test.file).await.is_ok() {
                    test.file = regression::full_test_file_path(&diag.incident_id);
                }
                test
            }
            Err(err) => {
                for c in candidates {
                    patch.attempts.push(c.attempt("no-regression-test", err.to_string()));
                }
                patch.status = PatchStatus::ValidationFailed;
                patch.summary = format!("no candidate could be proven: {err}");
                return false;
            }
        };
        patch.regression_test = Some(test.clone());

        let mut last_failure = None;
        for candidate in candidates {
            match self.validate(entry, repo, base, root_cause, &test, candidate).await {
                Ok(validated) => {
                    self.gate_and_commit(place, candidate, validated, patch).await;
                    return true;
                }
                Err(Ok(lost)) => {
                    patch.attempts.push(PatchAttempt {
                        validation: lost.validation.clone(),
                        ..candidate.attempt(lost.result, lost.reason.clone())
                    });
                    if lost.validation.is_some() {
                        patch.validation = lost.validation;
                    }
                    last_failure = Some(lost.reason);
                }
                Err(Err(err)) => {
                    patch.attempts.push(candidate.attempt("error", err.to_string()));
                    patch.summary = format!("refusing to validate: {err}");
                    return true;
                }
            }
        }
        patch.status = PatchStatus::ValidationFailed;
        patch.summary = format!(
            "no candidate was proven in the sandbox: {}",
            last_failure.unwrap_or_default()
        );
        false
    }

    /// The model's turn, when one is configured: its candidate, once the self-critique
    /// accepted it, goes through the same sandbox and gate as a template fix. Whatever the
    /// model does, the patch keeps what the deterministic path found plus the attempts and
    /// the incident's model report; a candidate that is not proven and allowed leaves no branch.
    async fn ask_model(&self, place: &Place<'_>, diag: &Diagnosis, source: &str, patch: &mut Patch) {
        let Some(agent) = &self.agent else { return };
        let Place {
            entry,
            repo,
            base,
            root_cause,
            ..
        } = *place;
        let mut llm = IncidentLlm::start(agent.client(), diag.llm.as_ref());
        let mut test_file = regression::test_file_path(&diag.incident_id);
        if self.git.show_file(repo, base, &test_file).await.is_ok() {
            test_file = regression::full_test_file_path(&diag.incident_id);
        }
        let input = AgentInput {
            diag,
            root_cause,
            entry,
            source,
            base,
            test_file,
            test_command: self.test_command(entry),
        };
        let proposal = agent.propose(&input, self.git.as_ref(), repo, &mut llm).await;
        patch.attempts.extend(proposal.attempts);
        let earlier = patch.summary.clone();
        match proposal.accepted {
            None => {
                let why = patch
                    .attempts
                    .iter()
                    .rev()
                    .find(|a| a.strategy.starts_with(crate::agent::STRATEGY))
                    .map(|a| format!("{}: {}", a.result, bounded(&a.reason, 200)))
                    .unwrap_or_else(|| "no answer".into());
                patch.summary = format!("{earlier}; the model's fix was not tested ({why})");
            }
            Some(model) => {
                let candidate = Candidate {
                    strategy: crate::agent::STRATEGY.to_string(),
                    attempt_name: model.name.clone(),
                    learned: false,
                    origin: PatchOrigin::Llm,
                    critique: Some(model.critique.clone()),
                    summary: Some(model.summary.clone()),
                    change: Change::Files(model.files.clone()),
                };
                match self
                    .validate(entry, repo, base, root_cause, &model.test, &candidate)
                    .await
                {
                    Ok(validated) => {
                        patch.regression_test = Some(model.test.clone());
                        self.gate_and_commit(place, &candidate, validated, patch).await;
                    }
                    Err(Ok(lost)) => {
                        patch.attempts.push(PatchAttempt {
                            diff: Some(model.diff.clone()),
                            validation: lost.validation.clone(),
                            ..candidate.attempt(lost.result, lost.reason.clone())
                        });
                        if lost.validation.is_some() {
                            patch.validation = lost.validation;
                        }
                        patch.status = PatchStatus::ValidationFailed;
                        patch.summary = format!(
                            "{earlier}; the model-written fix was not proven in the sandbox: {}",
                            lost.reason
                        );
                    }
                    Err(Err(err)) => {
                        patch.attempts.push(PatchAttempt {
                            diff: Some(model.diff.clone()),
                            ..candidate.attempt("error", err.to_string())
                        });
                        patch.summary = format!("{earlier}; refusing to validate the model-written fix: {err}");
                    }
                }
            }
        }
        patch.llm = Some(llm.report());
    }

    /// The diagnosis's commit when the repository has it, else HEAD.
    async fn base_commit(&self, repo: &Path, diag: &Diagnosis) -> Result<String, String> {
        if let Some(commit) = diag.commit.as_deref()
            && let Ok(Some(found)) = self.git.resolve_commit(repo, commit).await
        {
            return Ok(found);
        }
        match self.git.resolve_commit(repo, "HEAD").await {
            Ok(Some(head)) => Ok(head),
            Ok(None) => Err(format!("repository {} has no commit", repo.display())),
            Err(err) => Err(format!("cannot read repository {}: {err}", repo.display())),
        }
    }

    /// The learned fix first, then every template that applies.
    fn candidates(
        &self,
        diag: &Diagnosis,
        root_cause: &RootCause,
        source: &str,
        attempts: &mut Vec<PatchAttempt>,
    ) -> Vec<Candidate> {
        let mut out = Vec::new();
        let mut learned_template = None;
        if let Some(best) = diag.known_fixes.first() {
            let name = format!("learned:{}", best.strategy);
            match self.templates.get(&best.strategy) {
                Some(template) if template.applies(diag) => {
                    learned_template = Some(template.id());
                    match template.apply(source, root_cause) {
                        Ok(content) => out.push(Candidate::deterministic(
                            template.id(),
                            name,
                            true,
                            Change::Rewrite {
                                path: root_cause.file.clone(),
                                content,
                            },
                        )),
                        Err(err) => attempts.push(attempt(&name, "not-applicable", err.to_string())),
                    }
                }
                _ => match best.last_diff.as_deref().filter(|d| !d.trim().is_empty()) {
                    Some(diff) => out.push(Candidate::deterministic(
                        &best.strategy,
                        name,
                        true,
                        Change::Diff(diff.to_string()),
                    )),
                    None => attempts.push(attempt(
                        &name,
                        "not-applicable",
                        "the learned strategy is no template that applies here and carries no diff".into(),
                    )),
                },
            }
        }
        for template in self.templates.iter() {
            if Some(template.id()) == learned_template {
                continue; // already tried first, as the learned fix
            }
            if !template.applies(diag) {
                attempts.push(attempt(
                    template.id(),
                    "not-applicable",
                    "the diagnosis is not the kind of failure this template fixes".into(),
                ));
                continue;
            }
            match template.apply(source, root_cause) {
                Ok(content) => out.push(Candidate::deterministic(
                    template.id(),
                    template.id().to_string(),
                    false,
                    Change::Rewrite {
                        path: root_cause.file.clone(),
                        content,
                    },
                )),
                Err(err) => attempts.push(attempt(template.id(), "not-applicable", err.to_string())),
            }
        }
        out
    }

    /// The catalog's test command with the configured python in place of `python3`/`python`.
    fn test_command(&self, entry: &ServiceEntry) -> Vec<String> {
        let mut command = entry.test_command.clone();
        if let (Some(python), Some(first)) = (&self.config.python, command.first_mut())
            && (first == "python3" || first == "python")
        {
            *first = python.clone();
        }
        command
    }

    fn limits(entry: &ServiceEntry) -> Limits {
        Limits {
            timeout: entry.test_timeout,
            memory_mb: entry.test_memory_mb,
            env: entry.extra_env.clone(),
        }
    }

    async fn run(&self, dir: &Path, command: &[String], limits: &Limits) -> Result<RunResult, SandboxError> {
        match self.sandbox.run(dir, command, limits.clone()).await {
            Err(SandboxError::Unavailable(why)) if self.config.allow_unsandboxed => {
                tracing::warn!(%why, "running tests WITHOUT a sandbox (--allow-unsandboxed)");
                ProcessSandbox::new(Isolation::Unsandboxed)
                    .run(dir, command, limits.clone())
                    .await
            }
            other => other,
        }
    }

    fn describe(&self, limits: &Limits) -> String {
        let described = self.sandbox.describe(limits);
        if self.config.allow_unsandboxed && described.starts_with("none") {
            ProcessSandbox::new(Isolation::Unsandboxed).describe(limits)
        } else {
            described
        }
    }

    /// The three sandbox runs for one candidate; `Err(Ok)` lost, `Err(Err)` could not run.
    async fn validate(
        &self,
        entry: &ServiceEntry,
        repo: &Path,
        base: &str,
        root_cause: &RootCause,
        test: &RegressionTest,
        candidate: &Candidate,
    ) -> Result<Validated, Result<Lost, SandboxError>> {
        let lost = |result, reason: String, validation| {
            Err(Ok(Lost {
                result,
                reason,
                validation,
            }))
        };
        let holder = match tempfile::Builder::new()
            .prefix("selfheal-sandbox-")
            .tempdir_in(&self.config.work_dir)
        {
            Ok(holder) => holder,
            Err(err) => return lost("error", format!("cannot make a sandbox copy: {err}"), None),
        };
        // `clean` is a clone the sandbox never sees: the fix is applied, diffed and read
        // there. The sandbox gets `boxed`, an export without `.git`, so tests can neither
        // tamper with the committed files nor plant git configuration that a later git
        // command outside the sandbox would obey.
        let clean = holder.path().join("clean");
        let boxed = holder.path().join("box");
        if let Err(err) = self.git.copy_at(repo, base, &clean).await {
            return lost("error", format!("cannot copy the repository: {err}"), None);
        }
        if let Err(err) = self.git.export(&clean, &boxed).await {
            return lost("error", format!("cannot export the repository: {err}"), None);
        }
        for dir in [&clean, &boxed] {
            if let Err(err) = write_file(dir, &test.file, test.code.as_bytes()) {
                return lost("error", format!("cannot write the regression test: {err}"), None);
            }
        }
        let command = self.test_command(entry);
        let limits = Self::limits(entry);
        let timeout = fmt_secs(limits.timeout);
        let mut only_test = command.clone();
        only_test.push(test.file.clone());
        let mut validation = Validation {
            sandbox: self.describe(&limits),
            ..Validation::default()
        };

        // 1. The regression test must fail on the old code, with the incident's exception.
        let before = self.run(&boxed, &only_test, &limits).await.map_err(Err)?;
        validation.duration_ms = ms(before.duration);
        validation.output_tail = before.output_tail.clone();
        let exception = root_cause.exception_type.rsplit('.').next().unwrap_or_default();
        if before.timed_out {
            return lost(
                "timed-out",
                format!("regression test timed out after {timeout} on the unpatched code"),
                Some(validation),
            );
        }
        validation.failed_before =
            !before.succeeded() && (exception.is_empty() || before.output_tail.contains(exception));
        if !validation.failed_before {
            let why = if before.succeeded() {
                "the regression test passed on the unpatched code: it does not reproduce the incident".to_string()
            } else {
                format!(
                    "the regression test failed on the unpatched code, but not with {exception} (exit {:?})",
                    before.exit_code
                )
            };
            return lost("failed-before-missing", why, Some(validation));
        }

        // 2. Apply the fix; the regression test must pass.
        let mut paths = match &candidate.change {
            Change::Rewrite { path, content } => match write_file(&clean, path, content.as_bytes()) {
                Ok(()) => vec![path.clone()],
                Err(err) => return lost("error", format!("cannot write {path}: {err}"), Some(validation)),
            },
            Change::Diff(diff) => match self.git.apply(&clean, diff).await {
                Ok(paths) => paths,
                Err(err) => {
                    return lost(
                        "does-not-apply",
                        format!("the learned diff does not apply: {err}"),
                        Some(validation),
                    );
                }
            },
            Change::Files(files) => {
                let mut paths = Vec::new();
                for (path, content) in files {
                    if let Err(why) = check_relative_path(path) {
                        return lost("error", why, Some(validation));
                    }
                    if let Err(err) = write_file(&clean, path, content.as_bytes()) {
                        return lost("error", format!("cannot write {path}: {err}"), Some(validation));
                    }
                    paths.push(path.clone());
                }
                paths
            }
        };
        for path in &paths {
            if let Err(why) = check_relative_path(path) {
                return lost("error", why, Some(validation));
            }
            if let Err(err) = sync_file(&clean, &boxed, path) {
                return lost(
                    "error",
                    format!("cannot copy {path} into the sandbox: {err}"),
                    Some(validation),
                );
            }
        }
        let after = self.run(&boxed, &only_test, &limits).await.map_err(Err)?;
        validation.duration_ms += ms(after.duration);
        validation.output_tail = after.output_tail.clone();
        validation.passed_after = after.succeeded();
        if after.timed_out {
            return lost(
                "timed-out",
                format!("regression test timed out after {timeout} on the patched code"),
                Some(validation),
            );
        }
        if !validation.passed_after {
            return lost(
                "still-failing",
                format!(
                    "the regression test still fails with the fix (exit {:?})",
                    after.exit_code
                ),
                Some(validation),
            );
        }

        // 3. The whole suite must pass.
        let suite = self.run(&boxed, &command, &limits).await.map_err(Err)?;
        validation.duration_ms += ms(suite.duration);
        validation.output_tail = suite.output_tail.clone();
        validation.suite_passed = suite.succeeded();
        if let Some(summary) = suite.summary {
            validation.tests_run = i32::try_from(summary.tests_run()).unwrap_or(i32::MAX);
            validation.tests_failed = i32::try_from(summary.tests_failed()).unwrap_or(i32::MAX);
        }
        if suite.timed_out {
            return lost(
                "timed-out",
                format!("the test suite timed out after {timeout}"),
                Some(validation),
            );
        }
        if !validation.suite_passed {
            return lost(
                "suite-failed",
                format!(
                    "the test suite fails with the fix: {} of {} tests failed (exit {:?})",
                    validation.tests_failed, validation.tests_run, suite.exit_code
                ),
                Some(validation),
            );
        }

        if !paths.contains(&test.file) {
            paths.push(test.file.clone());
        }
        let diff = match self.git.staged_diff(&clean, &paths).await {
            Ok(diff) => diff,
            Err(err) => return lost("error", format!("cannot diff the fix: {err}"), Some(validation)),
        };
        let mut files = Vec::new();
        for path in &paths {
            match std::fs::read(clean.join(path)) {
                Ok(content) => files.push(FileChange {
                    path: path.clone(),
                    content,
                }),
                Err(err) => return lost("error", format!("cannot read {path}: {err}"), Some(validation)),
            }
        }
        Ok(Validated {
            validation,
            diff,
            files,
        })
    }

    async fn gate_and_commit(&self, place: &Place<'_>, candidate: &Candidate, validated: Validated, patch: &mut Patch) {
        let Place {
            entry,
            base,
            branch,
            root_cause,
            ..
        } = *place;
        let Validated {
            validation,
            diff,
            files,
        } = validated;
        let proven = selfheal_governance::Validation {
            failed_before: validation.failed_before,
            passed_after: validation.passed_after,
            suite_passed: validation.suite_passed,
        };
        let verdict = gate::evaluate(
            &self.policy,
            entry,
            &diff,
            &candidate.strategy,
            candidate.origin,
            proven,
        );
        patch.strategy = Some(candidate.strategy.clone());
        patch.learned = candidate.learned;
        patch.files_changed = files.iter().map(|f| f.path.clone()).collect();
        patch.diff = diff.clone();
        patch.validation = Some(validation.clone());
        patch.policy = Some(verdict.clone());
        let what = summary_of(root_cause, candidate);
        let proven_attempt = |result: &str, reason: String| PatchAttempt {
            diff: Some(diff.clone()),
            validation: Some(validation.clone()),
            policy: Some(verdict.clone()),
            ..candidate.attempt(result, reason)
        };
        if !verdict.allowed {
            patch.attempts.push(proven_attempt(
                "policy-denied",
                format!("validated, but denied by policy: {}", verdict.violations.join("; ")),
            ));
            patch.status = PatchStatus::PolicyDenied;
            patch.summary = format!(
                "{what}: validated but denied by policy ({} violations); no branch created",
                verdict.violations.len()
            );
            return;
        }

        let message = commit_message(patch, &what, &validation);
        let commit = match self
            .git
            .commit_branch(&entry.repository, base, branch, &files, &message)
            .await
        {
            Ok(commit) => commit,
            Err(err) => {
                // A concurrent replay may have created the branch meanwhile: answer from it.
                if let Ok(Some(existing)) = self
                    .git
                    .resolve_commit(&entry.repository, &format!("refs/heads/{branch}"))
                    .await
                {
                    patch.attempts.clear();
                    return self.replay(entry, branch, &existing, patch).await;
                }
                patch
                    .attempts
                    .push(proven_attempt("error", format!("commit failed: {err}")));
                patch.status = PatchStatus::Error;
                patch.summary = format!("{what}: validated and allowed, but the commit failed: {err}");
                return;
            }
        };
        match self.git.diff(&entry.repository, base, &commit).await {
            Ok(diff) => patch.diff = diff,
            Err(err) => tracing::warn!(%err, "cannot diff the commit; keeping the sandbox diff"),
        }
        patch.attempts.push(proven_attempt(
            "selected",
            format!(
                "regression test failed before and passed after; suite passed ({} tests){}",
                validation.tests_run,
                if candidate.learned {
                    "; learned fix tried first"
                } else {
                    ""
                }
            ),
        ));
        patch.branch = Some(branch.to_string());
        patch.commit = Some(commit.clone());
        patch.status = PatchStatus::Proposed;
        patch.summary = what.clone();
        let pr = PullRequest {
            repository: entry.repository.display().to_string(),
            branch: branch.to_string(),
            base_commit: base.to_string(),
            title: format!("selfheal: {what}"),
            body: message,
        };
        if let Err(err) = self.pull_requests.open(&entry.repository, &pr).await {
            patch.attempts.push(attempt("pull-request", "error", err.to_string()));
        }
    }

    /// The patch of an existing `selfheal/<incident-id>` branch: a replay does no work twice.
    async fn replay(&self, entry: &ServiceEntry, branch: &str, commit: &str, patch: &mut Patch) {
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
        Ok(vec![self.repair(input).await])
    }
}

fn attempt(strategy: &str, result: &str, reason: String) -> PatchAttempt {
    PatchAttempt {
        strategy: strategy.to_string(),
        result: result.to_string(),
        reason,
        ..PatchAttempt::default()
    }
}

/// One line for a person about what the fix does.
fn summary_of(root_cause: &RootCause, candidate: &Candidate) -> String {
    if let Some(summary) = &candidate.summary {
        return format!(
            "model-written fix (accepted by the self-critique): {summary} in {} ({}:{})",
            root_cause.function, root_cause.file, root_cause.line
        );
    }
    let learned = if candidate.learned {
        " (learned fix tried first)"
    } else {
        ""
    };
    format!(
        "{} in {} ({}:{}){learned}",
        if candidate.strategy == crate::templates::ZERO_DIVISION_GUARD {
            "guard the divisor"
        } else {
            "apply the learned fix"
        },
        root_cause.function,
        root_cause.file,
        root_cause.line
    )
}

fn commit_message(patch: &Patch, what: &str, v: &Validation) -> String {
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
        fp = regression::safe_chars(&patch.fingerprint),
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
fn check_incident_id(id: &str) -> Result<(), String> {
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

fn write_file(root: &Path, path: &str, content: &[u8]) -> std::io::Result<()> {
    let target = root.join(path);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(target, content)
}

/// Makes `path` in `to` what it is in `from` (written, or removed when `from` lacks it).
fn sync_file(from: &Path, to: &Path, path: &str) -> std::io::Result<()> {
    match std::fs::read(from.join(path)) {
        Ok(content) => write_file(to, path, &content),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => match std::fs::remove_file(to.join(path)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        },
        Err(err) => Err(err),
    }
}

fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn fmt_secs(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}
