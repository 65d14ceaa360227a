//! selfheal-learner: consumes `outcomes`, remembers which fixes worked in RocksDB, and
//! serves that knowledge (plus `/healthz`, `/readyz`, `/metrics`) over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use selfheal_core::{ServiceArgs, launch};
use selfheal_learner::{DEFAULT_API_ADDR, DEFAULT_DB_PATH, Learner};

/// The learner service.
#[derive(Debug, Parser)]
#[command(name = "selfheal-learner", version, about)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Directory of the RocksDB learning store (created if missing).
    #[arg(long = "db-path", env = "SELFHEAL_LEARNER_DB", default_value = DEFAULT_DB_PATH)]
    db_path: PathBuf,
    /// Address of the query API (`/v1/fixes`, `/v1/outcomes`, plus health and metrics).
    #[arg(long = "api-addr", env = "SELFHEAL_LEARNER_API_ADDR", default_value = DEFAULT_API_ADDR)]
    api_addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args {
        service,
        db_path,
        api_addr,
    } = Args::parse();
    launch::run("selfheal-learner", service, |svc| async move {
        let learner = Learner::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?;
        // The query API answers the probes too; on --http-addr it is the ops endpoint as well.
        svc.serve("query API", api_addr, learner.api_router()).await?;
        svc.run_stage(Arc::new(learner)).await
    })
    .await?;
    Ok(())
}
