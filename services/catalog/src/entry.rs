//! One service's healing settings, their defaults and the rules they must satisfy.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::code_host::CodeHostSettings;
use crate::error::CatalogError;

/// Source root used when an entry does not name one: the whole repository.
pub const DEFAULT_SOURCE_ROOT: &str = ".";
/// Test timeout used when an entry does not name one.
pub const DEFAULT_TEST_TIMEOUT_SECS: u64 = 120;
/// Longest test timeout accepted; a sandboxed suite running longer than a day is a misconfiguration.
pub const MAX_TEST_TIMEOUT_SECS: u64 = 86_400;
/// Test memory limit used when an entry does not name one.
pub const DEFAULT_TEST_MEMORY_MB: u64 = 1024;
/// Largest diff (added plus removed lines) used when an entry does not name one; matches the patch policy default.
pub const DEFAULT_MAX_DIFF_LINES: u32 = 40;
/// Deployer used when an entry does not name one.
pub const DEFAULT_DEPLOYER: &str = "local-process";
/// Deployers rollout knows; anything else is a typo caught at load time rather than at deploy time.
pub const DEPLOYERS: &[&str] = &["local-process", "kubernetes", "gitops"];
/// Languages the diagnoser and repairer understand, spelled the way they match on them.
pub const LANGUAGES: &[&str] = &[
    "python",
    "java",
    "kotlin",
    "scala",
    "go",
    "javascript",
    "typescript",
    "rust",
    "csharp",
    "ruby",
];

/// How far rollout may go without a human; serialised as `manual` / `auto` (policy input uses it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Autonomy {
    /// Every deploy waits for a human approval.
    #[default]
    Manual,
    /// Rollout approves by itself when the deploy policy allows auto-approval.
    Auto,
}

/// Where a fix may come from; the catalog's `fix_sources` lists those allowed for a service
/// (all three by default). A team that must not send code to a model lists only `learned`
/// and `template`; one that trusts only reviewed templates lists `template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FixSource {
    /// A fix that healed the same failure before, from the learning store.
    Learned,
    /// A deterministic fix template of the service's language.
    Template,
    /// A fix written by the configured language model.
    Model,
}

/// Every fix source, the default of `fix_sources`.
pub const ALL_FIX_SOURCES: &[FixSource] = &[FixSource::Learned, FixSource::Template, FixSource::Model];

impl FixSource {
    /// The spelling used in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            FixSource::Learned => "learned",
            FixSource::Template => "template",
            FixSource::Model => "model",
        }
    }
}

impl fmt::Display for FixSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FixSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "learned" => Ok(FixSource::Learned),
            "template" => Ok(FixSource::Template),
            "model" | "llm" => Ok(FixSource::Model),
            _ => Err(format!(
                "unknown fix source `{text}`, expected `learned`, `template` or `model`"
            )),
        }
    }
}

impl Autonomy {
    /// The spelling used in the catalog and in policy input.
    pub fn as_str(self) -> &'static str {
        match self {
            Autonomy::Manual => "manual",
            Autonomy::Auto => "auto",
        }
    }
}

impl fmt::Display for Autonomy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Autonomy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "manual" => Ok(Autonomy::Manual),
            "auto" => Ok(Autonomy::Auto),
            _ => Err(format!("unknown autonomy `{text}`, expected `manual` or `auto`")),
        }
    }
}

/// Everything selfheal needs to know to heal and deploy one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEntry {
    /// The service name, as telemetry reports it (`service.name`).
    pub name: String,
    /// The local git repository holding the service's code.
    pub repository: PathBuf,
    /// The service's language, one of [`LANGUAGES`].
    pub language: String,
    /// Where in-app code lives, relative to the repository, `/`-separated, `.` for the root.
    pub source_root: String,
    /// The test command (program and arguments), run inside a copy of the repository.
    pub test_command: Vec<String>,
    /// How long one test run may take before it is killed.
    pub test_timeout: Duration,
    /// Memory limit of one test run, in MiB.
    pub test_memory_mb: u64,
    /// Repository-relative globs a patch must never touch, on top of the policy defaults.
    pub protected_globs: Vec<String>,
    /// Largest diff (added plus removed lines) a patch may have.
    pub max_diff_lines: u32,
    /// Whether rollout may approve by itself.
    pub autonomy: Autonomy,
    /// Where the repairer may take fixes from (`fix_sources`, default all of [`ALL_FIX_SOURCES`]).
    pub fix_sources: Vec<FixSource>,
    /// The deployer rollout uses, one of [`DEPLOYERS`].
    pub deployer: String,
    /// Deployer-specific settings, free-form; read them with the `deploy_*` accessors.
    pub deploy: toml::Table,
    /// Extra environment variables for the test run.
    pub extra_env: BTreeMap<String, String>,
    /// Where fixes go as pull requests and review approves them; `None`: a local branch only.
    pub code_host: Option<CodeHostSettings>,
}

impl ServiceEntry {
    /// An entry with every optional field at its default, for building catalogs in code.
    pub fn new(
        name: impl Into<String>,
        repository: impl Into<PathBuf>,
        language: impl Into<String>,
        test_command: Vec<String>,
    ) -> Self {
        ServiceEntry {
            name: name.into(),
            repository: repository.into(),
            language: language.into(),
            source_root: DEFAULT_SOURCE_ROOT.to_string(),
            test_command,
            test_timeout: Duration::from_secs(DEFAULT_TEST_TIMEOUT_SECS),
            test_memory_mb: DEFAULT_TEST_MEMORY_MB,
            protected_globs: Vec::new(),
            max_diff_lines: DEFAULT_MAX_DIFF_LINES,
            autonomy: Autonomy::Manual,
            fix_sources: ALL_FIX_SOURCES.to_vec(),
            deployer: DEFAULT_DEPLOYER.to_string(),
            deploy: toml::Table::new(),
            extra_env: BTreeMap::new(),
            code_host: None,
        }
    }

