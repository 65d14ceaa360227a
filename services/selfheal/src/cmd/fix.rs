//! `selfheal fix --repo DIR --trace FILE [--json]`: diagnose and repair one crash offline.
//!
//! The same code the diagnoser and repairer stages run, without Kafka: the crash report is
//! parsed (selfheal-stacktrace), the repository is recognised by the repairer's languages
//! (project, test suite), the diagnoser localises the culprit in the repository, and the
//! repairer writes candidates and a regression test, proves them with the repository's own
//! suite in the sandbox, asks the patch policy, and commits fix and test on a new branch
//! `selfheal/fix-<fingerprint>`. The checked-out branch and working tree are never touched.
//! Exit 0 only when a validated fix is on a branch; otherwise the reason is on stderr and
//! the exit code is 1. A second run on the same crash answers from the existing branch.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use selfheal_catalog::{Catalog, LANGUAGES, ServiceEntry};
use selfheal_diagnoser::Diagnoser;
use selfheal_diagnoser::knowledge::{HttpKnowledgeClient, KnowledgeClient, NoKnowledge};
use selfheal_events::{Anomaly, AnomalyKind, Diagnosis, ExceptionInfo, Patch, PatchStatus};
use selfheal_repairer::{Language, Languages, RepairerConfig, default_sandbox_with};
use serde_json::json;

/// Largest crash report read; a trace is never megabytes.
const MAX_TRACE_BYTES: u64 = 8 * 1024 * 1024;

/// Arguments of `selfheal fix`.
#[derive(Debug, Clone, clap::Args)]
pub struct FixArgs {
    /// The git repository of the service that crashed (its checked-out commit is the base).
    #[arg(long, env = "SELFHEAL_FIX_REPO")]
    pub repo: PathBuf,
    /// The crash report: a stack trace or a log excerpt holding one; `-` for standard input.
    #[arg(long, env = "SELFHEAL_FIX_TRACE")]
    pub trace: PathBuf,
    /// Print one JSON object as the last line of standard output.
    #[arg(long)]
    pub json: bool,
    /// The service name (defaults to the repository directory's name).
    #[arg(long, env = "SELFHEAL_FIX_SERVICE")]
    pub service: Option<String>,
    /// The test command (program and arguments, one string split on whitespace) instead of
    /// the one detected from the repository.
    #[arg(long, env = "SELFHEAL_FIX_TEST_COMMAND")]
    pub test_command: Option<String>,
    /// Directory of in-app code inside the repository instead of the detected one.
    #[arg(long, env = "SELFHEAL_FIX_SOURCE_ROOT")]
    pub source_root: Option<String>,
    /// Python interpreter replacing a leading `python3`/`python` of the test command (e.g. a venv's).
    #[arg(long, env = "SELFHEAL_PYTHON")]
    pub python: Option<String>,
    /// Seconds one test run may take.
    #[arg(long, env = "SELFHEAL_FIX_TEST_TIMEOUT_SECS", default_value_t = 300)]
    pub test_timeout_secs: u64,
    /// Memory limit of one test run, MiB.
    #[arg(long, env = "SELFHEAL_FIX_TEST_MEMORY_MB", default_value_t = 2048)]
    pub test_memory_mb: u64,
    /// Learning store to ask for fixes that worked before (e.g. `http://localhost:8090`); none by default.
    #[arg(long, env = "SELFHEAL_LEARNER_URL")]
    pub learner_url: Option<String>,
    /// Run tests without isolation when neither bwrap nor unshare works (never the default).
    #[arg(long, env = "SELFHEAL_ALLOW_UNSANDBOXED")]
    pub allow_unsandboxed: bool,
    /// Where sandbox copies and temporary worktrees are made.
    #[arg(long, env = "SELFHEAL_FIX_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
}

/// Runs `selfheal fix`: prints what happened (and the JSON line with `--json`); an error
/// (exit 1) unless a validated fix was committed on a branch.
pub async fn run(args: &FixArgs, out: &mut impl std::io::Write) -> Result<()> {
    let outcome = fix(args).await;
    let (report, result) = match outcome {
        Ok((diag, patch, test_command)) => {
            let report = report(&diag, &patch, &test_command);
            let result = if patch.status == PatchStatus::Proposed {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "no validated fix ({:?}): {}",
                    patch.status,
                    patch.summary
                ))
            };
            if !args.json {
                print_human(out, &diag, &patch, &test_command)?;
            }
            (report, result)
        }
        Err(err) => (json!({"status": "error", "reason": format!("{err:#}")}), Err(err)),
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    }
    out.flush()?;
    result
}

