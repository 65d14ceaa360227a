//! Proposing a proven fix for review: when the service's catalog entry names a code host, the
//! `selfheal/<incident>` branch is pushed there and one pull request proposes it, with a body
//! that tells the reviewer everything the patch record holds; without a code host the local
//! branch itself is the proposal.
//!
//! The clients live in `selfheal-codehost` (one folder per provider); this module decides what
//! the pull request says. Idempotent by branch: a replayed patch updates the pull request its
//! branch already has, and a run that failed between the push and the pull request completes it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use selfheal_catalog::ServiceEntry;
use selfheal_codehost::{CodeHost, CodeHostError, Proposal, SELFHEAL_LABEL};
use selfheal_events::{Diagnosis, Patch};

/// A pull request that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open a pull request: {message}")]
pub struct PullRequestError {
    /// What went wrong (never a token: see `selfheal-codehost`).
    pub message: String,
    /// Whether a retry later may succeed (the host was unreachable or overloaded).
    pub transient: bool,
}

impl From<CodeHostError> for PullRequestError {
    fn from(e: CodeHostError) -> Self {
        PullRequestError {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

/// Proposes a patch's branch for review; must be idempotent per branch.
#[async_trait]
pub trait PullRequests: Send + Sync {
    /// Pushes the branch and opens or updates its pull request; the pull request's URL, or
    /// `None` when the service has no code host (the local branch is the proposal).
    async fn propose(
        &self,
        entry: &ServiceEntry,
        diagnosis: &Diagnosis,
        patch: &Patch,
    ) -> Result<Option<String>, PullRequestError>;
}

/// The local repository is the review surface: the branch itself is the proposal.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalPullRequests;

#[async_trait]
impl PullRequests for LocalPullRequests {
    async fn propose(
        &self,
        _entry: &ServiceEntry,
        _diagnosis: &Diagnosis,
        patch: &Patch,
    ) -> Result<Option<String>, PullRequestError> {
        tracing::info!(branch = ?patch.branch, "fix proposed on a local branch (no code host configured)");
        Ok(None)
    }
}

/// Pull requests on the code host the catalog names for each service (local branches for
/// services that name none). Clients are made once per service, when first needed.
#[derive(Default)]
pub struct CodeHostPullRequests {
    hosts: Mutex<HashMap<String, Arc<dyn CodeHost>>>,
}

impl std::fmt::Debug for CodeHostPullRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeHostPullRequests").finish_non_exhaustive()
    }
}

impl CodeHostPullRequests {
    fn host_for(&self, entry: &ServiceEntry) -> Result<Option<Arc<dyn CodeHost>>, PullRequestError> {
        let Some(settings) = &entry.code_host else {
            return Ok(None);
        };
        let mut hosts = match self.hosts.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(host) = hosts.get(&entry.name) {
            return Ok(Some(host.clone()));
        }
        let host = selfheal_codehost::connect(settings)?;
        hosts.insert(entry.name.clone(), host.clone());
        Ok(Some(host))
    }
}

#[async_trait]
impl PullRequests for CodeHostPullRequests {
    async fn propose(
        &self,
        entry: &ServiceEntry,
        diagnosis: &Diagnosis,
        patch: &Patch,
    ) -> Result<Option<String>, PullRequestError> {
        let Some(host) = self.host_for(entry)? else {
            return LocalPullRequests.propose(entry, diagnosis, patch).await;
        };
        let Some(settings) = &entry.code_host else {
            return Ok(None);
        };
        let branch = patch.branch.clone().ok_or_else(|| PullRequestError {
            message: "the patch has no branch".into(),
            transient: false,
        })?;
        let proposal = Proposal {
            branch,
            base: settings.base_branch.clone(),
            title: title(patch),
            body: body(entry, diagnosis, patch),
            labels: labels(patch),
            reviewers: settings.reviewers.clone(),
        };
        let delivered = selfheal_codehost::deliver(host.as_ref(), &entry.repository, &proposal).await?;
        for note in &delivered.notes {
            tracing::warn!(incident = %patch.incident_id, %note, "pull request");
        }
        tracing::info!(
            incident = %patch.incident_id,
            url = %delivered.pull_request.url,
            opened = delivered.opened,
            "fix proposed as a pull request"
        );
        Ok(Some(delivered.pull_request.url))
    }
}

/// `selfheal: <summary>`, bounded: hosts cap titles at 255 characters.
pub fn title(patch: &Patch) -> String {
    let title = format!("selfheal: {}", patch.summary);
    if title.chars().count() <= 200 {
        title
    } else {
        format!("{}…", title.chars().take(199).collect::<String>())
    }
}

/// `selfheal` and the fix class (the template, `learned`, or `model-written`).
pub fn labels(patch: &Patch) -> Vec<String> {
    let class = match patch.strategy.as_deref() {
        Some(crate::agent::STRATEGY) => "model-written".to_string(),
        Some(strategy) => strategy
            .trim_start_matches("learned:")
            .rsplit('.')
            .next()
            .unwrap_or(strategy)
            .to_string(),
        None => "fix".to_string(),
    };
    let mut labels = vec![SELFHEAL_LABEL.to_string(), class];
    if patch.learned {
        labels.push("learned".into());
    }
    labels
}

/// Text from telemetry or a model, shown inside a code span or block: backticks would end it.
fn code(text: &str) -> String {
    text.replace('`', "'")
}

fn when(ms: Option<i64>) -> String {
    ms.and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "unknown".into())
}

