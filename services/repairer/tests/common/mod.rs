//! Shared pieces of the repairer's integration tests: the pricing-api in a fresh git
//! repository, its catalog entry, the real sandbox, and a KeyError diagnosis no template covers.
// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use selfheal_catalog::{Catalog, ServiceEntry};
use selfheal_events::{Diagnosis, ExceptionInfo, Hypothesis, HypothesisSource, RootCause};
use selfheal_governance::PolicyEngine;
use selfheal_repairer::languages::python::templates::PythonZeroDivisionGuard;
use selfheal_repairer::{ProcessSandbox, Registry, Repairer, RepairerConfig, Sandbox};

/// The venv python with pytest: CI runs scripts/python-env.sh and exports SELFHEAL_PYTHON.
pub fn python() -> String {
    match std::env::var("SELFHEAL_PYTHON") {
        Ok(python) if !python.is_empty() => python,
        _ => {
            panic!("SELFHEAL_PYTHON is not set: run `export SELFHEAL_PYTHON=$(scripts/python-env.sh | tail -1)` first")
        }
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// examples/pricing-api (without caches) plus `extra` files, committed in a fresh repository.
pub fn pricing_repo(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pricing-api");
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    for (path, content) in extra {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(dir.path(), &["init", "--quiet", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(
        dir.path(),
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
    dir
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

pub fn entry(repo: &Path) -> ServiceEntry {
    let mut e = ServiceEntry::new(
        "pricing-api",
        repo,
        "python",
        ["python3", "-m", "pytest", "-q"].map(String::from).to_vec(),
    );
    e.test_timeout = Duration::from_secs(60);
    e.test_memory_mb = 1024;
    e.extra_env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    e
}

pub fn repairer(repo: &Path, work: &Path) -> Repairer {
    let sandbox: Arc<dyn Sandbox> =
        Arc::new(ProcessSandbox::probe().expect("bwrap or unshare must work on the test machine"));
    Repairer::new(
        Catalog::from_services([entry(repo)]).unwrap(),
        PolicyEngine::embedded().unwrap(),
        sandbox,
        RepairerConfig {
            python: Some(python()),
            allow_unsandboxed: false,
            work_dir: work.to_path_buf(),
        },
    )
    // The model path is exercised on the pricing-api KeyError; the key-guard template would
    // fix that one deterministically (see languages/python/tests.rs), so only the
    // zero-division template is kept here.
    .with_templates(Registry::new(vec![Box::new(PythonZeroDivisionGuard)]))
}

/// `selfheal/*` branches of the repository.
pub fn branches(repo: &Path) -> Vec<String> {
    git(repo, &["branch", "--list", "selfheal/*"])
        .lines()
        .map(|l| l.trim_start_matches(['*', ' ']).to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// POST /convert with an unknown currency: `to_usd` raises KeyError at pricing_logic.py:23.
/// No template of [`repairer`] covers it. `message` is the exception message (client-controlled text).
pub fn key_error_diagnosis(repo: &Path, message: &str, currency: &str) -> Diagnosis {
    let mut d = selfheal_events::examples::diagnosis();
    d.incident_id = "0193b000-1111-7222-8333-944455556666".into();
    d.fingerprint = "keyerror0to0usd".into();
    d.repository = Some(repo.display().to_string());
    d.commit = None;
    d.summary = "pricing_logic.py:23 in to_usd — KeyError on the currency".into();
    let stacktrace = format!(
        "Traceback (most recent call last):\n  File \"/srv/pricing-api/app.py\", line 81, in convert\n    \
         return {{\"usd\": pricing_logic.to_usd(amount, currency)}}\n  File \"/srv/pricing-api/pricing_logic.py\", \
         line 23, in to_usd\n    return amount * RATES_TO_USD[currency]\nKeyError: {message}\n"
    );
    d.root_cause = Some(RootCause {
        file: "pricing_logic.py".into(),
        line: 23,
        function: "to_usd".into(),
        exception_type: "KeyError".into(),
        message: message.into(),
        code_snippet: Some("> 23 |     return amount * RATES_TO_USD[currency]".into()),
        commit: None,
    });
    d.exception = Some(ExceptionInfo {
        r#type: "KeyError".into(),
        message: message.into(),
        stacktrace: Some(stacktrace),
    });
    d.hypotheses = vec![Hypothesis {
        rank: 1,
        category: "missing-key".into(),
        summary: "the currency is not in RATES_TO_USD".into(),
        confidence: 0.8,
        source: HypothesisSource::Rule,
        file: Some("pricing_logic.py".into()),
        line: Some(23),
        function: Some("to_usd".into()),
        evidence: vec![],
    }];
    d.sample_inputs = vec![
        [
            ("convert.amount".to_string(), "10.0".to_string()),
            ("convert.currency".to_string(), currency.to_string()),
        ]
        .into_iter()
        .collect(),
    ];
    d.known_fixes = vec![];
    d.timeline.patch_ms = None;
    d
}
