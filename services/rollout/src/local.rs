//! The local-process deployer: versions of a service run as child processes from git
//! worktrees, behind a [`WeightedProxy`] on the service's public port.
//!
//! Layout for a catalog entry with `deploy = { command, port, canary_port, health_path,
//! canary_traffic_percent }`:
//!
//! - the proxy listens on `127.0.0.1:<port>`;
//! - stable runs from `git worktree add --detach` of the repository's current branch HEAD,
//!   on a free internal port (bind port 0, read the port, release it);
//! - a canary runs from a worktree at the patch commit, on `canary_port` when that port is
//!   free (so the demo's canary is on :8082), on a free port otherwise (after a promotion
//!   the promoted canary keeps `canary_port`, so the next canary needs another);
//! - every process gets `PORT`, `SERVICE_VERSION` (the short commit), the OTLP endpoint
//!   and the catalog's `extra_env`; stdout and stderr go to `<state>/logs/`;
//! - promotion moves the repository's branch to the patch commit: `git merge --ff-only`
//!   when the branch is checked out in the repository, `git update-ref` (after checking it
//!   is a fast-forward) when it is not, so the patched version is the repository's stable
//!   version and a restart starts it.
//!
//! Processes are `kill_on_drop` children, stopped with SIGTERM then SIGKILL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use selfheal_catalog::ServiceEntry;
use selfheal_events::Patch;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::deployer::{CanaryHandle, Deployer};
use crate::error::DeployError;
use crate::proxy::{Backends, WeightedProxy};

/// Length of the version label: the commit's first characters, as `SERVICE_VERSION`.
pub const SHORT_SHA: usize = 7;
/// How long a stopped process may take to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Settings of the local-process deployer.
#[derive(Debug, Clone)]
pub struct LocalProcessConfig {
    /// OTLP/HTTP endpoint the services export to (`OTEL_EXPORTER_OTLP_ENDPOINT`); unset leaves theirs.
    pub collector_otlp_url: Option<String>,
    /// Replaces a leading `python3`/`python` of the deploy command (a venv with the OTel packages).
    pub python: Option<String>,
    /// Where worktrees and process logs live.
    pub state_dir: PathBuf,
    /// How long a new version may take to answer its health path.
    pub health_timeout: Duration,
}

impl LocalProcessConfig {
    /// Settings with defaults: no OTLP override, no python override, 20 s health timeout.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        LocalProcessConfig {
            collector_otlp_url: None,
            python: None,
            state_dir: state_dir.into(),
            health_timeout: Duration::from_secs(20),
        }
    }
}

/// The catalog's deploy table, read and checked.
#[derive(Debug, Clone)]
struct DeploySpec {
    command: Vec<String>,
    port: u16,
    canary_port: Option<u16>,
    health_path: String,
}

impl DeploySpec {
    fn of(svc: &ServiceEntry) -> Result<Self, DeployError> {
        let bad = |problem: String| DeployError::Config {
            service: svc.name.clone(),
            problem,
        };
        let command = svc
            .deploy_strings("command")
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or_default();
        if command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(bad("deploy.command is missing or empty".into()));
        }
        let port = svc
            .deploy_int("port")
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("deploy.port is missing".into()))?;
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("deploy.port {port} is not a port")))?;
        let canary_port = match svc.deploy_int("canary_port").map_err(|e| bad(e.to_string()))? {
            None => None,
            Some(p) => Some(
                u16::try_from(p)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(format!("deploy.canary_port {p} is not a port")))?,
            ),
        };
        let health_path = svc
            .deploy_str("health_path")
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or("/")
            .to_string();
        let health_path = if health_path.starts_with('/') {
            health_path
        } else {
            format!("/{health_path}")
        };
        Ok(DeploySpec {
            command,
            port,
            canary_port,
            health_path,
        })
    }
}

