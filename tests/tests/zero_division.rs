//! The Zero-Division incident for real: every service as its own process (its own binary)
//! against the real Kafka broker and schema registry, the real Python service instrumented
//! with the OpenTelemetry SDK, real git, the real sandbox. Then the same failure again, and
//! the learned fix is used.
//!
//! Needs the workspace binaries (`cargo build --workspace`, done by `scripts/test.sh`) and
//! the Python environment of `scripts/python-env.sh` (`SELFHEAL_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::Duration;

use selfheal_e2e::pipeline::*;
use selfheal_e2e::*;
use selfheal_events::{Codec, Diagnosis, OutcomeStatus, Rollout, RolloutStep};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_division_incident_is_healed_by_seven_processes_and_the_fix_is_learned() {
    if !require_broker().await {
        return;
    }
    let mut stack = Stack::start(&[]).await;
    let (dir, repo, v1, py, prefix, app_port, learner_port) = (
        stack.dir.clone(),
        stack.repo.clone(),
        stack.v1.clone(),
        stack.python.clone(),
        stack.prefix.clone(),
        stack.app_port,
        stack.learner_port,
    );

    let traffic_log = std::fs::File::create(dir.join("traffic.log")).unwrap();
    let mut traffic = Proc {
        name: "traffic".into(),
        child: Command::new(&py)
            .arg(repo_root().join("examples/traffic/traffic.py"))
            .args([
                "--target",
                &format!("http://127.0.0.1:{app_port}"),
                "--rate",
                "20",
                "--zero-share",
                "0.1",
                "--duration",
                "300",
                "--seed",
                "7",
            ])
            .stdout(traffic_log.try_clone().unwrap())
            .stderr(traffic_log)
            .spawn()
            .unwrap(),
        log: dir.join("traffic.log"),
    };

    let codec = Codec::new(&registry_url()).unwrap();
    let outcomes = format!("{prefix}outcomes");
    let first = next_outcome(&codec, &outcomes, &[], Duration::from_secs(180)).await;
    assert_eq!(first.status, OutcomeStatus::Healed, "first outcome: {}", first.summary);
    assert_eq!(first.service, "pricing-api");
    let fix = first.fix.clone().expect("a fix");
    assert!(!fix.learned, "nothing was learned yet");
    assert!(fix.diff.contains("if d != 0"), "the guard: {}", fix.diff);
    let root = first.root_cause.clone().expect("root cause");
    assert_eq!(
        (root.file.as_str(), root.line, root.function.as_str()),
        ("pricing_logic.py", 14, "calc")
    );
    let validation = first.validation.clone().expect("validation");
    assert!(
        validation.failed_before && validation.passed_after && validation.suite_passed,
        "{validation:?}"
    );
    let test = first.regression_test.clone().expect("regression test");
    assert!(first.policy.as_ref().is_some_and(|p| p.allowed));
    let rollout_result = first.rollout.clone().expect("rollout result");
    assert_eq!(rollout_result.final_step, RolloutStep::Promoted);
    assert!(
        first.timeline.first_error_ms.is_some()
            && first.timeline.promotion_ms.is_some()
            && first.timeline.outcome_ms.is_some()
    );

    // The branch holds the fix and the regression test; after promotion main is the fix.
    let branch = fix.branch.clone().expect("branch");
    assert_eq!(branch, format!("selfheal/{}", first.incident_id));
    assert!(git(&repo, &["show", &format!("{branch}:pricing_logic.py")]).contains("if d != 0"));
    assert!(git(&repo, &["show", &format!("{branch}:{}", test.file)]).contains(&test.name));
    assert_eq!(
        git(&repo, &["rev-parse", "main"]),
        fix.commit.clone().unwrap(),
        "promotion moved main to the fix"
    );

    // One Rollout record per step, in order.
    let rollouts: Vec<Rollout> = decode_all(&codec, &format!("{prefix}rollouts"), 50).await;
    let steps: Vec<RolloutStep> = rollouts
        .iter()
        .filter(|r| r.incident_id == first.incident_id)
        .map(|r| r.step)
        .collect();
    assert_eq!(
        steps,
        vec![
            RolloutStep::Approved,
            RolloutStep::CanaryStarted,
            RolloutStep::CanaryAnalyzed,
            RolloutStep::Promoted
        ]
    );

    // The learning store has it, over its HTTP API.
    let knowledge: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{learner_port}/v1/fixes/{}",
        first.fingerprint
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(knowledge["fixes"][0]["strategy"], fix.strategy.as_str(), "{knowledge}");
    assert_eq!(knowledge["fixes"][0]["healed"], 1, "{knowledge}");

    // The same failure again: the buggy version is deployed again (main reset to v1).
    stack.rollout.stop();
    git(&repo, &["reset", "-q", "--hard", &v1]);
    tokio::time::sleep(Duration::from_secs(9)).await; // the monitor's quiet period closes the first incident
    stack.restart_rollout();
    let second = next_outcome(
        &codec,
        &outcomes,
        std::slice::from_ref(&first.incident_id),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(second.fingerprint, first.fingerprint, "the same failure");
    assert_eq!(
        second.status,
        OutcomeStatus::Healed,
        "second outcome: {}",
        second.summary
    );
    let fix2 = second.fix.clone().expect("a fix the second time");
    assert!(fix2.learned, "the learned fix was used: {:?}", second.attempts);
    assert_eq!(fix2.strategy, fix.strategy);
    let diagnoses: Vec<Diagnosis> = decode_all(&codec, &format!("{prefix}diagnoses"), 20).await;
    let d2 = diagnoses
        .iter()
        .find(|d| d.incident_id == second.incident_id)
        .expect("second diagnosis");
    assert!(!d2.known_fixes.is_empty(), "the diagnoser consulted the learning store");
    traffic.stop();
}
