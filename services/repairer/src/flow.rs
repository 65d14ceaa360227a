//! The repair flow as named steps, for one localised diagnosis:
//!
//! 1. [`localise`](Repairer::localise): the service, its repository and base commit, the
//!    culprit file at that commit, the language and its project (test suite, framework);
//! 2. [`candidates`](Repairer::candidates): the learned fix first, then every template that
//!    applies;
//! 3. [`regression_test`](Repairer::regression_test): the language writes a new test for the
//!    candidate (the failing input through the culprit function);
//! 4. [`validate`](Repairer::validate): in a fresh sandboxed copy the test fails on the old
//!    code, passes on the new, and the whole suite passes;
//! 5. [`gate`](Repairer::gate): the patch policy;
//! 6. [`commit`](Repairer::commit): a commit on `selfheal/<incident-id>` made in a temporary
//!    worktree, and a pull request.
//!
//! When no deterministic candidate is proven, a configured model gets its turn
//! ([`ask_model`](Repairer::ask_model)) through the same validate → gate → commit steps.
//! Every failure becomes a patch status with attempts that say why.

use std::path::{Path, PathBuf};

use selfheal_catalog::{FixSource, ServiceEntry};
use selfheal_events::PolicyVerdict;
use selfheal_events::{
    Diagnosis, DiagnosisStatus, Patch, PatchAttempt, PatchStatus, RegressionTest, RootCause, Validation,
};
use selfheal_governance::PatchOrigin;
use selfheal_llm::IncidentLlm;

use crate::agent::AgentInput;
use crate::gate;
use crate::git::FileChange;
use crate::languages::{Language, ModelTestRequest, Project, RegressionRequest, Site, TemplateFix, TestSuite};
use crate::sandbox::{Isolation, Limits, ProcessSandbox, RunResult, Sandbox, SandboxError};
use crate::stage::{
    Repairer, attempt, bounded, check_incident_id, check_relative_path, commit_message, fmt_secs, ms, short, sync_file,
    write_file,
};

/// [`selfheal_events::KnownFix::scope`] of a template learned from the same crash class at
/// another site (the learner's `crash-class`).
const CRASH_CLASS_SCOPE: &str = "crash-class";

/// One fix to try.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The strategy recorded in the patch (a template id, a learned strategy, `llm`).
    pub strategy: String,
    /// The name of the attempt (`learned:<strategy>` for learned fixes).
    pub attempt_name: String,
    pub learned: bool,
    /// Where it came from, for the policy gate.
    pub origin: PatchOrigin,
    /// The self-critique of a model-written candidate.
    pub critique: Option<String>,
    /// A model-written candidate's own one-line summary.
    pub summary: Option<String>,
    /// The template's fix when the candidate is a template (learned or not).
    pub fix: Option<TemplateFix>,
    pub change: Change,
}

impl Candidate {
    fn template(strategy: &str, attempt_name: String, learned: bool, fix: TemplateFix, file: &str) -> Self {
        Candidate {
            change: Change::Rewrite {
                path: file.to_string(),
                content: fix.content.clone(),
            },
            fix: Some(fix),
            ..Candidate::learned_diff(strategy, attempt_name, String::new())
        }
        .learned(learned)
    }

    fn learned_diff(strategy: &str, attempt_name: String, diff: String) -> Self {
        Candidate {
            strategy: strategy.to_string(),
            attempt_name,
            learned: true,
            origin: PatchOrigin::Learned,
            critique: None,
            summary: None,
            fix: None,
            change: Change::Diff(diff),
        }
    }

    fn learned(mut self, learned: bool) -> Self {
        self.learned = learned;
        self.origin = if learned {
            PatchOrigin::Learned
        } else {
            PatchOrigin::Template
        };
        self
    }

    /// An attempt of this candidate, carrying its critique.
    pub fn attempt(&self, result: &str, reason: String) -> PatchAttempt {
        PatchAttempt {
            critique: self.critique.clone(),
            ..attempt(&self.attempt_name, result, reason)
        }
    }

    /// What the fix does, for a person.
    pub fn what(&self) -> &str {
        match &self.fix {
            Some(fix) => &fix.summary,
            None => "apply the learned fix",
        }
    }
}

