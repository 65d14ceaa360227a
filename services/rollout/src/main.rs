//! rollout: approval, canary deployment, promotion or rollback.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use selfheal_catalog::Catalog;
use selfheal_core::http::{Health, ops_router, serve};
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{Shared, run_stage, start_stage};
use selfheal_core::{KafkaArgs, RegistryArgs, RuntimeArgs, Shutdown, TelemetryArgs, telemetry};
use selfheal_events::{Codec, topics};
use selfheal_governance::PolicyEngine;
use selfheal_rollout::{
    AnalysisConfig, KafkaErrorRates, LocalProcessConfig, LocalProcessDeployer, Rollout, RolloutConfig,
};

/// Reads `patches` and `approvals`, deploys approved patches as canaries, writes `rollouts`.
#[derive(Debug, Parser)]
#[command(name = "selfheal-rollout", version)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// The service catalog (TOML).
    #[arg(long, env = "SELFHEAL_CATALOG", default_value = "examples/catalog.toml")]
    catalog: PathBuf,
    /// Directory of Rego policies; the embedded policies when unset.
    #[arg(long, env = "SELFHEAL_POLICY_DIR")]
    policy_dir: Option<PathBuf>,
    /// Where pending patches, finished rollouts, worktrees and process logs live.
    #[arg(long, env = "SELFHEAL_ROLLOUT_STATE_DIR", default_value = ".selfheal/rollout")]
    state_dir: PathBuf,
    /// Python interpreter replacing a leading `python3`/`python` in deploy commands.
    #[arg(long, env = "SELFHEAL_PYTHON")]
    python: Option<String>,
    /// OTLP/HTTP endpoint given to deployed services as OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, env = "SELFHEAL_COLLECTOR_OTLP_URL", default_value = "http://127.0.0.1:4318")]
    collector_otlp_url: String,
    /// Minimum seconds of canary analysis.
    #[arg(long, env = "SELFHEAL_CANARY_SECS", default_value_t = 10)]
    canary_secs: u64,
    /// Seconds after which the canary is judged on whatever traffic it saw.
    #[arg(long, env = "SELFHEAL_CANARY_MAX_SECS", default_value_t = 30)]
    canary_max_secs: u64,
    /// Requests the canary must serve to be promoted.
    #[arg(long, env = "SELFHEAL_MIN_REQUESTS", default_value_t = 10)]
    min_requests: i64,
    /// How much higher (absolute, 0..1) the canary's error rate may be than stable's.
    #[arg(long, env = "SELFHEAL_CANARY_TOLERANCE", default_value_t = 0.01)]
    canary_tolerance: f64,
    /// Seconds a new version may take to answer its health path.
    #[arg(long, env = "SELFHEAL_HEALTH_TIMEOUT_SECS", default_value_t = 20)]
    health_timeout_secs: u64,
    /// Environment named to the deploy policy.
    #[arg(long, env = "SELFHEAL_ENVIRONMENT", default_value = "production")]
    environment: String,
    /// A change freeze is in force: the deploy policy denies every deploy.
    #[arg(long, env = "SELFHEAL_CHANGE_FREEZE", default_value_t = false)]
    change_freeze: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = telemetry::init(&args.telemetry, "selfheal-rollout");
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::shared();
    let health = Health::new();
    serve(
        args.runtime.http_addr,
        ops_router(health.clone(), metrics.clone()),
        shutdown.clone(),
    )
    .await
    .context("serving operations endpoints")?;
    let catalog =
        Arc::new(Catalog::load(&args.catalog).with_context(|| format!("catalog {}", args.catalog.display()))?);
    let policy = Arc::new(match &args.policy_dir {
        Some(dir) => PolicyEngine::from_dir(dir).with_context(|| format!("policies in {}", dir.display()))?,
        None => PolicyEngine::embedded().context("embedded policies")?,
    });
    let codec = Arc::new(Codec::new(&args.registry.url).context("schema registry client")?);
    let rates = KafkaErrorRates::start(
        &args.kafka,
        codec.clone(),
        &args.kafka.topic(topics::TELEMETRY_RAW),
        shutdown.clone(),
    )
    .context("traffic observer")?;
    let deployer = Arc::new(LocalProcessDeployer::new(LocalProcessConfig {
        collector_otlp_url: Some(args.collector_otlp_url.clone()),
        python: args.python.clone(),
        state_dir: args.state_dir.join("deploy"),
        health_timeout: Duration::from_secs(args.health_timeout_secs),
    }));
    for svc in catalog.services().filter(|s| s.deployer == "local-process") {
        // A service that does not start now is retried when a patch for it arrives.
        match deployer.ensure_stable(svc).await {
            Ok(version) => tracing::info!(service = %svc.name, %version, "stable version running"),
            Err(e) => tracing::error!(service = %svc.name, error = %e, "cannot start the stable version"),
        }
    }
    let config = RolloutConfig {
        analysis: AnalysisConfig {
            min_window: Duration::from_secs(args.canary_secs),
            max_window: Duration::from_secs(args.canary_max_secs.max(args.canary_secs)),
            min_requests: args.min_requests,
            tolerance: args.canary_tolerance,
            ..AnalysisConfig::default()
        },
        environment: args.environment.clone(),
        change_freeze: args.change_freeze,
        state_dir: args.state_dir.clone(),
    };
    let stage = Rollout::new(catalog, policy, deployer.clone(), Arc::new(rates), config).context("rollout state")?;
    let approvals = Arc::new(stage.approvals());
    let shared = Shared {
        kafka: args.kafka,
        runtime: args.runtime,
        codec,
        metrics,
        health,
        shutdown,
    };
    let mut approvals_shared = shared.clone();
    approvals_shared.runtime.group_id = shared.runtime.group_id.as_ref().map(|g| format!("{g}-approvals"));
    let approvals_task = start_stage(approvals, approvals_shared);
    let result = run_stage(Arc::new(stage), shared.clone()).await;
    shared.shutdown.trigger();
    let approvals_result = approvals_task.await;
    deployer.shutdown().await;
    result.context("rollout stage")?;
    approvals_result
        .context("approvals stage panicked")?
        .context("approvals stage")?;
    Ok(())
}
