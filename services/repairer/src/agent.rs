//! The agentic path: a model-written fix and regression test, reviewed by a self-critique.
//!
//! Used only when a model is configured and no template or learned fix was proven. One
//! chain per incident, at most [`AgentSettings::max_rounds`] rounds:
//!
//! 1. round 1 asks for a candidate (purpose `patch`), later rounds for a revision (purpose
//!    `revision`) that gets the previous candidate and why it was turned down;
//! 2. the candidate's search/replace edits are applied to the files as they are at the base
//!    commit (each search text must occur exactly once; paths must stay inside the
//!    repository); one that does not apply is recorded and, while rounds remain, sent back;
//! 3. a second call (purpose `critique`) reviews the diff and the test against the checklist
//!    ([`Checklist`]); the code accepts only a verdict `accept` with every item true.
//!
//! The accepted candidate goes back to the stage, which proves it in the same sandbox and
//! asks the same policy gate as a template fix (origin `llm`). Nothing here decides which
//! files may change: the model may name any file inside the repository, and the policy gate
//! is what refuses protected ones, whatever the prompt or the model said.
//!
//! Every answer, critique and failure ends up as a [`PatchAttempt`] and in the incident's
//! [`IncidentLlm`] (notes, exchanges with redacted prompts); a model failure (provider
//! down, budget spent, answer malformed twice) ends the chain, never the stage.

mod prompts;

use std::path::Path;

use selfheal_catalog::ServiceEntry;
use selfheal_events::{Diagnosis, PatchAttempt, RegressionTest, RootCause};
use selfheal_llm::{ChatRequest, IncidentLlm, LlmClient, LlmError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::git::Git;
use crate::languages::{ModelTestAnswer, ModelTestRules};
use crate::stage::check_relative_path;

/// The strategy (and first attempt name) of model-written candidates.
pub const STRATEGY: &str = "llm";

/// Bound on a candidate's summary, in characters (the schema asks for it; longer is cut).
pub const MAX_SUMMARY_CHARS: usize = 150;
/// Bound on a candidate's explanation, in characters (the schema asks for it; longer is cut).
pub const MAX_EXPLANATION_CHARS: usize = 600;

/// How the repairer uses a model (the binary fills it from flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// Candidate/critique rounds: the first candidate plus `max_rounds - 1` revisions (at least 1).
    pub max_rounds: u32,
    /// Lines of code shown on each side of the culprit line.
    pub context_lines: usize,
    /// Most search/replace edits one candidate may make.
    pub max_edits: usize,
    /// Bound on one edit's search text and on its replacement, each, in characters.
    pub max_edit_chars: usize,
    /// Bound on the regression test's code, in characters.
    pub max_test_chars: usize,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_rounds: 2,
            context_lines: 25,
            max_edits: 6,
            max_edit_chars: 4_000,
            max_test_chars: 8_000,
        }
    }
}

/// The model's candidate: search/replace edits plus a regression test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPatch {
    /// One line for a person.
    pub summary: String,
    /// Edits, applied in order.
    pub edits: Vec<Edit>,
    /// The regression test.
    pub test: ModelTest,
    /// Why this fixes the root cause.
    #[serde(default)]
    pub explanation: String,
}

/// One search/replace edit of a repository file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// Repository-relative path.
    pub file: String,
    /// Text that must occur exactly once in the file.
    pub search: String,
    /// What it becomes.
    pub replace: String,
}

/// The model's regression test, in the culprit's language and the project's framework (the
/// language's [`ModelTestRules`] say what each field must be).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTest {
    /// The test's name: what the single-test command selects (`test_…`, `TestSelfheal_…`, a
    /// class name) or the test's title.
    pub name: String,
    /// The test file's content (the language may put selfheal's header before it).
    pub code: String,
    /// The new test file's repository-relative path, where the language lets the model name
    /// it; otherwise, or when absent, the language's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ModelTest {
    /// The answer as the language's rules check it.
    pub fn answer(&self) -> ModelTestAnswer<'_> {
        ModelTestAnswer {
            name: &self.name,
            code: &self.code,
            path: self.path.as_deref(),
        }
    }
}

/// The reviewer's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Critique {
    /// `accept` or `revise`.
    pub verdict: Verdict,
    /// The checklist, item by item.
    pub checklist: Checklist,
    /// What is wrong, when anything is.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// The reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Good enough to be tested.
    Accept,
    /// Needs another round.
    Revise,
}