/// One running version.
#[derive(Debug)]
struct Instance {
    version: String,
    commit: String,
    repo: PathBuf,
    worktree: PathBuf,
    addr: SocketAddr,
    child: Child,
}

/// What the deployer runs for one service.
#[derive(Debug)]
struct Running {
    proxy: WeightedProxy,
    stable: Instance,
    canary: Option<(String, Instance)>,
    /// The branch stable was started from; promotion moves it.
    branch: Option<String>,
}

/// Runs services as local processes (see the module docs).
#[derive(Debug)]
pub struct LocalProcessDeployer {
    config: LocalProcessConfig,
    services: Mutex<HashMap<String, Running>>,
}

impl LocalProcessDeployer {
    /// A deployer keeping its worktrees and logs under `config.state_dir`.
    pub fn new(config: LocalProcessConfig) -> Self {
        LocalProcessDeployer {
            config,
            services: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the service's stable version (the repository's current HEAD) and its proxy,
    /// unless they already run. Returns the stable version label.
    pub async fn ensure_stable(&self, svc: &ServiceEntry) -> Result<String, DeployError> {
        let mut services = self.services.lock().await;
        self.ensure_locked(&mut services, svc).await
    }

    /// The public address of a running service's proxy.
    pub async fn public_addr(&self, service: &str) -> Option<SocketAddr> {
        self.services.lock().await.get(service).map(|r| r.proxy.addr())
    }

    /// Stops every process and proxy and removes their worktrees.
    pub async fn shutdown(&self) {
        let mut services = self.services.lock().await;
        for (name, running) in services.drain() {
            let Running {
                proxy, stable, canary, ..
            } = running;
            drop(proxy);
            if let Some((_, canary)) = canary {
                self.retire(&name, canary).await;
            }
            self.retire(&name, stable).await;
        }
    }

    async fn ensure_locked(
        &self,
        services: &mut HashMap<String, Running>,
        svc: &ServiceEntry,
    ) -> Result<String, DeployError> {
        if let Some(running) = services.get(&svc.name) {
            return Ok(running.stable.version.clone());
        }
        let spec = DeploySpec::of(svc)?;
        let repo = &svc.repository;
        // Worktrees left by a previous run that died without cleaning up: this deployer owns
        // its state directory and runs nothing for the service yet, so they are all stale.
        let stale = self.config.state_dir.join("worktrees").join(&svc.name);
        if stale.exists() {
            let _ = std::fs::remove_dir_all(&stale);
            let _ = git(repo, &["worktree", "prune"]).await;
        }
        let commit = git(repo, &["rev-parse", "HEAD"]).await?;
        let branch = git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"])
            .await
            .ok()
            .filter(|b| !b.is_empty());
        let port = free_port(None)?;
        let stable = self.launch(svc, &spec, &commit, "stable", port).await?;
        let listen = SocketAddr::from(([127, 0, 0, 1], spec.port));
        let proxy = match WeightedProxy::start(listen, stable.addr).await {
            Ok(p) => p,
            Err(e) => {
                self.retire(&svc.name, stable).await;
                return Err(e);
            }
        };
        let version = stable.version.clone();
        tracing::info!(service = %svc.name, %version, public = %proxy.addr(), internal = %stable.addr, "stable version serving");
        services.insert(
            svc.name.clone(),
            Running {
                proxy,
                stable,
                canary: None,
                branch,
            },
        );
        Ok(version)
    }

    /// Makes a worktree at `commit`, starts the command there and waits for health.
    async fn launch(
        &self,
        svc: &ServiceEntry,
        spec: &DeploySpec,
        commit: &str,
        role: &str,
        port: u16,
    ) -> Result<Instance, DeployError> {
        let version: String = commit.chars().take(SHORT_SHA).collect();
        let stamp = selfheal_core::now_ms();
        let worktree = self
            .config
            .state_dir
            .join("worktrees")
            .join(&svc.name)
            .join(format!("{role}-{version}-{stamp}"));
        if let Some(parent) = worktree.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let wt = worktree.to_string_lossy().to_string();
        git(&svc.repository, &["worktree", "add", "--detach", &wt, commit]).await?;
        let logs = self.config.state_dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("{}-{role}-{version}-{stamp}.log", svc.name));
        let log = std::fs::File::create(&log_path)?;
        let mut command = spec.command.clone();
        if let (Some(python), Some(first)) = (&self.config.python, command.first_mut())
            && (first == "python3" || first == "python")
        {
            *first = python.clone();
        }
        let source_dir = if svc.source_root == "." {
            worktree.clone()
        } else {
            worktree.join(&svc.source_root)
        };
        let mut cmd = Command::new(&command[0]);
        cmd.args(&command[1..])
            .current_dir(&source_dir)
            .env("PORT", port.to_string())
            .env("SERVICE_VERSION", &version)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if let Some(url) = &self.config.collector_otlp_url {
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", url);
        }
        for (k, v) in &svc.extra_env {
            cmd.env(k, v);
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                remove_worktree(&svc.repository, &worktree).await;
                return Err(DeployError::Process(format!("cannot start {:?}: {e}", command)));
            }
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut instance = Instance {
            version,
            commit: commit.to_string(),
            repo: svc.repository.clone(),
            worktree,
            addr,
            child,
        };
        if let Err(e) = wait_healthy(&mut instance, &spec.health_path, self.config.health_timeout, &log_path).await {
            self.retire(&svc.name, instance).await;
            return Err(e);
        }
        tracing::info!(service = %svc.name, role, version = %instance.version, %addr, log = %log_path.display(), "process healthy");
        Ok(instance)
    }

