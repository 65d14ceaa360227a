//! Stage tests against a real git repository holding a copy of `examples/pricing-api`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use selfheal_catalog::ServiceEntry;
use selfheal_events::{ExceptionInfo, examples};

use super::*;

const PRICING_API: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pricing-api");

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=selfheal-test",
            "-c",
            "user.email=test@selfheal.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
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

/// A fresh git repository with the pricing-api sources, one commit; returns its HEAD.
fn pricing_repo(dir: &Path) -> String {
    for rel in [
        "app.py",
        "pricing_logic.py",
        "telemetry.py",
        "requirements.txt",
        "pytest.ini",
        "tests/test_pricing_logic.py",
    ] {
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(PRICING_API).join(rel), &to).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "pricing-api v1"]);
    git(dir, &["rev-parse", "HEAD"])
}

fn catalog(repo: &Path) -> Catalog {
    Catalog::from_services([ServiceEntry::new(
        "pricing-api",
        repo.to_path_buf(),
        "python",
        vec!["pytest".into()],
    )])
    .unwrap()
}

struct FakeKnowledge(Result<Vec<KnownFix>, String>);

#[async_trait]
impl KnowledgeClient for FakeKnowledge {
    async fn known_fixes(
        &self,
        _fingerprint: &str,
        _exception_type: Option<&str>,
    ) -> Result<Vec<KnownFix>, DiagnoserError> {
        self.0.clone().map_err(DiagnoserError::KnowledgeUnavailable)
    }
}

fn diagnoser(repo: &Path, knowledge: FakeKnowledge) -> Diagnoser {
    Diagnoser::new(catalog(repo), Arc::new(knowledge))
}

fn nothing_known() -> FakeKnowledge {
    FakeKnowledge(Ok(Vec::new()))
}

async fn run(d: &Diagnoser, anomaly: Anomaly) -> Diagnosis {
    let mut out = d.process(anomaly, &RecordContext::default()).await.unwrap();
    assert_eq!(out.len(), 1, "exactly one diagnosis per anomaly");
    out.remove(0)
}

fn all_evidence(d: &Diagnosis) -> Vec<String> {
    d.hypotheses
        .iter()
        .flat_map(|h| h.evidence.iter().map(|e| format!("{}: {}", e.kind, e.detail)))
        .collect()
}

#[tokio::test]
async fn localizes_the_zero_division_incident() {
    let dir = tempfile::tempdir().unwrap();
    let head = pricing_repo(dir.path());
    let anomaly = examples::anomaly();
    let d = run(&diagnoser(dir.path(), nothing_known()), anomaly.clone()).await;

    assert_eq!(d.status, DiagnosisStatus::Localized, "{}", d.summary);
    assert_eq!(
        d.summary,
        "pricing_logic.py:14 in calc — division by zero on `d` (confidence 0.94)"
    );
    assert_eq!(d.runtime.as_deref(), Some("python"));
    // The example's version a1b2c3d is not a commit of this repository: HEAD was read.
    assert_eq!(d.commit.as_deref(), Some(head.as_str()));
    let rc = d.root_cause.as_ref().unwrap();
    assert_eq!(
        (rc.file.as_str(), rc.line, rc.function.as_str()),
        ("pricing_logic.py", 14, "calc")
    );
    assert_eq!(rc.exception_type, "ZeroDivisionError");
    assert_eq!(rc.commit.as_deref(), Some(head.as_str()));
    let snippet = rc.code_snippet.as_deref().unwrap();
    assert!(snippet.contains("> 14 | def calc(p, d): return p / d"), "{snippet}");
    assert!(snippet.contains("  11 | "), "three lines before: {snippet}");
    assert_eq!(snippet.lines().count(), 7, "three lines on each side: {snippet}");
    assert!(snippet.lines().last().unwrap().starts_with("  17 |"), "{snippet}");

    let top = &d.hypotheses[0];
    assert_eq!(top.rank, 1);
    assert_eq!(top.category, "division-by-zero");
    assert_eq!(top.source, HypothesisSource::Rule);
    assert!(
        top.summary.starts_with("divisor `d` is zero for some inputs"),
        "{}",
        top.summary
    );
    assert!(top.summary.contains("pricing.discount=0.0"));
    assert_eq!(
        (top.file.as_deref(), top.line, top.function.as_deref()),
        (Some("pricing_logic.py"), Some(14), Some("calc"))
    );
    assert!(d.confidence >= 0.9 && d.confidence == top.confidence);
    let ev = all_evidence(&d);
    for want in [
        "failing_spans: 41 of 418 requests failed (9.8%)",
        "frame: innermost in-app frame pricing_logic.py:14 in calc",
        "input: pricing.discount=0.0 in 1 of 1 sampled failing requests",
        "rule: ZeroDivisionError → division-by-zero",
        "version: service version a1b2c3d is not a commit of the repository",
        "learned: no fix remembered",
    ] {
        assert!(ev.iter().any(|e| e.starts_with(want)), "missing {want:?} in {ev:#?}");
    }

    let files: Vec<&str> = d.frames.iter().map(|f| f.file.as_deref().unwrap()).collect();
    assert_eq!(
        files,
        ["/srv/pricing-api/app.py", "/srv/pricing-api/pricing_logic.py"],
        "outermost first"
    );
    assert!(d.frames.iter().all(|f| f.in_app));
    assert_eq!(d.exception, anomaly.exception);
    assert_eq!(d.sample_inputs, anomaly.sample_inputs);
    assert_eq!(d.timeline.first_error_ms, anomaly.timeline.first_error_ms);
    assert_eq!(d.timeline.anomaly_ms, anomaly.timeline.anomaly_ms);
    assert!(d.timeline.diagnosis_ms.is_some());
    assert_eq!(
        (d.incident_id.as_str(), d.fingerprint.as_str()),
        (anomaly.incident_id.as_str(), anomaly.fingerprint.as_str())
    );
    assert!(d.known_fixes.is_empty());
}

