//! One home per programming language: how the repairer recognises a project, runs its test
//! suite offline, fixes its crashes and writes its regression tests.
//!
//! Everything language-specific lives in `languages/<id>/` behind the [`Language`] trait; the
//! repair flow ([`crate::flow`]) only talks to that trait. Adding a language is adding a
//! folder and one line in the [`languages!`] list at the bottom of this file (see
//! `languages/README.md`).

use std::collections::BTreeMap;
use std::path::Path;

use selfheal_events::{Diagnosis, RegressionTest, RootCause};

use crate::sandbox::TestSummary;
use crate::templates::FixTemplate;

pub mod model_test;
pub use model_test::{ModelTestAnswer, ModelTestRequest, ModelTestRules, ModelTestSpec};

/// A project found in a repository directory: its language, where its code is and how its
/// test suite runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The [`Language::id`] that recognised it.
    pub language: &'static str,
    /// Where in-app code lives, repository-relative, `/`-separated, `.` for the root.
    pub source_root: String,
    /// The test framework, e.g. `pytest`, `unittest`, `junit5-maven`, `go-test`, `node-test`,
    /// `jest`, `vitest`. The regression-test writer writes for this framework.
    pub framework: String,
    /// Where new test files go, repository-relative (`tests`, `src/test/java`, `.`); a
    /// writer may add subdirectories (a Java package).
    pub test_root: String,
    /// How the whole suite runs.
    pub suite: TestSuite,
}

/// How a project's test suite runs in the sandbox: no network, a copy of the repository as
/// working directory, the host's file system read-only (so `~/.m2`, the Go module cache and
/// `node_modules` are readable), a private writable `/tmp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestSuite {
    /// Program and arguments of the whole suite, run from the repository root.
    pub command: Vec<String>,
    /// Variables the suite needs on top of the sandbox's cleared environment
    /// (e.g. `GOFLAGS=-mod=mod`, `GOPROXY=off`, `GOCACHE=/tmp/go-cache`).
    pub env: BTreeMap<String, String>,
    /// A command run once, outside the sandbox and with network, in the repository copy
    /// before any sandboxed run, to make the suite runnable offline (e.g.
    /// `mvn -q dependency:go-offline`); `None` when the suite is offline already. Never
    /// runs the project's own code.
    pub prepare: Option<Vec<String>>,
}

/// The culprit site a template or a regression-test writer works on.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The whole diagnosis (exception message, sample inputs, hypotheses, runtime).
    pub diag: &'a Diagnosis,
    /// The culprit frame: repository-relative file, one-based line, function, exception type.
    pub root_cause: &'a RootCause,
    /// The culprit file's content at the base commit.
    pub source: &'a str,
}

/// What the fixed code does with the failing input; the regression test asserts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// The failing call returns this value, written as a literal of the language.
    Returns(String),
    /// The failing call raises/throws this exception type: a domain error the callers
    /// already handle (the template showed that they do).
    Raises(String),
    /// The failing call (a request handler) answers with this HTTP status (a 4xx).
    HttpStatus(u16),
    /// The failing call completes without the incident's exception; nothing more is known
    /// (learned diffs, model-written fixes).
    Completes,
}

/// A template's fix of one culprit site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFix {
    /// The new content of the culprit file.
    pub content: String,
    /// One line for a person, e.g. `guard the divisor`; used in the commit and the patch summary.
    pub summary: String,
    /// What the template decided at this site (`divisor=d`, `key=quantity`, `error=ValueError`):
    /// kept by the learning store so the same template can be re-applied elsewhere.
    pub params: BTreeMap<String, String>,
    /// What the fixed code does with the failing input.
    pub expect: Expectation,
}

/// What a regression-test writer is asked for.
#[derive(Debug, Clone, Copy)]
pub struct RegressionRequest<'a> {
    /// The culprit site.
    pub site: Site<'a>,
    /// The project (framework, source root).
    pub project: &'a Project,
    /// The template's fix when the candidate is a template (learned or not); `None` for a
    /// learned diff, where only [`Expectation::Completes`] can be asserted.
    pub fix: Option<&'a TemplateFix>,
    /// The template's id when the candidate is a template.
    pub template: Option<&'a str>,
    /// The short test file name already exists at the base commit: use the incident's full id.
    pub long_name: bool,
}

/// Why no regression test could be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write a regression test: {0}")]
pub struct RegressionError(pub String);

/// A `RegressionError` with this reason.
pub fn refuse(why: impl Into<String>) -> RegressionError {
    RegressionError(why.into())
}

/// One programming language. Implementations are stateless and cheap; they never run the
/// project's code themselves (the flow runs what they describe, in the sandbox).
pub trait Language: Send + Sync {
    /// Stable id and folder name: `python`, `java`, `go`, `node`.
    fn id(&self) -> &'static str;

