//! Errors of rollout: what a deployer or the state store can report.

/// Why a deployer could not do what it was asked; stable keeps serving in every case.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The catalog's deploy settings are missing or wrong for this deployer.
    #[error("deploy settings of {service}: {problem}")]
    Config {
        /// The service.
        service: String,
        /// What is wrong.
        problem: String,
    },
    /// A git command failed.
    #[error("git {args}: {message}")]
    Git {
        /// The arguments, for a person.
        args: String,
        /// stderr or the spawn error.
        message: String,
    },
    /// A process could not be started or died.
    #[error("process: {0}")]
    Process(String),
    /// The new version did not answer its health check in time.
    #[error("health check: {0}")]
    Unhealthy(String),
    /// The traffic proxy could not be started or changed.
    #[error("proxy: {0}")]
    Proxy(String),
    /// The deployer does not run this service (no stable, unknown canary).
    #[error("not deployed: {0}")]
    NotDeployed(String),
    /// File system trouble in the state directory.
    #[error("state directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a rollout stage could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The state directory is unusable.
    #[error("rollout state directory: {0}")]
    State(#[from] std::io::Error),
}