#[tokio::test]
async fn reads_the_deployed_commit_when_the_version_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = pricing_repo(dir.path());
    // A later commit moves calc down two lines; the deployed v1 still has it on line 14.
    let path = dir.path().join("pricing_logic.py");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("# moved\n# down\n{text}")).unwrap();
    git(dir.path(), &["commit", "-q", "-am", "move calc"]);

    let mut anomaly = examples::anomaly();
    anomaly.service_version = Some(v1[..7].to_string());
    let d = run(&diagnoser(dir.path(), nothing_known()), anomaly).await;
    assert_eq!(d.status, DiagnosisStatus::Localized);
    assert_eq!(d.commit.as_deref(), Some(v1.as_str()));
    let snippet = d.root_cause.clone().unwrap().code_snippet.unwrap();
    assert!(snippet.contains("> 14 | def calc(p, d): return p / d"), "{snippet}");
    assert!(
        all_evidence(&d)
            .iter()
            .any(|e| e.starts_with(&format!("version: service version {} is commit {v1}", &v1[..7])))
    );
}

#[tokio::test]
async fn unknown_service_says_so() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let mut anomaly = examples::anomaly();
    anomaly.service = "billing".into();
    let d = run(&diagnoser(dir.path(), nothing_known()), anomaly).await;
    assert_eq!(d.status, DiagnosisStatus::UnknownService);
    assert!(
        d.summary.contains("`billing` is not in the service catalog"),
        "{}",
        d.summary
    );
    assert!(d.summary.contains("likely division by zero"), "{}", d.summary);
    assert!(d.root_cause.is_none() && d.repository.is_none() && d.commit.is_none());
    assert_eq!(d.confidence, 0.0);
    // The trace was still parsed, for the reader.
    assert_eq!(d.frames.len(), 2);
    assert!(d.hypotheses[0].file.is_none());
}

#[tokio::test]
async fn missing_repository_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("does-not-exist");
    let d = run(&diagnoser(&gone, nothing_known()), examples::anomaly()).await;
    assert_eq!(d.status, DiagnosisStatus::RepositoryMissing);
    assert!(d.summary.contains("does not exist"), "{}", d.summary);
    assert_eq!(d.repository.as_deref(), Some(gone.display().to_string().as_str()));
    assert!(d.root_cause.is_none());
}

#[tokio::test]
async fn a_directory_that_is_not_a_repository_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pricing_logic.py"), "def calc(p, d): return p / d\n").unwrap();
    let d = run(&diagnoser(dir.path(), nothing_known()), examples::anomaly()).await;
    assert_eq!(d.status, DiagnosisStatus::RepositoryMissing);
    assert!(d.summary.contains("not a git repository"), "{}", d.summary);
}