/// The change a candidate makes.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// New content of one file.
    Rewrite { path: String, content: String },
    /// A unified diff remembered by the learning store.
    Diff(String),
    /// New contents of several files (a model's search/replace edits, applied).
    Files(Vec<(String, String)>),
}

/// Where a fix goes: the service, its repository, the base commit, the branch, the culprit,
/// the language and its project.
pub(crate) struct Place<'a> {
    pub diag: &'a Diagnosis,
    pub entry: &'a ServiceEntry,
    pub language: &'a dyn Language,
    pub project: Project,
    pub repo: PathBuf,
    pub base: String,
    pub branch: String,
    pub root_cause: RootCause,
    /// The culprit file at the base commit.
    pub source: String,
}

impl Place<'_> {
    fn site(&self) -> Site<'_> {
        Site {
            diag: self.diag,
            root_cause: &self.root_cause,
            source: &self.source,
        }
    }
}

/// A candidate that passed the sandbox.
pub(crate) struct Validated {
    validation: Validation,
    diff: String,
    files: Vec<FileChange>,
}

/// Why a candidate lost.
pub(crate) struct Lost {
    result: &'static str,
    reason: String,
    validation: Option<Validation>,
}

impl Repairer {
    /// The whole flow for one diagnosis; the patch says how it ended.
    pub(crate) async fn run_flow(&self, diag: &Diagnosis, patch: &mut Patch) {
        let Some(place) = self.localise(diag, patch).await else {
            return;
        };
        let candidates = self.candidates(&place, &mut patch.attempts);
        if candidates.is_empty() {
            patch.status = PatchStatus::NoFixFound;
            patch.summary = format!(
                "no template or learned fix applies to {}:{}",
                place.root_cause.file, place.root_cause.line
            );
        } else if self.prove(&place, &candidates, patch).await {
            return;
        }
        self.ask_model(&place, patch).await;
    }

    /// Step 1: everything the later steps need, or `None` when the patch is already decided
    /// (not localised, unknown service, unsafe names, an earlier branch replayed, errors).
    async fn localise<'a>(&'a self, diag: &'a Diagnosis, patch: &mut Patch) -> Option<Place<'a>> {
        if diag.status != DiagnosisStatus::Localized {
            patch.status = PatchStatus::NotLocalized;
            patch.summary = format!(
                "nothing attempted: the diagnosis is {:?}: {}",
                diag.status,
                bounded(&diag.summary, 300)
            );
            return None;
        }
        let Some(root_cause) = diag.root_cause.clone() else {
            patch.status = PatchStatus::NotLocalized;
            patch.summary = "nothing attempted: the diagnosis names no root cause".into();
            return None;
        };
        let Some(entry) = self.catalog.service(&diag.service) else {
            patch.summary = format!("service `{}` is not in the catalog", bounded(&diag.service, 100));
            return None;
        };
        let repo = entry.repository.clone();
        patch.repository = Some(repo.display().to_string());
        if let Err(why) = check_incident_id(&diag.incident_id) {
            patch.summary = why;
            return None;
        }
        if let Err(why) = check_relative_path(&root_cause.file) {
            patch.summary = why;
            return None;
        }
        if let Err(err) = std::fs::create_dir_all(&self.config.work_dir) {
            patch.summary = format!("cannot create work dir {}: {err}", self.config.work_dir.display());
            return None;
        }
        let branch = format!("selfheal/{}", diag.incident_id);
        match self.git.resolve_commit(&repo, &format!("refs/heads/{branch}")).await {
            Ok(Some(commit)) => {
                self.replay(entry, &branch, &commit, patch).await;
                return None;
            }
            Ok(None) => {}
            Err(err) => {
                patch.summary = format!("cannot read repository {}: {err}", repo.display());
                return None;
            }
        }
        let base = match self.base_commit(&repo, diag).await {
            Ok(base) => base,
            Err(why) => {
                patch.summary = why;
                return None;
            }
        };
        patch.base_commit = Some(base.clone());
        let source = match self.git.show_file(&repo, &base, &root_cause.file).await {
            Ok(source) => source,
            Err(err) => {
                patch.summary = format!("cannot read {} at {}: {err}", root_cause.file, short(&base));
                return None;
            }
        };
        let Some(language) = self
            .languages
            .for_culprit(Some(&entry.language), diag, &root_cause.file)
        else {
            patch.status = PatchStatus::NoFixFound;
            patch.summary = format!(
                "no fix attempted: selfheal has no support for the language of {} (catalog language `{}`)",
                root_cause.file,
                bounded(&entry.language, 40)
            );
            return None;
        };
        let project = self.project(language, entry);
        Some(Place {
            diag,
            entry,
            language,
            project,
            repo,
            base,
            branch,
            root_cause,
            source,
        })
    }

