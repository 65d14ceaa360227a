//! `selfheal demo`: the whole loop on one machine in about a minute.
//!
//! An embedded broker and registry, a fresh git repository of the Python pricing-api,
//! the seven services in this process, the stable pricing-api behind the local-process
//! deployer, and traffic with a share of zero discounts. The demo then prints each stage
//! as its record arrives — time since the first error and the evidence that convinced
//! the stage — and ends with the outcome, the diff, the test results and a markdown report.
//!
//! [`run`] is the whole demo as a function (ports picked freely, output to any writer),
//! so an integration test runs exactly what users run.

pub mod children;
pub mod follow;
pub mod report;
pub mod setup;
pub mod timeline;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rdkafka::Message;
use selfheal_core::embedded::EmbeddedStack;
use selfheal_core::http::Health;
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{Shared, register_schema};
use selfheal_core::{KafkaArgs, RuntimeArgs, Shutdown, TelemetryArgs};
use selfheal_events::{
    Anomaly, Approval, Codec, Diagnosis, KnownFix, Outcome, OutcomeStatus, Patch, Record, Rollout, TelemetryEvent,
    topics,
};

use crate::pipeline::{self, PipelineConfig};
use crate::render::{secs, since_first_error, status_word};
use crate::topics_io::{self, StartAt};
use children::Managed;
use follow::{Follower, Rec};
use report::Story;

/// The service the demo heals.
pub const SERVICE: &str = "pricing-api";

/// Flags of `selfheal demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Print the Outcome record as one JSON line at the end.
    #[arg(long, env = "SELFHEAL_DEMO_JSON")]
    pub json: bool,
    /// Keep the services, pricing-api and traffic running after the outcome, until Ctrl-C.
    #[arg(long, env = "SELFHEAL_DEMO_KEEP")]
    pub keep: bool,
    /// Give up (and exit non-zero) when no outcome arrived within this many seconds of the traffic starting.
    #[arg(long, env = "SELFHEAL_DEMO_TIMEOUT_SECS", default_value_t = 150)]
    pub timeout_secs: u64,
    /// Where runs are kept (`<dir>/<run-id>/`), and the learning store shared by runs (`<dir>/learner.db`).
    #[arg(long, env = "SELFHEAL_DEMO_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The project checkout holding `examples/` and `scripts/`; found from the current directory when absent.
    #[arg(long, env = "SELFHEAL_ROOT")]
    pub root: Option<PathBuf>,
    /// Python interpreter with pricing-api's packages (the last line of scripts/python-env.sh); created when absent.
    #[arg(long, env = "SELFHEAL_PYTHON")]
    pub python: Option<PathBuf>,
    /// Requests per second the traffic generator sends.
    #[arg(long, env = "SELFHEAL_DEMO_RATE", default_value_t = 20.0)]
    pub rate: f64,
    /// Share of requests with discount 0.0 (the failing input).
    #[arg(long, env = "SELFHEAL_DEMO_ZERO_SHARE", default_value_t = 0.1)]
    pub zero_share: f64,
    /// Seconds the canary is analysed before promotion or rollback.
    #[arg(long, env = "SELFHEAL_DEMO_CANARY_SECS", default_value_t = 8)]
    pub canary_secs: u64,
    /// Seconds the verifier watches after promotion.
    #[arg(long, env = "SELFHEAL_DEMO_VERIFY_SECS", default_value_t = 8)]
    pub verify_secs: u64,
    /// Seconds of the monitor's detection window.
    #[arg(long, env = "SELFHEAL_DEMO_MONITOR_WINDOW_SECS", default_value_t = 5)]
    pub monitor_window_secs: u64,
    /// Run the tests WITHOUT network isolation when neither bwrap nor `unshare --net` works here.
    #[arg(long, env = "SELFHEAL_ALLOW_UNSANDBOXED")]
    pub allow_unsandboxed: bool,
    /// A language model for the diagnoser and the repairer (the demo's incident is healed by a
    /// template without one; with one, its prompts and answers show in the report).
    #[command(flatten)]
    pub llm: selfheal_llm::LlmConfig,
}

