//! Stage tests: every rollout step maps to the right ending; promotion is verified against a fake watch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use selfheal_events::{OutcomeStatus, PatchStatus, RolloutStep};

use super::*;

struct FakeWatch {
    report: WatchReport,
    op: OperationReport,
    asked: Mutex<Vec<(String, String, i64, i64)>>,
}

#[async_trait]
impl FingerprintWatch for FakeWatch {
    async fn occurrences(&self, service: &str, fingerprint: &str, from_ms: i64, to_ms: i64) -> WatchReport {
        self.asked
            .lock()
            .unwrap()
            .push((service.into(), fingerprint.into(), from_ms, to_ms));
        self.report
    }
    async fn operation(&self, _service: &str, _fingerprint: &str, _from_ms: i64, _to_ms: i64) -> OperationReport {
        self.op.clone()
    }
}

fn verifier(report: WatchReport) -> (Verifier, Arc<FakeWatch>) {
    verifier_with(report, OperationReport::default())
}

fn verifier_with(report: WatchReport, op: OperationReport) -> (Verifier, Arc<FakeWatch>) {
    let watch = Arc::new(FakeWatch {
        report,
        op,
        asked: Mutex::new(Vec::new()),
    });
    let config = VerifierConfig {
        window: Duration::from_millis(50),
        settle: Duration::from_millis(10),
        ..Default::default()
    };
    (Verifier::new(watch.clone(), config).unwrap(), watch)
}

fn step(step: RolloutStep) -> Rollout {
    let mut r = selfheal_events::examples::rollout();
    r.step = step;
    r.step_ms = selfheal_core::now_ms();
    r.timeline.promotion_ms = (step == RolloutStep::Promoted).then_some(r.step_ms);
    r
}

fn ctx(offset: i64) -> RecordContext {
    RecordContext {
        topic: "rollouts".into(),
        partition: 0,
        offset,
        ..Default::default()
    }
}

#[tokio::test]
async fn intermediate_steps_emit_nothing() {
    let (v, _) = verifier(WatchReport::default());
    for s in [
        RolloutStep::AwaitingApproval,
        RolloutStep::Approved,
        RolloutStep::CanaryStarted,
        RolloutStep::CanaryAnalyzed,
    ] {
        assert!(v.process(step(s), &ctx(1)).await.unwrap().is_empty(), "{s:?}");
    }
}

#[tokio::test]
async fn final_steps_map_to_statuses() {
    let cases = [
        (RolloutStep::RolledBack, OutcomeStatus::RolledBack),
        (RolloutStep::Rejected, OutcomeStatus::RejectedByHuman),
        (RolloutStep::PolicyDenied, OutcomeStatus::RejectedByPolicy),
        (RolloutStep::Failed, OutcomeStatus::DeployFailed),
    ];
    for (s, expected) in cases {
        let (v, watch) = verifier(WatchReport::default());
        let out = v.process(step(s), &ctx(1)).await.unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, expected, "{s:?}");
        assert!(out[0].verification.is_none());
        assert_eq!(out[0].rollout.as_ref().unwrap().final_step, s);
        assert!(out[0].timeline.outcome_ms.is_some());
        assert!(watch.asked.lock().unwrap().is_empty(), "no telemetry needed for {s:?}");
    }
}

#[tokio::test]
async fn skipped_maps_patch_status() {
    let cases = [
        (PatchStatus::NotLocalized, OutcomeStatus::NotLocalized),
        (PatchStatus::NoFixFound, OutcomeStatus::NoFixFound),
        (PatchStatus::ValidationFailed, OutcomeStatus::ValidationFailed),
        (PatchStatus::PolicyDenied, OutcomeStatus::RejectedByPolicy),
        (PatchStatus::Error, OutcomeStatus::Error),
    ];
    for (ps, expected) in cases {
        let (v, _) = verifier(WatchReport::default());
        let mut r = step(RolloutStep::Skipped);
        r.patch.status = ps;
        let out = v.process(r, &ctx(1)).await.unwrap();
        assert_eq!(out[0].status, expected, "{ps:?}");
        assert!(out[0].rollout.is_none(), "nothing was deployed");
    }
}

#[tokio::test]
async fn promoted_without_recurrence_is_healed_with_verification() {
    let (v, watch) = verifier(WatchReport {
        occurrences: 0,
        requests: 120,
        errors: 0,
    });
    let r = step(RolloutStep::Promoted);
    let promoted = r.step_ms;
    let out = v.process(r.clone(), &ctx(7)).await.unwrap();
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(o.status, OutcomeStatus::Healed);
    assert_eq!(
        o.verification,
        Some(Verification {
            operation: None,
            operation_requests: None,
            min_requests: Some(10),
            window_ms: 50,
            occurrences: 0,
            requests: 120
        })
    );
    assert!(!o.summary.contains("low traffic"), "{}", o.summary);
    let asked = watch.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![(r.service.clone(), r.fingerprint.clone(), promoted, promoted + 50)]
    );
    assert!(o.timeline.outcome_ms.unwrap() >= promoted + 50, "waited for the window");
    // The whole story is carried.
    assert_eq!(o.fix.as_ref().unwrap().commit, r.patch.commit);
    assert_eq!(o.root_cause, r.patch.root_cause);
    assert_eq!(o.regression_test, r.patch.regression_test);
    assert_eq!(o.approval, r.approval);
    assert_eq!(o.rollout.as_ref().unwrap().canary_requests, r.canary_requests);
    assert_eq!(o.timeline.patch_ms, r.timeline.patch_ms);
    assert_eq!(o.exception_type.as_deref(), Some("ZeroDivisionError"));
}