    /// The project as the language detects it in the repository, with the catalog's test
    /// command (and the configured python) and source root taking precedence.
    fn project(&self, language: &dyn Language, entry: &ServiceEntry) -> Project {
        let mut project = language.detect(&entry.repository).unwrap_or_else(|| Project {
            language: language.id(),
            source_root: entry.source_root.clone(),
            framework: String::new(),
            test_root: String::new(),
            suite: TestSuite::default(),
        });
        let command = self.test_command(entry);
        if !command.is_empty() {
            project.suite.command = command;
        }
        project.source_root = entry.source_root.clone();
        project
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

    /// Step 2: the learned fix first, then every template that applies.
    fn candidates(&self, place: &Place<'_>, attempts: &mut Vec<PatchAttempt>) -> Vec<Candidate> {
        let diag = place.diag;
        let site = place.site();
        let file = place.root_cause.file.as_str();
        let mut out = Vec::new();
        let mut learned_template = None;
        let learned = place.entry.allows(FixSource::Learned);
        let templates = place.entry.allows(FixSource::Template);
        if !learned && !diag.known_fixes.is_empty() {
            attempts.push(attempt(
                "learned",
                "not-allowed",
                "the catalog's fix_sources for this service leave out `learned`".into(),
            ));
        }
        if let Some(best) = diag.known_fixes.first().filter(|_| learned) {
            let name = format!("learned:{}", best.strategy);
            match self.templates.get(&best.strategy) {
                Some(template) if template.applies(diag) => {
                    learned_template = Some(template.id());
                    match template.apply(&site) {
                        Ok(fix) => out.push(Candidate::template(template.id(), name, true, fix, file)),
                        Err(err) => attempts.push(attempt(&name, "not-applicable", err.to_string())),
                    }
                }
                _ if best.scope.as_deref() == Some(CRASH_CLASS_SCOPE) => attempts.push(attempt(
                    &name,
                    "not-applicable",
                    format!(
                        "learned for the same crash class in {}, but no template of that name applies here \
                         (a diff made at another site is never replayed)",
                        best.service.as_deref().unwrap_or("another service")
                    ),
                )),
                _ => match best.last_diff.as_deref().filter(|d| !d.trim().is_empty()) {
                    Some(diff) => out.push(Candidate::learned_diff(&best.strategy, name, diff.to_string())),
                    None => attempts.push(attempt(
                        &name,
                        "not-applicable",
                        "the learned strategy is no template that applies here and carries no diff".into(),
                    )),
                },
            }
        }
        for template in self.templates.iter().filter(|_| templates) {
            if Some(template.id()) == learned_template {
                continue; // already tried first, as the learned fix
            }
            if !template.applies(diag) {
                // Another crash class or language: not worth an attempt line per template.
                continue;
            }
            match template.apply(&site) {
                Ok(fix) => out.push(Candidate::template(
                    template.id(),
                    template.id().to_string(),
                    false,
                    fix,
                    file,
                )),
                Err(err) => attempts.push(attempt(template.id(), "not-applicable", err.to_string())),
            }
        }
        out
    }

    /// Step 3: the language's regression test for this candidate, in a new file (the full
    /// incident id names it when the short name exists at the base commit).
    async fn regression_test(&self, place: &Place<'_>, candidate: &Candidate) -> Result<RegressionTest, String> {
        let mut request = RegressionRequest {
            site: place.site(),
            project: &place.project,
            fix: candidate.fix.as_ref(),
            template: candidate.fix.as_ref().map(|_| candidate.strategy.as_str()),
            long_name: false,
        };
        let test = place.language.regression_test(&request).map_err(|e| e.to_string())?;
        if self.git.show_file(&place.repo, &place.base, &test.file).await.is_err() {
            return Ok(test);
        }
        request.long_name = true;
        let test = place.language.regression_test(&request).map_err(|e| e.to_string())?;
        if self.git.show_file(&place.repo, &place.base, &test.file).await.is_ok() {
            return Err(format!("{} already exists at the base commit", test.file));
        }
        Ok(test)
    }

    /// Steps 3–6 for the deterministic candidates in order; the first proven one goes to
    /// the gate. `true` when that decided the patch (proven, or the sandbox refused to run),
    /// `false` when none was proven (the status says so and a model may still try).
    async fn prove(&self, place: &Place<'_>, candidates: &[Candidate], patch: &mut Patch) -> bool {
        let mut last_failure = None;
        let mut sandboxed = false;
        for candidate in candidates {
            let test = match self.regression_test(place, candidate).await {
                Ok(test) => test,
                Err(why) => {
                    patch
                        .attempts
                        .push(candidate.attempt("no-regression-test", why.clone()));
                    last_failure = Some(why);
                    continue;
                }
            };
            patch.regression_test = Some(test.clone());
            sandboxed = true;
            match self.validate(place, &test, candidate).await {
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
        patch.summary = if sandboxed {
            format!(
                "no candidate was proven in the sandbox: {}",
                last_failure.unwrap_or_default()
            )
        } else {
            format!("no candidate could be proven: {}", last_failure.unwrap_or_default())
        };
        false
    }

    /// The model's turn, when one is configured: its candidate, once the self-critique
    /// accepted it, goes through the same sandbox and gate as a template fix. Whatever the
    /// model does, the patch keeps what the deterministic path found plus the attempts and
    /// the incident's model report; a candidate that is not proven and allowed leaves no branch.
    async fn ask_model(&self, place: &Place<'_>, patch: &mut Patch) {
        let Some(agent) = &self.agent else { return };
        if !place.entry.allows(FixSource::Model) {
            patch.attempts.push(attempt(
                crate::agent::STRATEGY,
                "not-allowed",
                "the catalog's fix_sources for this service leave out `model`: no code was sent to the model".into(),
            ));
            return;
        }
        let Place {
            diag,
            entry,
            ref repo,
            ref base,
            ref root_cause,
            ..
        } = *place;
        // The language says what the model's regression test must be (framework, new file,
        // names) and checks the answer; a language without rules declines before any call.
        let mut request = ModelTestRequest {
            site: place.site(),
            project: &place.project,
            repo,
            long_name: false,
        };
        let rules = match place.language.model_test(&request) {
            Ok(rules) if self.git.show_file(repo, base, &rules.spec().file).await.is_ok() => {
                request.long_name = true;
                place.language.model_test(&request)
            }
            other => other,
        };
        let rules = match rules {
            Ok(rules) => rules,
            Err(why) => {
                patch.attempts.push(attempt(
                    crate::agent::STRATEGY,
                    "not-applicable",
                    format!("no code was sent to the model: {why}"),
                ));
                return;
            }
        };
        let mut llm = IncidentLlm::start(agent.client(), diag.llm.as_ref());
        let input = AgentInput {
            diag,
            root_cause,
            entry,
            source: &place.source,
            base,
            test: rules.as_ref(),
            test_command: place.project.suite.command.clone(),
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
                    fix: None,
                    change: Change::Files(model.files.clone()),
                };
                match self.validate(place, &model.test, &candidate).await {
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

    /// The catalog's test command with the configured python in place of `python3`/`python`.
    pub(crate) fn test_command(&self, entry: &ServiceEntry) -> Vec<String> {
        let mut command = entry.test_command.clone();
        if let (Some(python), Some(first)) = (&self.config.python, command.first_mut())
            && (first == "python3" || first == "python")
        {
            *first = python.clone();
        }
        command
    }

    /// The catalog's limits; the environment is the project's, then the catalog's on top.
    fn limits(entry: &ServiceEntry, project: &Project) -> Limits {
        let mut env = project.suite.env.clone();
        env.extend(entry.extra_env.clone());
        Limits {
            timeout: entry.test_timeout,
            memory_mb: entry.test_memory_mb,
            env,
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
        place: &Place<'_>,
        test: &RegressionTest,
        candidate: &Candidate,
    ) -> Result<Validated, Result<Lost, SandboxError>> {
        let Place {
            entry,
            ref repo,
            ref base,
            ref root_cause,
            ref project,
            language,
            ..
        } = *place;
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
        let command = project.suite.command.clone();
        let limits = Self::limits(entry, project);
        let timeout = fmt_secs(limits.timeout);
        let only_test = language.single_test_command(project, test);
        if let Some(prepare) = &project.suite.prepare {
            // Outside the sandbox, with network: make the suite runnable offline (it fetches
            // dependencies; it does not run the project's code).
            let prepared = ProcessSandbox::new(Isolation::Unsandboxed)
                .run(&boxed, prepare, limits.clone())
                .await
                .map_err(Err)?;
            if !prepared.succeeded() {
                return lost(
                    "error",
                    format!(
                        "preparing the suite (`{}`) failed (exit {:?}): {}",
                        prepare.join(" "),
                        prepared.exit_code,
                        bounded(&prepared.output_tail, 500)
                    ),
                    None,
                );
            }
        }
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
        validation.failed_before = !before.succeeded() && language.reproduces(&before.output_tail, root_cause);
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
        if let Some(summary) = language.summary(&suite.output_tail).or(suite.summary) {
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

    /// Steps 5 and 6 for a validated candidate.
    async fn gate_and_commit(&self, place: &Place<'_>, candidate: &Candidate, validated: Validated, patch: &mut Patch) {
        if let Some(verdict) = self.gate(place, candidate, &validated, patch) {
            self.commit(place, candidate, validated, verdict, patch).await;
        }
    }

    /// Step 5: the patch policy. The patch records the candidate, its proof and the verdict
    /// either way; `Some(verdict)` when the policy allows it.
    fn gate(
        &self,
        place: &Place<'_>,
        candidate: &Candidate,
        validated: &Validated,
        patch: &mut Patch,
    ) -> Option<PolicyVerdict> {
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
            place.entry,
            diff,
            &candidate.strategy,
            candidate.origin,
            proven,
        );
        patch.strategy = Some(candidate.strategy.clone());
        patch.learned = candidate.learned;
        // The learning store keeps what the template decided, so it can be offered for the
        // same crash class elsewhere.
        patch.template_params = candidate
            .fix
            .as_ref()
            .map(|fix| fix.params.clone().into_iter().collect());
        patch.files_changed = files.iter().map(|f| f.path.clone()).collect();
        patch.diff = diff.clone();
        patch.validation = Some(validation.clone());
        patch.policy = Some(verdict.clone());
        if verdict.allowed {
            return Some(verdict);
        }
        let what = summary_of(&place.root_cause, candidate);
        patch.attempts.push(PatchAttempt {
            diff: Some(diff.clone()),
            validation: Some(validation.clone()),
            policy: Some(verdict.clone()),
            ..candidate.attempt(
                "policy-denied",
                format!("validated, but denied by policy: {}", verdict.violations.join("; ")),
            )
        });
        patch.status = PatchStatus::PolicyDenied;
        patch.summary = format!(
            "{what}: validated but denied by policy ({} violations); no branch created",
            verdict.violations.len()
        );
        None
    }

    /// Step 6: the commit on the incident's branch, made in a temporary worktree, and the
    /// pull request.
    async fn commit(
        &self,
        place: &Place<'_>,
        candidate: &Candidate,
        validated: Validated,
        verdict: PolicyVerdict,
        patch: &mut Patch,
    ) {
        let Place {
            entry,
            ref base,
            ref branch,
            ref root_cause,
            ..
        } = *place;
        let Validated {
            validation,
            diff,
            files,
        } = validated;
        let what = summary_of(root_cause, candidate);
        let proven_attempt = |result: &str, reason: String| PatchAttempt {
            diff: Some(diff.clone()),
            validation: Some(validation.clone()),
            policy: Some(verdict.clone()),
            ..candidate.attempt(result, reason)
        };
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
        candidate.what(),
        root_cause.function,
        root_cause.file,
        root_cause.line
    )
}