/// The self-critique checklist of issue 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Checklist {
    /// It fixes the root cause rather than hiding it.
    pub fixes_root_cause: bool,
    /// Behaviour for other inputs is unchanged.
    pub preserves_other_behaviour: bool,
    /// It does not weaken security or error handling.
    pub keeps_security_and_error_handling: bool,
    /// The regression test would fail without the fix.
    pub test_fails_without_fix: bool,
}

impl Critique {
    /// Accepted only when the verdict says so AND every checklist item holds: a model that
    /// answers `accept` while admitting a problem has not accepted.
    pub fn accepted(&self) -> bool {
        let c = self.checklist;
        self.verdict == Verdict::Accept
            && c.fixes_root_cause
            && c.preserves_other_behaviour
            && c.keeps_security_and_error_handling
            && c.test_fails_without_fix
    }

    /// One paragraph for the record.
    fn render(&self, round: u32) -> String {
        let c = self.checklist;
        let mut text = format!(
            "round {round}: {} (fixes_root_cause={}, preserves_other_behaviour={}, \
             keeps_security_and_error_handling={}, test_fails_without_fix={})",
            if self.accepted() { "accepted" } else { "revise" },
            c.fixes_root_cause,
            c.preserves_other_behaviour,
            c.keeps_security_and_error_handling,
            c.test_fails_without_fix,
        );
        if self.verdict == Verdict::Accept && !self.accepted() {
            text.push_str("; the verdict said accept but a checklist item is false");
        }
        if !self.problems.is_empty() {
            let problems: Vec<String> = self.problems.iter().take(10).map(|p| bounded(p, 300)).collect();
            text.push_str(&format!("; problems: {}", problems.join(" | ")));
        }
        text
    }
}

/// A model-written candidate the critique accepted, ready for the sandbox.
#[derive(Debug, Clone)]
pub(crate) struct ModelCandidate {
    /// Attempt name: `llm`, `llm:revision-1`, ….
    pub name: String,
    /// The model's one-line summary (bounded, one line).
    pub summary: String,
    /// New contents of the files the edits change.
    pub files: Vec<(String, String)>,
    /// The regression test at the path the repairer chose.
    pub test: RegressionTest,
    /// Unified diff of the edits and the test, as the critique saw it.
    pub diff: String,
    /// The critique paragraphs of this candidate's chain.
    pub critique: String,
}

/// What the chain produced: at most one accepted candidate, and every attempt on the way.
#[derive(Debug, Default)]
pub(crate) struct Proposal {
    pub accepted: Option<ModelCandidate>,
    pub attempts: Vec<PatchAttempt>,
}

/// What the agent knows about the incident.
pub(crate) struct AgentInput<'a> {
    pub diag: &'a Diagnosis,
    pub root_cause: &'a RootCause,
    pub entry: &'a ServiceEntry,
    /// The culprit file at the base commit.
    pub source: &'a str,
    pub base: &'a str,
    /// What the language wants as regression test, and the checks of the model's test.
    pub test: &'a dyn ModelTestRules,
    /// The catalog's test command, as it will run.
    pub test_command: Vec<String>,
}

/// A configured model and how to use it.
pub(crate) struct Agent {
    client: LlmClient,
    settings: AgentSettings,
}