/// No traffic after promotion is no evidence, and no evidence is not a heal (this replaces
/// the known-gap test that pinned the old `Healed` with "low traffic").
#[tokio::test]
async fn too_little_traffic_after_promotion_is_unverified_with_the_window_stated() {
    for requests in [0, 2, 9] {
        let (v, _) = verifier(WatchReport {
            occurrences: 0,
            requests,
            errors: 0,
        });
        let out = v.process(step(RolloutStep::Promoted), &ctx(1)).await.unwrap();
        assert_eq!(out[0].status, OutcomeStatus::Unverified, "{requests} requests");
        let summary = &out[0].summary;
        assert!(summary.contains("in the 0s watch window"), "{summary}");
        assert!(
            summary.contains(&format!("served only {requests} requests there (10 needed)")),
            "{summary}"
        );
        assert_eq!(out[0].verification.as_ref().unwrap().window_ms, 50);
    }
}

#[tokio::test]
async fn healed_needs_the_failing_operation_to_serve_enough_requests() {
    // Busy service, quiet failing route: still no evidence.
    let busy = WatchReport {
        occurrences: 0,
        requests: 500,
        errors: 0,
    };
    let (v, _) = verifier_with(
        busy,
        OperationReport {
            operation: Some("POST /price".into()),
            requests: 3,
        },
    );
    let out = v.process(step(RolloutStep::Promoted), &ctx(1)).await.unwrap();
    assert_eq!(out[0].status, OutcomeStatus::Unverified, "{}", out[0].summary);
    assert!(
        out[0].summary.contains("POST /price served only 3 requests"),
        "{}",
        out[0].summary
    );
    let ver = out[0].verification.clone().unwrap();
    assert_eq!(
        (ver.operation.as_deref(), ver.operation_requests, ver.min_requests),
        (Some("POST /price"), Some(3), Some(10))
    );
    let (v, _) = verifier_with(
        busy,
        OperationReport {
            operation: Some("POST /price".into()),
            requests: 10,
        },
    );
    let out = v.process(step(RolloutStep::Promoted), &ctx(1)).await.unwrap();
    assert_eq!(out[0].status, OutcomeStatus::Healed, "{}", out[0].summary);
    assert!(out[0].summary.contains("10 to POST /price"), "{}", out[0].summary);
}

#[tokio::test]
async fn promoted_with_occurrences_recurred() {
    let (v, _) = verifier(WatchReport {
        occurrences: 4,
        requests: 100,
        errors: 4,
    });
    let out = v.process(step(RolloutStep::Promoted), &ctx(1)).await.unwrap();
    assert_eq!(out[0].status, OutcomeStatus::Recurred);
    assert_eq!(out[0].verification.as_ref().unwrap().occurrences, 4);
}

#[tokio::test]
async fn replay_gives_no_second_outcome_but_a_redo_does() {
    let (v, watch) = verifier(WatchReport {
        occurrences: 0,
        requests: 50,
        errors: 0,
    });
    let r = step(RolloutStep::Promoted);
    let first = v.process(r.clone(), &ctx(3)).await.unwrap();
    assert_eq!(first.len(), 1);
    // The same step again from another offset (a replay): nothing.
    assert!(v.process(r.clone(), &ctx(9)).await.unwrap().is_empty());
    // A later final step of the same incident: nothing either.
    let mut rb = r.clone();
    rb.step = RolloutStep::RolledBack;
    assert!(v.process(rb, &ctx(10)).await.unwrap().is_empty());
    // The runner redoing the very same record after a failed publish: the same Outcome.
    let redo = v.process(r, &ctx(3)).await.unwrap();
    assert_eq!(redo, first);
    assert_eq!(watch.asked.lock().unwrap().len(), 1, "telemetry asked once");
}

#[tokio::test]
async fn state_dir_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = VerifierConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let watch = Arc::new(FakeWatch {
        report: WatchReport::default(),
        op: OperationReport::default(),
        asked: Mutex::new(Vec::new()),
    });
    let r = step(RolloutStep::RolledBack);
    let v1 = Verifier::new(watch.clone(), config.clone()).unwrap();
    assert_eq!(v1.process(r.clone(), &ctx(1)).await.unwrap().len(), 1);
    let v2 = Verifier::new(watch, config).unwrap();
    assert!(v2.process(r, &ctx(2)).await.unwrap().is_empty());
}

#[tokio::test]
async fn incident_without_exception_counts_failed_requests() {
    let (v, _) = verifier(WatchReport {
        occurrences: 0,
        requests: 100,
        errors: 3,
    });
    let mut r = step(RolloutStep::Promoted);
    r.patch.exception_type = None;
    r.patch.root_cause = None;
    let out = v.process(r, &ctx(1)).await.unwrap();
    assert_eq!(out[0].status, OutcomeStatus::Recurred);
    assert_eq!(out[0].verification.as_ref().unwrap().occurrences, 3);
    // With an exception, other failures do not count as the incident recurring.
    let (v, _) = verifier(WatchReport {
        occurrences: 0,
        requests: 100,
        errors: 3,
    });
    let out = v.process(step(RolloutStep::Promoted), &ctx(1)).await.unwrap();
    assert_eq!(out[0].status, OutcomeStatus::Healed);
    assert!(out[0].summary.contains("3 other failed requests"), "{}", out[0].summary);
}
