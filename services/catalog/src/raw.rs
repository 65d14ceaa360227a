//! The catalog file exactly as written, before defaults, path resolution and validation.
//!
//! Required fields are `Option` here so that a missing one is reported by service and
//! field name, not as a bare serde "missing field" somewhere in the file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::code_host::RawCodeHost;
use crate::entry::{
    ALL_FIX_SOURCES, Autonomy, DEFAULT_DEPLOYER, DEFAULT_MAX_DIFF_LINES, DEFAULT_SOURCE_ROOT, DEFAULT_TEST_MEMORY_MB,
    DEFAULT_TEST_TIMEOUT_SECS, FixSource, ServiceEntry,
};
use crate::error::CatalogError;

/// The whole file: one table per service under `[services]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalog {
    /// Service name to its settings.
    #[serde(default)]
    pub(crate) services: BTreeMap<String, RawService>,
}

/// One `[services.<name>]` table; unknown keys are rejected so typos do not silently fall back to defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    repository: Option<String>,
    language: Option<String>,
    source_root: Option<String>,
    test_command: Option<Vec<String>>,
    test_timeout_secs: Option<u64>,
    test_memory_mb: Option<u64>,
    #[serde(default)]
    protected_globs: Vec<String>,
    max_diff_lines: Option<u32>,
    autonomy: Option<String>,
    fix_sources: Option<Vec<String>>,
    deployer: Option<String>,
    #[serde(default)]
    deploy: toml::Table,
    #[serde(default)]
    extra_env: BTreeMap<String, String>,
    code_host: Option<RawCodeHost>,
}

impl RawService {
    /// Applies defaults and resolves the repository against `base_dir`; [`ServiceEntry::validate`] runs after.
    pub(crate) fn into_entry(self, name: &str, base_dir: &Path, origin: &str) -> Result<ServiceEntry, CatalogError> {
        let invalid = |field: &str, problem: String| CatalogError::Invalid {
            origin: origin.to_string(),
            service: name.to_string(),
            field: field.to_string(),
            problem,
        };
        let repository = self
            .repository
            .ok_or_else(|| invalid("repository", "is required".to_string()))?;
        if repository.trim().is_empty() {
            return Err(invalid("repository", "must not be empty".to_string()));
        }
        let repository = Path::new(&repository);
        let repository = if repository.is_absolute() {
            repository.to_path_buf()
        } else {
            base_dir.join(repository)
        };
        let language = self
            .language
            .ok_or_else(|| invalid("language", "is required".to_string()))?
            .trim()
            .to_ascii_lowercase();
        let test_command = self
            .test_command
            .ok_or_else(|| invalid("test_command", "is required".to_string()))?;
        let autonomy = match self.autonomy {
            None => Autonomy::default(),
            Some(text) => text
                .parse::<Autonomy>()
                .map_err(|problem| invalid("autonomy", problem))?,
        };
        let fix_sources = match self.fix_sources {
            None => ALL_FIX_SOURCES.to_vec(),
            Some(names) => {
                let mut sources = Vec::new();
                for name in &names {
                    let source = name
                        .parse::<FixSource>()
                        .map_err(|problem| invalid("fix_sources", problem))?;
                    if !sources.contains(&source) {
                        sources.push(source);
                    }
                }
                sources
            }
        };
        let source_root = match self.source_root {
            None => DEFAULT_SOURCE_ROOT.to_string(),
            Some(root) => normalise_relative(&root).ok_or_else(|| {
                invalid(
                    "source_root",
                    format!("`{root}` must be a relative path inside the repository (no leading `/`, no `..`)"),
                )
            })?,
        };
        let code_host = match self.code_host {
            None => None,
            Some(raw) => Some(
                raw.into_settings(base_dir)
                    .map_err(|(field, problem)| invalid(&field, problem))?,
            ),
        };
        Ok(ServiceEntry {
            name: name.to_string(),
            repository,
            language,
            source_root,
            test_command,
            test_timeout: Duration::from_secs(self.test_timeout_secs.unwrap_or(DEFAULT_TEST_TIMEOUT_SECS)),
            test_memory_mb: self.test_memory_mb.unwrap_or(DEFAULT_TEST_MEMORY_MB),
            protected_globs: self.protected_globs,
            max_diff_lines: self.max_diff_lines.unwrap_or(DEFAULT_MAX_DIFF_LINES),
            autonomy,
            fix_sources,
            deployer: self.deployer.unwrap_or_else(|| DEFAULT_DEPLOYER.to_string()),
            deploy: self.deploy,
            extra_env: self.extra_env,
            code_host,
        })
    }
}

/// `./src/` becomes `src`, `` and `./` become `.`; `None` for absolute paths or any `..`.
pub(crate) fn normalise_relative(path: &str) -> Option<String> {
    let path = path.trim().replace('\\', "/");
    if path.starts_with('/') || path.contains(':') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        Some(DEFAULT_SOURCE_ROOT.to_string())
    } else {
        Some(parts.join("/"))
    }
}
