//! Running a stage as a service: wait for the broker, register schemas (refusing to start
//! on an incompatible change), create topics, serve operations endpoints, run the runner.
//!
//! Each service's `main.rs` parses its flags and calls [`crate::launch::run_stage`], which
//! ends here; `selfheal up` and the demo call [`start_stage`] once per stage in one process.

use std::sync::Arc;

use selfheal_events::{Codec, CodecError, Record};

use crate::config::{KafkaArgs, RuntimeArgs};
use crate::http::Health;
use crate::kafka;
use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::runner::{RunSummary, Runner, RunnerError, Topics};
use crate::shutdown::Shutdown;
use crate::stage::Stage;

/// Why a service did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Kafka.
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaError),
    /// The registry refused a schema (incompatible change) or is misconfigured.
    #[error("schema registry: {0}")]
    Registry(CodecError),
    /// The runner stopped.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// Shutdown arrived before the service was up.
    #[error("shut down during start-up")]
    ShutDown,
}

/// Everything the services of one process share.
#[derive(Clone)]
pub struct Shared {
    /// Kafka settings.
    pub kafka: KafkaArgs,
    /// Runtime settings.
    pub runtime: RuntimeArgs,
    /// The codec (one registry client per process).
    pub codec: Arc<Codec>,
    /// Metrics of the process.
    pub metrics: Arc<Metrics>,
    /// Readiness of the process.
    pub health: Health,
    /// Shutdown signal.
    pub shutdown: Shutdown,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("kafka", &self.kafka.brokers).finish()
    }
}

/// Registers `R`'s schema for `topic`, retrying while the registry is unreachable and
/// failing (with the field and rule) when the schema is incompatible.
pub async fn register_schema<R: Record>(
    codec: &Codec,
    topic: &str,
    shutdown: &Shutdown,
    runtime: &RuntimeArgs,
) -> Result<u32, ServiceError> {
    let mut backoff = runtime.backoff();
    loop {
        match codec.register::<R>(topic).await {
            Ok(id) => return Ok(id),
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    "schema registry at {} unavailable ({e}); retrying in {:.1}s",
                    codec.url(),
                    delay.as_secs_f64()
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait() => return Err(ServiceError::ShutDown),
                }
            }
            Err(e) => return Err(ServiceError::Registry(e)),
        }
    }
}

/// Connects to Kafka and the registry (waiting for both), prepares the stage's topics and
/// schemas, and returns a runner ready to run.
pub async fn prepare_stage<S: Stage>(stage: Arc<S>, shared: &Shared) -> Result<Runner<S>, ServiceError> {
    let mut backoff = shared.runtime.backoff();
    kafka::wait_for_broker(&shared.kafka, &shared.shutdown, &mut backoff)
        .await
        .map_err(|e| match e {
            kafka::KafkaError::ShutDown => ServiceError::ShutDown,
            other => ServiceError::Kafka(other),
        })?;
    let topics = Topics::for_stage(stage.as_ref(), &shared.kafka);
    kafka::ensure_topics(
        &shared.kafka,
        &[topics.input.clone(), topics.output.clone(), topics.dead_letter.clone()],
    )
    .await?;
    register_schema::<S::Input>(&shared.codec, &topics.input, &shared.shutdown, &shared.runtime).await?;
    register_schema::<S::Output>(&shared.codec, &topics.output, &shared.shutdown, &shared.runtime).await?;
    let publisher = Publisher::new(kafka::producer(&shared.kafka)?, shared.codec.clone(), stage.name());
    let group = shared
        .runtime
        .group_id
        .clone()
        .unwrap_or_else(|| format!("selfheal-{}", stage.name()));
    Ok(Runner::new(
        stage,
        &shared.kafka,
        &group,
        topics,
        publisher,
        shared.runtime.clone(),
        shared.metrics.clone(),
        shared.health.clone(),
    )?)
}

/// Prepares and runs a stage until shutdown.
pub async fn run_stage<S: Stage>(stage: Arc<S>, shared: Shared) -> Result<RunSummary, ServiceError> {
    let runner = prepare_stage(stage, &shared).await?;
    Ok(runner.run(shared.shutdown.clone()).await?)
}

/// Spawns a stage on the current runtime (for `selfheal up` and the demo).
pub fn start_stage<S: Stage>(
    stage: Arc<S>,
    shared: Shared,
) -> tokio::task::JoinHandle<Result<RunSummary, ServiceError>> {
    tokio::spawn(run_stage(stage, shared))
}
