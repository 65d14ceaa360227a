//! The Java templates and regression tests on real code, run with the real Maven offline in
//! the repairer's sandbox (no network, read-only host, address-space limit): every regression
//! test fails on the buggy code with the incident's exception, passes on the fixed code, and
//! the whole suite stays green.
//!
//! Needs `mvn`, a JDK 17 and the Maven local repository that
//! `examples/inventory-java/prepare-offline.sh` fills (`$SELFHEAL_M2`, else
//! `$SELFHEAL_CACHE/m2`, else `~/.cache/selfheal/m2`); `scripts/test.sh` runs that script first.
//! These tests fail, never skip, when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use selfheal_events::{Diagnosis, RegressionTest};

use super::templates::{
    index_guard::JavaIndexGuard, no_such_element::JavaNoSuchElementGuard, null_guard::JavaNullGuard,
    number_format::JavaNumberFormatGuard, zero_division::JavaZeroDivisionGuard,
};
use super::tests::{CATALOG, CSV, INVENTORY, PAGING, PRICES, STATS, diagnosis, inventory_diagnosis, line_of};
use super::*;
use crate::languages::{Language, RegressionRequest, Site};
use crate::sandbox::{Limits, ProcessSandbox, RunResult, Sandbox};

/// The Maven local repository the example's prepare script fills.
pub(super) fn maven_repo() -> PathBuf {
    let repo = std::env::var_os("SELFHEAL_M2")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("SELFHEAL_CACHE")
                .filter(|v| !v.is_empty())
                .map(|c| PathBuf::from(c).join("m2"))
        })
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/selfheal/m2"));
    assert!(
        repo.join("org/junit/jupiter/junit-jupiter/5.14.1").is_dir(),
        "the Maven local repository {} lacks the example's dependencies: run examples/inventory-java/prepare-offline.sh \
         (scripts/test.sh does)",
        repo.display()
    );
    repo
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

fn sandbox() -> ProcessSandbox {
    ProcessSandbox::probe().expect("neither bwrap nor `unshare --net` works here: the sandbox is required")
}

async fn run(dir: &Path, command: &[String], project: &Project) -> RunResult {
    let limits = Limits {
        timeout: Duration::from_secs(600),
        memory_mb: 2048,
        env: project.suite.env.clone(),
    };
    let result = sandbox().run(dir, command, limits).await.unwrap();
    assert!(!result.timed_out, "{command:?} timed out:\n{}", result.output_tail);
    result
}

