//! The service catalog: where each service's code lives and how it may be healed.
//!
//! One TOML file maps every service selfheal may touch to its repository, its test
//! command and sandbox limits, the paths a patch must never change, and how it is
//! deployed. The diagnoser reads it to find code, the repairer to validate patches,
//! rollout to pick a deployer and an autonomy level. A service that is not in the
//! catalog is never healed.
//!
//! ```toml
//! [services.pricing-api]
//! repository = "pricing-api"          # relative paths resolve against the catalog's directory
//! language = "python"
//! source_root = "."
//! test_command = ["python", "-m", "pytest", "-q"]
//! test_timeout_secs = 60
//! test_memory_mb = 1024
//! protected_globs = ["deploy/**"]
//! max_diff_lines = 40
//! autonomy = "manual"
//! fix_sources = ["learned", "template", "model"]   # where fixes may come from (default: all)
//! deployer = "local-process"
//! [services.pricing-api.deploy]
//! command = ["python", "app.py"]
//! port = 8081
//! [services.pricing-api.extra_env]
//! PYTHONDONTWRITEBYTECODE = "1"
//! [services.pricing-api.code_host]      # optional: fixes as pull requests (see code_host.rs)
//! provider = "gitea"
//! base_url = "https://git.example.com"
//! repo = "payments/pricing-api"
//! token_env = "SELFHEAL_PRICING_TOKEN"
//! reviewers = ["alice"]
//! ```

mod code_host;
mod entry;
mod error;
mod raw;

pub use code_host::{CODE_HOST_PROVIDERS, CodeHostSettings, DEFAULT_BASE_BRANCH, TokenSource};
pub use entry::{
    ALL_FIX_SOURCES, Autonomy, DEFAULT_DEPLOYER, DEFAULT_MAX_DIFF_LINES, DEFAULT_SOURCE_ROOT, DEFAULT_TEST_MEMORY_MB,
    DEFAULT_TEST_TIMEOUT_SECS, DEPLOYERS, FixSource, LANGUAGES, MAX_TEST_TIMEOUT_SECS, ServiceEntry,
};
pub use error::CatalogError;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Origin named in errors for a catalog parsed from a string rather than a file.
const INLINE_ORIGIN: &str = "<inline catalog>";

/// Every service selfheal may heal, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    services: BTreeMap<String, ServiceEntry>,
    path: Option<PathBuf>,
}

impl Catalog {
    /// Reads and validates the catalog file at `path`; relative repositories resolve against its directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // A bare file name has an empty parent; "." keeps joined paths relative to the cwd.
        let base_dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut catalog = parse(&text, base_dir, &path.display().to_string())?;
        catalog.path = Some(path.to_path_buf());
        Ok(catalog)
    }

    /// Parses and validates catalog text; relative repositories resolve against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        parse(text, base_dir.as_ref(), INLINE_ORIGIN)
    }

    /// Builds a catalog from entries made in code (tests, embedded demo), validating each.
    pub fn from_services(entries: impl IntoIterator<Item = ServiceEntry>) -> Result<Catalog, CatalogError> {
        let mut services = BTreeMap::new();
        for entry in entries {
            entry.validate(INLINE_ORIGIN)?;
            if services.contains_key(&entry.name) {
                return Err(CatalogError::Invalid {
                    origin: INLINE_ORIGIN.to_string(),
                    service: entry.name.clone(),
                    field: "name".to_string(),
                    problem: "service is listed twice".to_string(),
                });
            }
            services.insert(entry.name.clone(), entry);
        }
        Ok(Catalog { services, path: None })
    }

    /// The entry of service `name`, if the catalog lists it.
    pub fn service(&self, name: &str) -> Option<&ServiceEntry> {
        self.services.get(name)
    }

    /// Every entry, ordered by service name.
    pub fn services(&self) -> impl Iterator<Item = &ServiceEntry> {
        self.services.values()
    }

    /// Every service name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// How many services the catalog lists.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether the catalog lists no service at all.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The file the catalog was loaded from, if it came from a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Deserialises, converts and validates; `origin` names the text in every error.
fn parse(text: &str, base_dir: &Path, origin: &str) -> Result<Catalog, CatalogError> {
    let raw: raw::RawCatalog = toml::from_str(text).map_err(|err| CatalogError::Parse {
        origin: origin.to_string(),
        message: err.to_string().trim_end().to_string(),
    })?;
    let mut services = BTreeMap::new();
    for (name, raw_service) in raw.services {
        let entry = raw_service.into_entry(&name, base_dir, origin)?;
        entry.validate(origin)?;
        services.insert(name, entry);
    }
    Ok(Catalog { services, path: None })
}

#[cfg(test)]
mod tests;
