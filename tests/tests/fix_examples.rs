//! `selfheal fix` as the README documents it (`selfheal fix --repo DIR --trace FILE --json`),
//! the real binary, on each example service (Python, Java, Go, Node) from the trace its bug
//! left when the real service ran (`examples/<service>/testdata/`): exit 0, the culprit at the
//! example's file:line, the example's template, a `selfheal/fix-…` branch holding the fix and
//! a new regression test that failed before the fix and passes after it with the whole suite
//! in the sandbox; the checkout untouched. A second run without `--json` answers from the
//! branch.
//!
//! Needs the `selfheal` binary (`cargo build --workspace`) and each example's offline tools
//! (the Python venv, the Maven repository, the Go module cache, node_modules), which
//! `scripts/test.sh` prepares. No broker.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use selfheal_e2e::examples::{Example, INVENTORY_GO, INVENTORY_JAVA, ORDERS_NODE, PRICING_API};
use selfheal_e2e::pipeline::{bin, git, tempdir};

/// `selfheal fix --repo <repo> --trace <trace> [extra]` with the example's tool environment.
fn selfheal_fix(example: &Example, repo: &Path, work: &Path, extra: &[&str]) -> Output {
    Command::new(bin("selfheal"))
        .arg("fix")
        .arg("--repo")
        .arg(repo)
        .arg("--trace")
        .arg(example.trace_file())
        .args(extra)
        .envs(example.env())
        .env("SELFHEAL_FIX_WORK_DIR", work)
        .env("SELFHEAL_LOG", "warn")
        .output()
        .unwrap()
}

/// Runs the documented command on a fresh copy of the example and checks the fix; returns
/// the repository and the branch.
fn fixes(example: &Example) -> (std::path::PathBuf, String) {
    let dir = tempdir();
    let (repo, v1) = example.make_repo(&dir);
    let started = std::time::Instant::now();
    let out = selfheal_fix(example, &repo, &dir.join("work"), &["--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is no JSON ({e}): {stdout}\n{stderr}"));
    eprintln!(
        "{}: selfheal fix took {:.1}s: {} {}",
        example.service,
        started.elapsed().as_secs_f64(),
        report["status"],
        report["template"]
    );
    assert!(out.status.success(), "exit {:?}\n{report:#}\n{stderr}", out.status);
    assert_eq!(report["status"], "fixed", "{report:#}");
    let (file, line, function) = example.culprit;
    assert_eq!(report["culprit"]["file"], file, "{report:#}");
    assert_eq!(report["culprit"]["line"], line, "{report:#}");
    assert_eq!(report["culprit"]["function"], function, "{report:#}");
    assert!(
        report["culprit"]["exception"]
            .as_str()
            .unwrap()
            .ends_with(example.exception),
        "{report:#}"
    );
    assert_eq!(report["template"], example.template, "{report:#}");
    assert_eq!(report["source"], "template", "{report:#}");
    let result = &report["test_result"];
    assert_eq!(
        (
            &result["failed_before"],
            &result["passed_after"],
            &result["suite_passed"],
            &result["tests_failed"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(0)
        ),
        "{report:#}"
    );
    if let Some(n) = example.tests_run {
        assert_eq!(result["tests_run"], n, "{report:#}");
    }
    assert!(result["sandbox"].as_str().unwrap().contains("no network"), "{report:#}");
    let diff = report["diff"].as_str().unwrap();
    for added in example.diff_lines {
        assert!(diff.contains(added), "no `{added}` in\n{diff}");
    }

    // The branch holds the fix and the new regression test; the checkout is untouched.
    let branch = report["branch"].as_str().unwrap().to_string();
    assert!(branch.starts_with("selfheal/fix-"), "{branch}");
    assert_eq!(git(&repo, &["rev-parse", &branch]), report["commit"].as_str().unwrap());
    let fixed = git(&repo, &["show", &format!("{branch}:{file}")]);
    assert!(fixed.contains(example.diff_lines[0].trim_start_matches('+')), "{fixed}");
    let test_file = report["regression_test"]["file"].as_str().unwrap();
    assert!(
        test_file.starts_with(example.test_file.0) && test_file.ends_with(example.test_file.1),
        "{test_file}"
    );
    let existed = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["cat-file", "-e", &format!("{v1}:{test_file}")])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!existed.success(), "the regression test {test_file} must be a new file");
    assert!(
        git(&repo, &["show", &format!("{branch}:{test_file}")]).contains(example.test_code),
        "the regression test does not exercise {function}"
    );
    let changed = git(&repo, &["diff", "--name-only", &v1, &branch]);
    let mut changed: Vec<&str> = changed.lines().collect();
    changed.sort_unstable();
    let mut want = vec![file, test_file];
    want.sort_unstable();
    assert_eq!(
        changed, want,
        "the branch changes the culprit and adds the test, nothing else"
    );
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), v1);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    (repo, branch)
}

#[test]
fn selfheal_fix_heals_the_python_example_from_its_log() {
    fixes(&PRICING_API);
}

#[test]
fn selfheal_fix_heals_the_java_example_from_its_trace() {
    fixes(&INVENTORY_JAVA);
}

#[test]
fn selfheal_fix_heals_the_go_example_from_its_panic() {
    fixes(&INVENTORY_GO);
}

#[test]
fn selfheal_fix_heals_the_node_example_from_its_trace_and_answers_again_from_the_branch() {
    let (repo, branch) = fixes(&ORDERS_NODE);
    // The other documented line (no --json), on the same crash: the existing branch.
    let out = selfheal_fix(&ORDERS_NODE, &repo, &repo.with_file_name("work2"), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("branch: {branch}")), "{stdout}");
    assert_eq!(
        git(&repo, &["branch", "--list", "selfheal/*", "--format=%(refname:short)"]),
        branch,
        "no second branch"
    );
}