/// Why one round produced nothing to review: attempt result and reason.
type Refusal = (&'static str, String);

impl Agent {
    pub(crate) fn new(client: LlmClient, settings: AgentSettings) -> Self {
        Agent { client, settings }
    }

    pub(crate) fn client(&self) -> &LlmClient {
        &self.client
    }

    /// Runs the candidate/critique chain; never fails (failures are attempts and notes).
    pub(crate) async fn propose(
        &self,
        input: &AgentInput<'_>,
        git: &dyn Git,
        repo: &Path,
        llm: &mut IncidentLlm,
    ) -> Proposal {
        let mut proposal = Proposal::default();
        let context = prompts::Context::new(input, self.client.redactor(), &self.settings);
        let rounds = self.settings.max_rounds.max(1);
        let mut critiques: Vec<String> = Vec::new();
        let mut feedback: Option<prompts::Feedback> = None;
        for round in 1..=rounds {
            let name = if round == 1 {
                STRATEGY.to_string()
            } else {
                format!("{STRATEGY}:revision-{}", round - 1)
            };
            let (purpose, request) = match &feedback {
                None => ("patch", context.patch_request()),
                Some(fb) => ("revision", context.revision_request(fb)),
            };
            let settings = &self.settings;
            let answer = match self
                .ask::<ModelPatch>(llm, purpose, round, &request, |p| {
                    check_patch(p, settings).and_then(|()| input.test.check(&p.test.answer()).map(drop))
                })
                .await
            {
                Ok(answer) => answer,
                Err((result, reason)) => {
                    proposal.attempts.push(model_attempt(&name, result, reason, None, None));
                    break;
                }
            };
            // Checked once already as part of the answer's shape; the language's rules decide
            // the file, the name and the header.
            let test = match input.test.check(&answer.test.answer()) {
                Ok(test) => test,
                Err(why) => {
                    proposal
                        .attempts
                        .push(model_attempt(&name, "malformed", why, None, None));
                    break;
                }
            };
            if git.show_file(repo, input.base, &test.file).await.is_ok() {
                let why = format!(
                    "the regression test `{}` exists at the base commit: a regression test goes in a new file",
                    test.file
                );
                proposal
                    .attempts
                    .push(model_attempt(&name, "does-not-apply", why.clone(), None, None));
                feedback = Some(prompts::Feedback {
                    candidate: prompts::render_answer(&answer),
                    problems: vec![why],
                });
                continue;
            }
            let files = match apply_edits(&answer.edits, git, repo, input.base).await {
                Ok(files) => files,
                Err(why) => {
                    proposal.attempts.push(model_attempt(
                        &name,
                        "does-not-apply",
                        format!("the model's edits do not apply: {why}"),
                        None,
                        None,
                    ));
                    feedback = Some(prompts::Feedback {
                        candidate: prompts::render_answer(&answer),
                        problems: vec![format!("Your edits could not be applied: {why}")],
                    });
                    continue;
                }
            };
            let diff = candidate_diff(&files, &test);
            let reviewed = prompts::Reviewed {
                diff: &diff,
                test: &test,
                summary: &one_line(&answer.summary, MAX_SUMMARY_CHARS),
                explanation: &bounded(&answer.explanation, MAX_EXPLANATION_CHARS),
            };
            let critique = match self
                .ask::<Critique>(llm, "critique", round, &context.critique_request(&reviewed), |_| Ok(()))
                .await
            {
                Ok(critique) => critique,
                Err((result, reason)) => {
                    proposal.attempts.push(model_attempt(
                        &name,
                        "not-reviewed",
                        format!("no critique ({result}), so the candidate is not tested: {reason}"),
                        Some(diff),
                        (!critiques.is_empty()).then(|| critiques.join("\n")),
                    ));
                    break;
                }
            };
            critiques.push(critique.render(round));
            let critique_text = critiques.join("\n");
            if critique.accepted() {
                proposal.accepted = Some(ModelCandidate {
                    name,
                    summary: one_line(&answer.summary, MAX_SUMMARY_CHARS),
                    files: files.into_iter().map(|f| (f.path, f.new)).collect(),
                    test,
                    diff,
                    critique: critique_text,
                });
                return proposal;
            }
            let problems = if critique.problems.is_empty() {
                vec!["the checklist is not met".to_string()]
            } else {
                critique.problems.clone()
            };
            if round == rounds {
                proposal.attempts.push(model_attempt(
                    &name,
                    "rejected-by-critique",
                    format!(
                        "still not accepted by the self-critique after {rounds} round(s), so it is not tested: {}",
                        bounded(&problems.join("; "), 600)
                    ),
                    Some(diff),
                    Some(critique_text),
                ));
            } else {
                proposal.attempts.push(model_attempt(
                    &name,
                    "revised",
                    format!(
                        "the self-critique asked for a revision: {}",
                        bounded(&problems.join("; "), 600)
                    ),
                    Some(diff.clone()),
                    Some(critique_text),
                ));
                feedback = Some(prompts::Feedback {
                    candidate: format!("{}\n\n{diff}", prompts::render_answer(&answer)),
                    problems,
                });
            }
        }
        proposal
    }

    /// One structured call within the incident's budget; every exchange is recorded.
    async fn ask<T: DeserializeOwned>(
        &self,
        llm: &mut IncidentLlm,
        purpose: &str,
        round: u32,
        request: &ChatRequest,
        validate: impl Fn(&T) -> Result<(), String>,
    ) -> Result<T, Refusal> {
        let round = i32::try_from(round).unwrap_or(i32::MAX);
        if let Err(err) = llm.budget().check() {
            llm.failed_call(purpose, round, &err);
            return Err(("budget-exhausted", format!("{purpose} not asked: {err}")));
        }
        let mut audit = Vec::new();
        let result = self
            .client
            .ask_json_audited(llm.budget(), request, validate, &mut audit)
            .await;
        llm.record(purpose, round, &audit);
        match result {
            Ok(value) => Ok(value),
            Err(LlmError::Malformed { reason, .. }) => {
                let why = format!("{purpose} answer malformed twice, dropped: {reason}");
                llm.note(&why);
                Err(("malformed", why))
            }
            Err(err @ LlmError::BudgetExhausted { .. }) => {
                llm.failed_call(purpose, round, &err);
                Err(("budget-exhausted", format!("{purpose}: {err}")))
            }
            Err(err) => {
                let why = format!("{purpose} call failed: {err}");
                llm.note(&why);
                Err(("model-unavailable", why))
            }
        }
    }
}

/// Shape checks of a candidate answer that hold in every language (a failure is a malformed
/// answer, asked again once); the test's own checks are the language's
/// ([`ModelTestRules::check`]).
pub fn check_patch(p: &ModelPatch, settings: &AgentSettings) -> Result<(), String> {
    let max_edits = settings.max_edits;
    let max_chars = settings.max_edit_chars;
    if p.edits.is_empty() {
        return Err("`edits` is empty: give at least one search/replace edit".into());
    }
    if p.edits.len() > max_edits {
        return Err(format!("{} edits; at most {max_edits} are allowed", p.edits.len()));
    }
    for (i, e) in p.edits.iter().enumerate() {
        let n = i + 1;
        if e.file.trim().is_empty() {
            return Err(format!("edit {n} names no file"));
        }
        if e.search.is_empty() {
            return Err(format!("edit {n}: `search` is empty; copy the exact text to replace"));
        }
        if e.search.chars().count() > max_chars || e.replace.chars().count() > max_chars {
            return Err(format!(
                "edit {n} is too long (search and replace at most {max_chars} characters each)"
            ));
        }
    }
    if p.test.code.chars().count() > settings.max_test_chars {
        return Err(format!(
            "test.code is longer than {} characters",
            settings.max_test_chars
        ));
    }
    Ok(())
}

/// One file an edit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EditedFile {
    pub path: String,
    pub old: String,
    pub new: String,
}

