//! Why a catalog could not be loaded or a setting could not be read.

use std::path::PathBuf;

/// Everything that can go wrong loading or querying the service catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog file could not be read.
    #[error("cannot read service catalog {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML, or a field has the wrong type or an unknown name.
    #[error("service catalog {origin} is not valid: {message}")]
    Parse {
        /// The file (or `<inline catalog>`) being parsed.
        origin: String,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A field parsed but its value is not acceptable.
    #[error("service catalog {origin}: service `{service}`, field `{field}`: {problem}")]
    Invalid {
        /// The file (or `<inline catalog>`) being validated.
        origin: String,
        /// The service whose entry is wrong.
        service: String,
        /// The field of that entry that is wrong.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A deployer setting exists but is not of the type the deployer needs.
    #[error("service `{service}`, field `deploy.{key}`: expected {expected}")]
    DeploySetting {
        /// The service whose deploy table was read.
        service: String,
        /// The key within `[services.<name>.deploy]`.
        key: String,
        /// The type the caller asked for.
        expected: &'static str,
    },
}