/// Everything [`run`] needs; ports are picked freely.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Project root (examples/, scripts/).
    pub root: PathBuf,
    /// State directory; runs go to `<state_dir>/<run_id>`.
    pub state_dir: PathBuf,
    /// This run's id.
    pub run_id: String,
    /// The venv python, or None to run scripts/python-env.sh.
    pub python: Option<PathBuf>,
    /// Overall timeout.
    pub timeout: Duration,
    /// Print the Outcome as JSON at the end.
    pub json: bool,
    /// Keep running after the outcome until shutdown.
    pub keep: bool,
    /// Traffic rate.
    pub rate: f64,
    /// Share of failing requests.
    pub zero_share: f64,
    /// Stage windows.
    pub canary: Duration,
    /// Verifier window.
    pub verify: Duration,
    /// Monitor window.
    pub monitor_window: Duration,
    /// Allow tests without network isolation.
    pub allow_unsandboxed: bool,
    /// The language model, if any.
    pub llm: selfheal_llm::LlmConfig,
}

impl DemoConfig {
    /// The configuration from flags; the root is searched from the current directory.
    pub fn from_args(args: &DemoArgs) -> Result<Self> {
        let cwd = std::env::current_dir()?;
        let root = match &args.root {
            Some(r) => r.clone(),
            None => setup::find_root(&cwd).ok_or_else(|| {
                anyhow!(
                    "cannot find the selfheal checkout (examples/pricing-api) from {}; pass --root",
                    cwd.display()
                )
            })?,
        };
        Ok(DemoConfig {
            state_dir: args.state_dir.clone().unwrap_or_else(|| root.join(".selfheal/demo")),
            root,
            run_id: new_run_id(),
            python: args.python.clone(),
            timeout: Duration::from_secs(args.timeout_secs),
            json: args.json,
            keep: args.keep,
            rate: args.rate,
            zero_share: args.zero_share,
            canary: Duration::from_secs(args.canary_secs),
            verify: Duration::from_secs(args.verify_secs),
            monitor_window: Duration::from_secs(args.monitor_window_secs),
            allow_unsandboxed: args.allow_unsandboxed,
            llm: args.llm.clone(),
        })
    }

    /// Defaults for a checkout at `root` with state in `state_dir` (tests).
    pub fn new(root: PathBuf, state_dir: PathBuf) -> Self {
        DemoConfig {
            root,
            state_dir,
            run_id: new_run_id(),
            python: None,
            timeout: Duration::from_secs(150),
            json: false,
            keep: false,
            rate: 20.0,
            zero_share: 0.1,
            canary: Duration::from_secs(8),
            verify: Duration::from_secs(8),
            monitor_window: Duration::from_secs(5),
            allow_unsandboxed: false,
            llm: selfheal_llm::LlmConfig::default(),
        }
    }

    /// This run's directory.
    pub fn run_dir(&self) -> PathBuf {
        self.state_dir.join(&self.run_id)
    }
}

/// A sortable, readable run id: `20260501-120301-3f9a`.
pub fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let rnd = &uuid::Uuid::new_v4().simple().to_string()[..4];
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{rnd}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// What a demo run produced.
#[derive(Debug)]
pub struct DemoResult {
    /// The outcome of the incident, if one arrived in time.
    pub outcome: Option<Outcome>,
    /// Everything seen.
    pub story: Story,
    /// The run directory.
    pub run_dir: PathBuf,
    /// The markdown report.
    pub report: PathBuf,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl DemoResult {
    /// Whether the incident was healed.
    pub fn healed(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| o.status == OutcomeStatus::Healed)
    }
}