/// Diagnosis, patch and the test command used.
async fn fix(args: &FixArgs) -> Result<(Diagnosis, Patch, Vec<String>)> {
    let repo = std::fs::canonicalize(&args.repo).with_context(|| format!("repository {}", args.repo.display()))?;
    if !repo.join(".git").exists() {
        bail!(
            "{} is not a git repository (selfheal commits the fix on a branch there)",
            repo.display()
        );
    }
    let text = read_trace(&args.trace)?;
    let entry = service_entry(args, &repo)?;
    let test_command = entry.test_command.clone();
    let anomaly = anomaly(&entry.name, &text)?;
    let catalog = Catalog::from_services([entry]).context("building the one-service catalog")?;

    let knowledge: Arc<dyn KnowledgeClient> = match &args.learner_url {
        Some(url) => Arc::new(HttpKnowledgeClient::new(url).context("learning store URL")?),
        None => Arc::new(NoKnowledge),
    };
    let diagnoser = Diagnoser::new(catalog.clone(), knowledge);
    let diag = diagnoser.diagnose(&anomaly).await.context("diagnosing the crash")?;

    let policy = selfheal_governance::PolicyEngine::embedded().context("loading the patch policy")?;
    let config = RepairerConfig {
        python: args.python.clone(),
        allow_unsandboxed: args.allow_unsandboxed,
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("selfheal-fix")),
    };
    let sandbox = default_sandbox_with(args.allow_unsandboxed);
    let repairer = selfheal_repairer::Repairer::new(catalog, policy, sandbox, config);
    let patch = repairer.repair(diag.clone()).await;
    Ok((diag, patch, test_command))
}

/// The catalog entry of the repository: language, source root and test suite as the
/// repairer's languages detect them, flags on top.
fn service_entry(args: &FixArgs, repo: &Path) -> Result<ServiceEntry> {
    let languages = Languages::builtin();
    let Some((language, project)) = languages.detect(repo) else {
        let known: Vec<&str> = languages.iter().map(Language::id).collect();
        bail!(
            "{} is no project selfheal recognises (languages: {})",
            repo.display(),
            known.join(", ")
        );
    };
    let catalog_language = std::iter::once(Language::id(language))
        .chain(Language::names(language).iter().copied())
        .find(|n| LANGUAGES.contains(n))
        .with_context(|| format!("language `{}` has no catalog name", Language::id(language)))?;
    let name = match &args.service {
        Some(name) => name.clone(),
        None => repo
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "service".into()),
    };
    let command = match &args.test_command {
        Some(c) => c.split_whitespace().map(String::from).collect(),
        None => project.suite.command.clone(),
    };
    if command.is_empty() {
        bail!(
            "no test command: none detected in {}, pass --test-command",
            repo.display()
        );
    }
    let mut entry = ServiceEntry::new(name, repo, catalog_language, command);
    entry.source_root = args.source_root.clone().unwrap_or(project.source_root);
    entry.test_timeout = std::time::Duration::from_secs(args.test_timeout_secs);
    entry.test_memory_mb = args.test_memory_mb;
    entry.extra_env = project.suite.env;
    Ok(entry)
}

/// The anomaly the monitor would have opened for this crash: the trace as the exception's
/// stack trace, its fingerprint, an incident id derived from the fingerprint (so a second
/// run on the same crash finds the first run's branch).
fn anomaly(service: &str, text: &str) -> Result<Anomaly> {
    let parsed = selfheal_stacktrace::parse(text, &selfheal_stacktrace::ParseOptions::default())
        .context("no stack trace found in the crash report")?;
    let root = parsed.root_cause();
    let now = selfheal_core::now_ms();
    Ok(Anomaly {
        incident_id: format!("fix-{}", parsed.fingerprint),
        service: service.to_string(),
        fingerprint: parsed.fingerprint.clone(),
        signals: vec![AnomalyKind::NewFingerprint],
        summary: format!("{}: {}", root.ty, one_line(root.message, 200)),
        detected_ms: now,
        window_start_ms: now,
        window_end_ms: now,
        error_count: 1,
        exception: Some(ExceptionInfo {
            r#type: root.ty.to_string(),
            message: root.message.to_string(),
            stacktrace: Some(text.to_string()),
        }),
        ..Anomaly::default()
    })
}

