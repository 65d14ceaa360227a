//! Why a policy could not be loaded or evaluated.
//!
//! Every variant means "no verdict": callers must treat it as a denial (fail closed),
//! and a load error at startup means the binary should not start.

use std::path::PathBuf;

/// Everything that can go wrong loading policies, reading a diff or evaluating a policy.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// A policy file or directory could not be read.
    #[error("cannot read policies at {path}: {source}")]
    Read {
        /// The file or directory that was read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A directory holds no policy file (only `_test.rego` files, or none at all).
    #[error("no policy (*.rego other than *_test.rego) in {0}")]
    NoPolicies(PathBuf),
    /// A policy file does not parse.
    #[error("policy {file} does not parse at line {line}: {message}")]
    Parse {
        /// The policy file, as loaded (file name for a directory or the embedded set).
        file: String,
        /// The 1-based line of the error, 0 when regorus did not say.
        line: u32,
        /// regorus's message, with the offending source line.
        message: String,
    },
    /// The loaded policies do not define a rule the engine needs.
    #[error("policies do not define {rule}: {message}")]
    MissingRule {
        /// The rule path, e.g. `data.selfheal.patch.deny`.
        rule: String,
        /// regorus's message.
        message: String,
    },
    /// Evaluating a rule failed at run time (bad builtin argument, conflicting outputs...).
    #[error("evaluating {rule} failed: {message}")]
    Eval {
        /// The rule path being evaluated.
        rule: String,
        /// regorus's message.
        message: String,
    },
    /// A rule evaluated to a value of the wrong shape.
    #[error("{rule} returned {found}, expected {expected}")]
    UnexpectedResult {
        /// The rule path being evaluated.
        rule: String,
        /// What the engine expected.
        expected: &'static str,
        /// What it got, as JSON.
        found: String,
    },
    /// The input could not be turned into a policy document.
    #[error("cannot encode policy input: {0}")]
    Input(#[from] serde_json::Error),
    /// A protected glob is not a valid glob.
    #[error("protected glob `{glob}` is invalid: {message}")]
    InvalidGlob {
        /// The glob as given.
        glob: String,
        /// Why it does not parse.
        message: String,
    },
    /// A unified diff could not be read.
    #[error("unified diff, line {line}: {message}")]
    Diff {
        /// The 1-based line of the diff where reading stopped.
        line: usize,
        /// What is wrong there.
        message: String,
    },
}
