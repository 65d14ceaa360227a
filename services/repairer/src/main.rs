//! selfheal-repairer: consumes `diagnoses`, produces `patches` (see the library docs).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use selfheal_core::http::{ops_router, serve};
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{Shared, run_stage};
use selfheal_core::{KafkaArgs, RegistryArgs, RuntimeArgs, Shutdown, TelemetryArgs, telemetry};
use selfheal_events::Codec;
use selfheal_repairer::RepairerConfig;

/// The repairer service: fix templates, regression tests, sandbox validation, policy gate, branches.
#[derive(Debug, Parser)]
#[command(name = "selfheal-repairer", version)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// The service catalog (TOML): repositories, test commands, limits, protected globs.
    #[arg(long, env = "SELFHEAL_CATALOG", default_value = "examples/catalog.toml")]
    catalog: PathBuf,
    /// A directory of Rego policies replacing the embedded ones.
    #[arg(long, env = "SELFHEAL_POLICIES_DIR")]
    policies_dir: Option<PathBuf>,
    /// Python interpreter replacing a leading `python3`/`python` in the catalog's test command (e.g. a venv with pytest).
    #[arg(long, env = "SELFHEAL_PYTHON")]
    python: Option<String>,
    /// Run tests WITHOUT network isolation when neither bwrap nor `unshare --net` works.
    #[arg(long, env = "SELFHEAL_ALLOW_UNSANDBOXED")]
    allow_unsandboxed: bool,
    /// Where sandbox copies and temporary worktrees are made.
    #[arg(long, env = "SELFHEAL_REPAIRER_WORK_DIR")]
    work_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = telemetry::init(&args.telemetry, "selfheal-repairer");
    let mut config = RepairerConfig {
        python: args.python.clone(),
        allow_unsandboxed: args.allow_unsandboxed,
        ..RepairerConfig::default()
    };
    if let Some(dir) = args.work_dir.clone() {
        config.work_dir = dir;
    }
    let repairer = selfheal_repairer::build(&args.catalog, args.policies_dir.as_deref(), config)
        .context("building the repairer")?;
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::shared();
    let health = selfheal_core::http::Health::new();
    serve(
        args.runtime.http_addr,
        ops_router(health.clone(), metrics.clone()),
        shutdown.clone(),
    )
    .await
    .context("serving health and metrics")?;
    let shared = Shared {
        kafka: args.kafka,
        runtime: args.runtime,
        codec: Arc::new(Codec::new(&args.registry.url).context("schema registry client")?),
        metrics,
        health,
        shutdown,
    };
    run_stage(Arc::new(repairer), shared).await?;
    Ok(())
}