#[tokio::test]
async fn trace_files_not_in_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let head = pricing_repo(dir.path());
    let mut anomaly = examples::anomaly();
    anomaly.exception = Some(ExceptionInfo {
        r#type: "ZeroDivisionError".into(),
        message: "division by zero".into(),
        stacktrace: Some(
            "Traceback (most recent call last):\n  File \"/srv/billing/server.py\", line 40, in handle\n    invoice.total(x)\n  File \"/srv/billing/invoice.py\", line 3, in total\n    return a % b\nZeroDivisionError: division by zero\n"
                .into(),
        ),
    });
    let d = run(&diagnoser(dir.path(), nothing_known()), anomaly).await;
    assert_eq!(d.status, DiagnosisStatus::NotInRepository, "{}", d.summary);
    assert!(
        d.summary.contains("no in-app frame of the trace is a file of"),
        "{}",
        d.summary
    );
    assert!(d.summary.contains("invoice.py"), "{}", d.summary);
    assert_eq!(d.commit.as_deref(), Some(head.as_str()));
    assert!(d.root_cause.is_none());
    assert_eq!(d.confidence, 0.0);
}

#[tokio::test]
async fn no_stack_trace_says_so() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let mut anomaly = examples::anomaly();
    if let Some(e) = anomaly.exception.as_mut() {
        e.stacktrace = None;
    }
    let d = run(&diagnoser(dir.path(), nothing_known()), anomaly.clone()).await;
    assert_eq!(d.status, DiagnosisStatus::NoStackTrace);
    assert!(d.summary.contains("has no stack trace"), "{}", d.summary);
    assert!(d.frames.is_empty() && d.runtime.is_none());
    // Without any exception at all, still a diagnosis.
    anomaly.exception = None;
    let d = run(&diagnoser(dir.path(), nothing_known()), anomaly).await;
    assert_eq!(d.status, DiagnosisStatus::NoStackTrace);
    assert!(d.summary.contains("no exception"), "{}", d.summary);
    assert_eq!(d.hypotheses[0].category, "unknown");
}

#[tokio::test]
async fn known_fixes_become_a_learned_hypothesis() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let fix = KnownFix {
        strategy: "python.zero-division-guard".into(),
        healed: 3,
        attempts: 3,
        median_heal_secs: Some(26.0),
        last_incident_id: Some("old-incident".into()),
        last_diff: Some("--- a/pricing_logic.py".into()),
        ..Default::default()
    };
    let d = run(
        &diagnoser(dir.path(), FakeKnowledge(Ok(vec![fix.clone()]))),
        examples::anomaly(),
    )
    .await;
    assert_eq!(d.known_fixes, vec![fix]);
    let learned: Vec<&Hypothesis> = d
        .hypotheses
        .iter()
        .filter(|h| h.source == HypothesisSource::Learned)
        .collect();
    assert_eq!(learned.len(), 1);
    let h = learned[0];
    assert_eq!(h.category, "division-by-zero");
    assert!(
        h.summary.contains("python.zero-division-guard") && h.summary.contains("3 of 3"),
        "{}",
        h.summary
    );
    assert_eq!(h.file.as_deref(), Some("pricing_logic.py"));
    assert!(
        h.evidence
            .iter()
            .any(|e| e.kind == "learned" && e.detail.contains("median 26s"))
    );
    // Ranks are 1..n in order of confidence.
    let ranks: Vec<i32> = d.hypotheses.iter().map(|h| h.rank).collect();
    assert_eq!(ranks, (1..=d.hypotheses.len() as i32).collect::<Vec<_>>());
    assert!(d.hypotheses.windows(2).all(|w| w[0].confidence >= w[1].confidence));
}