    /// The catalog `language` values and diagnosis `runtime` values this language answers
    /// to (e.g. `["javascript", "typescript", "node"]`).
    fn names(&self) -> &'static [&'static str];

    /// File extensions of its source files, without the dot (`py`, `java`, `go`, `js`).
    fn extensions(&self) -> &'static [&'static str];

    /// The project in `repo` (a checked-out directory) when it is one of this language's:
    /// build files, source root, test framework and the suite command, runnable offline.
    fn detect(&self, repo: &Path) -> Option<Project>;

    /// The fix templates, in the order they are tried.
    fn templates(&self) -> Vec<Box<dyn FixTemplate>>;

    /// Writes a new test file where the framework finds it (never an existing file), which
    /// calls the culprit with the failing input (from the evidence, else derived from the
    /// crash class and the code) and asserts `fix.expect`. It must fail on the buggy code
    /// with the incident's exception and pass on the fixed code.
    fn regression_test(&self, request: &RegressionRequest<'_>) -> Result<RegressionTest, RegressionError>;

    /// The command that runs only `test` (the suite command narrowed to one file/class).
    fn single_test_command(&self, project: &Project, test: &RegressionTest) -> Vec<String>;

    /// Test counts from a run's output, when the framework prints a summary.
    fn summary(&self, _output: &str) -> Option<TestSummary> {
        None
    }

    /// How a language model must write its regression test for this site (framework, new
    /// file, names), and the checks of its answer (see [`model_test`]). The default declines:
    /// the patch records the reason and no code is sent to the model.
    fn model_test(&self, _request: &ModelTestRequest<'_>) -> Result<Box<dyn ModelTestRules>, RegressionError> {
        Err(refuse(format!(
            "selfheal does not ask a model for {} regression tests yet",
            self.id()
        )))
    }

    /// Whether a failing run's output shows the incident's exception (the regression test
    /// reproduced the crash rather than failing for another reason).
    fn reproduces(&self, output: &str, root_cause: &RootCause) -> bool {
        let exception = root_cause
            .exception_type
            .rsplit(['.', '$', ':'])
            .next()
            .unwrap_or_default();
        exception.is_empty() || output.contains(exception)
    }
}

/// The languages the repairer knows, in the order detection tries them.
pub struct Languages {
    languages: Vec<Box<dyn Language>>,
}

impl Languages {
    /// Every built-in language (the [`languages!`] list).
    pub fn builtin() -> Self {
        Languages { languages: builtin() }
    }

    /// The language with this id.
    pub fn get(&self, id: &str) -> Option<&dyn Language> {
        self.iter().find(|l| l.id() == id)
    }

    /// Every language, in order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Language> {
        self.languages.iter().map(|l| l.as_ref())
    }

    /// The language of a catalog `language` or diagnosis `runtime` value.
    pub fn by_name(&self, name: &str) -> Option<&dyn Language> {
        let name = name.to_ascii_lowercase();
        self.iter()
            .find(|l| l.id() == name || l.names().contains(&name.as_str()))
    }

    /// The language of a source file, by its extension.
    pub fn by_file(&self, file: &str) -> Option<&dyn Language> {
        let ext = Path::new(file).extension()?.to_str()?;
        self.iter().find(|l| l.extensions().contains(&ext))
    }

    /// The language of a culprit: the catalog's language, else the diagnosis runtime, else
    /// the culprit file's extension.
    pub fn for_culprit(&self, catalog_language: Option<&str>, diag: &Diagnosis, file: &str) -> Option<&dyn Language> {
        catalog_language
            .and_then(|n| self.by_name(n))
            .or_else(|| diag.runtime.as_deref().and_then(|r| self.by_name(r)))
            .or_else(|| self.by_file(file))
    }

    /// The first language that recognises `repo`.
    pub fn detect(&self, repo: &Path) -> Option<(&dyn Language, Project)> {
        self.iter().find_map(|l| l.detect(repo).map(|p| (l, p)))
    }
}

impl Default for Languages {
    fn default() -> Self {
        Languages::builtin()
    }
}

/// Keeps `[A-Za-z0-9_.-]`, at most 80 characters: for ids and fingerprints shown in
/// generated code (docstrings, comments, file names).
pub fn safe_chars(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(80)
        .collect()
}

/// The incident id reduced to `[A-Za-z0-9_]`: for test file, class and function names.
pub fn id_token(incident_id: &str, long: bool) -> String {
    let id: String = safe_chars(incident_id)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if long { id } else { id.chars().take(8).collect() }
}

/// Whether `path` (relative to `repo`) exists as a file.
pub fn has_file(repo: &Path, path: &str) -> bool {
    repo.join(path).is_file()
}

/// Declares the language modules and the built-in list in one place: one line per language.
macro_rules! languages {
    ($($module:ident => $language:expr),* $(,)?) => {
        $(pub mod $module;)*

        /// Every built-in language, in detection order.
        fn builtin() -> Vec<Box<dyn Language>> {
            vec![$(Box::new($language)),*]
        }
    };
}

// Adding a language: a folder `languages/<id>/` and one line here.
languages! {
    python => python::Python,
    java => java::Java::from_env(),
    go => go::Go::from_env(),
    node => node::Node,
}
