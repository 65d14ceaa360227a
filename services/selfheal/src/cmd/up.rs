//! `selfheal up`: all seven stages in one process, against the configured broker and
//! registry or, with `--embedded`, against an in-process broker and registry.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use selfheal_core::embedded::EmbeddedStack;
use selfheal_core::http::{Health, ops_router};
use selfheal_core::metrics::Metrics;
use selfheal_core::service::Shared;
use selfheal_core::{KafkaArgs, RegistryArgs, RuntimeArgs, Shutdown, TelemetryArgs};
use selfheal_events::Codec;

use crate::pipeline::{self, PipelineConfig};

/// Flags of `selfheal up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The service catalog.
    #[arg(long, env = "SELFHEAL_CATALOG", default_value = "examples/catalog.toml")]
    pub catalog: PathBuf,
    /// Run against an in-process broker and registry instead of the configured ones.
    #[arg(long, env = "SELFHEAL_EMBEDDED")]
    pub embedded: bool,
    /// Directory for stage state.
    #[arg(long, env = "SELFHEAL_STATE_DIR", default_value = ".selfheal/state")]
    pub state_dir: PathBuf,
    /// The learner's RocksDB directory.
    #[arg(long, env = "SELFHEAL_LEARNER_DB", default_value = ".selfheal/learner.db")]
    pub learner_db: PathBuf,
    /// Address of the learner's query API.
    #[arg(long, env = "SELFHEAL_LEARNER_API_ADDR", default_value = "127.0.0.1:8090")]
    pub learner_addr: SocketAddr,
    /// Address of the collector's OTLP/HTTP receiver.
    #[arg(long, env = "SELFHEAL_OTLP_HTTP_ADDR", default_value = "127.0.0.1:4318")]
    pub collector_addr: SocketAddr,
    /// Seconds of the monitor's detection window.
    #[arg(long, env = "SELFHEAL_MONITOR_WINDOW_SECS", default_value_t = 10)]
    pub monitor_window_secs: u64,
    /// Seconds without the failure after which the monitor closes an incident.
    #[arg(long, env = "SELFHEAL_INCIDENT_QUIET_SECS", default_value_t = 120)]
    pub incident_quiet_secs: u64,
    /// Seconds the canary is analysed.
    #[arg(long, env = "SELFHEAL_CANARY_SECS", default_value_t = 30)]
    pub canary_secs: u64,
    /// Seconds the verifier watches after promotion.
    #[arg(long, env = "SELFHEAL_VERIFY_SECS", default_value_t = 30)]
    pub verify_secs: u64,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Runner settings (`--http-addr` serves /healthz, /readyz, /metrics of the whole process).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs until shutdown.
pub async fn run(args: UpArgs, _telemetry: &TelemetryArgs, shutdown: Shutdown) -> Result<()> {
    let mut kafka = args.kafka.clone();
    let mut registry_url = args.registry.url.clone();
    let _stack = if args.embedded {
        let stack = EmbeddedStack::start(shutdown.clone()).await.context("starting the embedded broker and registry")?;
        kafka.brokers = stack.brokers();
        registry_url = stack.registry.url();
        for t in selfheal_events::topics::ALL {
            stack.create_topic(&kafka.topic(t), kafka.partitions)?;
        }
        tracing::info!(brokers = %kafka.brokers, registry = %registry_url, "embedded broker and registry running");
        Some(stack)
    } else {
        None
    };
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    let ops = selfheal_core::http::serve(args.runtime.http_addr, ops_router(health.clone(), metrics.clone()), shutdown.clone()).await?;
    let shared = Shared {
        kafka,
        runtime: args.runtime.clone(),
        codec: Arc::new(Codec::new(&registry_url)?),
        metrics,
        health,
        shutdown: shutdown.clone(),
    };
    let cfg = PipelineConfig {
        catalog: args.catalog.clone(),
        state_dir: args.state_dir.clone(),
        learner_db: args.learner_db.clone(),
        learner_addr: args.learner_addr,
        collector_addr: args.collector_addr,
        monitor_window: Duration::from_secs(args.monitor_window_secs),
        incident_quiet: Duration::from_secs(args.incident_quiet_secs),
        canary_duration: Duration::from_secs(args.canary_secs),
        verify_window: Duration::from_secs(args.verify_secs),
    };
    let p = pipeline::start(&shared, &cfg).await?;
    tracing::info!(started = ?p.started, missing = ?p.missing, collector = ?p.collector_addr, learner = ?p.learner_url, ops = %ops, "selfheal up");
    shutdown.wait().await;
    p.join(args.runtime.grace_period()).await;
    Ok(())
}
