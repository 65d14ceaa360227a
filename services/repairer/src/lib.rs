//! repairer: turns a localised diagnosis into a proven, policy-checked fix on a branch.
//!
//! `Diagnosis` in, exactly one `Patch` out ([`Repairer`] implements the core `Stage`):
//! the repair flow ([`flow`]) runs as named steps. Each programming language has one home
//! behind the [`languages::Language`] trait (project detection, offline test suite, fix
//! templates, regression tests); fix templates ([`templates`]) and fixes learned from
//! earlier outcomes produce candidates; the language writes a regression test from the
//! failing input seen in telemetry (or derived from the crash and the code);
//! [`sandbox`] proves each candidate in an isolated copy (the test fails before, passes
//! after, the suite passes); [`gate`] asks the patch policy; [`git`] commits the winner on
//! `selfheal/<incident-id>` without touching the checked-out tree. Every failure ends in a
//! patch status (NotLocalized, NoFixFound, ValidationFailed, PolicyDenied, Error) whose
//! attempts say why.
//!
//! With a model configured ([`Repairer::with_llm`]), a diagnosis no template or learned fix
//! could fix goes to [`agent`]: a model-written candidate and test, a self-critique, and then
//! the same sandbox and policy gate (origin `llm`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), selfheal_repairer::RepairerError> {
//! use selfheal_repairer::{Repairer, RepairerConfig, default_sandbox};
//! let catalog = selfheal_catalog::Catalog::load("examples/catalog.toml")?;
//! let policy = selfheal_governance::PolicyEngine::embedded()?;
//! let config = RepairerConfig { python: Some("/root/.cache/selfheal/venv/bin/python".into()), ..RepairerConfig::default() };
//! let repairer = Repairer::new(catalog, policy, default_sandbox(), config);
//! let patch = repairer.repair(selfheal_events::examples::diagnosis()).await;
//! println!("{:?}: {}", patch.status, patch.summary);
//! # Ok(()) }
//! ```

pub mod agent;
pub mod flow;
pub mod gate;
pub mod git;
pub mod languages;
pub mod pull_requests;
pub mod sandbox;
pub mod stage;
pub mod templates;

use std::path::Path;
use std::sync::Arc;

pub use agent::AgentSettings;
pub use languages::{Language, Languages, Project};
pub use pull_requests::{CodeHostPullRequests, LocalPullRequests, PullRequestError, PullRequests};
pub use sandbox::{
    Isolation, Limits, NoSandbox, ProcessSandbox, RunResult, Sandbox, SandboxError, default_sandbox,
    default_sandbox_with,
};
pub use stage::{Repairer, RepairerConfig};
pub use templates::{FixTemplate, Registry, TemplateError};

/// Why a repairer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RepairerError {
    /// The service catalog could not be loaded.
    #[error(transparent)]
    Catalog(#[from] selfheal_catalog::CatalogError),
    /// The policies could not be loaded.
    #[error(transparent)]
    Policy(#[from] selfheal_governance::GovernanceError),
}

/// A repairer from plain values: the catalog file, an optional policy directory (the
/// embedded policies otherwise) and the config; the sandbox is probed here.
pub fn build(
    catalog_path: &Path,
    policies_dir: Option<&Path>,
    config: RepairerConfig,
) -> Result<Repairer, RepairerError> {
    let catalog = selfheal_catalog::Catalog::load(catalog_path)?;
    let policy = match policies_dir {
        Some(dir) => selfheal_governance::PolicyEngine::from_dir(dir)?,
        None => selfheal_governance::PolicyEngine::embedded()?,
    };
    let sandbox: Arc<dyn Sandbox> = default_sandbox_with(config.allow_unsandboxed);
    Ok(Repairer::new(catalog, policy, sandbox, config))
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// The venv python with pytest: CI runs scripts/python-env.sh and exports SELFHEAL_PYTHON.
    pub fn python() -> String {
        match std::env::var("SELFHEAL_PYTHON") {
            Ok(python) if !python.is_empty() => python,
            _ => panic!(
                "SELFHEAL_PYTHON is not set: run `export SELFHEAL_PYTHON=$(scripts/python-env.sh | tail -1)` before `cargo test -p selfheal-repairer`"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
