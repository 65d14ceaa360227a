//! The harness of the multi-process end-to-end tests: workspace binaries started as child
//! processes against the real broker and registry, a git copy of the example service,
//! helpers to wait for HTTP endpoints and records.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use selfheal_events::{Codec, Outcome};

use crate::{brokers, consume, unique};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's binaries sit next to this test's `deps` directory.
pub fn bin(name: &str) -> PathBuf {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn python() -> String {
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

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A copy of examples/pricing-api as a fresh git repository on branch `main`.
pub fn make_repo(dir: &Path) -> (PathBuf, String) {
    make_repo_with(dir, &[])
}

/// [`make_repo`] with extra files (path relative to the repository, content) in the first commit.
pub fn make_repo_with(dir: &Path, extra_files: &[(&str, &str)]) -> (PathBuf, String) {
    let repo = dir.join("pricing-api");
    let src = repo_root().join("examples/pricing-api");
    let status = Command::new("cp").arg("-r").arg(&src).arg(&repo).status().unwrap();
    assert!(status.success());
    for junk in [".pytest_cache", "__pycache__", "tests/__pycache__"] {
        let _ = std::fs::remove_dir_all(repo.join(junk));
    }
    for (path, content) in extra_files {
        let file = repo.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
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
pub struct Proc {
    /// Name used in failure output.
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its combined stdout/stderr.
    pub log: PathBuf,
}

impl Proc {
    /// SIGTERM, then SIGKILL after 15 s.
    pub fn stop(&mut self) {
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

pub struct Pipeline {
    /// Working directory of every process (logs go here).
    pub dir: PathBuf,
    /// Environment every process gets.
    pub env: HashMap<String, String>,
}

impl Pipeline {
    /// Starts a workspace binary with the pipeline environment and its own group id.
    pub fn spawn(&self, name: &str, extra: &[(&str, String)]) -> Proc {
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

pub async fn wait_http_ok(url: &str, timeout: Duration) {
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
pub async fn next_outcome(codec: &Codec, topic: &str, seen: &[String], timeout: Duration) -> Outcome {
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

pub async fn decode_all<R: selfheal_events::Record>(codec: &Codec, topic: &str, max: usize) -> Vec<R> {
    let mut out = Vec::new();
    for r in consume(&brokers(), topic, max, Duration::from_secs(5)).await {
        out.push(codec.decode::<R>(&r.value).await.unwrap());
    }
    out
}

pub fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("selfheal-e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The seven services as separate processes on random topics and ports, healing a git copy of
/// `examples/pricing-api` that the rollout deploys (stable on `app_port`).
pub struct Stack {
    /// Working directory (logs, catalog, state).
    pub dir: PathBuf,
    /// The service's repository.
    pub repo: PathBuf,
    /// Its first commit (the buggy version).
    pub v1: String,
    /// The Python of the example's virtualenv.
    pub python: String,
    /// The topic prefix of this run, ending in `.`.
    pub prefix: String,
    /// The collector's OTLP/HTTP port.
    pub collector_port: u16,
    /// The learner's API port.
    pub learner_port: u16,
    /// The stable deployment's port.
    pub app_port: u16,
    /// How processes are started.
    pub pipeline: Pipeline,
    /// The rollout's environment, to restart it.
    pub rollout_env: Vec<(&'static str, String)>,
    /// The rollout process (restartable).
    pub rollout: Proc,
    /// The other six services; stopped on drop.
    pub services: Vec<Proc>,
}

impl Stack {
    /// Starts everything and waits until the collector, the learner and the deployed service answer.
    /// `extra` adds environment variables per binary, e.g. the LLM settings of the diagnoser.
    pub async fn start(extra: &[(&str, Vec<(&'static str, String)>)]) -> Stack {
        Self::start_with(extra, &[], "").await
    }

    /// [`Stack::start`] with extra files in the service's repository and extra lines in its
    /// catalog entry (e.g. `fix_sources = ["model"]`).
    pub async fn start_with(
        extra: &[(&str, Vec<(&'static str, String)>)],
        files: &[(&str, &str)],
        catalog_lines: &str,
    ) -> Stack {
        let dir = tempdir();
        let (repo, v1) = make_repo_with(&dir, files);
        let py = python();
        let prefix = format!("{}.", unique("e2e"));
        let (collector_port, learner_port, app_port, canary_port) =
            (free_port(), free_port(), free_port(), free_port());
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
{catalog_lines}
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
        env.insert("SELFHEAL_SCHEMA_REGISTRY_URL".to_string(), crate::registry_url());
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
        let pipeline = Pipeline { dir: dir.clone(), env };
        let with_extra = |name: &str, mut base: Vec<(&'static str, String)>| {
            for (bin, vars) in extra {
                if *bin == name {
                    base.extend(vars.iter().cloned());
                }
            }
            base
        };
        let spawn = |name: &str, base: Vec<(&'static str, String)>| {
            let vars = with_extra(name, base);
            let refs: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
            pipeline.spawn(name, &refs)
        };
        let services = vec![
            spawn(
                "selfheal-learner",
                vec![
                    ("SELFHEAL_LEARNER_DB", dir.join("learner.db").display().to_string()),
                    ("SELFHEAL_LEARNER_API_ADDR", format!("127.0.0.1:{learner_port}")),
                ],
            ),
            spawn(
                "selfheal-collector",
                vec![("SELFHEAL_OTLP_HTTP_ADDR", format!("127.0.0.1:{collector_port}"))],
            ),
            spawn(
                "selfheal-monitor",
                vec![
                    ("SELFHEAL_MONITOR_WINDOW_SECS", "5".into()),
                    ("SELFHEAL_MONITOR_INCIDENT_QUIET_SECS", "8".into()),
                ],
            ),
            spawn("selfheal-diagnoser", vec![]),
            spawn(
                "selfheal-repairer",
                vec![("SELFHEAL_REPAIRER_WORK_DIR", dir.join("repairer").display().to_string())],
            ),
            spawn(
                "selfheal-verifier",
                vec![
                    ("SELFHEAL_VERIFY_WINDOW_SECS", "6".into()),
                    ("SELFHEAL_VERIFY_MIN_REQUESTS", "5".into()),
                ],
            ),
        ];
        let rollout_env = with_extra(
            "selfheal-rollout",
            vec![
                ("SELFHEAL_ROLLOUT_STATE_DIR", dir.join("rollout").display().to_string()),
                (
                    "SELFHEAL_COLLECTOR_OTLP_URL",
                    format!("http://127.0.0.1:{collector_port}"),
                ),
                ("SELFHEAL_CANARY_SECS", "6".to_string()),
                ("SELFHEAL_CANARY_MAX_SECS", "25".to_string()),
                ("SELFHEAL_MIN_REQUESTS", "5".to_string()),
            ],
        );
        let rollout = spawn("selfheal-rollout", rollout_env.clone());
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
        Stack {
            dir,
            repo,
            v1,
            python: py,
            prefix,
            collector_port,
            learner_port,
            app_port,
            pipeline,
            rollout_env,
            rollout,
            services,
        }
    }

    /// Stops the rollout and starts it again (it redeploys `main`).
    pub fn restart_rollout(&mut self) {
        self.rollout.stop();
        let refs: Vec<(&str, String)> = self.rollout_env.iter().map(|(k, v)| (*k, v.clone())).collect();
        self.rollout = self.pipeline.spawn("selfheal-rollout", &refs);
    }

    /// The full name of a pipeline topic in this run.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}
