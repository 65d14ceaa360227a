//! Running the Rego unit tests (`test_*` rules in `*_test.rego`) through regorus, as `opa test` would.
//!
//! `cargo test` runs them through this module, so a policy change cannot land with a
//! broken policy test, and a binary can check a policy directory before using it.

use std::path::Path;

use serde::Serialize;

use crate::engine::{EMBEDDED_POLICIES, EMBEDDED_POLICY_TESTS, PolicySource, new_engine, read_source, rego_files};
use crate::error::GovernanceError;

/// The result of one `test_*` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyTestResult {
    /// The test file the rule is in.
    pub file: String,
    /// The test file's package, e.g. `selfheal.patch_test`.
    pub package: String,
    /// The rule name, e.g. `test_template_fix_is_allowed`.
    pub name: String,
    /// The rule evaluated to `true`.
    pub passed: bool,
    /// Why it did not: its value (undefined, false) or the evaluation error.
    pub failure: Option<String>,
}

/// Runs every test in `dir`'s `*_test.rego` against `dir`'s policies.
pub fn run_policy_tests(dir: impl AsRef<Path>) -> Result<Vec<PolicyTestResult>, GovernanceError> {
    let dir = dir.as_ref();
    let policies = rego_files(dir, false)?
        .iter()
        .map(|path| read_source(path))
        .collect::<Result<Vec<_>, _>>()?;
    let tests = rego_files(dir, true)?
        .iter()
        .map(|path| read_source(path))
        .collect::<Result<Vec<_>, _>>()?;
    run(policies, tests)
}

/// Runs the embedded policies' own tests.
pub fn run_embedded_policy_tests() -> Result<Vec<PolicyTestResult>, GovernanceError> {
    let embedded = |files: &[(&str, &str)]| {
        files
            .iter()
            .map(|(name, text)| PolicySource::new(*name, *text))
            .collect::<Vec<_>>()
    };
    run(embedded(EMBEDDED_POLICIES), embedded(EMBEDDED_POLICY_TESTS))
}

fn run(policies: Vec<PolicySource>, tests: Vec<PolicySource>) -> Result<Vec<PolicyTestResult>, GovernanceError> {
    let mut all = policies;
    all.extend(tests.iter().cloned());
    let engine = new_engine(&all)?;
    let mut results = Vec::new();
    for test_file in &tests {
        let Some(package) = package_of(&test_file.text) else {
            return Err(GovernanceError::Parse {
                file: test_file.name.clone(),
                line: 0,
                message: "no package declaration".to_string(),
            });
        };
        for name in test_names(&test_file.text) {
            // A fresh clone per test: no state leaks from one test into the next.
            let mut engine = engine.clone();
            let outcome = engine.eval_rule(format!("data.{package}.{name}"));
            let (passed, failure) = match outcome {
                Ok(regorus::Value::Bool(true)) => (true, None),
                Ok(regorus::Value::Undefined) => (false, Some("undefined".to_string())),
                Ok(other) => (
                    false,
                    Some(other.to_json_str().unwrap_or_else(|_| format!("{other:?}"))),
                ),
                Err(err) => (false, Some(format!("error: {err}"))),
            };
            results.push(PolicyTestResult {
                file: test_file.name.clone(),
                package: package.clone(),
                name,
                passed,
                failure,
            });
        }
    }
    Ok(results)
}

/// The `package a.b` declaration of a Rego file.
fn package_of(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.trim()
            .strip_prefix("package ")
            .map(|package| package.trim().to_string())
    })
}

/// Names of top-level `test_*` rules, in file order, each once (a test may have several bodies).
fn test_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        // Rules start in column 0; indented text is inside a body.
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}