/// The binary's entry: logs to the run directory, Ctrl-C stops cleanly; returns the exit code.
pub async fn main(args: DemoArgs, telemetry: &TelemetryArgs) -> Result<i32> {
    let cfg = DemoConfig::from_args(&args)?;
    let run_dir = cfg.run_dir();
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let log_path = run_dir.join("selfheal.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_new(&telemetry.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(log))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    let shutdown = Shutdown::on_signals();
    let mut stdout = std::io::stdout();
    match run(cfg, shutdown.clone(), &mut stdout).await {
        Ok(r) if r.healed() => Ok(0),
        Ok(_) if shutdown.is_triggered() => Ok(130),
        Ok(_) => Ok(1),
        Err(e) => {
            let _ = writeln!(
                stdout,
                "\n  ✗ demo failed: {e:#}\n    logs: {}",
                rel(&log_path).display()
            );
            Ok(2)
        }
    }
}

/// `path` relative to the current directory when below it (shorter to read).
fn rel(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|c| path.strip_prefix(&c).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

/// Every record type on a topic, for registration.
async fn register_all(codec: &Codec, kafka: &KafkaArgs, shutdown: &Shutdown) -> Result<usize> {
    let rt = RuntimeArgs::default();
    register_schema::<TelemetryEvent>(codec, &kafka.topic(TelemetryEvent::TOPIC), shutdown, &rt).await?;
    register_schema::<Anomaly>(codec, &kafka.topic(Anomaly::TOPIC), shutdown, &rt).await?;
    register_schema::<Diagnosis>(codec, &kafka.topic(Diagnosis::TOPIC), shutdown, &rt).await?;
    register_schema::<Patch>(codec, &kafka.topic(Patch::TOPIC), shutdown, &rt).await?;
    register_schema::<Approval>(codec, &kafka.topic(Approval::TOPIC), shutdown, &rt).await?;
    register_schema::<Rollout>(codec, &kafka.topic(Rollout::TOPIC), shutdown, &rt).await?;
    register_schema::<Outcome>(codec, &kafka.topic(Outcome::TOPIC), shutdown, &rt).await?;
    Ok(7)
}

macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
        let _ = $out.flush();
    }};
}

