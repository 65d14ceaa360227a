//! The diagnoser's model path against a REAL local model: SmolLM2-135M-Instruct behind
//! llama.cpp's OpenAI-compatible server (`deploy/llm.sh up`; `eval "$(deploy/llm.sh env)"`
//! sets SELFHEAL_TEST_LLM_URL and SELFHEAL_TEST_LLM_MODEL).
//!
//! Like the broker tests, it fails rather than skips when the model is not there
//! (`scripts/test.sh` starts it).
//!
//! The model is tiny: its answer may well be garbage. What is asserted is what is
//! deterministic: a call was made and kept with the redacted prompt, and the diagnosis is
//! produced either with model hypotheses that passed validation or with the answer dropped
//! and noted. Latency and tokens are printed for the record (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use selfheal_diagnoser::{Diagnoser, DiagnoserLlmSettings, NoKnowledge};
use selfheal_events::HypothesisSource;
use selfheal_llm::{LlmConfig, ProviderKind};

/// The model's URL and name; fails the test with a hint when it is not configured or not up.
async fn local_model() -> Option<(String, String)> {
    let url = std::env::var("SELFHEAL_TEST_LLM_URL").ok().filter(|s| !s.is_empty());
    let model = std::env::var("SELFHEAL_TEST_LLM_MODEL").ok().filter(|s| !s.is_empty());
    let hint = "start it with `deploy/llm.sh up` and `eval \"$(deploy/llm.sh env)\"`, or run `scripts/test.sh`";
    let (Some(url), Some(model)) = (url, model) else {
        panic!("SELFHEAL_TEST_LLM_URL/SELFHEAL_TEST_LLM_MODEL are not set; {hint}");
    };
    let health = format!("{}/health", url.trim_end_matches('/').trim_end_matches("/v1"));
    let up = reqwest::Client::new()
        .get(&health)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if !up {
        panic!("the local model at {url} does not answer {health}; {hint}");
    }
    Some((url, model))
}

#[tokio::test]
async fn the_real_local_model_is_asked_and_its_answer_handled() {
    let Some((url, model)) = local_model().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    shop_repo(dir.path());
    let client = LlmConfig {
        provider: Some(ProviderKind::Openai),
        endpoint: Some(url.clone()),
        model: Some(model.clone()),
        max_retries: 1,
        timeout_secs: 300,
        call_timeout_secs: 600,
        ..LlmConfig::default()
    }
    .client_with_env(|_| None)
    .unwrap()
    .unwrap();
    let settings = DiagnoserLlmSettings {
        max_answer_tokens: 512,
        // The shared test server runs one request at a time on two busy cores.
        deadline: Duration::from_secs(900),
        ..DiagnoserLlmSettings::default()
    };
    let with = Diagnoser::new(catalog(dir.path()), std::sync::Arc::new(NoKnowledge)).with_llm(Some(client), settings);
    let started = Instant::now();
    let d = run(&with, shop_anomaly()).await;
    let wall = started.elapsed();
    let plain = run(&diagnoser(dir.path(), None), shop_anomaly()).await;

    // The trace decides where, whatever the model said.
    assert_eq!(d.status, plain.status);
    assert_eq!(d.root_cause, plain.root_cause);
    assert_eq!(d.confidence, plain.confidence);

    let llm = d.llm.as_ref().expect("the model's use is recorded");
    eprintln!(
        "local model {model}: {} call(s), {} input + {} output tokens, wall {:?}",
        llm.calls, llm.input_tokens, llm.output_tokens, wall
    );
    for (i, e) in llm.exchanges.iter().enumerate() {
        eprintln!(
            "  exchange {}: {} ms, {} in / {} out tokens, error: {:?}\n  answer: {}",
            i + 1,
            e.latency_ms,
            e.input_tokens,
            e.output_tokens,
            e.error,
            e.answer.as_deref().unwrap_or("<none>")
        );
    }
    for n in &llm.notes {
        eprintln!("  note: {n}");
    }
    assert!(llm.calls >= 1, "a call was made");
    assert!((1..=2).contains(&llm.exchanges.len()), "{:?}", llm.exchanges.len());
    for e in &llm.exchanges {
        assert_eq!(e.purpose, "hypotheses");
        assert!(e.answer.is_some(), "the server answered: {:?}", e.error);
        assert!(e.input_tokens > 0, "the server reports usage");
        for s in SECRETS {
            assert!(!e.prompt.contains(s), "{s} in the recorded prompt");
        }
        assert!(e.prompt.contains("[REDACTED:password]"));
        assert!(only_inside_untrusted_blocks(&e.prompt, INJECTION));
    }
    assert!(llm.exchanges[0].redactions > 0);

    let from_model: Vec<_> = d
        .hypotheses
        .iter()
        .filter(|h| h.source == HypothesisSource::Llm)
        .collect();
    if from_model.is_empty() {
        // Garbage, twice: recorded and dropped, and said so.
        assert!(
            llm.notes.iter().any(|n| n.contains("dropped")),
            "no model hypothesis and no note why: {:?}",
            llm.notes
        );
        assert_eq!(llm.exchanges.len(), 2, "a malformed answer is retried once");
        assert!(llm.exchanges.iter().all(|e| e.error.is_some()));
        assert_eq!(d.hypotheses, plain.hypotheses);
    } else {
        assert!(
            llm.notes.iter().any(|n| n.contains("model hypothesis(es) added")),
            "{:?}",
            llm.notes
        );
        let shown = ["app/shop.py", "/srv/shop/app/shop.py", "/srv/shop/app/handlers.py"];
        for h in &from_model {
            assert!(h.confidence <= 0.6, "capped: {h:?}");
            assert!(!h.summary.is_empty() && !h.category.is_empty());
            assert!(h.file.as_deref().is_none_or(|f| shown.contains(&f)), "{h:?}");
            assert!(h.evidence.iter().any(|e| e.kind == "llm"));
        }
        let ranks: Vec<i32> = d.hypotheses.iter().map(|h| h.rank).collect();
        assert_eq!(ranks, (1..=d.hypotheses.len() as i32).collect::<Vec<_>>());
        assert!(d.hypotheses.iter().any(|h| h.source == HypothesisSource::Rule));
    }
}
