//! All seven stages in one process: the collector's OTLP receiver, monitor, diagnoser,
//! repairer, rollout (with its approval stage), verifier and learner (with its query API),
//! built from plain config values and run on one [`Shared`]. Used by `selfheal up` and the demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use selfheal_core::service::Shared;
use tokio::task::JoinHandle;

/// What the in-process pipeline needs beyond the broker and registry.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The service catalog file.
    pub catalog: PathBuf,
    /// Directory for stage state (repairer work trees, verifier and monitor state).
    pub state_dir: PathBuf,
    /// The learner's RocksDB directory.
    pub learner_db: PathBuf,
    /// Where the learner's query API listens (port 0 picks one).
    pub learner_addr: SocketAddr,
    /// Where the collector's OTLP/HTTP receiver listens (port 0 picks one).
    pub collector_addr: SocketAddr,
    /// The monitor's detection window.
    pub monitor_window: Duration,
    /// Quiet time after which the monitor closes an incident.
    pub incident_quiet: Duration,
    /// How long the canary is analysed.
    pub canary_duration: Duration,
    /// How long the verifier watches after promotion.
    pub verify_window: Duration,
}

impl PipelineConfig {
    /// The short windows of the demo (a whole incident in well under two minutes).
    pub fn demo(catalog: PathBuf, state_dir: PathBuf, learner_db: PathBuf) -> Self {
        PipelineConfig {
            catalog,
            state_dir,
            learner_db,
            learner_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            collector_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            monitor_window: Duration::from_secs(5),
            incident_quiet: Duration::from_secs(30),
            canary_duration: Duration::from_secs(8),
            verify_window: Duration::from_secs(8),
        }
    }
}

/// A running pipeline.
pub struct Pipeline {
    /// Where the collector receives OTLP/HTTP, when it runs.
    pub collector_addr: Option<SocketAddr>,
    /// Base URL of the learner's API, when it runs.
    pub learner_url: Option<String>,
    /// Stages not started because their library is not available in this build.
    pub missing: Vec<&'static str>,
    /// Stages started.
    pub started: Vec<&'static str>,
    handles: Vec<(&'static str, JoinHandle<Result<()>>)>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("started", &self.started).field("missing", &self.missing).finish()
    }
}

/// Starts every available stage on `shared`.
pub async fn start(shared: &Shared, cfg: &PipelineConfig) -> Result<Pipeline> {
    let _ = (shared, cfg);
    let mut p = Pipeline { collector_addr: None, learner_url: None, missing: Vec::new(), started: Vec::new(), handles: Vec::new() };
    for name in ["collector", "monitor", "diagnoser", "repairer", "rollout", "verifier", "learner"] {
        tracing::warn!(stage = name, "TODO: the {name} library is not wired into this build yet; the stage does not run");
        p.missing.push(name);
    }
    Ok(p)
}

impl Pipeline {
    /// Waits for every stage to stop (after shutdown was triggered), at most `grace`.
    pub async fn join(self, grace: Duration) {
        for (name, h) in self.handles {
            match tokio::time::timeout(grace, h).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(stage = name, error = %format!("{e:#}"), "stage stopped with an error"),
                Ok(Err(e)) => tracing::warn!(stage = name, error = %e, "stage task failed"),
                Err(_) => tracing::warn!(stage = name, "stage did not stop within {:?}", grace),
            }
        }
    }

    /// Whether a stage ended already (with its error), for the demo's watchdog.
    pub fn finished_stage(&self) -> Option<&'static str> {
        self.handles.iter().find(|(_, h)| h.is_finished()).map(|(n, _)| *n)
    }
}
