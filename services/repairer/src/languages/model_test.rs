//! What a language model must write as its regression test, per language.
//!
//! The agent ([`crate::agent`]) asks a model for a fix and a regression test; the test is
//! the language's business: which framework, where a new test file goes, which names the
//! framework needs to find and run it, and what makes an answer safe to write. A language
//! answers [`Language::model_test`](super::Language::model_test) with [`ModelTestRules`]
//! (the default declines: that language has no model path yet, and the patch says so).
//!
//! The model's answer keeps one shape for every language: `test: {name, code, path?}`.
//! `path` is asked for only when [`ModelTestSpec::path`] is set; without it, or when the
//! model leaves it out, the test goes to [`ModelTestSpec::file`]. Checks here are the
//! language-neutral part (a plain relative path, no hidden or vendored directory, the
//! extension); the agent checks that the file is new at the base commit.

use std::path::Path;

use selfheal_events::RegressionTest;

use super::{Project, Site};

/// What a language needs to say how the model's test must look.
#[derive(Debug, Clone, Copy)]
pub struct ModelTestRequest<'a> {
    /// The culprit site (diagnosis, frame, culprit file at the base commit).
    pub site: Site<'a>,
    /// The detected project (framework, test root, suite).
    pub project: &'a Project,
    /// The checked-out repository (build files such as `package.json`), read only.
    pub repo: &'a Path,
    /// The default test file exists at the base commit: name it with the incident's full id.
    pub long_name: bool,
}

/// How the model must write its regression test, as the prompt tells it. Trusted text: it is
/// built from the repository and from checked names, never from telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTestSpec {
    /// The language as people write it: `Python`, `Go`, `Java`, `JavaScript`.
    pub language: &'static str,
    /// The code fence tag of the prompt's code window: `python`, `go`, `java`, `javascript`.
    pub fence: &'static str,
    /// The test framework: `pytest`, `go test`, `JUnit 5 (Maven)`, `node:test`, `Jest`.
    pub framework: String,
    /// Where the test goes when the model names no path (repository-relative, new).
    pub file: String,
    /// Whether the model may name the file (`test.path`); the rules say which paths pass.
    pub path: bool,
    /// What `test.name` is, for the answer's format (`"test_…"`, `"TestSelfheal_…"`).
    pub name_hint: String,
    /// One rule per line for the system prompt: name, file, what the code must contain.
    pub rules: Vec<String>,
    /// Facts for the incident prompt: where the test is saved and how it reaches the culprit.
    pub placement: String,
}

/// The model's test as it answered.
#[derive(Debug, Clone, Copy)]
pub struct ModelTestAnswer<'a> {
    /// `test.name`.
    pub name: &'a str,
    /// `test.code`: the whole file (or module body, for Python).
    pub code: &'a str,
    /// `test.path`, when given.
    pub path: Option<&'a str>,
}

/// A language's rules for one incident's model-written test.
pub trait ModelTestRules: Send + Sync {
    /// What the prompt tells the model.
    fn spec(&self) -> &ModelTestSpec;

