//! Runs every `test_*` rule of `policies/*_test.rego` through regorus.

use std::path::{Path, PathBuf};

use crate::{PolicyTestResult, run_embedded_policy_tests, run_policy_tests};

pub(super) fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn assert_all_pass(results: &[PolicyTestResult]) {
    let failed: Vec<String> = results
        .iter()
        .filter(|result| !result.passed)
        .map(|result| {
            format!(
                "{} {}: {}",
                result.file,
                result.name,
                result.failure.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(failed.is_empty(), "failing policy tests:\n{}", failed.join("\n"));
}

#[test]
fn every_rego_test_in_the_policies_directory_passes() {
    let results = run_policy_tests(policies_dir()).unwrap();
    println!("{} Rego policy tests run", results.len());
    assert_all_pass(&results);
    // Both test files are picked up; a renamed or emptied file must not pass silently.
    for package in ["selfheal.patch_test", "selfheal.deploy_test"] {
        let count = results.iter().filter(|r| r.package == package).count();
        assert!(count >= 10, "{package}: only {count} tests found");
    }
}

#[test]
fn the_embedded_copies_run_the_same_tests() {
    let from_dir = run_policy_tests(policies_dir()).unwrap();
    let embedded = run_embedded_policy_tests().unwrap();
    assert_all_pass(&embedded);
    let names = |results: &[PolicyTestResult]| results.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&from_dir), names(&embedded));
}

#[test]
fn a_failing_rego_test_is_reported_not_hidden() {
    let dir = std::env::temp_dir().join(format!("selfheal-gov-failing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["patch.rego", "deploy.rego"] {
        std::fs::copy(policies_dir().join(file), dir.join(file)).unwrap();
    }
    std::fs::write(
        dir.join("broken_test.rego"),
        "package selfheal.broken_test\n\nimport rego.v1\n\nimport data.selfheal.patch\n\ntest_wrong if {\n\tcount(patch.deny) == 0 with input as {}\n}\n\ntest_right if {\n\tcount(patch.deny) > 0 with input as {}\n}\n",
    )
    .unwrap();
    let results = run_policy_tests(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let by_name = |name: &str| results.iter().find(|r| r.name == name).unwrap();
    assert!(!by_name("test_wrong").passed);
    assert_eq!(by_name("test_wrong").failure.as_deref(), Some("undefined"));
    assert!(by_name("test_right").passed);
}
