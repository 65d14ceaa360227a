//! `selfheal-monitor`: reads `telemetry.raw`, writes one `Anomaly` per incident to `anomalies`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use selfheal_core::{ServiceArgs, launch};
use selfheal_monitor::{FileStateStore, Monitor, MonitorConfig};

/// The monitor: error rates against baselines, new exception fingerprints, log templates.
#[derive(Debug, Parser)]
#[command(name = "selfheal-monitor", version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Length of the sliding error-rate window, seconds of event time.
    #[arg(long, env = "SELFHEAL_MONITOR_WINDOW_SECS", default_value_t = 10)]
    window_secs: u64,
    /// Requests a window needs before its error rate can be anomalous.
    #[arg(long, env = "SELFHEAL_MONITOR_MIN_REQUESTS", default_value_t = 5)]
    min_requests: u64,
    /// Smallest error-rate increase over the baseline that is anomalous (0..1).
    #[arg(long, env = "SELFHEAL_MONITOR_MIN_RATE_INCREASE", default_value_t = 0.05)]
    min_rate_increase: f64,
    /// Standard deviations above the baseline that are anomalous.
    #[arg(long, env = "SELFHEAL_MONITOR_RATE_SIGMAS", default_value_t = 3.0)]
    rate_sigmas: f64,
    /// An incident closes after this many seconds (event time) without its fingerprint.
    #[arg(long, env = "SELFHEAL_MONITOR_INCIDENT_QUIET_SECS", default_value_t = 60)]
    incident_quiet_secs: u64,
    /// Occurrences within a window that reopen a known fingerprint, and failures an error-rate-only incident needs.
    #[arg(long, env = "SELFHEAL_MONITOR_MIN_ERRORS", default_value_t = 3)]
    min_errors: u64,
    /// Event timestamps further than this from the collector's receive time are replaced by it, seconds.
    #[arg(long, env = "SELFHEAL_MONITOR_MAX_CLOCK_SKEW_SECS", default_value_t = 3600)]
    max_clock_skew_secs: u64,
    /// Log lines per service during which new templates are learnt silently.
    #[arg(long, env = "SELFHEAL_MONITOR_LOG_WARMUP_LINES", default_value_t = 20)]
    log_warmup_lines: u64,
    /// Directory for seen fingerprints, open incidents, baselines and log templates; unset keeps them in memory.
    #[arg(long, env = "SELFHEAL_MONITOR_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// How often the state is written to the state directory, seconds (and at shutdown).
    #[arg(long, env = "SELFHEAL_MONITOR_STATE_SAVE_SECS", default_value_t = 30)]
    state_save_secs: u64,
}

impl Args {
    fn config(&self) -> MonitorConfig {
        MonitorConfig {
            window: Duration::from_secs(self.window_secs.max(1)),
            min_requests: self.min_requests,
            min_rate_increase: self.min_rate_increase,
            rate_sigmas: self.rate_sigmas,
            incident_quiet: Duration::from_secs(self.incident_quiet_secs),
            min_errors: self.min_errors,
            max_clock_skew: Duration::from_secs(self.max_clock_skew_secs),
            log_warmup_lines: self.log_warmup_lines,
            state_dir: self.state_dir.clone(),
            state_save_interval: Duration::from_secs(self.state_save_secs),
            ..MonitorConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = args.config();
    launch::run("selfheal-monitor", args.service, |svc| async move {
        // A state directory that cannot be read stops the start: starting empty would report
        // every known failure as new.
        let monitor = Arc::new(match &config.state_dir {
            Some(dir) => Monitor::with_store(config.clone(), Arc::new(FileStateStore::new(dir)))
                .with_context(|| format!("loading monitor state from {}", dir.display()))?,
            None => Monitor::new(config),
        });
        let result = svc.run_stage(monitor.clone()).await;
        monitor.save_state().context("saving monitor state at shutdown")?;
        result
    })
    .await?;
    Ok(())
}