/// Runs the demo until the incident's outcome (or timeout, or shutdown) and cleans up.
pub async fn run(cfg: DemoConfig, shutdown: Shutdown, out: &mut (dyn Write + Send)) -> Result<DemoResult> {
    let started = Instant::now();
    let run_dir = cfg.run_dir();
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let run_dir = run_dir.canonicalize()?;
    // Everything this run starts stops on this token: the caller's shutdown triggers it too.
    let local = Shutdown::new();
    let bridge = {
        let (outer, local) = (shutdown.clone(), local.clone());
        tokio::spawn(async move {
            outer.wait().await;
            local.trigger();
        })
    };
    let mut scene = Scene::default();
    let result = scene_and_story(&cfg, &run_dir, &shutdown, &local, out, &mut scene).await;
    // The end of the story is told while everything still runs (with --keep, it keeps running).
    let report = run_dir.join("report.md");
    let told = match &result {
        Ok(story) => tell_the_end(story, &report, &run_dir, &cfg, out),
        Err(_) => Ok(()),
    };
    if cfg.keep && result.as_ref().is_ok_and(|s| s.outcome.is_some()) && !shutdown.is_triggered() {
        say!(
            out,
            "\n  --keep: everything keeps running until Ctrl-C. Meanwhile, in another terminal:"
        );
        for hint in &scene.hints {
            say!(out, "    {hint}");
        }
        shutdown.wait().await;
    }
    // Clean-up on every path.
    let cleanup = async {
        for c in scene.children.drain(..) {
            c.stop(Duration::from_secs(3)).await;
        }
        local.trigger();
        if let Some(p) = scene.pipeline.take() {
            p.join(Duration::from_secs(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), cleanup).await.is_err() {
        tracing::warn!("clean-up did not finish within 30s");
    }
    // The broker goes last: stages commit and flush against it while they stop.
    drop(scene.stack.take());
    bridge.abort();
    let story = result?;
    told?;
    let outcome = story.outcome.clone();
    Ok(DemoResult {
        outcome,
        story,
        run_dir,
        report,
        elapsed: started.elapsed(),
    })
}

/// Writes the report and prints the end of the story (or why there is none).
fn tell_the_end(
    story: &Story,
    report: &Path,
    run_dir: &Path,
    cfg: &DemoConfig,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    std::fs::write(report, report::markdown(story)).with_context(|| format!("writing {}", report.display()))?;
    match &story.outcome {
        Some(o) => finish(o, story, report, cfg, out),
        None => {
            say!(
                out,
                "\n  ✗ no outcome: {}",
                story.stopped.as_deref().unwrap_or("stopped")
            );
            say!(
                out,
                "    report: {} · logs: {}",
                rel(report).display(),
                rel(&run_dir.join("selfheal.log")).display()
            );
            Ok(())
        }
    }
}

/// Prints the end: the diff, the tests, the verdict line and the JSON line.
fn finish(o: &Outcome, story: &Story, report: &Path, cfg: &DemoConfig, out: &mut (dyn Write + Send)) -> Result<()> {
    if let Some(fix) = &o.fix
        && !fix.diff.is_empty()
    {
        say!(out, "");
        let test_file = o.regression_test.as_ref().map(|t| t.file.as_str());
        for line in terminal_diff(&fix.diff, test_file) {
            say!(out, "  {line}");
        }
    }
    if let Some(v) = o
        .validation
        .as_ref()
        .or(story.patch.as_ref().and_then(|p| p.validation.as_ref()))
    {
        say!(
            out,
            "\n  tests: regression test failed before the fix: {} · passed after: {} · suite {} ({} run, {} failed) in {}",
            v.failed_before,
            v.passed_after,
            if v.suite_passed { "passed" } else { "FAILED" },
            v.tests_run,
            v.tests_failed,
            v.sandbox
        );
    }
    let t = secs(since_first_error(&o.timeline, o.timeline.outcome_ms));
    let verb = match o.status {
        OutcomeStatus::Healed => format!("healed in {t} (first error → verified)"),
        other => format!("{} after {t}", status_word(other)),
    };
    say!(out, "\n  {verb} · report: {}", rel(report).display());
    if o.fix.as_ref().is_some_and(|f| f.learned) {
        say!(
            out,
            "  the learning store ({}) supplied this fix: it healed this fingerprint before",
            rel(&cfg.state_dir.join("learner.db")).display()
        );
    }
    if cfg.json {
        say!(out, "{}", serde_json::to_string(o)?);
    }
    Ok(())
}

/// What a run starts, kept by the caller so that every path stops it.
#[derive(Default)]
struct Scene {
    /// Commands a person can run against this run (printed with --keep).
    hints: Vec<String>,
    children: Vec<Managed>,
    pipeline: Option<pipeline::Pipeline>,
    stack: Option<EmbeddedStack>,
}

/// The diff as shown on the terminal: the code change in full, the regression test file
/// as one line (the report has it all), git's index lines left out.
pub fn terminal_diff(diff: &str, test_file: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git a/") {
            let file = rest.split(" b/").next().unwrap_or(rest);
            skipping = test_file == Some(file);
            if skipping {
                let added = diff_lines_of(diff, file);
                out.push(format!("+++ {file} (new regression test, {added} lines)"));
            }
            continue;
        }
        if skipping || line.starts_with("index ") || line.starts_with("new file mode") {
            continue;
        }
        out.push(line.to_string());
    }
    out
}

/// Added lines of one file's section of a git diff.
fn diff_lines_of(diff: &str, file: &str) -> usize {
    let header = format!("diff --git a/{file} ");
    let Some(start) = diff.find(&header) else { return 0 };
    let section = &diff[start + header.len()..];
    let end = section.find("\ndiff --git ").unwrap_or(section.len());
    section[..end]
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .count()
}

