//! Tests of the learner over a real RocksDB database in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use selfheal_events::{OutcomeStatus, examples};
use tower::ServiceExt;

use super::*;

fn outcome(incident: &str, fingerprint: &str, strategy: &str, status: OutcomeStatus, outcome_ms: i64) -> Outcome {
    let mut o = examples::outcome();
    o.incident_id = incident.to_string();
    o.fingerprint = fingerprint.to_string();
    o.status = status;
    if let Some(fix) = o.fix.as_mut() {
        fix.strategy = strategy.to_string();
        fix.diff = format!("diff of {incident}");
    }
    o.timeline.first_error_ms = Some(outcome_ms - 20_000);
    o.timeline.outcome_ms = Some(outcome_ms);
    o
}

fn open(dir: &tempfile::TempDir) -> Learner {
    Learner::open(dir.path().join("learner.db")).unwrap()
}

#[test]
fn stores_the_example_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    let o = examples::outcome();
    assert_eq!(learner.record(&o).unwrap(), Recorded::New);
    let fixes = learner.fixes_for(&o.fingerprint);
    assert_eq!(fixes.len(), 1);
    let f = &fixes[0];
    assert_eq!(f.strategy, "python.zero-division-guard");
    assert_eq!((f.healed, f.attempts), (1, 1));
    assert_eq!(f.median_heal_secs, Some(26.0));
    assert_eq!(f.last_incident_id.as_deref(), Some(o.incident_id.as_str()));
    assert_eq!(f.last_diff.as_deref(), Some(o.fix.as_ref().unwrap().diff.as_str()));
    assert_eq!(learner.outcome(&o.incident_id).unwrap(), Some(o));
    assert!(learner.fixes_for("unknown").is_empty());
}

#[test]
fn replayed_outcome_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    let o = outcome("i1", "fp", "s", OutcomeStatus::Healed, 100_000);
    assert_eq!(learner.record(&o).unwrap(), Recorded::New);
    assert_eq!(learner.record(&o).unwrap(), Recorded::Duplicate);
    assert_eq!(learner.record(&o).unwrap(), Recorded::Duplicate);
    let f = &learner.fixes_for("fp")[0];
    assert_eq!((f.healed, f.attempts), (1, 1));
    assert_eq!(f.median_heal_secs, Some(20.0));
}

#[test]
fn corrected_outcome_replaces_the_old_contribution() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    learner
        .record(&outcome("i1", "fp", "s", OutcomeStatus::Healed, 100_000))
        .unwrap();
    let recurred = outcome("i1", "fp", "s", OutcomeStatus::Recurred, 100_000);
    assert_eq!(learner.record(&recurred).unwrap(), Recorded::Replaced);
    let f = &learner.fixes_for("fp")[0];
    assert_eq!((f.healed, f.attempts), (0, 1));
    assert_eq!(f.median_heal_secs, None);
    assert_eq!(learner.outcome("i1").unwrap().unwrap().status, OutcomeStatus::Recurred);
}

#[test]
fn ranks_by_wilson_bound_then_healed_then_recency() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    let mut n = 0;
    let mut rec = |strategy: &str, status: OutcomeStatus, ms: i64| {
        n += 1;
        learner
            .record(&outcome(&format!("i{n}"), "fp", strategy, status, ms))
            .unwrap();
    };
    // "steady": 4 of 5 healed. "lucky": 1 of 1. "bad": 0 of 2. "lucky-recent": 1 of 1, newer.
    for _ in 0..4 {
        rec("steady", OutcomeStatus::Healed, 1_000_000);
    }
    rec("steady", OutcomeStatus::RolledBack, 1_000_000);
    rec("lucky", OutcomeStatus::Healed, 1_000_000);
    rec("bad", OutcomeStatus::RolledBack, 1_000_000);
    rec("bad", OutcomeStatus::Recurred, 1_000_000);
    rec("lucky-recent", OutcomeStatus::Healed, 2_000_000);
    // Outcomes that never deployed the fix are not attempts.
    rec("rejected", OutcomeStatus::RejectedByHuman, 3_000_000);

    let fixes = learner.fixes_for("fp");
    let order: Vec<&str> = fixes.iter().map(|f| f.strategy.as_str()).collect();
    assert_eq!(order, ["steady", "lucky-recent", "lucky", "bad"]);
    assert_eq!((fixes[0].healed, fixes[0].attempts), (4, 5));
    assert_eq!((fixes[3].healed, fixes[3].attempts), (0, 2));
    // The stored outcome of the rejected incident is still answerable.
    assert!(learner.outcome(&format!("i{}", 10)).unwrap().is_some());
}

