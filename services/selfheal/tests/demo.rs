//! The demo, in-process, twice in one state directory: the first run heals the
//! Zero-Division incident with a template fix, the second with the fix the learning store
//! remembered from the first.
//!
//! Needs Python >= 3.10 (`SELFHEAL_PYTHON` names a venv made by scripts/python-env.sh;
//! when unset the demo runs that script itself), git and a working sandbox (bwrap or
//! `unshare --net`; set SELFHEAL_ALLOW_UNSANDBOXED=1 where neither works).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use selfheal::demo::{self, DemoConfig};
use selfheal_core::Shutdown;
use selfheal_events::{OutcomeStatus, RolloutStep};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn config(state: &std::path::Path) -> DemoConfig {
    let mut cfg = DemoConfig::new(root(), state.to_path_buf());
    cfg.python = std::env::var_os("SELFHEAL_PYTHON")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty());
    cfg.allow_unsandboxed = std::env::var("SELFHEAL_ALLOW_UNSANDBOXED").is_ok_and(|v| v == "1" || v == "true");
    // A liveness bound for a loaded CI machine, not a performance assertion.
    cfg.timeout = Duration::from_secs(300);
    cfg.json = true;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_heals_the_incident_and_the_second_run_uses_the_learned_fix() {
    let state = tempfile::tempdir().unwrap();

    let mut out = Vec::new();
    let first = demo::run(config(state.path()), Shutdown::new(), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let o = first
        .outcome
        .clone()
        .unwrap_or_else(|| panic!("no outcome; demo output:\n{text}"));
    assert_eq!(o.status, OutcomeStatus::Healed, "{}\n{text}", o.summary);
    let fix = o.fix.clone().expect("a fix");
    assert!(fix.diff.contains("if d != 0"), "{}", fix.diff);
    assert!(!fix.learned, "nothing was learned before the first run");
    let test = o.regression_test.clone().expect("a regression test");
    assert!(
        fix.files_changed.contains(&test.file),
        "{:?} vs {}",
        fix.files_changed,
        test.file
    );
    let v = o.validation.clone().expect("validation");
    assert!(v.failed_before && v.passed_after && v.suite_passed, "{v:?}");
    assert_eq!(o.rollout.as_ref().map(|r| r.final_step), Some(RolloutStep::Promoted));
    // The printed story: every stage, the verdict, and the Outcome as the last line.
    for stage in ["monitor", "diagnoser", "repairer", "rollout", "verifier", "learner"] {
        assert!(text.contains(stage), "{stage} missing from:\n{text}");
    }
    assert!(text.contains("HEALED") && text.contains("if d != 0"), "{text}");
    let last: selfheal_events::Outcome = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    // Floats may differ in the last bit after a JSON round trip (serde_json's default parser).
    assert_eq!(
        (&last.incident_id, last.status, &last.fix, &last.timeline),
        (&o.incident_id, o.status, &o.fix, &o.timeline)
    );
    let report = std::fs::read_to_string(&first.report).unwrap();
    assert!(
        report.contains("**HEALED**") && report.contains("if d != 0"),
        "{report}"
    );

    let mut out = Vec::new();
    let second = demo::run(config(state.path()), Shutdown::new(), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let o2 = second
        .outcome
        .clone()
        .unwrap_or_else(|| panic!("no outcome on the second run; output:\n{text}"));
    assert_eq!(o2.status, OutcomeStatus::Healed, "{}\n{text}", o2.summary);
    assert_eq!(o2.fingerprint, o.fingerprint, "the same failure");
    let fix2 = o2.fix.clone().expect("a fix");
    assert!(fix2.learned, "the second run used the learned fix: {:?}", o2.attempts);
    assert!(text.contains("learned fix tried first"), "{text}");
}