    /// Whether the repairer may take a fix from `source` for this service.
    pub fn allows(&self, source: FixSource) -> bool {
        self.fix_sources.contains(&source)
    }

    /// The directory holding in-app code: the repository joined with the source root.
    pub fn source_dir(&self) -> PathBuf {
        if self.source_root == DEFAULT_SOURCE_ROOT {
            self.repository.clone()
        } else {
            self.repository.join(&self.source_root)
        }
    }

    /// A string deploy setting; `Ok(None)` when absent, an error when present with another type.
    pub fn deploy_str(&self, key: &str) -> Result<Option<&str>, CatalogError> {
        match self.deploy.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.deploy_error(key, "a string")),
        }
    }

    /// An integer deploy setting; `Ok(None)` when absent, an error when present with another type.
    pub fn deploy_int(&self, key: &str) -> Result<Option<i64>, CatalogError> {
        match self.deploy.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(number)) => Ok(Some(*number)),
            Some(_) => Err(self.deploy_error(key, "an integer")),
        }
    }

    /// A boolean deploy setting; `Ok(None)` when absent, an error when present with another type.
    pub fn deploy_bool(&self, key: &str) -> Result<Option<bool>, CatalogError> {
        match self.deploy.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(flag)) => Ok(Some(*flag)),
            Some(_) => Err(self.deploy_error(key, "a boolean")),
        }
    }

    /// A string-array deploy setting (a command line, a list of hosts); `Ok(None)` when absent.
    pub fn deploy_strings(&self, key: &str) -> Result<Option<Vec<String>>, CatalogError> {
        match self.deploy.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => Ok(text.clone()),
                    _ => Err(self.deploy_error(key, "an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.deploy_error(key, "an array of strings")),
        }
    }

    fn deploy_error(&self, key: &str, expected: &'static str) -> CatalogError {
        CatalogError::DeploySetting {
            service: self.name.clone(),
            key: key.to_string(),
            expected,
        }
    }

    /// Checks every field; the error names `origin`, the service and the field.
    pub fn validate(&self, origin: &str) -> Result<(), CatalogError> {
        let invalid = |field: &str, problem: String| CatalogError::Invalid {
            origin: origin.to_string(),
            service: self.name.clone(),
            field: field.to_string(),
            problem,
        };
        // Names come from telemetry and end up in branch names and topic keys.
        if self.name.is_empty()
            || self
                .name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(invalid(
                "name",
                "must be non-empty without whitespace, control characters or `/`".to_string(),
            ));
        }
        if self.repository.as_os_str().is_empty() {
            return Err(invalid("repository", "must not be empty".to_string()));
        }
        if !LANGUAGES.contains(&self.language.as_str()) {
            return Err(invalid(
                "language",
                format!(
                    "unknown language `{}`, expected one of: {}",
                    self.language,
                    LANGUAGES.join(", ")
                ),
            ));
        }
        if crate::raw::normalise_relative(&self.source_root).as_deref() != Some(self.source_root.as_str()) {
            return Err(invalid(
                "source_root",
                format!(
                    "`{}` must be a normalised relative path inside the repository",
                    self.source_root
                ),
            ));
        }
        match self.test_command.first() {
            None => return Err(invalid("test_command", "must not be empty".to_string())),
            Some(program) if program.trim().is_empty() => {
                return Err(invalid(
                    "test_command",
                    "the program (first element) must not be empty".to_string(),
                ));
            }
            Some(_) => {}
        }
        if self.test_command.iter().any(|arg| arg.contains('\0')) {
            return Err(invalid("test_command", "arguments must not contain NUL".to_string()));
        }
        let timeout = self.test_timeout.as_secs();
        if self.test_timeout.is_zero() || timeout > MAX_TEST_TIMEOUT_SECS {
            return Err(invalid(
                "test_timeout_secs",
                format!("must be between 1 and {MAX_TEST_TIMEOUT_SECS} seconds"),
            ));
        }
        if self.test_memory_mb == 0 {
            return Err(invalid("test_memory_mb", "must be greater than 0".to_string()));
        }
        for glob in &self.protected_globs {
            if glob.trim().is_empty() || glob.starts_with('/') {
                return Err(invalid(
                    "protected_globs",
                    format!("`{glob}` must be a non-empty glob relative to the repository root"),
                ));
            }
        }
        if self.max_diff_lines == 0 {
            return Err(invalid("max_diff_lines", "must be greater than 0".to_string()));
        }
        if self.fix_sources.is_empty() {
            return Err(invalid(
                "fix_sources",
                "must name at least one of `learned`, `template`, `model` (leave it out for all three)".to_string(),
            ));
        }
        if !DEPLOYERS.contains(&self.deployer.as_str()) {
            return Err(invalid(
                "deployer",
                format!(
                    "unknown deployer `{}`, expected one of: {}",
                    self.deployer,
                    DEPLOYERS.join(", ")
                ),
            ));
        }
        for (key, value) in &self.extra_env {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                return Err(invalid(
                    "extra_env",
                    format!("`{key}` is not a valid environment variable"),
                ));
            }
        }
        Ok(())
    }
}