/// Sets the scene and follows the incident; fills `scene` so the caller can stop it all.
async fn scene_and_story(
    cfg: &DemoConfig,
    run_dir: &Path,
    shutdown: &Shutdown,
    local: &Shutdown,
    out: &mut (dyn Write + Send),
    scene: &mut Scene,
) -> Result<Story> {
    say!(
        out,
        "selfheal demo — embedded broker and registry, 7 services, {SERVICE} (Python, OpenTelemetry)"
    );

    // The broker and registry.
    let stack = EmbeddedStack::start(local.clone())
        .await
        .context("starting the embedded broker and registry")?;
    // The mock cluster does not answer CreateTopics: topics are made here, up front.
    let mut kafka = stack.kafka_args("");
    kafka.partitions = 1;
    stack.create_pipeline_topics(&kafka.topic_prefix, kafka.partitions)?;
    let codec = Arc::new(Codec::new(&stack.registry.url())?);
    let schemas = register_all(&codec, &kafka, local).await?;
    say!(
        out,
        "  ✓ broker {} · registry {} · {} topics · {schemas} schemas registered",
        stack.brokers(),
        stack.registry.addr,
        topics::ALL.len()
    );
    scene.stack = Some(stack);

    // Python, the repository and the catalog.
    let python = setup::python(&cfg.root, cfg.python.as_deref(), &run_dir.join("python-env.log")).await?;
    let repo = run_dir.join("repos").join(SERVICE);
    let commit = setup::init_repo(&cfg.root.join("examples/pricing-api"), &repo)?;
    let (port, canary_port) = (setup::free_port()?, setup::free_port()?);
    let catalog = run_dir.join("catalog.toml");
    std::fs::write(
        &catalog,
        setup::catalog_toml(&setup::CatalogSpec {
            python: python.clone(),
            repository: format!("repos/{SERVICE}"),
            port,
            canary_port,
            canary_percent: 25,
            autonomy: "auto",
        }),
    )?;

    // The seven services.
    let shared = Shared {
        kafka: kafka.clone(),
        runtime: RuntimeArgs {
            retry_max_ms: 2_000,
            grace_period_secs: 5,
            ..RuntimeArgs::default()
        },
        codec: codec.clone(),
        metrics: Arc::new(Metrics::new()),
        health: Health::new(),
        shutdown: local.clone(),
    };
    let mut pcfg = PipelineConfig::demo(catalog.clone(), run_dir.join("state"), cfg.state_dir.join("learner.db"));
    pcfg.monitor_window = cfg.monitor_window;
    pcfg.canary_duration = cfg.canary;
    pcfg.verify_window = cfg.verify;
    pcfg.python = Some(python.to_string_lossy().into_owned());
    pcfg.allow_unsandboxed = cfg.allow_unsandboxed;
    pcfg.llm = cfg.llm.clone();
    let p = pipeline::start(&shared, &pcfg).await?;
    let collector = p.collector_addr;
    let _ = &collector;
    let learner_url = p.learner_url.clone();
    let services_line = format!(
        "  {} {} services in-process · collector {} · learner API {}{}",
        if p.missing.is_empty() { "✓" } else { "!" },
        p.started.iter().filter(|s| **s != "rollout-approvals").count(),
        collector.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
        learner_url.as_deref().unwrap_or("-"),
        if p.missing.is_empty() {
            String::new()
        } else {
            format!(" · NOT RUNNING: {}", p.missing.join(", "))
        }
    );
    let started_stable = start_stable(&p).await;
    scene.pipeline = Some(p);
    say!(out, "{services_line}");

    // The stable service (started above, behind the deployer's proxy) and traffic.
    let service_url = started_stable?;
    let traffic = Managed::spawn(
        "traffic",
        &python,
        &[
            cfg.root
                .join("examples/traffic/traffic.py")
                .to_string_lossy()
                .into_owned(),
            "--target".into(),
            service_url.clone(),
            "--rate".into(),
            cfg.rate.to_string(),
            "--zero-share".into(),
            cfg.zero_share.to_string(),
            "--duration".into(),
            "0".into(),
        ],
        &cfg.root,
        &[],
        &run_dir.join("traffic.log"),
    )?;
    scene.children.push(traffic);
    let (b, r) = (kafka.brokers.clone(), codec.url().to_string());
    scene.hints = vec![
        format!("selfheal tail outcomes --from-beginning --kafka-brokers {b} --schema-registry-url {r}"),
        format!(
            "selfheal knowledge --learner-url {}",
            learner_url.as_deref().unwrap_or("-")
        ),
        format!("curl -s {service_url}/healthz"),
    ];
    say!(
        out,
        "  ✓ {SERVICE} v1 ({commit}) on :{port} · traffic {} req/s, {:.0}% with discount 0.0\n",
        cfg.rate,
        cfg.zero_share * 100.0
    );

    // The timeout counts from here: creating the Python environment the first time takes
    // as long as pip needs, which says nothing about selfheal.
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    follow(
        cfg,
        &kafka,
        &codec,
        learner_url.as_deref(),
        deadline,
        shutdown,
        out,
        &mut scene.children,
        &scene.pipeline,
    )
    .await
}