    /// Stops a process and removes its worktree.
    async fn retire(&self, service: &str, mut instance: Instance) {
        stop(&mut instance.child).await;
        remove_worktree(&instance.repo, &instance.worktree).await;
        tracing::info!(service, version = %instance.version, "process stopped");
    }
}

#[async_trait]
impl Deployer for LocalProcessDeployer {
    fn name(&self) -> &'static str {
        "local-process"
    }

    async fn stable_version(&self, svc: &ServiceEntry) -> Result<String, DeployError> {
        self.ensure_stable(svc).await
    }

    async fn start_canary(&self, svc: &ServiceEntry, patch: &Patch) -> Result<CanaryHandle, DeployError> {
        let spec = DeploySpec::of(svc)?;
        let commit = patch.commit.clone().ok_or_else(|| DeployError::Config {
            service: svc.name.clone(),
            problem: "the patch names no commit".into(),
        })?;
        // Only a commit id goes to git, never free text from the record.
        if commit.is_empty() || commit.len() > 64 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(DeployError::Config {
                service: svc.name.clone(),
                problem: format!("`{commit}` is not a commit id"),
            });
        }
        let mut services = self.services.lock().await;
        self.ensure_locked(&mut services, svc).await?;
        if let Some(Running {
            canary: Some((old_id, _)),
            ..
        }) = services.get(&svc.name)
        {
            return Err(DeployError::Process(format!(
                "a canary for incident {old_id} is still running"
            )));
        }
        let commit = git(
            &svc.repository,
            &["rev-parse", "--verify", &format!("{commit}^{{commit}}")],
        )
        .await?;
        let port = free_port(spec.canary_port)?;
        let instance = self.launch(svc, &spec, &commit, "canary", port).await?;
        let handle = CanaryHandle {
            service: svc.name.clone(),
            incident_id: patch.incident_id.clone(),
            version: instance.version.clone(),
            commit: instance.commit.clone(),
            address: instance.addr.to_string(),
        };
        match services.get_mut(&svc.name) {
            Some(running) => running.canary = Some((patch.incident_id.clone(), instance)),
            None => {
                self.retire(&svc.name, instance).await;
                return Err(DeployError::NotDeployed(svc.name.clone()));
            }
        }
        Ok(handle)
    }

    async fn set_canary_weight(
        &self,
        svc: &ServiceEntry,
        canary: &CanaryHandle,
        percent: u8,
    ) -> Result<(), DeployError> {
        let services = self.services.lock().await;
        let running = services
            .get(&svc.name)
            .ok_or_else(|| DeployError::NotDeployed(svc.name.clone()))?;
        let canary_addr = match &running.canary {
            Some((id, inst)) if *id == canary.incident_id => inst.addr,
            _ => {
                return Err(DeployError::NotDeployed(format!(
                    "no canary of incident {} for {}",
                    canary.incident_id, svc.name
                )));
            }
        };
        running.proxy.set(Backends {
            stable: running.stable.addr,
            canary: Some(canary_addr),
            canary_percent: percent.min(100),
        });
        Ok(())
    }

    async fn promote(&self, svc: &ServiceEntry, canary: &CanaryHandle) -> Result<(), DeployError> {
        let mut services = self.services.lock().await;
        let running = services
            .get_mut(&svc.name)
            .ok_or_else(|| DeployError::NotDeployed(svc.name.clone()))?;
        if !matches!(&running.canary, Some((id, _)) if *id == canary.incident_id) {
            return Err(DeployError::NotDeployed(format!(
                "no canary of incident {} for {}",
                canary.incident_id, svc.name
            )));
        }
        // The repository first: if the branch cannot move, nothing changes for traffic.
        if let Some(branch) = running.branch.clone() {
            advance_branch(&svc.repository, &branch, &canary.commit).await?;
        }
        let Some((_, new_stable)) = running.canary.take() else {
            return Err(DeployError::NotDeployed(svc.name.clone()));
        };
        running.proxy.set(Backends {
            stable: new_stable.addr,
            canary: None,
            canary_percent: 0,
        });
        let old = std::mem::replace(&mut running.stable, new_stable);
        drop(services);
        self.retire(&svc.name, old).await;
        Ok(())
    }

    async fn rollback(&self, svc: &ServiceEntry, canary: &CanaryHandle) -> Result<(), DeployError> {
        let mut services = self.services.lock().await;
        let running = services
            .get_mut(&svc.name)
            .ok_or_else(|| DeployError::NotDeployed(svc.name.clone()))?;
        running.proxy.set(Backends {
            stable: running.stable.addr,
            canary: None,
            canary_percent: 0,
        });
        let instance = match running.canary.take() {
            Some((id, inst)) if id == canary.incident_id => inst,
            other => {
                running.canary = other;
                return Err(DeployError::NotDeployed(format!(
                    "no canary of incident {} for {}",
                    canary.incident_id, svc.name
                )));
            }
        };
        drop(services);
        self.retire(&svc.name, instance).await;
        Ok(())
    }
}

