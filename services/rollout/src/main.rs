//! rollout: approval, canary deployment, promotion or rollback.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use selfheal_catalog::Catalog;
use selfheal_core::Publisher;
use selfheal_core::service::start_stage;
use selfheal_core::{ServiceArgs, launch};
use selfheal_events::Approval;
use selfheal_events::topics;
use selfheal_governance::PolicyEngine;
use selfheal_rollout::{
    AnalysisConfig, CodeHostReporter, CodeHosts, KafkaApprovalSink, KafkaErrorRates, LocalProcessConfig,
    LocalProcessDeployer, ReviewWatcher, Rollout, RolloutConfig,
};

/// Reads `patches` and `approvals`, deploys approved patches as canaries, writes `rollouts`.
#[derive(Debug, Parser)]
#[command(name = "selfheal-rollout", version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
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
    /// Seconds of one canary step (a service's catalog `deploy.canary.steps` overrides it).
    #[arg(long, env = "SELFHEAL_CANARY_SECS", default_value_t = 10)]
    canary_secs: u64,
    /// Longest canary analysis: inconclusive steps are extended while they fit, then the canary
    /// is held for a person (catalog `deploy.canary.inconclusive_limit` overrides it).
    #[arg(long, env = "SELFHEAL_CANARY_MAX_SECS", default_value_t = 30)]
    canary_max_secs: u64,
    /// Requests each of canary and stable must serve before a metric may pass (catalog `deploy.canary.min_samples` overrides it).
    #[arg(long, env = "SELFHEAL_MIN_REQUESTS", default_value_t = 50)]
    min_requests: i64,
    /// How much higher (absolute, 0..1) the canary's error rate may be than stable's (catalog `deploy.canary.error_rate_bound`).
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
    /// Seconds between looks at the pull requests of pending patches (services with a code host).
    #[arg(long, env = "SELFHEAL_REVIEW_POLL_SECS", default_value_t = 10)]
    review_poll_secs: u64,
}

impl Args {
    /// How the local-process deployer starts versions of a service.
    fn deployer_config(&self) -> LocalProcessConfig {
        LocalProcessConfig {
            collector_otlp_url: Some(self.collector_otlp_url.clone()),
            python: self.python.clone(),
            state_dir: self.state_dir.join("deploy"),
            health_timeout: Duration::from_secs(self.health_timeout_secs),
        }
    }

    /// Canary analysis, environment and state of the rollout stage.
    fn config(&self) -> RolloutConfig {
        RolloutConfig {
            analysis: AnalysisConfig {
                min_window: Duration::from_secs(self.canary_secs),
                max_window: Duration::from_secs(self.canary_max_secs.max(self.canary_secs)),
                min_requests: self.min_requests,
                tolerance: self.canary_tolerance,
                ..AnalysisConfig::default()
            },
            environment: self.environment.clone(),
            change_freeze: self.change_freeze,
            state_dir: self.state_dir.clone(),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    launch::run("selfheal-rollout", args.service.clone(), |svc| async move {
        // Starting the stable versions can take a while: answer the probes meanwhile.
        svc.serve_ops().await?;
        let catalog =
            Arc::new(Catalog::load(&args.catalog).with_context(|| format!("catalog {}", args.catalog.display()))?);
        let policy = Arc::new(match &args.policy_dir {
            Some(dir) => PolicyEngine::from_dir(dir).with_context(|| format!("policies in {}", dir.display()))?,
            None => PolicyEngine::embedded().context("embedded policies")?,
        });
        let rates = KafkaErrorRates::start(
            svc.kafka(),
            svc.codec().clone(),
            &svc.kafka().topic(topics::TELEMETRY_RAW),
            svc.shutdown().clone(),
        )
        .context("traffic observer")?;
        let deployer = Arc::new(LocalProcessDeployer::new(args.deployer_config()));
        let hosts = Arc::new(CodeHosts::default());
        let reporter = Arc::new(CodeHostReporter::new(deployer.clone(), hosts.clone()));
        for entry in catalog.services().filter(|s| s.deployer == "local-process") {
            // A service that does not start now is retried when a patch for it arrives.
            match deployer.ensure_stable(entry).await {
                Ok(version) => tracing::info!(service = %entry.name, %version, "stable version running"),
                Err(e) => tracing::error!(service = %entry.name, error = %e, "cannot start the stable version"),
            }
        }
        let stage =
            Rollout::new(catalog.clone(), policy, reporter, Arc::new(rates), args.config()).context("rollout state")?;
        // Review on the code host is the approval: decisions found on pull requests go to
        // `approvals` like `selfheal approve`'s (see review.rs).
        if catalog.services().any(|s| s.code_host.is_some()) {
            let topic = svc.kafka().topic(topics::APPROVALS);
            selfheal_core::service::register_schema::<Approval>(svc.codec(), &topic, svc.shutdown(), svc.runtime())
                .await
                .context("approval schema")?;
            let publisher = Publisher::new(
                selfheal_core::kafka::producer(svc.kafka()).context("approvals producer")?,
                svc.codec().clone(),
                "selfheal-rollout",
            );
            let watcher = ReviewWatcher::new(
                catalog.clone(),
                stage.core().clone(),
                hosts.clone(),
                Arc::new(KafkaApprovalSink::new(publisher, topic)),
            );
            tokio::spawn(watcher.run(
                Duration::from_secs(args.review_poll_secs.max(1)),
                svc.shutdown().clone(),
            ));
        }
        // Approvals are a second stage of this process, in a consumer group of their own.
        let mut approvals_shared = svc.shared().clone();
        approvals_shared.runtime.group_id = svc.runtime().group_id.as_ref().map(|g| format!("{g}-approvals"));
        let approvals = start_stage(Arc::new(stage.approvals()), approvals_shared);
        let result = svc.run_stage(Arc::new(stage)).await;
        svc.shutdown().trigger();
        let approvals_result = approvals.await;
        deployer.shutdown().await;
        result?;
        approvals_result
            .context("approvals stage panicked")?
            .context("approvals stage")?;
        Ok(())
    })
    .await
}