/// Starts the stable version through the rollout's deployer (behind its traffic proxy on
/// the catalog's port) and returns the URL traffic goes to.
async fn start_stable(p: &pipeline::Pipeline) -> Result<String> {
    let deployer = p
        .deployer
        .as_ref()
        .ok_or_else(|| anyhow!("the rollout stage is not running"))?;
    let svc = p
        .catalog
        .service(SERVICE)
        .ok_or_else(|| anyhow!("{SERVICE} is not in the demo's catalog"))?;
    deployer
        .ensure_stable(svc)
        .await
        .with_context(|| format!("starting the stable {SERVICE}"))?;
    let addr = deployer
        .public_addr(SERVICE)
        .await
        .ok_or_else(|| anyhow!("the deployer runs no proxy for {SERVICE}"))?;
    let url = format!("http://{addr}");
    wait_healthy(&format!("{url}/healthz"), Duration::from_secs(30)).await?;
    Ok(url)
}

/// Polls a health URL until it answers 200.
async fn wait_healthy(url: &str, within: Duration) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()?;
    let until = Instant::now() + within;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(anyhow!("{url} did not answer within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Consumes the pipeline's topics from the beginning and prints the incident's story.
#[allow(clippy::too_many_arguments)]
async fn follow(
    cfg: &DemoConfig,
    kafka: &KafkaArgs,
    codec: &Codec,
    learner_url: Option<&str>,
    deadline: tokio::time::Instant,
    shutdown: &Shutdown,
    out: &mut (dyn Write + Send),
    children: &mut [Managed],
    pipeline: &Option<pipeline::Pipeline>,
) -> Result<Story> {
    let names = [
        topics::ANOMALIES,
        topics::DIAGNOSES,
        topics::PATCHES,
        topics::ROLLOUTS,
        topics::OUTCOMES,
    ];
    let full: Vec<String> = names.iter().map(|t| kafka.topic(t)).collect();
    let ranges = topics_io::partition_ranges_async(kafka, &full).await?;
    let consumer = topics_io::assigned_consumer(kafka, &ranges, StartAt::Beginning)?;
    let mut f = Follower::new(Story {
        run_id: cfg.run_id.clone(),
        ..Story::default()
    });
    let mut last_record = Instant::now();
    let mut last_progress = Instant::now();
    say!(out, "  waiting for the first error…");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let msg = tokio::select! {
            _ = shutdown.wait() => {
                f.story.stopped = Some("interrupted".into());
                return Ok(f.story);
            }
            _ = tokio::time::sleep_until(deadline) => {
                f.story.stopped = Some(format!("timed out after {}s", cfg.timeout.as_secs()));
                return Ok(f.story);
            }
            _ = tick.tick() => {
                for c in children.iter_mut() {
                    if let Some(status) = c.exited() {
                        f.story.stopped = Some(format!("{} exited ({status})", c.name));
                        return Ok(f.story);
                    }
                }
                if let Some(stage) = pipeline.as_ref().and_then(|p| p.finished_stage()) {
                    f.story.stopped = Some(format!("the {stage} stage stopped; see selfheal.log"));
                    return Ok(f.story);
                }
                // An outcome that waited 3s for an earlier stage's record is told anyway.
                if f.outcome_waiting() && last_record.elapsed() > Duration::from_secs(3) {
                    for e in f.flush() {
                        print_entry(&e, out);
                    }
                }
                if f.story.outcome.is_some() {
                    break;
                }
                if last_progress.elapsed() > Duration::from_secs(20) {
                    say!(out, "  … still waiting ({} without news)", secs(Some(last_record.elapsed().as_secs_f64())));
                    last_progress = Instant::now();
                }
                continue;
            }
            m = consumer.recv() => m.context("reading the pipeline topics")?,
        };
        let topic = msg
            .topic()
            .strip_prefix(kafka.topic_prefix.as_str())
            .unwrap_or(msg.topic())
            .to_string();
        let Some(payload) = msg.payload().map(<[u8]>::to_vec) else {
            continue;
        };
        drop(msg);
        last_record = Instant::now();
        last_progress = Instant::now();
        let rec = match topic.as_str() {
            topics::ANOMALIES => Rec::Anomaly(decode(codec, &payload, &topic).await?),
            topics::DIAGNOSES => Rec::Diagnosis(decode(codec, &payload, &topic).await?),
            topics::PATCHES => Rec::Patch(decode(codec, &payload, &topic).await?),
            topics::ROLLOUTS => Rec::Rollout(decode(codec, &payload, &topic).await?),
            topics::OUTCOMES => Rec::Outcome(decode(codec, &payload, &topic).await?),
            _ => continue,
        };
        for e in f.accept(rec) {
            print_entry(&e, out);
        }
        if f.story.outcome.is_some() {
            break;
        }
    }
    if let (Some(url), Some(o)) = (learner_url, f.story.outcome.clone()) {
        let fix = learned_fix(url, &o, Duration::from_secs(5)).await;
        let t = o
            .timeline
            .first_error_ms
            .map(|first| (selfheal_core::now_ms() - first) as f64 / 1000.0);
        let e = timeline::learned(t, &o.fingerprint, fix.as_ref());
        print_entry(&e, out);
        f.story.entries.push(e);
    }
    Ok(f.story)
}

fn print_entry(e: &timeline::Entry, out: &mut (dyn Write + Send)) {
    let _ = write!(out, "{}", e.render());
    let _ = out.flush();
}

async fn decode<R: Record>(codec: &Codec, bytes: &[u8], topic: &str) -> Result<R> {
    codec
        .decode::<R>(bytes)
        .await
        .with_context(|| format!("decoding a record of {topic}"))
}

/// Waits until the learner stored the outcome, then returns the fix it now ranks for the fingerprint.
async fn learned_fix(url: &str, o: &Outcome, within: Duration) -> Option<KnownFix> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .ok()?;
    let base = url.trim_end_matches('/');
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Ok(r) = client.get(format!("{base}/v1/outcomes/{}", o.incident_id)).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client
        .get(format!("{base}/v1/fixes/{}", o.fingerprint))
        .send()
        .await
        .ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    let fixes: Vec<KnownFix> = serde_json::from_value(v.get("fixes")?.clone()).ok()?;
    let strategy = o.fix.as_ref().map(|f| f.strategy.as_str());
    fixes
        .iter()
        .find(|f| Some(f.strategy.as_str()) == strategy)
        .or(fixes.first())
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_diff_shows_the_fix_and_summarises_the_test_file() {
        let diff = "diff --git a/pricing_logic.py b/pricing_logic.py\nindex 1..2 100644\n--- a/pricing_logic.py\n+++ b/pricing_logic.py\n@@ -14 +14,2 @@\n-def calc(p, d): return p / d\n+def calc(p, d):\n+    return p / d if d != 0 else p\ndiff --git a/tests/test_x.py b/tests/test_x.py\nnew file mode 100644\nindex 0..3\n--- /dev/null\n+++ b/tests/test_x.py\n@@ -0,0 +1,2 @@\n+def test_x():\n+    pass\n";
        let lines = terminal_diff(diff, Some("tests/test_x.py"));
        assert_eq!(lines[0], "--- a/pricing_logic.py");
        assert!(
            lines.contains(&"+    return p / d if d != 0 else p".to_string()),
            "{lines:?}"
        );
        assert_eq!(
            lines.last().unwrap(),
            "+++ tests/test_x.py (new regression test, 2 lines)"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("index ") || l.contains("def test_x")),
            "{lines:?}"
        );
    }

    #[test]
    fn run_ids_sort_by_time_and_differ() {
        let (a, b) = (new_run_id(), new_run_id());
        assert_eq!(a.len(), "20260501-120301-3f9a".len());
        assert_ne!(a, b);
    }
}
