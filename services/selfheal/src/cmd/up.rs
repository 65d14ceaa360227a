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
    /// Seconds after which the canary is judged on whatever traffic it saw.
    #[arg(long, env = "SELFHEAL_CANARY_MAX_SECS", default_value_t = 120)]
    pub canary_max_secs: u64,
    /// Requests the canary must serve to be promoted.
    #[arg(long, env = "SELFHEAL_MIN_REQUESTS", default_value_t = 10)]
    pub canary_min_requests: i64,
    /// Seconds the verifier watches after promotion.
    #[arg(long, env = "SELFHEAL_VERIFY_SECS", default_value_t = 30)]
    pub verify_secs: u64,
    /// Fewer requests than this in the verify window and a Healed summary says "low traffic".
    #[arg(long, env = "SELFHEAL_VERIFY_MIN_REQUESTS", default_value_t = 10)]
    pub verify_min_requests: i64,
    /// Python interpreter replacing a leading `python3`/`python` in test and deploy commands (e.g. a venv).
    #[arg(long, env = "SELFHEAL_PYTHON")]
    pub python: Option<String>,
    /// Run tests WITHOUT network isolation when neither bwrap nor `unshare --net` works.
    #[arg(long, env = "SELFHEAL_ALLOW_UNSANDBOXED")]
    pub allow_unsandboxed: bool,
    /// Environment named to the deploy policy.
    #[arg(long, env = "SELFHEAL_ENVIRONMENT", default_value = "production")]
    pub environment: String,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Runner settings (`--http-addr` serves /healthz, /readyz, /metrics of the whole process).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The language model of the diagnoser and the repairer (none unless `--llm-provider` is set).
    #[command(flatten)]
    pub llm: selfheal_llm::LlmConfig,
    /// The diagnoser asks the model only when its best rule-based hypothesis is below this confidence.
    #[arg(long = "llm-min-rule-confidence", env = "SELFHEAL_LLM_MIN_RULE_CONFIDENCE",
          default_value_t = selfheal_diagnoser::DiagnoserLlmSettings::default().min_rule_confidence)]
    pub llm_min_rule_confidence: f64,
    /// Candidate/critique rounds of the repairer's agent (the first candidate plus revisions).
    #[arg(long = "llm-max-rounds", env = "SELFHEAL_LLM_MAX_ROUNDS",
          default_value_t = selfheal_repairer::AgentSettings::default().max_rounds)]
    pub llm_max_rounds: u32,
}

/// Runs until shutdown.
pub async fn run(args: UpArgs, _telemetry: &TelemetryArgs, shutdown: Shutdown) -> Result<()> {
    let mut kafka = args.kafka.clone();
    let mut registry_url = args.registry.url.clone();
    let _stack = if args.embedded {
        let stack = EmbeddedStack::start(shutdown.clone())
            .await
            .context("starting the embedded broker and registry")?;
        kafka.brokers = stack.brokers();
        registry_url = stack.registry.url();
        // The mock cluster does not answer CreateTopics: topics are made here, up front.
        stack.create_pipeline_topics(&kafka.topic_prefix, kafka.partitions)?;
        kafka.create_topics = false;
        tracing::info!(brokers = %kafka.brokers, registry = %registry_url, "embedded broker and registry running");
        Some(stack)
    } else {
        None
    };
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    let ops = selfheal_core::http::serve(
        args.runtime.http_addr,
        ops_router(health.clone(), metrics.clone()),
        shutdown.clone(),
    )
    .await?;
    let shared = Shared {
        kafka,
        runtime: args.runtime.clone(),
        codec: Arc::new(Codec::new(&registry_url)?),
        metrics,
        health,
        shutdown: shutdown.clone(),
    };
    // Stages resolve repositories against the catalog's directory and run git elsewhere:
    // an absolute catalog path makes every repository path absolute.
    let catalog =
        std::fs::canonicalize(&args.catalog).with_context(|| format!("catalog {}", args.catalog.display()))?;
    let cfg = PipelineConfig {
        catalog,
        state_dir: args.state_dir.clone(),
        learner_db: args.learner_db.clone(),
        learner_addr: args.learner_addr,
        collector_addr: args.collector_addr,
        monitor_window: Duration::from_secs(args.monitor_window_secs),
        incident_quiet: Duration::from_secs(args.incident_quiet_secs),
        canary_duration: Duration::from_secs(args.canary_secs),
        canary_max: Duration::from_secs(args.canary_max_secs),
        canary_min_requests: args.canary_min_requests,
        verify_window: Duration::from_secs(args.verify_secs),
        verify_min_requests: args.verify_min_requests,
        python: args.python.clone(),
        allow_unsandboxed: args.allow_unsandboxed,
        environment: args.environment.clone(),
        start_stable: true,
        llm: args.llm.clone(),
        diagnoser_llm: selfheal_diagnoser::DiagnoserLlmSettings {
            min_rule_confidence: args.llm_min_rule_confidence,
            ..selfheal_diagnoser::DiagnoserLlmSettings::default()
        },
        agent: selfheal_repairer::AgentSettings {
            max_rounds: args.llm_max_rounds.max(1),
            ..selfheal_repairer::AgentSettings::default()
        },
    };
    let p = pipeline::start(&shared, &cfg).await?;
    tracing::info!(started = ?p.started, missing = ?p.missing, collector = ?p.collector_addr, learner = ?p.learner_url, ops = %ops, "selfheal up");
    shutdown.wait().await;
    p.join(args.runtime.grace_period()).await;
    Ok(())
}
