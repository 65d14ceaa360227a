//! `selfheal explain` against the real Kafka broker and schema registry: one incident's
//! diagnosis, model-written patch and outcome are published beside another incident's
//! records; explain reads the topics (and a recording of them) and tells only that incident,
//! with its model audit, as text, as JSON, and through the built binary.
//!
//! The broker comes from `SELFHEAL_KAFKA_BROKERS` (default 127.0.0.1:9092) and the registry
//! from `SELFHEAL_SCHEMA_REGISTRY_URL` (default Apicurio on 8085); start both with
//! `deploy/testbed.sh up`. Topics get a random prefix per run.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use selfheal::cmd::{explain, record};
use selfheal_core::{KafkaArgs, Publisher, RegistryArgs};
use selfheal_events::{
    Codec, Diagnosis, HypothesisSource, LlmExchange, LlmReport, Outcome, OutcomeStatus, Patch, Record, examples,
};

fn brokers() -> String {
    std::env::var("SELFHEAL_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn registry_url() -> String {
    std::env::var("SELFHEAL_SCHEMA_REGISTRY_URL").unwrap_or_else(|_| "http://127.0.0.1:8085/apis/ccompat/v7".into())
}

fn args(id: &str, kafka: &KafkaArgs) -> explain::ExplainArgs {
    explain::ExplainArgs {
        incident_id: id.into(),
        from: None,
        json: false,
        full: false,
        kafka: kafka.clone(),
        registry: RegistryArgs { url: registry_url() },
    }
}

/// The diagnosis of `id`, with a model hypothesis and a hostile model answer.
fn diagnosis_of(id: &str, summary: &str) -> Diagnosis {
    let mut d = examples::diagnosis();
    d.incident_id = id.into();
    d.summary = summary.into();
    let mut h = d.hypotheses[0].clone();
    h.rank = 2;
    h.source = HypothesisSource::Llm;
    h.confidence = 0.41;
    h.summary = "the discount field is parsed as zero when missing".into();
    d.hypotheses.push(h);
    d.llm = Some(LlmReport {
        model: "openai-compatible test-model".into(),
        calls: 1,
        input_tokens: 700,
        output_tokens: 55,
        cost_usd: None,
        budget_exhausted: false,
        notes: vec!["1 hypothesis kept".into()],
        exchanges: vec![LlmExchange {
            purpose: "hypotheses".into(),
            round: 0,
            prompt: "[system] You rank root causes...\n[user] <untrusted-data>[REDACTED]</untrusted-data>".into(),
            answer: Some("{\"hypotheses\":[]}\x1b[2J\x1b]0;owned\x07 trailing".into()),
            error: None,
            input_tokens: 700,
            output_tokens: 55,
            cost_usd: None,
            latency_ms: 640,
            redactions: 2,
        }],
    });
    d
}

fn outcome_of(id: &str, patch: &Patch, summary: &str) -> Outcome {
    let mut o = examples::outcome();
    o.incident_id = id.into();
    o.status = OutcomeStatus::ValidationFailed;
    o.summary = summary.into();
    o.fix = None;
    o.rollout = None;
    o.verification = None;
    o.attempts = patch.attempts.clone();
    o.llm = patch.llm.clone().map(|mut l| {
        l.exchanges.clear();
        l
    });
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_tells_one_incident_with_its_model_audit_from_topics_recording_and_binary() {
    let mut kafka = KafkaArgs::for_brokers(&brokers());
    if let Err(e) = selfheal_core::kafka::probe(&kafka).await {
        panic!(
            "this test needs the real Kafka broker at {} ({e}); start it with `deploy/testbed.sh up`",
            kafka.brokers
        );
    }
    kafka.topic_prefix = format!("explain-{}.", uuid::Uuid::new_v4().simple());
    let topics: Vec<String> = explain::TOPICS.iter().map(|t| kafka.topic(t)).collect();
    selfheal_core::kafka::ensure_topics(&kafka, &topics).await.unwrap();
    let codec = Arc::new(Codec::new(&registry_url()).unwrap());
    let publisher = Publisher::new(
        selfheal_core::kafka::producer(&kafka).unwrap(),
        codec.clone(),
        "explain-test",
    );
    let no_headers = HashMap::new();

    let patch = examples::patch_llm();
    let id = patch.incident_id.clone();
    let other = format!("other-{}", uuid::Uuid::new_v4());
    let mut other_patch = examples::patch();
    other_patch.incident_id = other.clone();

    // A replayed, older diagnosis first: the last one must win.
    publisher
        .publish(
            &kafka.topic(Diagnosis::TOPIC),
            &diagnosis_of(&id, "STALE DIAGNOSIS"),
            &no_headers,
        )
        .await
        .unwrap();
    publisher
        .publish(
            &kafka.topic(Diagnosis::TOPIC),
            &diagnosis_of(&other, "OTHER-INCIDENT diagnosis"),
            &no_headers,
        )
        .await
        .unwrap();
    publisher
        .publish(
            &kafka.topic(Diagnosis::TOPIC),
            &diagnosis_of(&id, "pricing_logic.py:22 in lookup — KeyError"),
            &no_headers,
        )
        .await
        .unwrap();
    publisher
        .publish(&kafka.topic(Patch::TOPIC), &patch, &no_headers)
        .await
        .unwrap();
    publisher
        .publish(&kafka.topic(Patch::TOPIC), &other_patch, &no_headers)
        .await
        .unwrap();
    publisher
        .publish(
            &kafka.topic(Outcome::TOPIC),
            &outcome_of(&id, &patch, "no candidate passed the sandbox"),
            &no_headers,
        )
        .await
        .unwrap();
    publisher
        .publish(
            &kafka.topic(Outcome::TOPIC),
            &outcome_of(&other, &other_patch, "OTHER-INCIDENT outcome"),
            &no_headers,
        )
        .await
        .unwrap();

    // Text, from the topics.
    let mut out = Vec::new();
    explain::run(&args(&id, &kafka), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(&format!("incident {id} · service pricing-api")),
        "{text}"
    );
    assert!(text.contains("pricing_logic.py:22 in lookup — KeyError"), "{text}");
    assert!(!text.contains("STALE DIAGNOSIS"), "the last diagnosis wins:\n{text}");
    assert!(!text.contains("OTHER-INCIDENT"), "another incident leaked in:\n{text}");
    assert!(!text.contains(&other), "{text}");
    assert!(text.contains("#2 [model · 0.41]"), "{text}");
    assert!(
        text.contains("exchange 1 · hypotheses · round 0 · 640 ms · 700 in / 55 out tokens · 2 redactions"),
        "{text}"
    );
    assert!(
        text.contains("round 1: revise: RATES.get(currency, 1.0) prices unknown currencies at par"),
        "{text}"
    );
    assert!(text.contains("→ failed-before-missing"), "{text}");
    assert!(
        text.contains("exchange 2 · critique · round 1 · 980 ms · 1720 in / 90 out tokens"),
        "{text}"
    );
    assert!(text.contains("── outcome · VALIDATION FAILED"), "{text}");
    assert!(text.contains("calls 5 · 9120 in / 1310 out tokens"), "{text}");
    assert!(text.contains("anomaly: not read"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "escape sequences reached the terminal: {text:?}"
    );
    assert!(text.contains("│ {\"hypotheses\":[]} trailing"), "{text}");

    // JSON, from the topics.
    let mut json_args = args(&id, &kafka);
    json_args.json = true;
    let mut out = Vec::new();
    explain::run(&json_args, &mut out).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["incident_id"], id.as_str());
    assert_eq!(v["diagnosis"]["incident_id"], id.as_str());
    assert_eq!(v["diagnosis"]["summary"], "pricing_logic.py:22 in lookup — KeyError");
    assert_eq!(serde_json::from_value::<Patch>(v["patch"].clone()).unwrap(), patch);
    assert_eq!(v["outcome"]["status"], "ValidationFailed");
    assert_eq!(v["rollouts"], serde_json::json!([]));
    assert!(v["anomaly"].is_null());

    // An unknown incident names what was read.
    let err = format!(
        "{:#}",
        explain::gather(&args("no-such-incident", &kafka)).await.unwrap_err()
    );
    assert!(err.contains("no record of incident `no-such-incident`"), "{err}");
    assert!(
        err.contains(&kafka.topic("diagnoses")) && err.contains(&kafka.topic("outcomes")),
        "{err}"
    );
    assert!(err.contains("7 records scanned"), "{err}");

    // A recording of the topics explains the same incident offline from Kafka.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("incident.jsonl");
    record::record(&record::RecordArgs {
        topics: explain::TOPICS.iter().map(|t| t.to_string()).collect(),
        out: file.clone(),
        kafka: kafka.clone(),
        registry: RegistryArgs { url: registry_url() },
    })
    .await
    .unwrap();
    let mut from_file = args(&id, &KafkaArgs::for_brokers("127.0.0.1:1"));
    from_file.from = Some(file.clone());
    let recorded = explain::gather(&from_file).await.unwrap();
    let live = explain::gather(&args(&id, &kafka)).await.unwrap();
    assert_eq!(recorded, live);
    // A unique prefix of the id is enough.
    from_file.incident_id = id[..13].to_string();
    assert_eq!(explain::gather(&from_file).await.unwrap().incident_id, id);

    // The built binary: JSON on stdout for a known incident, a clear failure for an unknown one.
    let bin = env!("CARGO_BIN_EXE_selfheal");
    let run_bin = |incident: &str, extra: &[&str]| {
        std::process::Command::new(bin)
            .arg("explain")
            .arg(incident)
            .args(extra)
            .env("SELFHEAL_KAFKA_BROKERS", brokers())
            .env("SELFHEAL_SCHEMA_REGISTRY_URL", registry_url())
            .env("SELFHEAL_TOPIC_PREFIX", &kafka.topic_prefix)
            .output()
            .unwrap()
    };
    let ok = run_bin(&id, &["--json"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["patch"]["incident_id"], id.as_str());
    let missing = run_bin("no-such-incident", &[]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no record of incident `no-such-incident`") && stderr.contains("records scanned"),
        "{stderr}"
    );
    let offline = run_bin(&id, &["--from", file.to_str().unwrap(), "--full"]);
    assert!(offline.status.success(), "{}", String::from_utf8_lossy(&offline.stderr));
    let text = String::from_utf8(offline.stdout).unwrap();
    assert!(text.contains("round 2: revise: still defaults silently."), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
}
