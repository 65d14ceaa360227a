//! Child processes the demo starts itself (the traffic generator, the Python environment
//! script), stopped on every exit path: success, timeout, error and Ctrl-C.
//!
//! A child gets SIGTERM first so it can print its summary, then SIGKILL after a grace
//! period. `kill_on_drop` covers a panic unwinding past the demo. A SIGKILL of the demo
//! itself cannot be caught: children survive it (run `pkill -f traffic.py` by hand then).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

/// A running child with a name for messages.
#[derive(Debug)]
pub struct Managed {
    /// What it is, e.g. `traffic`.
    pub name: String,
    child: Child,
}

impl Managed {
    /// Spawns `program args` in `cwd` with `env`, stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cwd: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {}", program.display()))?;
        Ok(Managed {
            name: name.to_string(),
            child,
        })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether it exited already (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub async fn stop(mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        if let Some(pid) = self.child.id() {
            // `kill` keeps this crate free of unsafe libc calls; failure falls through to SIGKILL.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        if tokio::time::timeout(grace, self.child.wait()).await.is_err() {
            tracing::warn!(child = %self.name, "did not stop within {:?}; killing it", grace);
            let _ = self.child.kill().await;
        }
    }
}