    /// Checks the answer and returns the file to write (path, name the single-test command
    /// uses, code with selfheal's header); `Err` says what is wrong, for the model's retry.
    fn check(&self, answer: &ModelTestAnswer<'_>) -> Result<RegressionTest, String>;
}

/// A repository-relative path a model named: `/`-separated plain segments of
/// `[A-Za-z0-9_.@-]`, no `..`, no hidden segment (`.git`, `.github`), no `node_modules`,
/// `vendor` or `target` segment, at most 200 characters.
pub fn check_model_path(path: &str) -> Result<(), String> {
    let shown: String = path.chars().take(80).collect();
    if path.is_empty() || path.len() > 200 {
        return Err(format!("test.path `{shown}` is empty or too long"));
    }
    for segment in path.split('/') {
        let plain = !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
        if !plain {
            return Err(format!(
                "test.path `{shown}` is not a plain path inside the repository (segments of letters, digits, _ - . @; \
                 no `..`, no hidden directory)"
            ));
        }
        if matches!(segment, "node_modules" | "vendor" | "target" | "build" | "dist") {
            return Err(format!(
                "test.path `{shown}` is in `{segment}`: a new test goes with the project's own tests"
            ));
        }
    }
    Ok(())
}

/// `dir/name` (or `name` when `dir` is empty or `.`).
pub fn join(dir: &str, name: &str) -> String {
    let dir = dir.trim_start_matches("./").trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory of a repository-relative path (`""` at the root).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The import path from the test file to a module, `./`-relative (`../src/pricing.js`).
pub fn relative(from_file: &str, to: &str) -> String {
    let from: Vec<&str> = parent(from_file).split('/').filter(|s| !s.is_empty()).collect();
    let to_parts: Vec<&str> = to.split('/').collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count()
        .min(to_parts.len().saturating_sub(1));
    let ups = from.len() - common;
    let rest = to_parts[common..].join("/");
    if ups == 0 {
        format!("./{rest}")
    } else {
        format!("{}{rest}", "../".repeat(ups))
    }
}

/// A test or class name: `[A-Za-z_][A-Za-z0-9_]*`, at most 80 characters.
pub fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 80
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_names_and_relative_imports() {
        for ok in ["test/a.test.js", "stock/x_test.go", "src/test/java/a/B.java", "a"] {
            assert!(check_model_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x.go",
            "/etc/x",
            "a//b",
            ".github/x.js",
            "a/.git/config",
            "node_modules/x.test.js",
            "a b.js",
            "a/./b.js",
        ] {
            assert!(check_model_path(bad).is_err(), "{bad}");
        }
        assert_eq!(relative("test/a.test.js", "src/pricing.js"), "../src/pricing.js");
        assert_eq!(relative("a.test.js", "src/pricing.js"), "./src/pricing.js");
        assert_eq!(relative("src/a.test.js", "src/pricing.js"), "./pricing.js");
        assert_eq!(relative("test/unit/a.test.js", "lib/x.js"), "../../lib/x.js");
        assert_eq!(join(".", "x"), "x");
        assert_eq!(join("test/", "x"), "test/x");
        assert!(is_plain_name("TestSelfheal_ab12_F") && !is_plain_name("1a") && !is_plain_name("a-b"));
    }

    /// A language that writes no rules: the model path declines with a reason.
    struct Plain;

    impl crate::languages::Language for Plain {
        fn id(&self) -> &'static str {
            "plain"
        }
        fn names(&self) -> &'static [&'static str] {
            &[]
        }
        fn extensions(&self) -> &'static [&'static str] {
            &[]
        }
        fn detect(&self, _repo: &Path) -> Option<Project> {
            None
        }
        fn templates(&self) -> Vec<Box<dyn crate::templates::FixTemplate>> {
            Vec::new()
        }
        fn regression_test(
            &self,
            _request: &crate::languages::RegressionRequest<'_>,
        ) -> Result<RegressionTest, crate::languages::RegressionError> {
            Err(crate::languages::refuse("none"))
        }
        fn single_test_command(&self, _project: &Project, _test: &RegressionTest) -> Vec<String> {
            Vec::new()
        }
    }

    #[test]
    fn a_language_without_rules_declines_with_a_reason() {
        use crate::languages::Language;
        let diag = selfheal_events::Diagnosis::default();
        let rc = selfheal_events::RootCause::default();
        let project = Project {
            language: "plain",
            source_root: ".".into(),
            framework: String::new(),
            test_root: ".".into(),
            suite: crate::languages::TestSuite::default(),
        };
        let request = ModelTestRequest {
            site: Site {
                diag: &diag,
                root_cause: &rc,
                source: "",
            },
            project: &project,
            repo: Path::new("."),
            long_name: false,
        };
        let why = Plain.model_test(&request).err().unwrap().to_string();
        assert!(why.contains("does not ask a model for plain regression tests"), "{why}");
    }
}