fn one_line(text: &str, max: usize) -> String {
    text.lines().next().unwrap_or_default().chars().take(max).collect()
}

fn read_trace(path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_TRACE_BYTES)
            .read_to_end(&mut bytes)
            .context("reading the crash report from standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(MAX_TRACE_BYTES)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `--json` object.
fn report(diag: &Diagnosis, patch: &Patch, test_command: &[String]) -> serde_json::Value {
    let culprit = diag
        .root_cause
        .as_ref()
        .map(|rc| json!({"file": rc.file, "line": rc.line, "function": rc.function, "exception": rc.exception_type}));
    let source = patch.strategy.as_ref().map(|s| {
        if s.starts_with("llm") {
            "llm"
        } else if patch.learned {
            "learned"
        } else {
            "template"
        }
    });
    let status = if patch.status == PatchStatus::Proposed {
        "fixed".to_string()
    } else {
        format!("{:?}", patch.status)
    };
    json!({
        "status": status,
        "incident_id": patch.incident_id,
        "diagnosis": format!("{:?}", diag.status),
        "culprit": culprit,
        "template": patch.strategy,
        "source": source,
        "summary": patch.summary,
        "diff": patch.diff,
        "branch": patch.branch,
        "commit": patch.commit,
        "regression_test": patch.regression_test.as_ref().map(|t| json!({"file": t.file, "name": t.name})),
        "test_command": test_command,
        "test_result": patch.validation.as_ref().map(|v| json!({
            "failed_before": v.failed_before,
            "passed_after": v.passed_after,
            "suite_passed": v.suite_passed,
            "tests_run": v.tests_run,
            "tests_failed": v.tests_failed,
            "sandbox": v.sandbox,
            "duration_ms": v.duration_ms,
        })),
        "attempts": patch.attempts.iter().map(|a| json!({"strategy": a.strategy, "result": a.result, "reason": a.reason})).collect::<Vec<_>>(),
    })
}

fn print_human(out: &mut impl std::io::Write, diag: &Diagnosis, patch: &Patch, test_command: &[String]) -> Result<()> {
    match &diag.root_cause {
        Some(rc) => writeln!(
            out,
            "culprit: {}:{} in {} ({})",
            rc.file, rc.line, rc.function, rc.exception_type
        )?,
        None => writeln!(out, "culprit: not localised ({:?}): {}", diag.status, diag.summary)?,
    }
    for a in &patch.attempts {
        writeln!(
            out,
            "  tried {}: {}: {}",
            a.strategy,
            a.result,
            one_line(&a.reason, 300)
        )?;
    }
    if let Some(v) = &patch.validation {
        writeln!(
            out,
            "tests ({}): regression test failed before: {}, passes after: {}; suite passed: {} ({} tests, {} failed) in {}",
            test_command.join(" "),
            v.failed_before,
            v.passed_after,
            v.suite_passed,
            v.tests_run,
            v.tests_failed,
            v.sandbox
        )?;
    }
    match (&patch.branch, patch.status == PatchStatus::Proposed) {
        (Some(branch), true) => {
            writeln!(out, "fixed: {}", patch.summary)?;
            if let Some(t) = &patch.regression_test {
                writeln!(out, "regression test: {}::{}", t.file, t.name)?;
            }
            writeln!(out, "branch: {branch}")?;
            writeln!(out, "{}", patch.diff)?;
        }
        _ => writeln!(out, "not fixed ({:?}): {}", patch.status, patch.summary)?,
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The venv python with pytest (CI exports SELFHEAL_PYTHON from scripts/python-env.sh).
    fn python() -> String {
        std::env::var("SELFHEAL_PYTHON").ok().filter(|p| !p.is_empty()).expect(
            "SELFHEAL_PYTHON must name the venv python: export SELFHEAL_PYTHON=$(scripts/python-env.sh | tail -1)",
        )
    }

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == "__pycache__" || name == ".pytest_cache" || name == ".git" {
                continue;
            }
            let target = to.join(&name);
            if entry.file_type().unwrap().is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The pricing-api in a fresh git repository (in `dir/pricing-api`).
    fn pricing_repo(dir: &Path) -> PathBuf {
        let repo = dir.join("pricing-api");
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pricing-api"),
            &repo,
        );
        git(&repo, &["init", "--quiet", "-b", "main"]);
        git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"]);
        git(
            &repo,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "--quiet",
                "-m",
                "pricing-api",
            ],
        );
        repo
    }

    fn args(repo: &Path, trace: &Path, work: &Path) -> FixArgs {
        FixArgs {
            repo: repo.to_path_buf(),
            trace: trace.to_path_buf(),
            json: true,
            service: None,
            test_command: None,
            source_root: None,
            python: Some(python()),
            test_timeout_secs: 120,
            test_memory_mb: 1024,
            learner_url: None,
            allow_unsandboxed: false,
            work_dir: Some(work.to_path_buf()),
        }
    }

    fn last_json(out: &[u8]) -> serde_json::Value {
        let text = String::from_utf8_lossy(out);
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    }

    const ZERO_DIVISION: &str = "Traceback (most recent call last):\n  File \"/srv/pricing-api/app.py\", line 88, in quote\n    total = pricing_logic.calc(price, discount)\n  File \"/srv/pricing-api/pricing_logic.py\", line 14, in calc\n    def calc(p, d): return p / d\nZeroDivisionError: float division by zero\n";

    #[tokio::test]
    async fn a_bare_trace_is_fixed_on_a_branch_and_reported_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let repo = pricing_repo(dir.path());
        let trace = dir.path().join("crash.txt");
        std::fs::write(&trace, ZERO_DIVISION).unwrap();
        let head = git(&repo, &["rev-parse", "HEAD"]);
        let mut out = Vec::new();
        let result = run(&args(&repo, &trace, &dir.path().join("work")), &mut out).await;
        let report = last_json(&out);
        assert!(result.is_ok(), "{result:?}\n{report:#}");
        assert_eq!(report["status"], "fixed", "{report:#}");
        assert_eq!(report["culprit"]["file"], "pricing_logic.py");
        assert_eq!(report["culprit"]["line"], 14);
        assert_eq!(report["culprit"]["function"], "calc");
        assert_eq!(report["template"], "python.zero-division-guard");
        assert_eq!(report["source"], "template");
        let branch = report["branch"].as_str().unwrap();
        assert!(branch.starts_with("selfheal/fix-"), "{branch}");
        assert_eq!(report["test_command"][1], "-m");
        assert_eq!(report["test_result"]["failed_before"], true);
        assert_eq!(report["test_result"]["passed_after"], true);
        assert_eq!(report["test_result"]["suite_passed"], true);
        assert!(
            report["diff"]
                .as_str()
                .unwrap()
                .contains("+    return p / d if d != 0 else p")
        );
        // The branch holds fix and test; the checkout is untouched.
        let fixed = git(&repo, &["show", &format!("{branch}:pricing_logic.py")]);
        assert!(fixed.contains("return p / d if d != 0 else p"));
        let test_file = report["regression_test"]["file"].as_str().unwrap();
        assert!(git(&repo, &["show", &format!("{branch}:{test_file}")]).contains("calc("));
        assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);
        assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    }

    #[tokio::test]
    async fn no_validated_fix_exits_non_zero_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let repo = pricing_repo(dir.path());
        let trace = dir.path().join("crash.txt");
        // round_money's float() of bad text: no caller of round_money handles an error.
        std::fs::write(
            &trace,
            "Traceback (most recent call last):\n  File \"/srv/pricing-api/pricing_logic.py\", line 9, in round_money\n    return round(float(x), 2)\nValueError: could not convert string to float: 'abc'\n",
        )
        .unwrap();
        let mut out = Vec::new();
        let result = run(&args(&repo, &trace, &dir.path().join("work")), &mut out).await;
        let report = last_json(&out);
        let err = result.expect_err("no fix must be an error (exit 1)");
        assert_ne!(report["status"], "fixed", "{report:#}");
        assert!(report["branch"].is_null(), "{report:#}");
        assert!(err.to_string().contains("no validated fix"), "{err}");
        assert_eq!(git(&repo, &["branch", "--list", "selfheal/*"]), "");

        // Not a repository / no trace: clear errors, JSON still last.
        let mut out = Vec::new();
        let plain = dir.path().join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        let err = run(&args(&plain, &trace, dir.path()), &mut out).await.unwrap_err();
        assert!(err.to_string().contains("not a git repository"), "{err}");
        assert_eq!(last_json(&out)["status"], "error");
        std::fs::write(&trace, "all good here\n").unwrap();
        let err = run(&args(&repo, &trace, dir.path()), &mut Vec::new())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("no stack trace"), "{err:#}");
    }
}
