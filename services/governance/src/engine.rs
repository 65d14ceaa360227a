//! Loading Rego policies into regorus once and evaluating them per patch or deploy.
//!
//! The engine is parsed and prepared at construction (a warm-up evaluation checks the
//! rules exist), then cloned for each evaluation: a clone shares the parsed modules, so
//! evaluations are cheap, independent and safe from several threads at once.

use std::path::{Path, PathBuf};

use regorus::{Engine, Value};
use sha2::{Digest, Sha256};

use crate::deploy::{DeployInput, DeployVerdict};
use crate::error::GovernanceError;
use crate::patch::{PatchInput, Verdict};

/// The rule whose messages deny a patch.
pub const PATCH_DENY_RULE: &str = "data.selfheal.patch.deny";
/// The set of rule ids the patch policy can report.
pub const PATCH_RULES_RULE: &str = "data.selfheal.patch.rules";
/// The deploy policy's single decision document (`deny` and `allow_auto_approval`).
pub const DEPLOY_DECISION_RULE: &str = "data.selfheal.deploy.decision";
/// The set of rule ids the deploy policy can report.
pub const DEPLOY_RULES_RULE: &str = "data.selfheal.deploy.rules";

/// Suffix of policy test files, loaded only by the policy test runner.
pub const TEST_SUFFIX: &str = "_test.rego";

/// The project's own policies, compiled in so binaries work without `policies/`.
pub(crate) const EMBEDDED_POLICIES: &[(&str, &str)] = &[
    ("deploy.rego", include_str!("../../../policies/deploy.rego")),
    ("patch.rego", include_str!("../../../policies/patch.rego")),
];

/// The tests of the embedded policies, for [`crate::run_embedded_policy_tests`].
pub(crate) const EMBEDDED_POLICY_TESTS: &[(&str, &str)] = &[
    ("deploy_test.rego", include_str!("../../../policies/deploy_test.rego")),
    ("patch_test.rego", include_str!("../../../policies/patch_test.rego")),
];

/// One Rego file: the name errors and the digest use, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// The file's name or path; the digest uses only its last component.
    pub name: String,
    /// The Rego text.
    pub text: String,
}

impl PolicySource {
    /// A source from a name and its text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        PolicySource {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// The patch and deploy policies, parsed and ready to evaluate.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    engine: Engine,
    digest: String,
    files: Vec<String>,
    patch_rules: u32,
    deploy_rules: u32,
}

impl PolicyEngine {
    /// Loads every `*.rego` in `dir` except `*_test.rego`; errors name the file (and line when parsing).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, GovernanceError> {
        let dir = dir.as_ref();
        let paths = rego_files(dir, false)?;
        if paths.is_empty() {
            return Err(GovernanceError::NoPolicies(dir.to_path_buf()));
        }
        let sources = paths
            .iter()
            .map(|path| read_source(path))
            .collect::<Result<Vec<_>, _>>()?;
        PolicyEngine::from_sources(sources)
    }

    /// The project's own `policies/`, compiled into the binary.
    pub fn embedded() -> Result<Self, GovernanceError> {
        PolicyEngine::from_sources(
            EMBEDDED_POLICIES
                .iter()
                .map(|(name, text)| PolicySource::new(*name, *text)),
        )
    }

    /// Loads the given policies; they must define the `selfheal.patch` and `selfheal.deploy` packages.
    pub fn from_sources(sources: impl IntoIterator<Item = PolicySource>) -> Result<Self, GovernanceError> {
        let mut sources: Vec<PolicySource> = sources.into_iter().collect();
        sources.sort_by(|a, b| digest_name(&a.name).cmp(digest_name(&b.name)));
        let mut engine = new_engine(&sources)?;
        let patch_rules = count_rule_ids(&mut engine, PATCH_RULES_RULE)?;
        let deploy_rules = count_rule_ids(&mut engine, DEPLOY_RULES_RULE)?;
        // Warm up: prepares the engine once so clones skip it, and surfaces rules that
        // cannot evaluate at all now rather than on the first incident.
        engine.set_input(Value::new_object());
        for rule in [PATCH_DENY_RULE, DEPLOY_DECISION_RULE] {
            engine
                .eval_rule(rule.to_string())
                .map_err(|err| GovernanceError::MissingRule {
                    rule: rule.to_string(),
                    message: err.to_string(),
                })?;
        }
        Ok(PolicyEngine {
            engine,
            digest: digest(&sources),
            files: sources.iter().map(|source| source.name.clone()).collect(),
            patch_rules,
            deploy_rules,
        })
    }

    /// SHA-256 over the policy files' names and texts, hex.
    pub fn policy_digest(&self) -> &str {
        &self.digest
    }

    /// The names of the loaded policy files, sorted.
    pub fn policy_files(&self) -> &[String] {
        &self.files
    }

    /// Decides whether a patch may be pushed.
    pub fn evaluate_patch(&self, input: &PatchInput) -> Result<Verdict, GovernanceError> {
        for glob in &input.protected_globs {
            glob::Pattern::new(glob).map_err(|err| GovernanceError::InvalidGlob {
                glob: glob.clone(),
                message: err.to_string(),
            })?;
        }
        let deny = self.evaluate(serde_json::to_value(input)?, PATCH_DENY_RULE)?;
        let violations = string_set(PATCH_DENY_RULE, deny)?;
        Ok(Verdict {
            allowed: violations.is_empty(),
            violations,
            rules_evaluated: self.patch_rules,
            policy_digest: self.digest.clone(),
        })
    }

    /// Decides whether a deploy may go ahead, and whether rollout may approve it by itself.
    pub fn evaluate_deploy(&self, input: &DeployInput) -> Result<DeployVerdict, GovernanceError> {
        let decision = self.evaluate(serde_json::to_value(input)?, DEPLOY_DECISION_RULE)?;
        let mut decision = match decision {
            serde_json::Value::Object(fields) => fields,
            other => return Err(unexpected(DEPLOY_DECISION_RULE, "an object", &other)),
        };
        let deny = decision.remove("deny").unwrap_or(serde_json::Value::Array(Vec::new()));
        let violations = string_set(DEPLOY_DECISION_RULE, deny)?;
        let allow_auto_approval = match decision.remove("allow_auto_approval") {
            Some(serde_json::Value::Bool(flag)) => flag,
            other => {
                return Err(unexpected(
                    DEPLOY_DECISION_RULE,
                    "a boolean allow_auto_approval",
                    &other.unwrap_or(serde_json::Value::Null),
                ));
            }
        };
        Ok(DeployVerdict {
            allowed: violations.is_empty(),
            // Auto-approval never outlives a denial, whatever the policy text says.
            allow_auto_approval: allow_auto_approval && violations.is_empty(),
            violations,
            rules_evaluated: self.deploy_rules,
            policy_digest: self.digest.clone(),
        })
    }

    /// Evaluates `rule` against `input` on a clone of the prepared engine.
    fn evaluate(&self, input: serde_json::Value, rule: &str) -> Result<serde_json::Value, GovernanceError> {
        let mut engine = self.engine.clone();
        engine.set_input(Value::from(input));
        let value = engine
            .eval_rule(rule.to_string())
            .map_err(|err| GovernanceError::Eval {
                rule: rule.to_string(),
                message: err.to_string(),
            })?;
        if value == Value::Undefined {
            return Err(GovernanceError::UnexpectedResult {
                rule: rule.to_string(),
                expected: "a defined value",
                found: "undefined".to_string(),
            });
        }
        Ok(serde_json::to_value(&value)?)
    }
}

