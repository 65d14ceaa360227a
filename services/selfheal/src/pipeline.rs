//! All seven stages in one process: the collector's OTLP receiver, monitor, diagnoser,
//! repairer, rollout (with its approval stage), verifier and learner (with its query API),
//! built from plain config values and run on one [`Shared`]. Used by `selfheal up` and the demo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use selfheal_catalog::Catalog;
use selfheal_core::service::{Shared, start_stage};
use selfheal_core::{Publisher, Stage};
use selfheal_events::topics;
use selfheal_rollout::LocalProcessDeployer;
use tokio::task::JoinHandle;

/// Every topic the in-process pipeline uses: the pipeline topics and each stage's dead-letter topic.
pub fn all_topics(kafka: &selfheal_core::KafkaArgs) -> Vec<String> {
    let mut t: Vec<String> = topics::ALL.iter().map(|n| kafka.topic(n)).collect();
    t.extend(
        selfheal_core::STAGE_NAMES
            .iter()
            .map(|n| kafka.topic(&selfheal_events::dead_letter_topic(n))),
    );
    t
}

/// What the in-process pipeline needs beyond the broker and registry.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The service catalog file.
    pub catalog: PathBuf,
    /// Directory for stage state (repairer work trees, rollout and verifier state, deploy worktrees).
    pub state_dir: PathBuf,
    /// The learner's RocksDB directory.
    pub learner_db: PathBuf,
    /// Where the learner's query API listens (port 0 picks one).
    pub learner_addr: SocketAddr,
    /// Where the collector's OTLP/HTTP receiver listens (port 0 picks one).
    pub collector_addr: SocketAddr,
    /// The monitor's detection window.
    pub monitor_window: Duration,
    /// Quiet time after which the monitor closes an incident.
    pub incident_quiet: Duration,
    /// Shortest canary analysis.
    pub canary_duration: Duration,
    /// Longest canary analysis (judged on whatever traffic arrived by then).
    pub canary_max: Duration,
    /// Requests the canary must serve to be promoted.
    pub canary_min_requests: i64,
    /// How long the verifier watches after promotion.
    pub verify_window: Duration,
    /// Fewer requests than this in the verify window and a Healed summary says "low traffic".
    pub verify_min_requests: i64,
    /// Python interpreter replacing a leading `python3` in test and deploy commands.
    pub python: Option<String>,
    /// Run tests without network isolation when neither bwrap nor `unshare --net` works.
    pub allow_unsandboxed: bool,
    /// Environment named to the deploy policy.
    pub environment: String,
    /// Start the stable version of every local-process service of the catalog at start.
    pub start_stable: bool,
    /// The language model of the diagnoser and the repairer; no provider = none (the default).
    pub llm: selfheal_llm::LlmConfig,
    /// When the diagnoser asks the model.
    pub diagnoser_llm: selfheal_diagnoser::DiagnoserLlmSettings,
    /// How the repairer's agent works (rounds of self-critique, context).
    pub agent: selfheal_repairer::AgentSettings,
}

impl PipelineConfig {
    /// The short windows of the demo (a whole incident in well under two minutes).
    pub fn demo(catalog: PathBuf, state_dir: PathBuf, learner_db: PathBuf) -> Self {
        PipelineConfig {
            catalog,
            state_dir,
            learner_db,
            learner_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            collector_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            monitor_window: Duration::from_secs(5),
            incident_quiet: Duration::from_secs(30),
            canary_duration: Duration::from_secs(8),
            canary_max: Duration::from_secs(25),
            canary_min_requests: 5,
            verify_window: Duration::from_secs(8),
            verify_min_requests: 5,
            python: None,
            allow_unsandboxed: false,
            environment: "demo".into(),
            start_stable: false,
            llm: selfheal_llm::LlmConfig::default(),
            diagnoser_llm: selfheal_diagnoser::DiagnoserLlmSettings::default(),
            agent: selfheal_repairer::AgentSettings::default(),
        }
    }
}