/// Moves `branch` to `commit` when that is a fast-forward (see the module docs).
async fn advance_branch(repo: &Path, branch: &str, commit: &str) -> Result<(), DeployError> {
    let head = git(repo, &["rev-parse", "--verify", &format!("refs/heads/{branch}")]).await?;
    if head == commit {
        return Ok(());
    }
    git(repo, &["merge-base", "--is-ancestor", &head, commit])
        .await
        .map_err(|_| DeployError::Git {
            args: format!("merge-base --is-ancestor {head} {commit}"),
            message: format!("{branch} moved on since the patch was made; not a fast-forward"),
        })?;
    let checked_out = git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"]).await.ok();
    if checked_out.as_deref() == Some(branch) {
        git(repo, &["merge", "--ff-only", "--quiet", commit]).await?;
    } else {
        git(repo, &["update-ref", &format!("refs/heads/{branch}"), commit, &head]).await?;
    }
    Ok(())
}

/// A port to listen on: `preferred` when it is free, any free loopback port otherwise.
fn free_port(preferred: Option<u16>) -> Result<u16, DeployError> {
    if let Some(p) = preferred
        && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
    {
        return Ok(p);
    }
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// Polls the health path until it answers 200, the process dies or time runs out.
async fn wait_healthy(
    instance: &mut Instance,
    health_path: &str,
    timeout: Duration,
    log: &Path,
) -> Result<(), DeployError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| DeployError::Process(e.to_string()))?;
    let url = format!("http://{}{}", instance.addr, health_path);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = instance.child.try_wait() {
            return Err(DeployError::Unhealthy(format!(
                "version {} exited with {status} before answering {health_path}; log {}: {}",
                instance.version,
                log.display(),
                log_tail(log)
            )));
        }
        if let Ok(r) = client.get(&url).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DeployError::Unhealthy(format!(
                "version {} did not answer 200 on {url} within {}s; log {}",
                instance.version,
                timeout.as_secs(),
                log.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last few lines of a process log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ")
        .chars()
        .take(800)
        .collect()
}

/// SIGTERM, a grace period, then SIGKILL.
async fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id() {
        // `kill` the program: the crate forbids unsafe code, so no libc::kill.
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn remove_worktree(repo: &Path, worktree: &Path) {
    let wt = worktree.to_string_lossy().to_string();
    if git(repo, &["worktree", "remove", "--force", &wt]).await.is_err() {
        let _ = std::fs::remove_dir_all(worktree);
        let _ = git(repo, &["worktree", "prune"]).await;
    }
}

/// Runs git in `repo` and returns its trimmed stdout.
pub(crate) async fn git(repo: &Path, args: &[&str]) -> Result<String, DeployError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| DeployError::Git {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(DeployError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().chars().take(500).collect(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::process::Command as StdCommand;

    use super::*;

    const APP: &str = r#"import http.server, os
MESSAGE = "stable"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (MESSAGE + " " + os.environ.get("SERVICE_VERSION", "") + " " + os.environ.get("EXTRA", "")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

    fn sh(repo: &Path, args: &[&str]) -> String {
        let out = StdCommand::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn commit_app(repo: &Path, message: &str) -> String {
        std::fs::write(
            repo.join("app.py"),
            APP.replace("MESSAGE = \"stable\"", &format!("MESSAGE = \"{message}\"")),
        )
        .unwrap();
        sh(repo, &["add", "app.py"]);
        sh(repo, &["commit", "-q", "-m", message]);
        sh(repo, &["rev-parse", "HEAD"])
    }

    fn tools_present() -> bool {
        let ok = |p: &str| {
            StdCommand::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        ok("git") && ok("python3")
    }

    fn port() -> u16 {
        free_port(None).unwrap()
    }

    async fn get(client: &reqwest::Client, addr: SocketAddr) -> String {
        client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn stable_canary_promote_and_rollback_with_real_processes() {
        if !tools_present() {
            eprintln!("skipped: git or python3 not available");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        sh(&repo, &["init", "-q", "-b", "main"]);
        let v1 = commit_app(&repo, "stable");
        sh(&repo, &["checkout", "-q", "-b", "selfheal/inc-1"]);
        let v2 = commit_app(&repo, "patched");
        sh(&repo, &["checkout", "-q", "-b", "selfheal/inc-2"]);
        let v3 = commit_app(&repo, "broken");
        sh(&repo, &["checkout", "-q", "main"]);

        let mut svc = ServiceEntry::new("tiny", &repo, "python", vec!["true".into()]);
        let public = port();
        svc.deploy.insert(
            "command".into(),
            toml::Value::Array(vec!["python3".into(), "app.py".into()]),
        );
        svc.deploy
            .insert("port".into(), toml::Value::Integer(i64::from(public)));
        svc.deploy
            .insert("canary_port".into(), toml::Value::Integer(i64::from(port())));
        svc.deploy
            .insert("health_path".into(), toml::Value::String("/healthz".into()));
        svc.extra_env.insert("EXTRA".into(), "x1".into());
        let mut config = LocalProcessConfig::new(tmp.path().join("state"));
        config.health_timeout = Duration::from_secs(20);
        let deployer = LocalProcessDeployer::new(config);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let public_addr = SocketAddr::from(([127, 0, 0, 1], public));

        // Stable from the repository's HEAD, through the proxy on the public port.
        let stable = deployer.ensure_stable(&svc).await.unwrap();
        assert_eq!(stable, v1[..SHORT_SHA]);
        assert_eq!(deployer.stable_version(&svc).await.unwrap(), stable, "idempotent");
        assert_eq!(get(&client, public_addr).await, format!("stable {stable} x1"));
        let old_stable_addr = deployer.services.lock().await.get("tiny").unwrap().stable.addr;

        // Canary at the patch commit takes exactly one request in four.
        let mut patch = selfheal_events::examples::patch();
        patch.incident_id = "inc-1".into();
        patch.commit = Some(v2.clone());
        let canary = deployer.start_canary(&svc, &patch).await.unwrap();
        assert_eq!(canary.version, v2[..SHORT_SHA]);
        deployer.set_canary_weight(&svc, &canary, 25).await.unwrap();
        let mut answers = Vec::new();
        for _ in 0..8 {
            answers.push(get(&client, public_addr).await);
        }
        assert_eq!(
            answers.iter().filter(|a| a.starts_with("patched")).count(),
            2,
            "{answers:?}"
        );

        // Promotion: the canary serves everything, the branch moved, the old process is gone.
        deployer.promote(&svc, &canary).await.unwrap();
        for _ in 0..4 {
            assert!(get(&client, public_addr).await.starts_with("patched"));
        }
        assert_eq!(sh(&repo, &["rev-parse", "main"]), v2);
        assert!(
            repo.join("app.py").exists()
                && std::fs::read_to_string(repo.join("app.py"))
                    .unwrap()
                    .contains("patched")
        );
        assert!(
            tokio::net::TcpStream::connect(old_stable_addr).await.is_err(),
            "old stable stopped"
        );
        assert_eq!(deployer.stable_version(&svc).await.unwrap(), v2[..SHORT_SHA]);

        // A second canary that is rolled back leaves stable serving and the branch alone.
        let mut bad = patch.clone();
        bad.incident_id = "inc-2".into();
        bad.commit = Some(v3.clone());
        let canary = deployer.start_canary(&svc, &bad).await.unwrap();
        let canary_addr: SocketAddr = canary.address.parse().unwrap();
        deployer.set_canary_weight(&svc, &canary, 50).await.unwrap();
        let seen: Vec<String> = get_n(&client, public_addr, 4).await;
        assert_eq!(seen.iter().filter(|a| a.starts_with("broken")).count(), 2, "{seen:?}");
        deployer.rollback(&svc, &canary).await.unwrap();
        for _ in 0..4 {
            assert!(get(&client, public_addr).await.starts_with("patched"));
        }
        assert!(
            tokio::net::TcpStream::connect(canary_addr).await.is_err(),
            "canary stopped"
        );
        assert_eq!(sh(&repo, &["rev-parse", "main"]), v2);

        // A canary that never becomes healthy fails; stable keeps serving.
        let mut missing = patch.clone();
        missing.incident_id = "inc-3".into();
        missing.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
        assert!(deployer.start_canary(&svc, &missing).await.is_err());
        assert!(get(&client, public_addr).await.starts_with("patched"));

        deployer.shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(public_addr).await.is_err(),
            "proxy stopped"
        );
        let worktrees = sh(&repo, &["worktree", "list"]);
        assert_eq!(worktrees.lines().count(), 1, "worktrees removed: {worktrees}");
    }

    async fn get_n(client: &reqwest::Client, addr: SocketAddr, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(get(client, addr).await);
        }
        out
    }
}