#[tokio::test]
async fn a_template_learned_for_the_crash_class_elsewhere_is_told_apart_and_weighs_less() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let own = KnownFix {
        strategy: "python.zero-division-guard".into(),
        healed: 3,
        attempts: 3,
        ..Default::default()
    };
    let elsewhere = KnownFix {
        scope: Some("crash-class".into()),
        service: Some("checkout".into()),
        ..own.clone()
    };
    let learned = |d: &Diagnosis| -> Hypothesis {
        d.hypotheses
            .iter()
            .find(|h| h.source == HypothesisSource::Learned)
            .cloned()
            .expect("a learned hypothesis")
    };
    let d_own = run(
        &diagnoser(dir.path(), FakeKnowledge(Ok(vec![own]))),
        examples::anomaly(),
    )
    .await;
    let d_else = run(
        &diagnoser(dir.path(), FakeKnowledge(Ok(vec![elsewhere.clone()]))),
        examples::anomaly(),
    )
    .await;
    let (h_own, h_else) = (learned(&d_own), learned(&d_else));
    assert!(
        h_else.summary.contains("same crash class healed elsewhere"),
        "{}",
        h_else.summary
    );
    assert!(h_else.summary.contains("checkout"), "{}", h_else.summary);
    assert!(
        h_else.confidence < h_own.confidence,
        "{} vs {}",
        h_else.confidence,
        h_own.confidence
    );
    // The repairer still gets the template first.
    assert_eq!(d_else.known_fixes, vec![elsewhere]);
}

#[tokio::test]
async fn a_learner_that_is_down_does_not_block_the_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let d = run(
        &diagnoser(dir.path(), FakeKnowledge(Err("connection refused".into()))),
        examples::anomaly(),
    )
    .await;
    assert_eq!(d.status, DiagnosisStatus::Localized);
    assert!(d.known_fixes.is_empty());
    assert!(d.hypotheses.iter().all(|h| h.source == HypothesisSource::Rule));
    assert!(
        all_evidence(&d)
            .iter()
            .any(|e| e.contains("learning store unreachable: connection refused; known fixes not consulted")),
        "{:#?}",
        all_evidence(&d)
    );
}

#[tokio::test]
async fn the_real_http_client_against_nothing_still_diagnoses() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let client =
        HttpKnowledgeClient::with_timeout("http://127.0.0.1:9", std::time::Duration::from_millis(300)).unwrap();
    let d = run(
        &Diagnoser::new(catalog(dir.path()), Arc::new(client)),
        examples::anomaly(),
    )
    .await;
    assert_eq!(d.status, DiagnosisStatus::Localized);
    assert!(
        all_evidence(&d)
            .iter()
            .any(|e| e.starts_with("learned: learning store unreachable"))
    );
}

#[tokio::test]
async fn replays_give_the_same_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let dg = diagnoser(dir.path(), nothing_known());
    let mut a = run(&dg, examples::anomaly()).await;
    let mut b = run(&dg, examples::anomaly()).await;
    a.timeline.diagnosis_ms = None;
    b.timeline.diagnosis_ms = None;
    assert_eq!(a, b);
}

#[tokio::test]
async fn anomaly_without_incident_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let mut anomaly = examples::anomaly();
    anomaly.incident_id = String::new();
    let err = diagnoser(dir.path(), nothing_known())
        .process(anomaly, &RecordContext::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StageError::Invalid(_)));
}

#[test]
fn the_example_catalog_loads_into_a_diagnoser() {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/catalog.toml"));
    let d = Diagnoser::from_config(&path, DEFAULT_LEARNER_URL).unwrap();
    assert!(format!("{d:?}").contains("services: 1"));
}

/// The `exception.stacktrace` of the real OTLP capture kept with pricing-api.
fn captured_stacktrace() -> String {
    fn find(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("key").and_then(|k| k.as_str()) == Some("exception.stacktrace") {
                    return m.get("value")?.get("stringValue")?.as_str().map(str::to_string);
                }
                m.values().find_map(find)
            }
            serde_json::Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    let path = Path::new(PRICING_API).join("testdata/zero-division-traces.json");
    find(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn localizes_the_captured_otel_trace() {
    let dir = tempfile::tempdir().unwrap();
    pricing_repo(dir.path());
    let mut anomaly = examples::anomaly();
    anomaly.exception.as_mut().unwrap().stacktrace = Some(captured_stacktrace());
    let d = run(&diagnoser(dir.path(), nothing_known()), anomaly).await;
    assert_eq!(d.status, DiagnosisStatus::Localized, "{}", d.summary);
    let rc = d.root_cause.as_ref().unwrap();
    assert_eq!(
        (rc.file.as_str(), rc.line, rc.function.as_str()),
        ("pricing_logic.py", 14, "calc")
    );
    assert_eq!(d.hypotheses[0].category, "division-by-zero");
    assert!(d.confidence >= 0.9, "{}", d.confidence);
    let funcs: Vec<&str> = d.frames.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(funcs, ["_post_price", "quote", "calc"]);
}