/// A running pipeline.
pub struct Pipeline {
    /// Where the collector receives OTLP/HTTP.
    pub collector_addr: Option<SocketAddr>,
    /// Base URL of the learner's API.
    pub learner_url: Option<String>,
    /// Stages not started because their library is not available in this build.
    pub missing: Vec<&'static str>,
    /// Stages started.
    pub started: Vec<&'static str>,
    /// The rollout's deployer (the demo starts the stable version through it).
    pub deployer: Option<Arc<LocalProcessDeployer>>,
    /// The catalog the stages read.
    pub catalog: Arc<Catalog>,
    handles: Vec<(&'static str, JoinHandle<Result<()>>)>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("started", &self.started)
            .field("missing", &self.missing)
            .finish()
    }
}

/// Starts every stage on `shared`: the learner first (its API address is the diagnoser's
/// knowledge source), then the collector and the stages in pipeline order. Topics are
/// created by the stages unless `shared.kafka.create_topics` is off (the embedded cluster).
pub async fn start(shared: &Shared, cfg: &PipelineConfig) -> Result<Pipeline> {
    std::fs::create_dir_all(&cfg.state_dir).with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    let catalog = Arc::new(
        Catalog::load(&cfg.catalog).with_context(|| format!("loading the catalog {}", cfg.catalog.display()))?,
    );
    let mut p = Pipeline {
        collector_addr: None,
        learner_url: None,
        missing: Vec::new(),
        started: Vec::new(),
        deployer: None,
        catalog: catalog.clone(),
        handles: Vec::new(),
    };

    // learner + its query API.
    let learner = open_learner(&cfg.learner_db).await?;
    let api = selfheal_core::http::serve(cfg.learner_addr, learner.api_router(), shared.shutdown.clone())
        .await
        .with_context(|| format!("binding the learner API on {}", cfg.learner_addr))?;
    let learner_url = format!("http://{api}");
    p.learner_url = Some(learner_url.clone());
    p.spawn("learner", Arc::new(learner), shared);

    // collector.
    let telemetry_topic = shared.kafka.topic(topics::TELEMETRY_RAW);
    selfheal_collector::prepare(
        &shared.kafka,
        &shared.runtime,
        &shared.codec,
        &telemetry_topic,
        &shared.shutdown,
    )
    .await
    .context("preparing the collector's topic")?;
    let publisher = Publisher::new(
        selfheal_core::kafka::producer(&shared.kafka)?,
        shared.codec.clone(),
        "collector",
    );
    let collector = selfheal_collector::start(
        selfheal_collector::CollectorConfig::new(cfg.collector_addr, telemetry_topic.clone()),
        publisher,
        shared.metrics.clone(),
        selfheal_core::http::Health::new(),
        shared.shutdown.clone(),
    )
    .await
    .context("starting the collector")?;
    p.collector_addr = Some(collector);
    p.started.push("collector");

    // monitor (state in memory: each run starts with no baseline, as a fresh service would).
    let monitor = selfheal_monitor::Monitor::new(selfheal_monitor::MonitorConfig {
        window: cfg.monitor_window,
        incident_quiet: cfg.incident_quiet,
        ..selfheal_monitor::MonitorConfig::default()
    });
    p.spawn("monitor", Arc::new(monitor), shared);

    // The model, when one is configured: one client per stage (each keeps its own HTTP pool),
    // the budget is per incident and carried from the diagnosis to the repairer.
    let llm_client = || cfg.llm.client().context("configuring the LLM (--llm-* flags)");

    // diagnoser.
    let diagnoser = selfheal_diagnoser::Diagnoser::from_config(&cfg.catalog, &learner_url)
        .with_context(|| format!("building the diagnoser from {}", cfg.catalog.display()))?
        .with_llm(llm_client()?, cfg.diagnoser_llm);
    p.spawn("diagnoser", Arc::new(diagnoser), shared);

    // repairer.
    let repairer = selfheal_repairer::build(
        &cfg.catalog,
        None,
        selfheal_repairer::RepairerConfig {
            python: cfg.python.clone(),
            allow_unsandboxed: cfg.allow_unsandboxed,
            work_dir: cfg.state_dir.join("repairer"),
        },
    )
    .context("building the repairer")?
    .with_llm(llm_client()?, cfg.agent.clone());
    p.spawn("repairer", Arc::new(repairer), shared);

    // rollout + its approvals stage, with the local-process deployer and a traffic observer.
    let policy = Arc::new(selfheal_governance::PolicyEngine::embedded().context("loading the embedded policies")?);
    let rates = selfheal_rollout::KafkaErrorRates::start(
        &shared.kafka,
        shared.codec.clone(),
        &telemetry_topic,
        shared.shutdown.clone(),
    )
    .context("starting the rollout's traffic observer")?;
    let deployer = Arc::new(LocalProcessDeployer::new(selfheal_rollout::LocalProcessConfig {
        collector_otlp_url: Some(format!("http://{collector}")),
        python: cfg.python.clone(),
        state_dir: cfg.state_dir.join("deploy"),
        health_timeout: Duration::from_secs(30),
    }));
    if cfg.start_stable {
        for svc in catalog.services().filter(|s| s.deployer == "local-process") {
            match deployer.ensure_stable(svc).await {
                Ok(version) => tracing::info!(service = %svc.name, %version, "stable version running"),
                Err(e) => tracing::error!(service = %svc.name, error = %e, "cannot start the stable version"),
            }
        }
    }
    let rollout_cfg = selfheal_rollout::RolloutConfig {
        analysis: selfheal_rollout::AnalysisConfig {
            min_window: cfg.canary_duration,
            max_window: cfg.canary_max.max(cfg.canary_duration),
            min_requests: cfg.canary_min_requests,
            ..selfheal_rollout::AnalysisConfig::default()
        },
        environment: cfg.environment.clone(),
        change_freeze: false,
        state_dir: cfg.state_dir.join("rollout"),
    };
    let rollout =
        selfheal_rollout::Rollout::new(catalog.clone(), policy, deployer.clone(), Arc::new(rates), rollout_cfg)
            .context("building the rollout stage")?;
    let approvals = Arc::new(rollout.approvals());
    p.spawn("rollout-approvals", approvals, shared);
    p.spawn("rollout", Arc::new(rollout), shared);
    p.deployer = Some(deployer);

    // verifier, with its own watch of telemetry.raw.
    let watch = selfheal_verifier::KafkaFingerprintWatch::start(
        &shared.kafka,
        shared.codec.clone(),
        &telemetry_topic,
        Arc::new(selfheal_verifier::StacktraceFingerprinter),
        shared.shutdown.clone(),
    )
    .context("starting the verifier's telemetry watch")?;
    let verifier = selfheal_verifier::Verifier::new(
        Arc::new(watch),
        selfheal_verifier::VerifierConfig {
            window: cfg.verify_window,
            settle: Duration::from_millis(1500),
            low_traffic_below: cfg.verify_min_requests,
            state_dir: Some(cfg.state_dir.join("verifier")),
            ..selfheal_verifier::VerifierConfig::default()
        },
    )
    .context("building the verifier")?;
    p.spawn("verifier", Arc::new(verifier), shared);
    Ok(p)
}

