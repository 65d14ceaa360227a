//! Running a service's tests in a throw-away copy with no network, a time limit and a memory limit.
//!
//! Isolation, strongest first ([`default_sandbox`] probes once at start-up):
//! - `bwrap` (bubblewrap): new network, PID, IPC and UTS namespaces, the whole file system
//!   read-only except the copy (bound read-write) and a private `/tmp`, a fresh `/dev` and
//!   `/proc`, a new session (no terminal injection), killed with its parent. Loopback exists
//!   but is the sandbox's own: nothing on the host is reachable.
//! - `unshare --net` (needs root): a new network namespace only (loopback is down), no file
//!   system isolation; used when bwrap cannot create namespaces (e.g. inside some containers).
//! - none: the tests run as a normal child process. Only with `--allow-unsandboxed`
//!   (`RepairerConfig::allow_unsandboxed`); otherwise validation is refused and the patch
//!   ends in status Error.
//!
//! Every run: environment cleared except `PATH`, `HOME`, `LANG` plus the catalog's extra
//! environment and `PYTHONDONTWRITEBYTECODE=1`; the address-space limit set with
//! `ulimit -v` in a `sh` wrapper (the command is passed as `"$@"`, never spliced into the
//! script); its own process group, killed as a whole (SIGKILL) when the timeout expires;
//! stdout and stderr merged, the last 16 KiB kept for parsing and 4 KiB reported.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Output kept from a run for parsing the summary.
const KEEP_BYTES: usize = 16 * 1024;
/// Output reported in a patch.
pub const TAIL_BYTES: usize = 4 * 1024;
/// How long to wait for the output pipe to close after the process is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// What a run may use, and the environment it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall time before the whole process group is killed.
    pub timeout: Duration,
    /// Address-space limit, MiB.
    pub memory_mb: u64,
    /// Variables added to the cleared environment (PATH, HOME, LANG are kept from ours).
    pub env: BTreeMap<String, String>,
}

impl Limits {
    /// Limits with no extra environment.
    pub fn new(timeout: Duration, memory_mb: u64) -> Self {
        Limits {
            timeout,
            memory_mb,
            env: BTreeMap::new(),
        }
    }
}

/// Counts from pytest's final summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestSummary {
    /// Tests passed (including xpassed).
    pub passed: u32,
    /// Tests failed.
    pub failed: u32,
    /// Errors (collection or fixture errors).
    pub errors: u32,
    /// Tests skipped, xfailed or deselected.
    pub skipped: u32,
}

impl TestSummary {
    /// Tests that ran: passed, failed and errored.
    pub fn tests_run(&self) -> u32 {
        self.passed + self.failed + self.errors
    }

    /// Tests that failed or errored.
    pub fn tests_failed(&self) -> u32 {
        self.failed + self.errors
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Exit code; `None` when killed by a signal (also on timeout).
    pub exit_code: Option<i32>,
    /// The timeout expired and the process group was killed.
    pub timed_out: bool,
    /// Wall time.
    pub duration: Duration,
    /// The last [`TAIL_BYTES`] of merged stdout and stderr.
    pub output_tail: String,
    /// pytest's summary, when the output has one.
    pub summary: Option<TestSummary>,
}

impl RunResult {
    /// Exited with 0 before the timeout.
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }
}

/// Why a command could not be run at all (a failing command is a [`RunResult`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No isolation is available and running without it was not allowed.
    #[error("no sandbox available: {0}")]
    Unavailable(String),
    /// The command is empty.
    #[error("empty test command")]
    EmptyCommand,
    /// The process could not be started or watched.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Runs a command in a directory under limits.
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// How this sandbox isolates a run with these limits, e.g. `bwrap: no network, 60s, 1024 MiB`.
    fn describe(&self, limits: &Limits) -> String;
    /// Runs `command` with `dir` as working directory.
    async fn run(&self, dir: &Path, command: &[String], limits: Limits) -> Result<RunResult, SandboxError>;
}

/// How a [`ProcessSandbox`] isolates the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap namespaces (see the module docs).
    Bwrap,
    /// `unshare --net`: network namespace only.
    Unshare,
    /// None at all: only for `--allow-unsandboxed`.
    Unsandboxed,
}

