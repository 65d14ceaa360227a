//! Stage tests with a fake deployer and fake error rates: every approval path and ending.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use selfheal_catalog::{Autonomy, Catalog, ServiceEntry};
use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{
    Approval, ApprovalDecision, ApprovalMode, Patch, PatchStatus, Rollout as RolloutRecord, RolloutStep,
};
use selfheal_governance::PolicyEngine;
use selfheal_observe::Sample;

use crate::*;

#[derive(Default)]
struct FakeDeployer {
    calls: Mutex<Vec<String>>,
    fail_canary: bool,
}

#[async_trait]
impl Deployer for FakeDeployer {
    fn name(&self) -> &'static str {
        "local-process"
    }
    async fn stable_version(&self, _svc: &ServiceEntry) -> Result<String, DeployError> {
        Ok("a1b2c3d".into())
    }
    async fn start_canary(&self, svc: &ServiceEntry, patch: &Patch) -> Result<CanaryHandle, DeployError> {
        self.calls.lock().unwrap().push("start_canary".into());
        if self.fail_canary {
            return Err(DeployError::Unhealthy("no answer on /healthz".into()));
        }
        let commit = patch.commit.clone().unwrap();
        Ok(CanaryHandle {
            service: svc.name.clone(),
            incident_id: patch.incident_id.clone(),
            version: commit[..7].to_string(),
            commit,
            address: "127.0.0.1:8082".into(),
        })
    }
    async fn set_canary_weight(&self, _svc: &ServiceEntry, _c: &CanaryHandle, percent: u8) -> Result<(), DeployError> {
        self.calls.lock().unwrap().push(format!("weight {percent}"));
        Ok(())
    }
    async fn promote(&self, _svc: &ServiceEntry, _c: &CanaryHandle) -> Result<(), DeployError> {
        self.calls.lock().unwrap().push("promote".into());
        Ok(())
    }
    async fn rollback(&self, _svc: &ServiceEntry, _c: &CanaryHandle) -> Result<(), DeployError> {
        self.calls.lock().unwrap().push("rollback".into());
        Ok(())
    }
}

/// Fixed samples per version.
struct FixedSamples(HashMap<String, Sample>);

#[async_trait]
impl CanarySamples for FixedSamples {
    async fn sample(&self, _service: &str, version: &str, _since: i64) -> Sample {
        self.0.get(version).cloned().unwrap_or_default()
    }
}

/// `errors` of `total` requests on one route, successes taking 10–14 ms.
fn counts(errors: u64, total: u64) -> Sample {
    let mut s = Sample {
        requests: total,
        errors,
        latencies_ms: (0..total - errors).map(|i| 10.0 + (i % 5) as f64).collect(),
        ..Sample::default()
    };
    s.routes.insert(
        "/price".into(),
        selfheal_observe::RouteCounts {
            requests: total,
            errors,
        },
    );
    s
}

struct Fixture {
    stage: Rollout,
    deployer: Arc<FakeDeployer>,
    _dir: tempfile::TempDir,
}

fn fixture(autonomy: Autonomy, canary: Sample, deployer: FakeDeployer, freeze: bool) -> Fixture {
    let mut svc = ServiceEntry::new(
        "pricing-api",
        "/nonexistent/pricing-api",
        "python",
        vec!["pytest".into()],
    );
    svc.autonomy = autonomy;
    svc.deploy
        .insert("canary_traffic_percent".into(), toml::Value::Integer(25));
    let catalog = Arc::new(Catalog::from_services([svc]).unwrap());
    let policy = Arc::new(PolicyEngine::embedded().unwrap());
    let deployer = Arc::new(deployer);
    let mut counts = HashMap::new();
    counts.insert("a1b2c3d".to_string(), self::counts(10, 100));
    counts.insert("e4f5a6b".to_string(), canary);
    let dir = tempfile::tempdir().unwrap();
    let mut config = RolloutConfig::new(dir.path());
    config.analysis = AnalysisConfig {
        min_window: Duration::from_millis(10),
        max_window: Duration::from_millis(50),
        poll: Duration::from_millis(5),
        min_requests: 20,
        ..AnalysisConfig::default()
    };
    config.change_freeze = freeze;
    let stage = Rollout::new(
        catalog,
        policy,
        deployer.clone(),
        Arc::new(FixedSamples(counts)),
        config,
    )
    .unwrap();
    Fixture {
        stage,
        deployer,
        _dir: dir,
    }
}