#[test]
fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let learner = open(&dir);
        learner
            .record(&outcome("i1", "fp", "s", OutcomeStatus::Healed, 100_000))
            .unwrap();
        learner
            .record(&outcome("i2", "fp", "s", OutcomeStatus::Healed, 200_000))
            .unwrap();
    }
    let learner = open(&dir);
    let f = &learner.fixes_for("fp")[0];
    assert_eq!((f.healed, f.attempts), (2, 2));
    assert_eq!(f.last_incident_id.as_deref(), Some("i2"));
    // Idempotency survives the restart too.
    assert_eq!(
        learner
            .record(&outcome("i1", "fp", "s", OutcomeStatus::Healed, 100_000))
            .unwrap(),
        Recorded::Duplicate
    );
    assert_eq!(learner.fixes_for("fp")[0].attempts, 2);
}

#[test]
fn the_last_diff_offered_is_the_last_that_healed() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    learner
        .record(&outcome("good", "fp", "s", OutcomeStatus::Healed, 100_000))
        .unwrap();
    learner
        .record(&outcome("later-bad", "fp", "s", OutcomeStatus::RolledBack, 200_000))
        .unwrap();
    let f = &learner.fixes_for("fp")[0];
    assert_eq!(f.last_incident_id.as_deref(), Some("good"));
    assert_eq!(f.last_diff.as_deref(), Some("diff of good"));
}

#[test]
fn outcome_without_incident_id_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    let mut o = examples::outcome();
    o.incident_id = String::new();
    assert!(matches!(learner.record(&o), Err(LearnerError::Invalid(_))));
}

#[tokio::test]
async fn stage_returns_no_records_and_maps_invalid_to_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    let ctx = RecordContext::default();
    let out = learner.process(examples::outcome(), &ctx).await.unwrap();
    assert!(out.is_empty());
    assert_eq!(learner.fixes_for(&examples::outcome().fingerprint).len(), 1);
    let mut bad = examples::outcome();
    bad.incident_id = " ".into();
    assert!(matches!(learner.process(bad, &ctx).await, Err(StageError::Invalid(_))));
}