impl Isolation {
    fn label(self) -> &'static str {
        match self {
            Isolation::Bwrap => "bwrap: no network",
            Isolation::Unshare => "unshare: no network",
            Isolation::Unsandboxed => "UNSANDBOXED (network not isolated)",
        }
    }
}

/// Runs commands as child processes with the given isolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSandbox {
    isolation: Isolation,
}

impl ProcessSandbox {
    /// A sandbox using `isolation` (no probing).
    pub fn new(isolation: Isolation) -> Self {
        ProcessSandbox { isolation }
    }

    /// Its isolation.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The best isolation that works on this machine, or `None`.
    pub fn probe() -> Option<Self> {
        let works = |argv: &[&str]| {
            std::process::Command::new(argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mut bwrap = bwrap_args(Path::new("/"));
        bwrap.push("true".into());
        let bwrap: Vec<&str> = bwrap.iter().map(String::as_str).collect();
        if works(&bwrap) {
            Some(ProcessSandbox::new(Isolation::Bwrap))
        } else if works(&["unshare", "--net", "--", "true"]) {
            Some(ProcessSandbox::new(Isolation::Unshare))
        } else {
            None
        }
    }

    /// The full argv: isolation wrapper, memory limit wrapper, command.
    fn argv(&self, dir: &Path, command: &[String], limits: &Limits) -> Vec<String> {
        let mut argv = match self.isolation {
            Isolation::Bwrap => bwrap_args(dir),
            Isolation::Unshare => vec!["unshare".into(), "--net".into(), "--".into()],
            Isolation::Unsandboxed => Vec::new(),
        };
        let kib = limits.memory_mb.saturating_mul(1024);
        argv.extend([
            "sh".into(),
            "-c".into(),
            // The command arrives as "$@"; nothing of it is part of the script.
            r#"ulimit -v "$1" || exit 125; shift; exec "$@""#.into(),
            "selfheal-sandbox".into(),
            kib.to_string(),
        ]);
        argv.extend(command.iter().cloned());
        argv
    }
}

/// bwrap's arguments, ending in `--` (the command follows).
fn bwrap_args(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let mut args: Vec<String> = [
        "bwrap",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        // The private /tmp comes before the copy's bind, which may live under /tmp.
        "--tmpfs",
        "/tmp",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if dir != "/" {
        args.extend(["--bind".into(), dir.clone(), dir.clone()]);
    }
    args.extend(["--chdir".into(), dir, "--".into()]);
    args
}

#[async_trait]
impl Sandbox for ProcessSandbox {
    fn describe(&self, limits: &Limits) -> String {
        format!(
            "{}, {}s, {} MiB",
            self.isolation.label(),
            limits.timeout.as_secs(),
            limits.memory_mb
        )
    }

    async fn run(&self, dir: &Path, command: &[String], limits: Limits) -> Result<RunResult, SandboxError> {
        if command.is_empty() {
            return Err(SandboxError::EmptyCommand);
        }
        let argv = self.argv(dir, command, &limits);
        run_process(dir, &argv, &limits).await
    }
}

/// A sandbox that refuses every run: no isolation works and running without it is not allowed.
#[derive(Debug, Clone)]
pub struct NoSandbox {
    reason: String,
}

impl NoSandbox {
    /// Refuses with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        NoSandbox { reason: reason.into() }
    }
}

#[async_trait]
impl Sandbox for NoSandbox {
    fn describe(&self, _limits: &Limits) -> String {
        format!("none ({})", self.reason)
    }

    async fn run(&self, _: &Path, _: &[String], _: Limits) -> Result<RunResult, SandboxError> {
        Err(SandboxError::Unavailable(self.reason.clone()))
    }
}

/// bwrap if it works here, else `unshare --net`, else a sandbox that refuses to run.
pub fn default_sandbox() -> Arc<dyn Sandbox> {
    default_sandbox_with(false)
}

/// Like [`default_sandbox`]; with `allow_unsandboxed`, runs without isolation when none works.
pub fn default_sandbox_with(allow_unsandboxed: bool) -> Arc<dyn Sandbox> {
    match ProcessSandbox::probe() {
        Some(sandbox) => Arc::new(sandbox),
        None if allow_unsandboxed => {
            tracing::warn!(
                "neither bwrap nor unshare works: tests will run WITHOUT network isolation (--allow-unsandboxed)"
            );
            Arc::new(ProcessSandbox::new(Isolation::Unsandboxed))
        }
        None => Arc::new(NoSandbox::new(
            "neither bwrap nor `unshare --net` can create namespaces here; pass --allow-unsandboxed to run tests without isolation",
        )),
    }
}

/// The environment a run sees.
fn run_env(limits: &Limits) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for key in ["PATH", "HOME", "LANG"] {
        if let Ok(value) = std::env::var(key) {
            env.insert(key.to_string(), value);
        }
    }
    env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    env.extend(limits.env.clone());
    env
}

async fn run_process(dir: &Path, argv: &[String], limits: &Limits) -> Result<RunResult, SandboxError> {
    let spawn_err = |source| SandboxError::Spawn {
        program: argv[0].clone(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
    let started = Instant::now();
    let mut child = {
        let writer2 = writer.try_clone().map_err(spawn_err)?;
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(dir)
            .env_clear()
            .envs(run_env(limits))
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .process_group(0)
            .kill_on_drop(true);
        // The command (and with it our copies of the pipe's write end) is dropped here,
        // so the reader sees end-of-file once the process tree has exited.
        cmd.spawn().map_err(spawn_err)?
    };
    let pid = child.id();
    let drain = tokio::task::spawn_blocking(move || read_tail(reader));

    let (status, timed_out) = match tokio::time::timeout(limits.timeout, child.wait()).await {
        Ok(status) => (status.map_err(spawn_err)?, false),
        Err(_) => {
            if let Some(pid) = pid {
                kill_group(pid).await;
            }
            let _ = child.start_kill();
            (child.wait().await.map_err(spawn_err)?, true)
        }
    };
    let duration = started.elapsed();
    // A process that escaped the group could hold the pipe open; don't wait for it forever.
    let bytes = match tokio::time::timeout(DRAIN_GRACE, drain).await {
        Ok(Ok(bytes)) => bytes,
        _ => b"(output unavailable: a process kept the output pipe open)".to_vec(),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(RunResult {
        exit_code: status.code(),
        timed_out,
        duration,
        summary: parse_pytest_summary(&text),
        output_tail: tail(&text, TAIL_BYTES),
    })
}

/// SIGKILL to the whole process group (the child leads it: `process_group(0)`).
async fn kill_group(pid: u32) {
    let result = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    if let Err(err) = result {
        tracing::warn!(pid, %err, "cannot kill the test process group");
    }
}

/// Reads everything, keeping the last [`KEEP_BYTES`].
fn read_tail(mut reader: std::io::PipeReader) -> Vec<u8> {
    let mut kept = Vec::with_capacity(KEEP_BYTES * 2);
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > KEEP_BYTES * 2 {
                    kept.drain(..kept.len() - KEEP_BYTES);
                }
            }
        }
    }
    if kept.len() > KEEP_BYTES {
        kept.drain(..kept.len() - KEEP_BYTES);
    }
    kept
}

/// The last `max` bytes of `text`, starting at a line when possible.
pub fn tail(text: &str, max: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(nl) if nl + 1 < cut.len() => cut[nl + 1..].to_string(),
        _ => cut.to_string(),
    }
}