fn healthy() -> Sample {
    counts(0, 30)
}

fn ctx() -> RecordContext {
    RecordContext::default()
}

fn steps(out: &[RolloutRecord]) -> Vec<RolloutStep> {
    out.iter().map(|r| r.step).collect()
}

fn approval(approved: bool) -> Approval {
    Approval {
        incident_id: selfheal_events::examples::patch().incident_id,
        decision: ApprovalDecision {
            approved,
            by: "alice".into(),
            mode: ApprovalMode::Human,
            at_ms: 1_795_720_010_000,
            reason: Some("looks right".into()),
            channel: Some("cli".into()),
        },
    }
}

#[tokio::test]
async fn auto_approval_deploys_and_promotes_with_every_step() {
    let f = fixture(Autonomy::Auto, healthy(), FakeDeployer::default(), false);
    let patch = selfheal_events::examples::patch();
    let out = f.stage.process(patch.clone(), &ctx()).await.unwrap();
    assert_eq!(
        steps(&out),
        [
            RolloutStep::Approved,
            RolloutStep::CanaryStarted,
            RolloutStep::CanaryAnalyzed,
            RolloutStep::Promoted
        ]
    );
    let approval = out[0].approval.clone().unwrap();
    assert!(approval.approved);
    assert_eq!(
        (approval.by.as_str(), approval.mode),
        ("catalog", ApprovalMode::Automatic)
    );
    assert!(out[0].timeline.approval_ms.is_some() && out[0].timeline.canary_ms.is_none());
    assert_eq!(out[1].traffic_percent, 25);
    assert!(out[1].timeline.canary_ms.is_some());
    let last = out.last().unwrap();
    assert!(last.timeline.promotion_ms.is_some() && last.timeline.rollback_ms.is_none());
    assert_eq!(last.canary_error_rate, Some(0.0));
    assert_eq!(last.stable_error_rate, Some(0.1));
    assert_eq!((last.canary_requests, last.stable_requests), (30, 100));
    assert_eq!(last.stable_version.as_deref(), Some("a1b2c3d"));
    assert_eq!(last.canary_version.as_deref(), Some("e4f5a6b"));
    assert!(
        out.iter()
            .all(|r| r.patch == patch && r.incident_id == patch.incident_id)
    );
    assert!(out.windows(2).all(|w| w[0].step_ms <= w[1].step_ms));
    assert_eq!(last.timeline.patch_ms, patch.timeline.patch_ms);
    let report = last
        .canary_report
        .as_ref()
        .expect("the canary report travels on the record");
    assert_eq!(report.decision, "promote");
    let errors = report.metrics.iter().find(|m| m.metric == "error-rate").unwrap();
    assert_eq!((errors.canary_samples, errors.stable_samples), (30, 100));
    assert_eq!(
        (errors.test.as_str(), errors.verdict.as_str()),
        ("fisher-exact", "pass")
    );
    assert!((errors.effect + 0.1).abs() < 1e-9 && errors.bound == 0.01);
    let latency = report.metrics.iter().find(|m| m.metric == "latency").unwrap();
    assert_eq!(latency.canary_latency_ms.as_ref().map(Vec::len), Some(3), "p50/p95/p99");
    assert_eq!(
        *f.deployer.calls.lock().unwrap(),
        ["start_canary", "weight 25", "promote"]
    );

    // A replayed patch does not deploy twice: it repeats the final step only.
    let again = f.stage.process(patch, &ctx()).await.unwrap();
    assert_eq!(steps(&again), [RolloutStep::Promoted]);
    assert_eq!(f.deployer.calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn worse_canary_is_rolled_back() {
    let f = fixture(Autonomy::Auto, counts(10, 30), FakeDeployer::default(), false);
    let out = f
        .stage
        .process(selfheal_events::examples::patch(), &ctx())
        .await
        .unwrap();
    assert_eq!(steps(&out).last(), Some(&RolloutStep::RolledBack));
    let last = out.last().unwrap();
    assert!(last.timeline.rollback_ms.is_some() && last.timeline.promotion_ms.is_none());
    assert!(last.detail.contains("worse"), "{}", last.detail);
    assert_eq!(last.traffic_percent, 0);
    assert_eq!(
        *f.deployer.calls.lock().unwrap(),
        ["start_canary", "weight 25", "rollback"]
    );
}

#[tokio::test]
async fn canary_without_traffic_is_held_for_a_person_not_rolled_back() {
    for (approved, ending, call) in [
        (true, RolloutStep::Promoted, "promote"),
        (false, RolloutStep::RolledBack, "rollback"),
    ] {
        let f = fixture(Autonomy::Auto, counts(0, 3), FakeDeployer::default(), false);
        let patch = selfheal_events::examples::patch();
        let out = f.stage.process(patch.clone(), &ctx()).await.unwrap();
        let last = out.last().unwrap();
        assert_eq!(last.step, RolloutStep::CanaryHeld, "{}", last.detail);
        assert!(last.detail.contains("too few"), "{}", last.detail);
        assert!(last.detail.contains("selfheal approve"), "{}", last.detail);
        let report = last.canary_report.as_ref().unwrap();
        assert_eq!(report.decision, "hold");
        assert_eq!(report.verdict, "inconclusive");
        // 10 ms steps in a 50 ms analysis: measured once, extended four times, then held.
        assert_eq!(report.metrics.iter().map(|m| m.measurement).max(), Some(5));
        assert_eq!(
            *f.deployer.calls.lock().unwrap(),
            ["start_canary", "weight 25"],
            "no rollback"
        );
        assert_eq!(
            f.stage.pending().unwrap(),
            vec![patch.clone()],
            "waits in the pending store"
        );

        let mut decision = approval(approved);
        decision.incident_id = patch.incident_id.clone();
        let out = f.stage.approvals().process(decision, &ctx()).await.unwrap();
        assert_eq!(steps(&out), [ending]);
        assert_eq!(f.deployer.calls.lock().unwrap().last().map(String::as_str), Some(call));
        assert_eq!(
            f.deployer
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| *c == "start_canary")
                .count(),
            1,
            "the held canary, not a new one"
        );
        assert_eq!(out[0].approval.as_ref().unwrap().by, "alice");
        assert!(out[0].canary_report.is_some());
        assert!(f.stage.pending().unwrap().is_empty());
    }
}

#[tokio::test]
async fn manual_waits_then_approval_deploys() {
    let f = fixture(Autonomy::Manual, healthy(), FakeDeployer::default(), false);
    let patch = selfheal_events::examples::patch();
    let out = f.stage.process(patch.clone(), &ctx()).await.unwrap();
    assert_eq!(steps(&out), [RolloutStep::AwaitingApproval]);
    assert!(
        out[0]
            .detail
            .contains(&format!("selfheal approve {}", patch.incident_id))
    );
    assert!(f.deployer.calls.lock().unwrap().is_empty());
    assert_eq!(f.stage.pending().unwrap(), vec![patch.clone()]);

    let approvals = f.stage.approvals();
    let out = approvals.process(approval(true), &ctx()).await.unwrap();
    assert_eq!(
        steps(&out),
        [
            RolloutStep::Approved,
            RolloutStep::CanaryStarted,
            RolloutStep::CanaryAnalyzed,
            RolloutStep::Promoted
        ]
    );
    assert_eq!(out[0].approval.as_ref().unwrap().by, "alice");
    assert_eq!(out[0].approval.as_ref().unwrap().mode, ApprovalMode::Human);
    assert!(f.stage.pending().unwrap().is_empty());
    // A repeated approval or patch repeats the end, never deploys again.
    assert_eq!(
        steps(&approvals.process(approval(true), &ctx()).await.unwrap()),
        [RolloutStep::Promoted]
    );
    assert_eq!(
        steps(&f.stage.process(patch, &ctx()).await.unwrap()),
        [RolloutStep::Promoted]
    );
    assert_eq!(
        f.deployer
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c == "start_canary")
            .count(),
        1
    );
}