/// A regorus engine with `sources` added; Rego v1 syntax, builtin errors raised rather than swallowed.
pub(crate) fn new_engine(sources: &[PolicySource]) -> Result<Engine, GovernanceError> {
    let mut engine = Engine::new();
    engine.set_rego_v0(false);
    // A builtin error must fail the evaluation (and so the patch), not quietly make a deny rule undefined.
    engine.set_strict_builtin_errors(true);
    for source in sources {
        engine
            .add_policy(source.name.clone(), source.text.clone())
            .map_err(|err| parse_error(&source.name, &err.to_string()))?;
    }
    Ok(engine)
}

/// Reads one policy file, naming it by its path.
pub(crate) fn read_source(path: &Path) -> Result<PolicySource, GovernanceError> {
    let text = std::fs::read_to_string(path).map_err(|source| GovernanceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(PolicySource::new(path.display().to_string(), text))
}

/// The `.rego` files directly in `dir`, sorted; test files only when `tests` is set, else only policies.
pub(crate) fn rego_files(dir: &Path, tests: bool) -> Result<Vec<PathBuf>, GovernanceError> {
    let read_error = |source| GovernanceError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if name.ends_with(".rego") && name.ends_with(TEST_SUFFIX) == tests && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// regorus reports `--> file:line:col` followed by the source line and the message.
fn parse_error(file: &str, message: &str) -> GovernanceError {
    let line = message
        .lines()
        .find_map(|text| text.trim().strip_prefix("--> "))
        .and_then(|location| {
            let mut parts = location.rsplit(':');
            let _column = parts.next()?;
            parts.next()?.trim().parse::<u32>().ok()
        })
        .unwrap_or(0);
    GovernanceError::Parse {
        file: file.to_string(),
        line,
        message: message.trim().to_string(),
    }
}

fn count_rule_ids(engine: &mut Engine, rule: &str) -> Result<u32, GovernanceError> {
    let value = engine
        .eval_rule(rule.to_string())
        .map_err(|err| GovernanceError::MissingRule {
            rule: rule.to_string(),
            message: err.to_string(),
        })?;
    match &value {
        Value::Set(ids) => Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX)),
        other => Err(GovernanceError::UnexpectedResult {
            rule: rule.to_string(),
            expected: "a set of rule ids",
            found: other.to_json_str().unwrap_or_else(|_| format!("{other:?}")),
        }),
    }
}

/// A Rego set of strings (serialised by regorus as a sorted array) as a sorted `Vec`.
fn string_set(rule: &str, value: serde_json::Value) -> Result<Vec<String>, GovernanceError> {
    match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(text) => Ok(text),
                other => Err(unexpected(rule, "a set of strings", &other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|mut messages| {
                messages.sort();
                messages
            }),
        other => Err(unexpected(rule, "a set of strings", &other)),
    }
}

fn unexpected(rule: &str, expected: &'static str, found: &serde_json::Value) -> GovernanceError {
    GovernanceError::UnexpectedResult {
        rule: rule.to_string(),
        expected,
        found: found.to_string(),
    }
}

/// The digest names a file by its last path component, so a directory and the embedded copy agree.
fn digest_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn digest(sources: &[PolicySource]) -> String {
    let mut hasher = Sha256::new();
    for source in sources {
        hasher.update(digest_name(&source.name).as_bytes());
        hasher.update([0]);
        hasher.update(source.text.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}
