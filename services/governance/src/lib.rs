//! Policy guardrails: Rego policies evaluated in-process with regorus.
//!
//! The repairer asks [`PolicyEngine::evaluate_patch`] before it pushes a branch; rollout
//! asks [`PolicyEngine::evaluate_deploy`] before anything is deployed. The policies live
//! in `policies/*.rego` with their own tests (`*_test.rego`, run by `cargo test` through
//! [`run_policy_tests`]); [`PolicyEngine::embedded`] compiles them into the binary so a
//! service works without the directory, [`PolicyEngine::from_dir`] lets an operator
//! supply their own.
//!
//! Any error means "no verdict" and must be treated as a denial.
//!
//! ```no_run
//! # fn main() -> Result<(), selfheal_governance::GovernanceError> {
//! use selfheal_governance::{PatchInput, PatchOrigin, PolicyEngine, Validation};
//! let engine = PolicyEngine::embedded()?;
//! let diff = std::fs::read_to_string("fix.diff").unwrap_or_default();
//! let input = PatchInput::from_unified_diff("pricing-api", ".", diff, "python.zero-division-guard", PatchOrigin::Template)?
//!     .with_validation(Validation::proven());
//! let verdict = engine.evaluate_patch(&input)?;
//! if !verdict.allowed {
//!     eprintln!("denied: {:?}", verdict.violations);
//! }
//! # Ok(())
//! # }
//! ```

mod deploy;
mod diff;
mod engine;
mod error;
mod patch;
mod policy_tests;

pub use deploy::{Approval, ApprovalMode, Autonomy, DeployInput, DeployVerdict};
pub use diff::parse_unified_diff;
pub use engine::{
    DEPLOY_DECISION_RULE, DEPLOY_RULES_RULE, PATCH_DENY_RULE, PATCH_RULES_RULE, PolicyEngine, PolicySource, TEST_SUFFIX,
};
pub use error::GovernanceError;
pub use patch::{DEFAULT_MAX_DIFF_LINES, PatchFile, PatchInput, PatchOrigin, Validation, Verdict};
pub use policy_tests::{PolicyTestResult, run_embedded_policy_tests, run_policy_tests};

#[cfg(test)]
mod tests;
