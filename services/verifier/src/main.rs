//! verifier: confirms the incident stopped and writes the outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use selfheal_core::{ServiceArgs, launch};
use selfheal_events::topics;
use selfheal_verifier::{KafkaFingerprintWatch, MonitorFingerprinter, Verifier, VerifierConfig};

/// Reads `rollouts`, watches telemetry after promotion, writes one Outcome per incident.
#[derive(Debug, Parser)]
#[command(name = "selfheal-verifier", version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Seconds to watch for the incident's fingerprint after promotion.
    #[arg(long, env = "SELFHEAL_VERIFY_WINDOW_SECS", default_value_t = 10)]
    verify_window_secs: u64,
    /// Milliseconds to wait after the window for telemetry still being exported.
    #[arg(long, env = "SELFHEAL_VERIFY_SETTLE_MS", default_value_t = 2000)]
    verify_settle_ms: u64,
    /// Requests the failing operation must serve in the window, without the failure, for Healed (fewer: Unverified).
    #[arg(long, env = "SELFHEAL_VERIFY_MIN_REQUESTS", default_value_t = 10)]
    verify_min_requests: i64,
    /// Directory remembering emitted outcomes across restarts (memory only when unset).
    #[arg(long, env = "SELFHEAL_VERIFIER_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    launch::run_stage("selfheal-verifier", args.service, |svc| {
        let watch = KafkaFingerprintWatch::start(
            svc.kafka(),
            svc.codec().clone(),
            &svc.kafka().topic(topics::TELEMETRY_RAW),
            Arc::new(MonitorFingerprinter),
            svc.shutdown().clone(),
        )
        .context("telemetry watch")?;
        let config = VerifierConfig {
            window: Duration::from_secs(args.verify_window_secs),
            settle: Duration::from_millis(args.verify_settle_ms),
            low_traffic_below: args.verify_min_requests,
            state_dir: args.state_dir,
            ..VerifierConfig::default()
        };
        Verifier::new(Arc::new(watch), config).context("verifier")
    })
    .await?;
    Ok(())
}
