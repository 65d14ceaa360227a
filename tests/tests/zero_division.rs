//! The Zero-Division incident for real: every service as its own process (its own binary)
//! against the real Kafka broker and schema registry, the real Python service instrumented
//! with the OpenTelemetry SDK, real git, the real sandbox. Then the same failure again, and
//! the learned fix is used.
//!
//! Needs the workspace binaries (`cargo build --workspace`, done by `scripts/test.sh`) and
//! the Python environment of `scripts/python-env.sh` (`SELFHEAL_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use selfheal_e2e::*;
use selfheal_events::{Codec, Diagnosis, Outcome, OutcomeStatus, Rollout, RolloutStep};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's binaries sit next to this test's `deps` directory.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`, as scripts/test.sh does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn python() -> String {
    if let Ok(p) = std::env::var("SELFHEAL_PYTHON") {
        return p;
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/python-env.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/python-env.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A copy of examples/pricing-api as a fresh git repository on branch `main`.
fn make_repo(dir: &Path) -> (PathBuf, String) {
    let repo = dir.join("pricing-api");
    let src = repo_root().join("examples/pricing-api");
    let status = Command::new("cp").arg("-r").arg(&src).arg(&repo).status().unwrap();
    assert!(status.success());
    for junk in [".pytest_cache", "__pycache__", "tests/__pycache__"] {
        let _ = std::fs::remove_dir_all(repo.join(junk));
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(
        &repo,
        &["-c", "user.name=e2e", "-c", "user.email=e2e@localhost", "add", "-A"],
    );
    git(
        &repo,
        &[
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@localhost",
            "commit",
            "-qm",
            "pricing-api v1",
        ],
    );
    let v1 = git(&repo, &["rev-parse", "HEAD"]);
    (repo, v1)
}

/// A child process that is stopped politely (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..150 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("----- last lines of {} -----", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

struct Pipeline {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Pipeline {
    fn spawn(&self, name: &str, extra: &[(&str, String)]) -> Proc {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin(name));
        cmd.envs(&self.env)
            .env(
                "SELFHEAL_GROUP_ID",
                format!("{}-{name}", self.env["SELFHEAL_TOPIC_PREFIX"]),
            )
            .env("SELFHEAL_HTTP_ADDR", "127.0.0.1:0")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Proc {
            name: name.into(),
            child: cmd.spawn().unwrap(),
            log,
        }
    }
}

async fn wait_http_ok(url: &str, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for the next Outcome whose incident is not in `seen`.
async fn next_outcome(codec: &Codec, topic: &str, seen: &[String], timeout: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let records = consume(&brokers(), topic, seen.len() + 1, Duration::from_secs(5)).await;
        for r in &records {
            let o: Outcome = codec.decode(&r.value).await.unwrap();
            if !seen.contains(&o.incident_id) {
                return o;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new outcome within {timeout:?}"
        );
    }
}

async fn decode_all<R: selfheal_events::Record>(codec: &Codec, topic: &str, max: usize) -> Vec<R> {
    let mut out = Vec::new();
    for r in consume(&brokers(), topic, max, Duration::from_secs(5)).await {
        out.push(codec.decode::<R>(&r.value).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_division_incident_is_healed_by_seven_processes_and_the_fix_is_learned() {
    require_broker().await;
    let tmp = tempdir();
    let dir = tmp.clone();
    let (repo, v1) = make_repo(&dir);
    let py = python();
    let prefix = format!("{}.", unique("e2e"));
    let (collector_port, learner_port, app_port, canary_port) = (free_port(), free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("catalog.toml"),
        format!(
            r#"[services.pricing-api]
repository = "{repo}"
language = "python"
source_root = "."
test_command = ["python3", "-m", "pytest", "-q"]
test_timeout_secs = 60
autonomy = "auto"
deployer = "local-process"
[services.pricing-api.deploy]
command = ["python3", "app.py"]
port = {app_port}
canary_port = {canary_port}
health_path = "/healthz"
canary_traffic_percent = 25
[services.pricing-api.extra_env]
PYTHONDONTWRITEBYTECODE = "1"
OTEL_BSP_SCHEDULE_DELAY = "200"
"#,
            repo = repo.display()
        ),
    )
    .unwrap();
    let mut env = HashMap::new();
    env.insert("SELFHEAL_KAFKA_BROKERS".to_string(), brokers());
    env.insert("SELFHEAL_SCHEMA_REGISTRY_URL".to_string(), registry_url());
    env.insert("SELFHEAL_TOPIC_PREFIX".to_string(), prefix.clone());
    env.insert(
        "SELFHEAL_CATALOG".to_string(),
        dir.join("catalog.toml").display().to_string(),
    );
    env.insert("SELFHEAL_PYTHON".to_string(), py.clone());
    env.insert(
        "SELFHEAL_LEARNER_URL".to_string(),
        format!("http://127.0.0.1:{learner_port}"),
    );
    env.insert("SELFHEAL_LOG".to_string(), "info".to_string());
    let p = Pipeline { dir: dir.clone(), env };

    let learner_db = dir.join("learner.db").display().to_string();
    let _learner = p.spawn(
        "selfheal-learner",
        &[
            ("SELFHEAL_LEARNER_DB", learner_db),
            ("SELFHEAL_LEARNER_API_ADDR", format!("127.0.0.1:{learner_port}")),
        ],
    );
    let _collector = p.spawn(
        "selfheal-collector",
        &[("SELFHEAL_OTLP_HTTP_ADDR", format!("127.0.0.1:{collector_port}"))],
    );
    let _monitor = p.spawn(
        "selfheal-monitor",
        &[
            ("SELFHEAL_MONITOR_WINDOW_SECS", "5".into()),
            ("SELFHEAL_MONITOR_INCIDENT_QUIET_SECS", "8".into()),
        ],
    );
    let _diagnoser = p.spawn("selfheal-diagnoser", &[]);
    let _repairer = p.spawn(
        "selfheal-repairer",
        &[("SELFHEAL_REPAIRER_WORK_DIR", dir.join("repairer").display().to_string())],
    );
    let _verifier = p.spawn(
        "selfheal-verifier",
        &[
            ("SELFHEAL_VERIFY_WINDOW_SECS", "6".into()),
            ("SELFHEAL_VERIFY_MIN_REQUESTS", "5".into()),
        ],
    );
    let rollout_env = vec![
        ("SELFHEAL_ROLLOUT_STATE_DIR", dir.join("rollout").display().to_string()),
        (
            "SELFHEAL_COLLECTOR_OTLP_URL",
            format!("http://127.0.0.1:{collector_port}"),
        ),
        ("SELFHEAL_CANARY_SECS", "6".to_string()),
        ("SELFHEAL_CANARY_MAX_SECS", "25".to_string()),
        ("SELFHEAL_MIN_REQUESTS", "5".to_string()),
    ];
    let mut rollout = p.spawn("selfheal-rollout", &rollout_env);
    wait_http_ok(
        &format!("http://127.0.0.1:{collector_port}/healthz"),
        Duration::from_secs(60),
    )
    .await;
    wait_http_ok(
        &format!("http://127.0.0.1:{learner_port}/v1/fixes"),
        Duration::from_secs(60),
    )
    .await;
    wait_http_ok(&format!("http://127.0.0.1:{app_port}/healthz"), Duration::from_secs(90)).await;

    let traffic_log = std::fs::File::create(dir.join("traffic.log")).unwrap();
    let mut traffic = Proc {
        name: "traffic".into(),
        child: Command::new(&py)
            .arg(repo_root().join("examples/traffic/traffic.py"))
            .args([
                "--target",
                &format!("http://127.0.0.1:{app_port}"),
                "--rate",
                "20",
                "--zero-share",
                "0.1",
                "--duration",
                "300",
                "--seed",
                "7",
            ])
            .stdout(traffic_log.try_clone().unwrap())
            .stderr(traffic_log)
            .spawn()
            .unwrap(),
        log: dir.join("traffic.log"),
    };

    let codec = Codec::new(&registry_url()).unwrap();
    let outcomes = format!("{prefix}outcomes");
    let first = next_outcome(&codec, &outcomes, &[], Duration::from_secs(180)).await;
    assert_eq!(first.status, OutcomeStatus::Healed, "first outcome: {}", first.summary);
    assert_eq!(first.service, "pricing-api");
    let fix = first.fix.clone().expect("a fix");
    assert!(!fix.learned, "nothing was learned yet");
    assert!(fix.diff.contains("if d != 0"), "the guard: {}", fix.diff);
    let root = first.root_cause.clone().expect("root cause");
    assert_eq!(
        (root.file.as_str(), root.line, root.function.as_str()),
        ("pricing_logic.py", 14, "calc")
    );
    let validation = first.validation.clone().expect("validation");
    assert!(
        validation.failed_before && validation.passed_after && validation.suite_passed,
        "{validation:?}"
    );
    let test = first.regression_test.clone().expect("regression test");
    assert!(first.policy.as_ref().is_some_and(|p| p.allowed));
    let rollout_result = first.rollout.clone().expect("rollout result");
    assert_eq!(rollout_result.final_step, RolloutStep::Promoted);
    assert!(
        first.timeline.first_error_ms.is_some()
            && first.timeline.promotion_ms.is_some()
            && first.timeline.outcome_ms.is_some()
    );

    // The branch holds the fix and the regression test; after promotion main is the fix.
    let branch = fix.branch.clone().expect("branch");
    assert_eq!(branch, format!("selfheal/{}", first.incident_id));
    assert!(git(&repo, &["show", &format!("{branch}:pricing_logic.py")]).contains("if d != 0"));
    assert!(git(&repo, &["show", &format!("{branch}:{}", test.file)]).contains(&test.name));
    assert_eq!(
        git(&repo, &["rev-parse", "main"]),
        fix.commit.clone().unwrap(),
        "promotion moved main to the fix"
    );

    // One Rollout record per step, in order.
    let rollouts: Vec<Rollout> = decode_all(&codec, &format!("{prefix}rollouts"), 50).await;
    let steps: Vec<RolloutStep> = rollouts
        .iter()
        .filter(|r| r.incident_id == first.incident_id)
        .map(|r| r.step)
        .collect();
    assert_eq!(
        steps,
        vec![
            RolloutStep::Approved,
            RolloutStep::CanaryStarted,
            RolloutStep::CanaryAnalyzed,
            RolloutStep::Promoted
        ]
    );

    // The learning store has it, over its HTTP API.
    let knowledge: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{learner_port}/v1/fixes/{}",
        first.fingerprint
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(knowledge["fixes"][0]["strategy"], fix.strategy.as_str(), "{knowledge}");
    assert_eq!(knowledge["fixes"][0]["healed"], 1, "{knowledge}");

    // The same failure again: the buggy version is deployed again (main reset to v1).
    rollout.stop();
    git(&repo, &["reset", "-q", "--hard", &v1]);
    tokio::time::sleep(Duration::from_secs(9)).await; // the monitor's quiet period closes the first incident
    let _rollout2 = p.spawn("selfheal-rollout", &rollout_env);
    let second = next_outcome(
        &codec,
        &outcomes,
        std::slice::from_ref(&first.incident_id),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(second.fingerprint, first.fingerprint, "the same failure");
    assert_eq!(
        second.status,
        OutcomeStatus::Healed,
        "second outcome: {}",
        second.summary
    );
    let fix2 = second.fix.clone().expect("a fix the second time");
    assert!(fix2.learned, "the learned fix was used: {:?}", second.attempts);
    assert_eq!(fix2.strategy, fix.strategy);
    let diagnoses: Vec<Diagnosis> = decode_all(&codec, &format!("{prefix}diagnoses"), 20).await;
    let d2 = diagnoses
        .iter()
        .find(|d| d.incident_id == second.incident_id)
        .expect("second diagnosis");
    assert!(!d2.known_fixes.is_empty(), "the diagnoser consulted the learning store");
    traffic.stop();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("selfheal-e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