/// Applies the edits, in order, to the files as they are at `base`; every search text must
/// occur exactly once in the file as it is at that point.
pub(crate) async fn apply_edits(
    edits: &[Edit],
    git: &dyn Git,
    repo: &Path,
    base: &str,
) -> Result<Vec<EditedFile>, String> {
    let mut files: Vec<EditedFile> = Vec::new();
    for (i, edit) in edits.iter().enumerate() {
        let n = i + 1;
        check_relative_path(&edit.file).map_err(|why| format!("edit {n}: {why}"))?;
        let index = match files.iter().position(|f| f.path == edit.file) {
            Some(index) => index,
            None => {
                let content = git.show_file(repo, base, &edit.file).await.map_err(|err| {
                    format!(
                        "edit {n}: `{}` cannot be read at the base commit: {}",
                        bounded(&edit.file, 200),
                        bounded(&err.to_string(), 200)
                    )
                })?;
                files.push(EditedFile {
                    path: edit.file.clone(),
                    old: content.clone(),
                    new: content,
                });
                files.len() - 1
            }
        };
        let file = &mut files[index];
        let found = file.new.matches(edit.search.as_str()).count();
        if found != 1 {
            return Err(format!(
                "edit {n}: the search text occurs {found} times in `{}` (it must occur exactly once)",
                file.path
            ));
        }
        file.new = file.new.replacen(edit.search.as_str(), &edit.replace, 1);
    }
    files.retain(|f| f.new != f.old);
    if files.is_empty() {
        return Err("the edits change nothing".into());
    }
    Ok(files)
}

/// Unified diff of the edited files and the new test file.
fn candidate_diff(files: &[EditedFile], test: &RegressionTest) -> String {
    let mut out = String::new();
    for f in files {
        out.push_str(&unified(&f.path, &f.old, &f.new, false));
    }
    out.push_str(&unified(&test.file, "", &test.code, true));
    out
}

fn unified(path: &str, old: &str, new: &str, created: bool) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let from = if created {
        "/dev/null".to_string()
    } else {
        format!("a/{path}")
    };
    diff.unified_diff()
        .context_radius(3)
        .header(&from, &format!("b/{path}"))
        .to_string()
}

fn model_attempt(
    name: &str,
    result: &str,
    reason: String,
    diff: Option<String>,
    critique: Option<String>,
) -> PatchAttempt {
    PatchAttempt {
        strategy: name.to_string(),
        result: result.to_string(),
        reason,
        diff,
        critique,
        ..PatchAttempt::default()
    }
}

/// At most `max` characters, cut on a character boundary, marked when cut.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// The first line, without control characters, bounded: model text that becomes a commit title.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let line: String = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    bounded(line.trim(), max)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
