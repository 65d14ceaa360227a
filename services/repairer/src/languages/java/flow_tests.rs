//! The whole repair flow on the Java example: `Repairer::repair` picks `java.null-guard`,
//! writes the JUnit 5 regression test, prepares Maven online outside the sandbox, proves the
//! test fails before and passes after with the real `mvn -o` in the sandbox and the whole
//! suite passes, asks the patch policy, and commits fix and test on a `selfheal/…` branch
//! with real git, leaving the checked-out tree alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use selfheal_catalog::{Catalog, ServiceEntry};
use selfheal_events::PatchStatus;
use selfheal_governance::PolicyEngine;

use super::maven_tests::{copy_dir, maven_repo};
use super::tests::inventory_diagnosis;
use crate::sandbox::ProcessSandbox;
use crate::{Repairer, RepairerConfig};

fn git(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repairer_heals_the_java_example_and_commits_fix_and_test_on_a_branch() {
    let m2 = maven_repo();
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("inventory-java");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/inventory-java"),
        &repo,
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "v1"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);

    let mut entry = ServiceEntry::new(
        "inventory-java",
        &repo,
        "java",
        ["mvn", "-o", "-B", "-ntp", "-Dstyle.color=never", "test"]
            .map(String::from)
            .to_vec(),
    );
    entry.test_timeout = Duration::from_secs(600);
    entry.test_memory_mb = 2048;
    // Explicit, whatever this process's SELFHEAL_M2 says: the catalog's environment wins.
    entry
        .extra_env
        .insert("MAVEN_OPTS".into(), format!("-Dmaven.repo.local={}", m2.display()));
    let repairer = Repairer::new(
        Catalog::from_services([entry]).unwrap(),
        PolicyEngine::embedded().unwrap(),
        Arc::new(ProcessSandbox::probe().expect("the sandbox is required")),
        RepairerConfig {
            work_dir: work.path().join("repairer"),
            ..RepairerConfig::default()
        },
    );
    let mut diag = inventory_diagnosis();
    diag.service = "inventory-java".into();
    diag.repository = Some(repo.display().to_string());
    let patch = repairer.repair(diag).await;
    let explain = format!("{:?}: {}\n{:#?}", patch.status, patch.summary, patch.attempts);
    assert_eq!(patch.status, PatchStatus::Proposed, "{explain}");
    assert_eq!(patch.strategy.as_deref(), Some("java.null-guard"), "{explain}");
    let v = patch.validation.clone().unwrap();
    assert!(v.failed_before && v.passed_after && v.suite_passed, "{v:?}");
    assert_eq!((v.tests_run, v.tests_failed), (12, 0), "{v:?}");
    assert!(v.sandbox.contains("no network"), "{}", v.sandbox);
    assert!(patch.diff.contains("+        if (item == null) {"), "{}", patch.diff);
    let test = patch.regression_test.clone().unwrap();
    assert!(
        test.file.starts_with("src/test/java/com/example/inventory/Selfheal"),
        "{}",
        test.file
    );

    let branch = patch.branch.clone().unwrap();
    assert!(branch.starts_with("selfheal/"), "{branch}");
    let fixed = git(
        &repo,
        &[
            "show",
            &format!("{branch}:src/main/java/com/example/inventory/Inventory.java"),
        ],
    );
    assert!(fixed.contains("throw new IllegalArgumentException(\"unknown sku: \" + sku);"));
    assert!(git(&repo, &["show", &format!("{branch}:{}", test.file)]).contains(&test.name));
    // The checked-out branch and tree are untouched.
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}
