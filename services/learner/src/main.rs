//! selfheal-learner: consumes `outcomes`, remembers which fixes worked in RocksDB, and
//! serves that knowledge (plus `/healthz`, `/readyz`, `/metrics`) over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use selfheal_core::http::{Health, serve};
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{Shared, run_stage};
use selfheal_core::{KafkaArgs, RegistryArgs, RuntimeArgs, Shutdown, TelemetryArgs, telemetry};
use selfheal_events::Codec;
use selfheal_learner::{DEFAULT_API_ADDR, DEFAULT_DB_PATH, Learner};

/// The learner service.
#[derive(Debug, Parser)]
#[command(name = "selfheal-learner", version, about)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Directory of the RocksDB learning store (created if missing).
    #[arg(long = "db-path", env = "SELFHEAL_LEARNER_DB", default_value = DEFAULT_DB_PATH)]
    db_path: PathBuf,
    /// Address of the query API (`/v1/fixes`, `/v1/outcomes`, plus health and metrics).
    #[arg(long = "api-addr", env = "SELFHEAL_LEARNER_API_ADDR", default_value = DEFAULT_API_ADDR)]
    api_addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = telemetry::init(&args.telemetry, "selfheal-learner");
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::shared();
    let health = Health::new();
    let learner = Learner::open(&args.db_path).with_context(|| format!("opening {}", args.db_path.display()))?;
    let api = serve(
        args.api_addr,
        learner.router(health.clone(), metrics.clone()),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("binding the query API on {}", args.api_addr))?;
    tracing::info!(%api, db = %args.db_path.display(), "learner query API listening");
    // The ops endpoint on --http-addr as well, like every other stage (probes are configured per port).
    if args.runtime.http_addr != args.api_addr {
        serve(
            args.runtime.http_addr,
            selfheal_core::http::ops_router(health.clone(), metrics.clone()),
            shutdown.clone(),
        )
        .await
        .with_context(|| format!("binding {}", args.runtime.http_addr))?;
    }
    let shared = Shared {
        kafka: args.kafka,
        runtime: args.runtime,
        codec: Arc::new(Codec::new(&args.registry.url).context("schema registry client")?),
        metrics,
        health,
        shutdown,
    };
    let summary = run_stage(Arc::new(learner), shared).await?;
    tracing::info!(?summary, "learner stopped");
    Ok(())
}