fn write(root: &Path, file: &str, content: &str) {
    let path = root.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Surefire's XML report of one test class.
fn report(root: &Path, package: &str, class: &str) -> String {
    let path = root.join(format!("target/surefire-reports/TEST-{package}.{class}.xml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn class_of(test: &RegressionTest) -> String {
    Path::new(&test.file)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_java_template_heals_real_code_with_offline_maven() {
    let java = Java::with_maven_repo(maven_repo());
    let work = tempfile::tempdir().unwrap();
    let shop = work.path().join("shop");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/languages/java/fixtures/shop"),
        &shop,
    );
    let project = java.detect(&shop).unwrap();
    assert_eq!(project.framework, "junit5-maven");
    let dir = "src/main/java/com/example/shop";
    let cases: Vec<(&str, &str, Diagnosis, Box<dyn crate::templates::FixTemplate>)> = vec![
        (
            "Prices.java",
            PRICES,
            diagnosis(
                &format!("{dir}/Prices.java"),
                line_of(PRICES, "cents.get(sku) * quantity"),
                "total",
                "java.lang.NullPointerException",
                "Cannot invoke \"java.lang.Long.longValue()\" because the return value of \"java.util.Map.get(Object)\" is null",
                &[("shop.sku", "cup"), ("shop.quantity", "3")],
            ),
            Box::new(JavaNullGuard),
        ),
        (
            "Csv.java",
            CSV,
            diagnosis(
                &format!("{dir}/Csv.java"),
                line_of(CSV, "parts[1]"),
                "name",
                "java.lang.ArrayIndexOutOfBoundsException",
                "Index 1 out of bounds for length 1",
                &[],
            ),
            Box::new(JavaIndexGuard),
        ),
        (
            "Paging.java",
            PAGING,
            diagnosis(
                &format!("{dir}/Paging.java"),
                line_of(PAGING, "Integer.parseInt(raw)"),
                "limit",
                "java.lang.NumberFormatException",
                "For input string: \"abc\"",
                &[("paging.limit", "abc")],
            ),
            Box::new(JavaNumberFormatGuard),
        ),
        (
            "Stats.java",
            STATS,
            diagnosis(
                &format!("{dir}/Stats.java"),
                line_of(STATS, "total / orders.size()"),
                "average",
                "java.lang.ArithmeticException",
                "/ by zero",
                &[],
            ),
            Box::new(JavaZeroDivisionGuard),
        ),
        (
            "Catalog.java",
            CATALOG,
            diagnosis(
                &format!("{dir}/Catalog.java"),
                line_of(CATALOG, "findFirst().get()"),
                "find",
                "java.util.NoSuchElementException",
                "No value present",
                &[],
            ),
            Box::new(JavaNoSuchElementGuard),
        ),
    ];

    // Each template fixes its class; each regression test is written next to the others.
    let mut written = Vec::new();
    for (i, (file, source, mut diag, template)) in cases.into_iter().enumerate() {
        diag.incident_id = format!("a000000{i}-0000-7000-8000-00000000000{i}");
        let rc = diag.root_cause.clone().unwrap();
        let site = Site {
            diag: &diag,
            root_cause: &rc,
            source,
        };
        assert!(template.applies(&diag), "{} applies to {file}", template.id());
        let fix = template
            .apply(&site)
            .unwrap_or_else(|e| panic!("{} on {file}: {e}", template.id()));
        let test = java
            .regression_test(&RegressionRequest {
                site,
                project: &project,
                fix: Some(&fix),
                template: Some(template.id()),
                long_name: false,
            })
            .unwrap_or_else(|e| panic!("regression test for {file}: {e}"));
        write(&shop, &test.file, &test.code);
        let exception = rc.exception_type.rsplit('.').next().unwrap().to_string();
        written.push((rc.file.clone(), fix, test, exception, template.id()));
    }

    // Before: every regression test fails, each with its incident's exception.
    let classes: Vec<String> = written.iter().map(|(_, _, t, _, _)| class_of(t)).collect();
    let mut before = project.suite.command.clone();
    before.push(format!("-Dtest={}", classes.join(",")));
    before.push("-Dsurefire.failIfNoSpecifiedTests=false".into());
    let result = run(&shop, &before, &project).await;
    assert!(
        !result.succeeded(),
        "the regression tests pass on the buggy code:\n{}",
        result.output_tail
    );
    for (_, _, test, exception, id) in &written {
        let xml = report(&shop, "com.example.shop", &class_of(test));
        assert!(
            (xml.contains("<failure") || xml.contains("<error")) && xml.contains(exception.as_str()),
            "{id}: {} does not fail with {exception} before the fix:\n{xml}",
            test.file
        );
    }

    // After: the fixes in place, the whole suite (5 tests of its own + 5 regression tests) passes.
    for (file, fix, _, _, _) in &written {
        write(&shop, file, &fix.content);
    }
    let result = run(&shop, &project.suite.command, &project).await;
    assert!(
        result.succeeded(),
        "the suite fails with the fixes:\n{}",
        result.output_tail
    );
    let summary = java.summary(&result.output_tail).expect("a surefire summary");
    assert_eq!(
        (summary.tests_run(), summary.tests_failed()),
        (10, 0),
        "{}",
        result.output_tail
    );
    for (_, _, test, _, id) in &written {
        let xml = report(&shop, "com.example.shop", &class_of(test));
        assert!(
            xml.contains("tests=\"1\"") && xml.contains("failures=\"0\"") && xml.contains("errors=\"0\""),
            "{id}: {} fails after the fix:\n{xml}",
            test.file
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_example_is_healed_through_the_languages_own_commands() {
    let java = Java::with_maven_repo(maven_repo());
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("inventory-java");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/inventory-java"),
        &repo,
    );
    let project = java.detect(&repo).unwrap();
    let diag = inventory_diagnosis();
    let rc = diag.root_cause.clone().unwrap();
    let site = Site {
        diag: &diag,
        root_cause: &rc,
        source: INVENTORY,
    };
    let fix = JavaNullGuard.apply(&site).unwrap();
    let test = java
        .regression_test(&RegressionRequest {
            site,
            project: &project,
            fix: Some(&fix),
            template: Some(super::templates::null_guard::ID),
            long_name: false,
        })
        .unwrap();
    write(&repo, &test.file, &test.code);
    let single = java.single_test_command(&project, &test);

    let before = run(&repo, &single, &project).await;
    assert!(!before.succeeded(), "passes on the buggy code:\n{}", before.output_tail);
    assert!(
        java.reproduces(&before.output_tail, &rc),
        "not the incident's exception:\n{}",
        before.output_tail
    );

    write(&repo, &rc.file, &fix.content);
    let after = run(&repo, &single, &project).await;
    assert!(after.succeeded(), "fails on the fixed code:\n{}", after.output_tail);

    let suite = run(&repo, &project.suite.command, &project).await;
    assert!(
        suite.succeeded(),
        "the suite fails with the fix:\n{}",
        suite.output_tail
    );
    let summary = java.summary(&suite.output_tail).unwrap();
    assert_eq!(
        (summary.tests_run(), summary.tests_failed()),
        (12, 0),
        "{}",
        suite.output_tail
    );
}
