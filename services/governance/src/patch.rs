//! The patch policy's input and verdict: what a proposed fix changes and how it was validated.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use selfheal_catalog::ServiceEntry;

use crate::diff::parse_unified_diff;
use crate::error::GovernanceError;

/// Largest diff the patch policy accepts when the input does not say (it matches the catalog default).
pub const DEFAULT_MAX_DIFF_LINES: u32 = selfheal_catalog::DEFAULT_MAX_DIFF_LINES;

/// Where a patch came from; the policy denies anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOrigin {
    /// A fix template from the repairer's library.
    Template,
    /// A fix learned from earlier outcomes.
    Learned,
    /// A patch written by a language model.
    Llm,
}

/// The evidence that a fix works: the regression test fails before it and passes after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// The regression test failed on the unpatched code.
    pub failed_before: bool,
    /// The regression test passed on the patched code.
    pub passed_after: bool,
    /// The service's whole test suite passed on the patched code.
    pub suite_passed: bool,
}

impl Validation {
    /// All three proofs given.
    pub fn proven() -> Self {
        Validation {
            failed_before: true,
            passed_after: true,
            suite_passed: true,
        }
    }
}

/// One file a patch changes; paths are relative to the repository root, `/`-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchFile {
    /// The file's path after the patch.
    pub path: String,
    /// Lines added to it.
    pub added: u32,
    /// Lines removed from it.
    pub removed: u32,
    /// The patch creates it.
    pub new_file: bool,
    /// The patch deletes it.
    #[serde(default)]
    pub deleted: bool,
    /// The change is binary (no reviewable lines).
    #[serde(default)]
    pub binary: bool,
    /// Its path before the patch, when renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
}

/// Everything the patch policy looks at, in the shape `policies/patch.rego` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchInput {
    /// The service being healed.
    pub service: String,
    /// Where in-app code lives, relative to the repository root (`.` for all of it).
    pub source_root: String,
    /// Every file the patch changes.
    pub files: Vec<PatchFile>,
    /// Added plus removed lines over all files.
    pub diff_lines: u32,
    /// The largest diff allowed for this service.
    pub max_diff_lines: u32,
    /// The service's protected globs, on top of the policy defaults.
    pub protected_globs: Vec<String>,
    /// The fix strategy, e.g. `python.zero-division-guard`.
    pub strategy: String,
    /// Where the patch came from.
    pub origin: PatchOrigin,
    /// What the sandbox proved.
    pub validation: Validation,
    /// The unified diff itself; the policy scans its added lines.
    pub diff: String,
}

impl PatchInput {
    /// Builds the input from a unified diff, counting files and lines; validation starts unproven.
    pub fn from_unified_diff(
        service: impl Into<String>,
        source_root: impl Into<String>,
        diff: impl Into<String>,
        strategy: impl Into<String>,
        origin: PatchOrigin,
    ) -> Result<Self, GovernanceError> {
        let diff = diff.into();
        let files = parse_unified_diff(&diff)?;
        let diff_lines = files
            .iter()
            .map(|file| file.added.saturating_add(file.removed))
            .fold(0u32, u32::saturating_add);
        Ok(PatchInput {
            service: service.into(),
            source_root: source_root.into(),
            files,
            diff_lines,
            max_diff_lines: DEFAULT_MAX_DIFF_LINES,
            protected_globs: Vec::new(),
            strategy: strategy.into(),
            origin,
            validation: Validation::default(),
            diff,
        })
    }

    /// Like [`PatchInput::from_unified_diff`], with source root and limits from the service's catalog entry.
    pub fn for_service(
        entry: &ServiceEntry,
        diff: impl Into<String>,
        strategy: impl Into<String>,
        origin: PatchOrigin,
    ) -> Result<Self, GovernanceError> {
        Ok(
            PatchInput::from_unified_diff(entry.name.clone(), entry.source_root.clone(), diff, strategy, origin)?
                .with_limits(entry.max_diff_lines, entry.protected_globs.clone()),
        )
    }

    /// Sets what the sandbox proved.
    pub fn with_validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// Sets the diff size limit and the service's protected globs.
    pub fn with_limits(mut self, max_diff_lines: u32, protected_globs: Vec<String>) -> Self {
        self.max_diff_lines = max_diff_lines;
        self.protected_globs = protected_globs;
        self
    }
}

/// The patch policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// No rule denied the patch.
    pub allowed: bool,
    /// One message per violation, `<rule-id>: <file or (patch)>: <why>`, sorted.
    pub violations: Vec<String>,
    /// How many rules the policy checked.
    pub rules_evaluated: u32,
    /// SHA-256 of the policy texts, hex: which policy version decided.
    pub policy_digest: String,
}

impl Verdict {
    /// The ids of the rules that denied, e.g. `protected-path`.
    pub fn violated_rules(&self) -> BTreeSet<&str> {
        rule_ids(&self.violations)
    }
}

/// The rule id of each `<rule-id>: ...` message.
pub(crate) fn rule_ids(violations: &[String]) -> BTreeSet<&str> {
    violations
        .iter()
        .map(|message| message.split(':').next().unwrap_or(message).trim())
        .collect()
}
