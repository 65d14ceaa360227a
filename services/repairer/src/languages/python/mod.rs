//! Python: pytest and unittest projects, the Python fix templates and regression tests.

pub mod model_test;
pub mod regression;
pub mod syntax;
pub mod templates;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use selfheal_events::RegressionTest;

use super::{Language, ModelTestRequest, ModelTestRules, Project, RegressionError, RegressionRequest, TestSuite};
use crate::sandbox::{TestSummary, parse_pytest_summary};
use crate::templates::FixTemplate;

/// The Python language.
#[derive(Debug, Clone, Copy, Default)]
pub struct Python;

/// Files that mark a directory as a Python project.
const MARKERS: &[&str] = &[
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "Pipfile",
    "pytest.ini",
    "tox.ini",
];

/// Files whose presence, or whose text mentioning pytest, means the suite runs with pytest.
const PYTEST_CONFIGS: &[&str] = &["pytest.ini", "conftest.py", "tests/conftest.py"];
const PYTEST_MENTIONS: &[&str] = &[
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements_dev.txt",
    "requirements-test.txt",
    "dev-requirements.txt",
    "Pipfile",
];

impl Language for Python {
    fn id(&self) -> &'static str {
        "python"
    }

    fn names(&self) -> &'static [&'static str] {
        &["python", "python3", "cpython"]
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["py"]
    }

    fn detect(&self, repo: &Path) -> Option<Project> {
        let marked = MARKERS.iter().any(|m| repo.join(m).is_file()) || has_py_files(repo);
        if !marked {
            return None;
        }
        let pytest = PYTEST_CONFIGS.iter().any(|c| repo.join(c).is_file())
            || PYTEST_MENTIONS.iter().any(|f| {
                std::fs::read_to_string(repo.join(f)).is_ok_and(|text| text.to_ascii_lowercase().contains("pytest"))
            });
        let source_root = if !has_py_files(repo) && repo.join("src").is_dir() {
            "src"
        } else {
            "."
        };
        let (framework, command) = if pytest {
            ("pytest", vec!["python3", "-m", "pytest", "-q"])
        } else {
            let tests = tests_dir(repo);
            let mut command = vec!["python3", "-m", "unittest", "discover"];
            if let Some(dir) = tests {
                command.extend(["-s", dir]);
                if repo.join(dir).join("__init__.py").is_file() {
                    command.extend(["-t", "."]);
                }
            }
            ("unittest", command)
        };
        Some(Project {
            language: self.id(),
            source_root: source_root.to_string(),
            framework: framework.to_string(),
            test_root: tests_dir(repo).unwrap_or("tests").to_string(),
            suite: TestSuite {
                command: command.into_iter().map(String::from).collect(),
                env: BTreeMap::from([("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string())]),
                prepare: None,
            },
        })
    }

    fn templates(&self) -> Vec<Box<dyn FixTemplate>> {
        templates::all()
    }

    fn regression_test(&self, request: &RegressionRequest<'_>) -> Result<RegressionTest, RegressionError> {
        regression::write(request)
    }

    fn model_test(&self, request: &ModelTestRequest<'_>) -> Result<Box<dyn ModelTestRules>, RegressionError> {
        Ok(Box::new(model_test::rules(request)))
    }

    fn single_test_command(&self, project: &Project, test: &RegressionTest) -> Vec<String> {
        let mut command = project.suite.command.clone();
        if project.framework == "unittest" {
            // `python -m unittest discover ...` → `python -m unittest <file>`: unittest turns
            // the path into a module name and imports it from the repository root.
            if let Some(at) = command.iter().position(|a| a == "unittest") {
                command.truncate(at + 1);
            }
        }
        command.push(test.file.clone());
        command
    }

    fn summary(&self, output: &str) -> Option<TestSummary> {
        parse_pytest_summary(output).or_else(|| parse_unittest_summary(output))
    }
}

/// The directory holding the tests, when there is a conventional one.
fn tests_dir(repo: &Path) -> Option<&'static str> {
    ["tests", "test"].into_iter().find(|d| repo.join(d).is_dir())
}

fn has_py_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "py") && e.path().is_file())
    })
}

/// Counts from unittest's `Ran N tests` and `FAILED (failures=F, errors=E, skipped=S)` / `OK`.
pub fn parse_unittest_summary(output: &str) -> Option<TestSummary> {
    let ran = output.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("Ran ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
    })?;
    let mut summary = TestSummary::default();
    let status = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("OK") || l.starts_with("FAILED"))?;
    let count = |key: &str| {
        status
            .split(['(', ')', ',', ' '])
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    };
    summary.failed = count("failures");
    summary.errors = count("errors");
    summary.skipped = count("skipped") + count("expected failures");
    summary.passed = ran.saturating_sub(summary.failed + summary.errors + summary.skipped);
    Some(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod detect_tests {
    use super::*;

    #[test]
    fn unittest_summaries() {
        let ok = "....\n----------------------------------------------------------------------\nRan 4 tests in 0.001s\n\nOK\n";
        assert_eq!(parse_unittest_summary(ok).unwrap().tests_run(), 4);
        let failed = "Ran 5 tests in 0.01s\n\nFAILED (failures=1, errors=2, skipped=1)\n";
        let s = parse_unittest_summary(failed).unwrap();
        assert_eq!((s.passed, s.failed, s.errors, s.skipped), (1, 1, 2, 1));
        assert!(parse_unittest_summary("nothing here").is_none());
    }

    #[test]
    fn detects_pytest_and_unittest_projects() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1\n").unwrap();
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        let p = Python.detect(dir.path()).unwrap();
        assert_eq!(p.framework, "unittest");
        assert_eq!(
            p.suite.command,
            ["python3", "-m", "unittest", "discover", "-s", "tests"]
        );
        std::fs::write(dir.path().join("requirements.txt"), "flask\npytest==8\n").unwrap();
        let p = Python.detect(dir.path()).unwrap();
        assert_eq!(p.framework, "pytest");
        assert_eq!(p.source_root, ".");
        let empty = tempfile::tempdir().unwrap();
        assert!(Python.detect(empty.path()).is_none());
    }
}