/// Counts from pytest's last summary line (`1 failed, 11 passed in 0.50s`).
pub fn parse_pytest_summary(output: &str) -> Option<TestSummary> {
    for line in output.lines().rev() {
        let line = line.trim().trim_matches('=').trim();
        let Some((counts, time)) = line.rsplit_once(" in ") else {
            continue;
        };
        if !time.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        if counts.trim() == "no tests ran" {
            return Some(TestSummary::default());
        }
        let mut summary = TestSummary::default();
        let mut any = false;
        for part in counts.split(',') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            any = true;
            match what {
                "passed" | "xpassed" => summary.passed += n,
                "failed" => summary.failed += n,
                "error" | "errors" => summary.errors += n,
                "skipped" | "xfailed" | "deselected" => summary.skipped += n,
                _ => {}
            }
        }
        if any {
            return Some(summary);
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn sandbox() -> ProcessSandbox {
        ProcessSandbox::probe().expect("bwrap or unshare must work on the test machine")
    }

    #[test]
    fn pytest_summaries() {
        let s = parse_pytest_summary("....\n12 passed in 0.41s\n").unwrap();
        assert_eq!((s.tests_run(), s.tests_failed()), (12, 0));
        let s = parse_pytest_summary("F.\n=== 1 failed, 11 passed, 2 skipped, 1 error in 1.20s ===\n").unwrap();
        assert_eq!((s.passed, s.failed, s.errors, s.skipped), (11, 1, 1, 2));
        assert_eq!(s.tests_run(), 13);
        assert_eq!(
            parse_pytest_summary("no tests ran in 0.01s").unwrap(),
            TestSummary::default()
        );
        assert!(parse_pytest_summary("Traceback ...\nSyntaxError").is_none());
    }

    #[test]
    fn tail_keeps_the_end_on_a_line_boundary() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let t = tail(&text, 100);
        assert!(t.len() <= 100);
        assert!(t.starts_with("line "));
        assert!(t.ends_with("line 999"));
        assert_eq!(tail("short\n", 100), "short");
    }

    #[tokio::test]
    async fn runs_in_the_directory_with_a_cleared_environment() {
        let dir = tempfile::tempdir().unwrap();
        // cargo sets this for the test process; the sandbox must not see it.
        assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
        let mut limits = Limits::new(Duration::from_secs(20), 512);
        limits.env.insert("EXTRA".into(), "from-catalog".into());
        let r = sandbox()
            .run(
                dir.path(),
                &sh("pwd; echo extra=$EXTRA; echo cargo=${CARGO_MANIFEST_DIR:-unset}; echo bytecode=$PYTHONDONTWRITEBYTECODE; ulimit -v; touch written"),
                limits,
            )
            .await
            .unwrap();
        assert!(r.succeeded(), "{r:?}");
        assert!(r.output_tail.contains(&dir.path().display().to_string()));
        assert!(r.output_tail.contains("extra=from-catalog"));
        assert!(r.output_tail.contains("cargo=unset"), "{}", r.output_tail);
        assert!(r.output_tail.contains("bytecode=1"));
        assert!(r.output_tail.contains(&(512 * 1024).to_string()), "{}", r.output_tail);
        assert!(dir.path().join("written").exists());
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let r = sandbox()
            .run(
                dir.path(),
                &sh("sleep 1000 & sleep 1000; echo never"),
                Limits::new(Duration::from_secs(2), 256),
            )
            .await
            .unwrap();
        assert!(r.timed_out);
        assert!(!r.succeeded());
        assert!(!r.output_tail.contains("never"));
    }

    #[tokio::test]
    async fn failing_commands_report_their_exit_code_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let r = sandbox()
            .run(
                dir.path(),
                &sh("echo boom >&2; exit 3"),
                Limits::new(Duration::from_secs(20), 256),
            )
            .await
            .unwrap();
        assert_eq!(r.exit_code, Some(3));
        assert!(!r.timed_out);
        assert_eq!(r.output_tail, "boom");
    }

    #[tokio::test]
    async fn the_memory_limit_stops_a_greedy_process() {
        let dir = tempfile::tempdir().unwrap();
        let python = crate::tests_support::python();
        let r = sandbox()
            .run(
                dir.path(),
                &[
                    python,
                    "-c".into(),
                    "x = bytearray(512 * 1024 * 1024); print('allocated')".into(),
                ],
                Limits::new(Duration::from_secs(30), 128),
            )
            .await
            .unwrap();
        assert!(!r.succeeded(), "{r:?}");
        assert!(r.output_tail.contains("MemoryError"), "{}", r.output_tail);
    }

    #[tokio::test]
    async fn no_sandbox_refuses() {
        let err = NoSandbox::new("nothing works")
            .run(Path::new("/"), &sh("true"), Limits::new(Duration::from_secs(1), 64))
            .await
            .unwrap_err();
        assert!(matches!(err, SandboxError::Unavailable(_)));
        assert!(matches!(
            sandbox()
                .run(Path::new("/"), &[], Limits::new(Duration::from_secs(1), 64))
                .await,
            Err(SandboxError::EmptyCommand)
        ));
    }
}