fn yes(flag: bool) -> &'static str {
    if flag { "yes" } else { "**no**" }
}

/// The pull request's body: the incident, the diagnosis with its hypotheses, the fix and where it
/// came from, the regression test and what the sandbox proved, the policy verdict, and what
/// happens after approval. Everything here is on the patch and diagnosis records already; text
/// that came from telemetry or a model is quoted as code, never as markdown.
pub fn body(entry: &ServiceEntry, diagnosis: &Diagnosis, patch: &Patch) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "selfheal proposes a fix for incident `{}` of **{}**.\n",
        code(&patch.incident_id),
        code(&patch.service)
    );
    let _ = writeln!(b, "## Incident\n");
    let _ = writeln!(b, "- Fingerprint: `{}`", code(&patch.fingerprint));
    let _ = writeln!(b, "- First error: {}", when(patch.timeline.first_error_ms));
    let _ = writeln!(b, "- Detected: {}", when(patch.timeline.anomaly_ms));
    if let Some(e) = &diagnosis.exception {
        let _ = writeln!(
            b,
            "- Exception: `{}: {}`",
            code(&e.r#type),
            code(e.message.lines().next().unwrap_or_default())
        );
    } else if let Some(t) = &patch.exception_type {
        let _ = writeln!(b, "- Exception: `{}`", code(t));
    }
    if let Some(stack) = diagnosis.exception.as_ref().and_then(|e| e.stacktrace.as_ref()) {
        let sample: Vec<&str> = stack.lines().take(30).collect();
        let _ = writeln!(
            b,
            "\n<details><summary>Sample stack trace</summary>\n\n```\n{}\n```\n</details>",
            code(&sample.join("\n"))
        );
    }
    let _ = writeln!(b, "\n## Diagnosis\n");
    if let Some(rc) = &patch.root_cause {
        let _ = writeln!(
            b,
            "Culprit frame: `{}:{}` in `{}` ({}: {}), confidence {:.0}%.",
            code(&rc.file),
            rc.line,
            code(&rc.function),
            code(&rc.exception_type),
            code(rc.message.lines().next().unwrap_or_default()),
            diagnosis.confidence * 100.0
        );
        if let Some(snippet) = &rc.code_snippet {
            let _ = writeln!(b, "\n```\n{}\n```", code(snippet));
        }
    } else {
        let _ = writeln!(b, "{}", code(&diagnosis.summary));
    }
    if !diagnosis.hypotheses.is_empty() {
        let _ = writeln!(
            b,
            "\n| # | hypothesis | confidence | source | where |\n|---|---|---|---|---|"
        );
        for h in diagnosis.hypotheses.iter().take(10) {
            let place = match (&h.file, h.line) {
                (Some(f), Some(l)) => format!("`{}:{l}`", code(f)),
                (Some(f), None) => format!("`{}`", code(f)),
                _ => String::new(),
            };
            let _ = writeln!(
                b,
                "| {} | {} | {:.0}% | {:?} | {place} |",
                h.rank,
                code(&h.summary).replace('|', "\\|").replace('\n', " "),
                h.confidence * 100.0,
                h.source
            );
        }
    }
    let _ = writeln!(b, "\n## Fix\n");
    let strategy = patch.strategy.as_deref().unwrap_or("unknown");
    let source = if strategy == crate::agent::STRATEGY {
        let model = patch
            .llm
            .as_ref()
            .map(|l| l.model.as_str())
            .unwrap_or("a language model");
        format!(
            "written by a model ({}), accepted by its self-critique and the sandbox",
            code(model)
        )
    } else if patch.learned {
        format!(
            "learned: `{}` healed this failure before (from the learning store)",
            code(strategy)
        )
    } else {
        format!("template `{}`", code(strategy))
    };
    let _ = writeln!(b, "- {}", code(&patch.summary));
    let _ = writeln!(b, "- Source: {source}");
    if let Some(params) = &patch.template_params {
        let mut kv: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        kv.sort();
        let _ = writeln!(b, "- Template parameters: `{}`", code(&kv.join(", ")));
    }
    let _ = writeln!(
        b,
        "- Files: {}",
        patch
            .files_changed
            .iter()
            .map(|f| format!("`{}`", code(f)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(commit) = &patch.commit {
        let _ = writeln!(
            b,
            "- Commit: `{commit}` on `{}`, based on `{}`",
            code(patch.branch.as_deref().unwrap_or_default()),
            patch.base_commit.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(b, "\n## Proof\n");
    if let Some(t) = &patch.regression_test {
        let _ = writeln!(
            b,
            "Regression test `{}::{}` (added by this pull request).",
            code(&t.file),
            code(&t.name)
        );
    }
    if let Some(v) = &patch.validation {
        let _ = writeln!(b, "\n| check | result |\n|---|---|");
        let _ = writeln!(
            b,
            "| regression test fails on the base commit | {} |",
            yes(v.failed_before)
        );
        let _ = writeln!(b, "| regression test passes with the fix | {} |", yes(v.passed_after));
        let _ = writeln!(
            b,
            "| whole suite passes with the fix | {} ({} tests run, {} failed, {:.1} s) |",
            yes(v.suite_passed),
            v.tests_run,
            v.tests_failed,
            v.duration_ms as f64 / 1000.0
        );
        let _ = writeln!(b, "\nSandbox: {}", code(&v.sandbox));
    } else {
        let _ = writeln!(b, "No sandbox validation is recorded.");
    }
    let _ = writeln!(b, "\n## Policy\n");
    match &patch.policy {
        Some(p) => {
            let _ = writeln!(
                b,
                "{} — {} rules evaluated (policy digest `{}`){}",
                if p.allowed { "Allowed" } else { "**Denied**" },
                p.rules_evaluated,
                code(&p.policy_digest),
                if p.violations.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": {}",
                        p.violations.iter().map(|v| code(v)).collect::<Vec<_>>().join("; ")
                    )
                }
            );
        }
        None => {
            let _ = writeln!(b, "No policy verdict is recorded.");
        }
    }
    let _ = writeln!(b, "\n## After approval\n");
    let percent = entry
        .deploy_int("canary_traffic_percent")
        .ok()
        .flatten()
        .unwrap_or(25)
        .clamp(1, 100);
    let _ = writeln!(
        b,
        "Deployed by `{}` as a canary taking {percent}% of traffic, compared with the stable version, then promoted or rolled back; progress is reported as the `{}` commit status.",
        code(&entry.deployer),
        selfheal_codehost::STATUS_CONTEXT
    );
    if let Some(host) = &entry.code_host {
        let who = if host.approvers.is_empty() {
            "nobody is configured to approve here; use `selfheal approve`".to_string()
        } else {
            host.approvers
                .iter()
                .map(|a| format!("@{a}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            b,
            "\nApprove with an approving review or a comment `{}`; reject with \"request changes\", `{}`, or by closing this pull request. Approvers: {who}. {}",
            selfheal_codehost::APPROVE_COMMAND,
            selfheal_codehost::REJECT_COMMAND,
            if host.merge {
                "selfheal merges this pull request after promotion."
            } else {
                "After promotion, merging is left to you."
            }
        );
    }
    b
}