/// Opens the learning store, waiting briefly for a previous run in this process to release its lock.
async fn open_learner(path: &Path) -> Result<selfheal_learner::Learner> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut last = None;
    for _ in 0..50 {
        match selfheal_learner::Learner::open(path) {
            Ok(l) => return Ok(l),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Err(anyhow!(
        "opening the learning store {}: {}",
        path.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

impl Pipeline {
    /// Runs `stage` on the shared runtime and remembers its task.
    fn spawn<S: Stage>(&mut self, name: &'static str, stage: Arc<S>, shared: &Shared) {
        let handle = start_stage(stage, shared.clone());
        self.handles.push((
            name,
            tokio::spawn(async move { handle.await?.map(|_| ()).map_err(anyhow::Error::from) }),
        ));
        self.started.push(name);
    }

    /// After shutdown was triggered: stops the deployed processes and waits for every
    /// stage to stop, at most `grace` each.
    pub async fn join(self, grace: Duration) {
        if let Some(d) = &self.deployer {
            d.shutdown().await;
        }
        for (name, h) in self.handles {
            match tokio::time::timeout(grace, h).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(stage = name, error = %format!("{e:#}"), "stage stopped with an error")
                }
                Ok(Err(e)) => tracing::warn!(stage = name, error = %e, "stage task failed"),
                Err(_) => tracing::warn!(stage = name, "stage did not stop within {:?}", grace),
            }
        }
    }

    /// A stage that ended already, for the demo's watchdog.
    pub fn finished_stage(&self) -> Option<&'static str> {
        self.handles.iter().find(|(_, h)| h.is_finished()).map(|(n, _)| *n)
    }
}