#[tokio::test]
async fn pending_patch_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let patch = selfheal_events::examples::patch();
    let store = FilePendingStore::open(dir.path()).unwrap();
    store.put(&patch).unwrap();
    let reopened = FilePendingStore::open(dir.path()).unwrap();
    assert_eq!(reopened.list().unwrap(), vec![patch]);
}

#[tokio::test]
async fn rejection_ends_without_deploying() {
    let f = fixture(Autonomy::Manual, healthy(), FakeDeployer::default(), false);
    f.stage
        .process(selfheal_events::examples::patch(), &ctx())
        .await
        .unwrap();
    let out = f.stage.approvals().process(approval(false), &ctx()).await.unwrap();
    assert_eq!(steps(&out), [RolloutStep::Rejected]);
    let decision = out[0].approval.clone().unwrap();
    assert!(!decision.approved);
    assert_eq!(out[0].timeline.approval_ms, Some(decision.at_ms));
    assert!(out[0].detail.contains("alice"));
    assert!(f.deployer.calls.lock().unwrap().is_empty());
    assert!(f.stage.pending().unwrap().is_empty());
}

#[tokio::test]
async fn approval_for_unknown_incident_is_invalid() {
    let f = fixture(Autonomy::Manual, healthy(), FakeDeployer::default(), false);
    let err = f.stage.approvals().process(approval(true), &ctx()).await.unwrap_err();
    assert!(matches!(err, StageError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn policy_denies_a_patch_the_patch_policy_refused() {
    for autonomy in [Autonomy::Auto, Autonomy::Manual] {
        let f = fixture(autonomy, healthy(), FakeDeployer::default(), false);
        let mut patch = selfheal_events::examples::patch();
        patch.policy.as_mut().unwrap().allowed = false;
        let out = f.stage.process(patch, &ctx()).await.unwrap();
        assert_eq!(steps(&out), [RolloutStep::PolicyDenied], "{autonomy:?}");
        assert!(out[0].detail.contains("patch-policy-denied"), "{}", out[0].detail);
        assert_eq!(out[0].approval.as_ref().unwrap().mode, ApprovalMode::Policy);
        assert!(f.deployer.calls.lock().unwrap().is_empty());
        assert!(f.stage.pending().unwrap().is_empty());
    }
}

#[tokio::test]
async fn change_freeze_denies_a_human_approval() {
    let f = fixture(Autonomy::Manual, healthy(), FakeDeployer::default(), true);
    // The freeze is known up front: nobody is asked.
    let out = f
        .stage
        .process(selfheal_events::examples::patch(), &ctx())
        .await
        .unwrap();
    assert_eq!(steps(&out), [RolloutStep::PolicyDenied]);
    assert!(out[0].detail.contains("change-freeze"), "{}", out[0].detail);
}

#[tokio::test]
async fn patch_not_proposed_is_skipped() {
    let f = fixture(Autonomy::Auto, healthy(), FakeDeployer::default(), false);
    let mut patch = selfheal_events::examples::patch();
    patch.status = PatchStatus::NotLocalized;
    let out = f.stage.process(patch.clone(), &ctx()).await.unwrap();
    assert_eq!(steps(&out), [RolloutStep::Skipped]);
    assert_eq!(out[0].patch.status, PatchStatus::NotLocalized);
    assert!(f.deployer.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn canary_that_does_not_start_fails_cleanly() {
    let f = fixture(
        Autonomy::Auto,
        healthy(),
        FakeDeployer {
            fail_canary: true,
            ..Default::default()
        },
        false,
    );
    let out = f
        .stage
        .process(selfheal_events::examples::patch(), &ctx())
        .await
        .unwrap();
    assert_eq!(steps(&out), [RolloutStep::Approved, RolloutStep::Failed]);
    assert!(out[1].detail.contains("keeps serving"), "{}", out[1].detail);
}

#[tokio::test]
async fn unknown_service_fails_and_hostile_id_is_invalid() {
    let f = fixture(Autonomy::Auto, healthy(), FakeDeployer::default(), false);
    let mut patch = selfheal_events::examples::patch();
    patch.service = "ghost".into();
    let out = f.stage.process(patch.clone(), &ctx()).await.unwrap();
    assert_eq!(steps(&out), [RolloutStep::Failed]);
    patch.incident_id = "../x".into();
    assert!(matches!(
        f.stage.process(patch, &ctx()).await,
        Err(StageError::Invalid(_))
    ));
}
