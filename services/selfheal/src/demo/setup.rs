//! Setting the demo's scene: the Python environment, a fresh git repository of
//! pricing-api, free ports and the service catalog that points at them.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};

/// Files and directories of the example that are not part of the service's repository.
const SKIP: &[&str] = &["__pycache__", ".pytest_cache", ".venv", "venv", ".git", ".mypy_cache"];

/// Finds the project root (the directory holding `examples/pricing-api`), starting at `start`
/// and walking up; falls back to where this crate was built from.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    let is_root =
        |p: &Path| p.join("examples/pricing-api/app.py").is_file() && p.join("scripts/python-env.sh").is_file();
    for dir in start.ancestors() {
        if is_root(dir) {
            return Some(dir.to_path_buf());
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    is_root(&built).then(|| built.canonicalize().unwrap_or(built))
}

/// The venv python: `SELFHEAL_PYTHON`-style override, else the last stdout line of
/// `scripts/python-env.sh` (which creates the venv once), its stderr appended to `log`.
pub async fn python(root: &Path, given: Option<&Path>, log: &Path) -> Result<PathBuf> {
    if let Some(p) = given {
        if !p.exists() {
            bail!("the Python interpreter {} does not exist", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let script = root.join("scripts/python-env.sh");
    let err = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    // The base interpreter is python3, never an inherited SELFHEAL_PYTHON that might be the venv itself.
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .env_remove("SELFHEAL_PYTHON")
        .stdin(Stdio::null())
        .stderr(Stdio::from(err))
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({}); see {}", script.display(), out.status, log.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| anyhow!("{} printed no interpreter path", script.display()))?;
    let p = PathBuf::from(last.trim());
    if !p.exists() {
        bail!("{} printed {}, which does not exist", script.display(), p.display());
    }
    Ok(p)
}

/// A free loopback port (bound and released: another process could take it in between,
/// which on a demo machine does not happen in practice).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if SKIP.iter().any(|s| name == *s) {
            continue;
        }
        let ty = entry.file_type()?;
        let dest = to.join(&name);
        if ty.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if ty.is_file() {
            std::fs::copy(entry.path(), &dest).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=selfheal demo",
            "-c",
            "user.email=demo@selfheal.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(repo)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Copies `example` into a fresh git repository at `dest` with one commit; returns the short commit.
pub fn init_repo(example: &Path, dest: &Path) -> Result<String> {
    if dest.exists() {
        bail!("{} exists already", dest.display());
    }
    copy_tree(example, dest)?;
    git(dest, &["init", "-q"])?;
    git(dest, &["add", "-A"])?;
    git(dest, &["commit", "-q", "-m", "pricing-api v1"])?;
    git(dest, &["rev-parse", "--short", "HEAD"])
}

/// Ports and paths the demo's catalog names.
#[derive(Debug, Clone)]
pub struct CatalogSpec {
    /// The venv python.
    pub python: PathBuf,
    /// Repository path, relative to the catalog file's directory.
    pub repository: String,
    /// Stable port (behind the deployer's traffic proxy).
    pub port: u16,
    /// Canary port.
    pub canary_port: u16,
    /// Canary share of traffic, percent.
    pub canary_percent: u8,
    /// `manual` or `auto`.
    pub autonomy: &'static str,
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The catalog text: examples/catalog.toml's pricing-api with the demo's interpreter and ports.
pub fn catalog_toml(spec: &CatalogSpec) -> String {
    let py = quote(&spec.python.to_string_lossy());
    format!(
        r#"# Written by `selfheal demo` from examples/catalog.toml: the venv python, free ports.
[services.pricing-api]
repository = {repo}
language = "python"
source_root = "."
test_command = [{py}, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
test_timeout_secs = 60
test_memory_mb = 1024
protected_globs = ["**/*.lock", "requirements*.txt"]
max_diff_lines = 40
autonomy = "{autonomy}"
deployer = "local-process"

[services.pricing-api.deploy]
command = [{py}, "app.py"]
port = {port}
canary_port = {canary}
health_path = "/healthz"
canary_traffic_percent = {pct}

[services.pricing-api.extra_env]
PYTHONDONTWRITEBYTECODE = "1"
"#,
        repo = quote(&spec.repository),
        autonomy = spec.autonomy,
        port = spec.port,
        canary = spec.canary_port,
        pct = spec.canary_percent,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_loads_and_names_the_interpreter_and_ports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repos/pricing-api")).unwrap();
        let spec = CatalogSpec {
            python: "/opt/venv \"x\"/bin/python".into(),
            repository: "repos/pricing-api".into(),
            port: 18081,
            canary_port: 18082,
            canary_percent: 25,
            autonomy: "auto",
        };
        let path = dir.path().join("catalog.toml");
        std::fs::write(&path, catalog_toml(&spec)).unwrap();
        let catalog = selfheal_catalog::Catalog::load(&path).unwrap();
        let e = catalog.service("pricing-api").unwrap();
        assert_eq!(e.test_command[0], "/opt/venv \"x\"/bin/python");
        assert_eq!(e.autonomy, selfheal_catalog::Autonomy::Auto);
        assert!(e.repository.ends_with("repos/pricing-api"));
        assert_eq!(e.deploy.get("port").and_then(|v| v.as_integer()), Some(18081));
    }

    #[test]
    fn init_repo_commits_the_example_without_caches() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("__pycache__")).unwrap();
        std::fs::write(src.join("app.py"), "print(1)\n").unwrap();
        std::fs::write(src.join("__pycache__/x.pyc"), "junk").unwrap();
        let dest = dir.path().join("repo");
        let commit = init_repo(&src, &dest).unwrap();
        assert!(commit.len() >= 7, "{commit}");
        assert!(dest.join("app.py").is_file());
        assert!(!dest.join("__pycache__").exists());
        assert_eq!(git(&dest, &["status", "--porcelain"]).unwrap(), "");
        assert!(init_repo(&src, &dest).is_err(), "an existing destination is refused");
    }
}