async fn get(router: axum::Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let resp = router
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn http_api_answers_fixes_and_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    let o = examples::outcome();
    learner.record(&o).unwrap();
    learner
        .record(&outcome("i2", "other-fp", "s", OutcomeStatus::RolledBack, 5_000))
        .unwrap();
    let router = learner.router(Health::new(), Metrics::shared());

    let (status, body) = get(router.clone(), &format!("/v1/fixes/{}", o.fingerprint)).await;
    assert_eq!(status, StatusCode::OK);
    let parsed: FingerprintFixes = serde_json::from_value(body).unwrap();
    assert_eq!(parsed.fingerprint, o.fingerprint);
    assert_eq!(parsed.fixes, learner.fixes_for(&o.fingerprint));
    assert_eq!(parsed.fixes[0].strategy, "python.zero-division-guard");

    let (status, body) = get(router.clone(), "/v1/fixes/never-seen").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"fingerprint": "never-seen", "fixes": []}));

    let (status, body) = get(router.clone(), "/v1/fixes").await;
    assert_eq!(status, StatusCode::OK);
    let all: AllFixes = serde_json::from_value(body).unwrap();
    let fps: Vec<&str> = all.fingerprints.iter().map(|f| f.fingerprint.as_str()).collect();
    assert_eq!(fps, [o.fingerprint.as_str(), "other-fp"]);

    let (status, body) = get(router.clone(), &format!("/v1/outcomes/{}", o.incident_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_value::<Outcome>(body).unwrap(), o);

    let (status, _) = get(router.clone(), "/v1/outcomes/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let resp = router
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A healed template fix of a KeyError in `service`, at its own fingerprint.
fn key_guard_outcome(incident: &str, service: &str, fingerprint: &str, params: Option<&[(&str, &str)]>) -> Outcome {
    let mut o = outcome(
        incident,
        fingerprint,
        "python.key-guard",
        OutcomeStatus::Healed,
        100_000,
    );
    o.service = service.to_string();
    o.exception_type = Some("KeyError".to_string());
    if let Some(fix) = o.fix.as_mut() {
        fix.params = params.map(|p| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }
    o
}

#[test]
fn a_template_that_healed_one_service_is_offered_for_the_same_crash_class_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    let params = [("key", "currency"), ("error", "ValueError")];
    learner
        .record(&key_guard_outcome("i1", "pricing-api", "fp-pricing", Some(&params)))
        .unwrap();

    // Another service, another site, another fingerprint, the same crash class.
    let fixes = learner.try_fixes_for_incident("fp-orders", Some("KeyError")).unwrap();
    assert_eq!(fixes.len(), 1, "{fixes:?}");
    let f = &fixes[0];
    assert_eq!(f.strategy, "python.key-guard");
    assert_eq!(f.scope.as_deref(), Some("crash-class"));
    assert_eq!(f.service.as_deref(), Some("pricing-api"));
    assert_eq!(
        f.params.as_ref().and_then(|p| p.get("key")).map(String::as_str),
        Some("currency")
    );
    assert_eq!(
        f.last_diff, None,
        "a diff made at another site is never offered elsewhere"
    );
    // Not for another crash class, and not without the exception type.
    assert!(
        learner
            .try_fixes_for_incident("fp-orders", Some("IndexError"))
            .unwrap()
            .is_empty()
    );
    assert!(learner.try_fixes_for_incident("fp-orders", None).unwrap().is_empty());

    // The fingerprint's own fixes come first, and a strategy is listed once.
    let own = learner.try_fixes_for_incident("fp-pricing", Some("KeyError")).unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].scope.as_deref(), Some("fingerprint"));
    assert!(own[0].last_diff.is_some());

    // The API answers the same with ?exception_type=.
    let app = learner.api_router();
    let response = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let r = app
            .oneshot(
                Request::get("/v1/fixes/fp-orders?exception_type=KeyError")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap()
    });
    let body: FingerprintFixes = serde_json::from_slice(&response).unwrap();
    assert_eq!(body.fixes, fixes);
}

#[test]
fn fixes_that_are_not_templates_stay_with_their_fingerprint_and_corrections_undo_the_class() {
    let dir = tempfile::tempdir().unwrap();
    let learner = open(&dir);
    // A model-written fix carries no template parameters: specific to its site.
    learner
        .record(&key_guard_outcome("i1", "pricing-api", "fp-a", None))
        .unwrap();
    assert!(
        learner
            .try_fixes_for_incident("fp-b", Some("KeyError"))
            .unwrap()
            .is_empty()
    );

    // A template fix counts for the class; corrected to rolled back, the class forgets the heal.
    let healed = key_guard_outcome("i2", "pricing-api", "fp-a", Some(&[("key", "sku")]));
    learner.record(&healed).unwrap();
    assert_eq!(
        learner.try_fixes_for_incident("fp-b", Some("KeyError")).unwrap().len(),
        1
    );
    let mut rolled_back = healed.clone();
    rolled_back.status = OutcomeStatus::RolledBack;
    assert_eq!(learner.record(&rolled_back).unwrap(), Recorded::Replaced);
    assert!(
        learner
            .try_fixes_for_incident("fp-b", Some("KeyError"))
            .unwrap()
            .is_empty(),
        "a class template is offered only once it healed somewhere"
    );
}
