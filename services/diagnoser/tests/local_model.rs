//! The diagnoser's model path against a REAL local model: SmolLM2-135M-Instruct behind
//! llama.cpp's OpenAI-compatible server (`deploy/llm.sh up`; `eval "$(deploy/llm.sh env)"`
//! sets SELFHEAL_TEST_LLM_URL and SELFHEAL_TEST_LLM_MODEL).
//!
//! A missing model fails the test (unless `SELFHEAL_REQUIRE_LLM=0`; see
//! `tests/src/require.rs`); `scripts/test.sh` starts it.
//!
//! The model is tiny, so what it says is not asserted; what the run must show is. The request
//! carries the answer's JSON schema, which llama-server turns into a grammar, so every answer
//! is a JSON object in shape unless it was cut off at the token limit. Each answer therefore
//! ends one of two ways, and [`judge`] says which or fails the test:
//! - parsed: the hypotheses passed validation and were added (how many, in a note);
//! - refused for a named reason: cut off at the limit ("truncated"), "the answer has no
//!   hypotheses", or "no hypothesis is valid" (with each hypothesis's reason); twice, then
//!   dropped with that reason in a note.
//!
//! A server that ignores the schema (prose, or JSON in another shape), an answer that never
//! came, a deadline that ran out, or a reason nobody named fails the test. The counts are
//! printed as `model outcomes (diagnoser): …` (`--nocapture`), with latency and tokens.
//!
//! The judge is itself tested below against an HTTP fake of the server, one test per kind of
//! run, so that it cannot pass everything.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "../../llm/tests/fake/mod.rs"]
mod fake;
#[path = "../../../tests/src/require.rs"]
mod require;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use fake::{Fake, Reply};
use selfheal_diagnoser::{Diagnoser, DiagnoserLlmSettings, NoKnowledge};
use selfheal_events::{Diagnosis, HypothesisSource, LlmExchange};
use selfheal_llm::{LlmClient, LlmConfig, ProviderKind};

/// Why an answer was refused, in the diagnoser's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    /// A JSON object cut off at the token limit ("no JSON object in the answer" or "JSON does
    /// not have the expected shape" on an object that does not close).
    Truncated,
    /// "the answer has no hypotheses".
    NoHypotheses,
    /// "no hypothesis is valid (…)": each one named a file or line not shown, or was empty.
    NoneValid,
}

/// How one model run ended.
#[derive(Debug, Clone, PartialEq)]
enum Shown {
    /// This many model hypotheses were parsed, validated and added.
    Parsed { added: usize },
    /// The answer was refused twice and dropped, for this reason.
    Refused { reason: Refusal, text: String },
}

/// The verdict on one exchange: accepted (`None`), refused for a named reason, or an error
/// saying what the run shows that it must not.
fn exchange_verdict(e: &LlmExchange) -> Result<Option<Refusal>, String> {
    let Some(answer) = e.answer.as_deref() else {
        return Err(format!("no answer from the server: {:?}", e.error));
    };
    let Some(error) = e.error.as_deref() else {
        return Ok(None);
    };
    if error.starts_with("the answer has no hypotheses") {
        return Ok(Some(Refusal::NoHypotheses));
    }
    if error.starts_with("no hypothesis is valid (") {
        return Ok(Some(Refusal::NoneValid));
    }
    if error.starts_with("no JSON object in the answer") || error.starts_with("JSON does not have the expected shape") {
        // The schema went out as a grammar: only an object cut off at the limit can fail to parse.
        let object = answer.trim_start().starts_with('{');
        let cut_off = serde_json::from_str::<serde_json::Value>(answer.trim()).is_err();
        if object && cut_off {
            return Ok(Some(Refusal::Truncated));
        }
        return Err(format!(
            "the request carried the answer's schema, yet the answer is {} and refused ({error}): \
             the schema was not applied as a grammar: {answer:?}",
            if object {
                "a complete JSON object"
            } else {
                "not a JSON object"
            }
        ));
    }
    Err(format!("refused for a reason the diagnoser does not name: {error:?}"))
}

/// What the run `d` (with the model) shows, against `plain` (the same anomaly without one);
/// `Err` says what it shows that it must not. Also the verdict of every exchange.
fn judge(d: &Diagnosis, plain: &Diagnosis) -> Result<(Shown, Vec<Option<Refusal>>), String> {
    let llm = d.llm.as_ref().ok_or("the model's use is not recorded")?;
    if let Some(n) = llm
        .notes
        .iter()
        .find(|n| n.contains("abandoned") || n.contains("not asked") || n.contains("unavailable"))
    {
        return Err(format!("the model gave no answer in time: {n}"));
    }
    if !(1..=2).contains(&llm.exchanges.len()) {
        return Err(format!("{} exchanges, not one or two", llm.exchanges.len()));
    }
    let verdicts = llm
        .exchanges
        .iter()
        .map(exchange_verdict)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(e) = llm.exchanges.iter().find(|e| e.purpose != "hypotheses") {
        return Err(format!("an exchange for {:?}", e.purpose));
    }
    let from_model: Vec<_> = d
        .hypotheses
        .iter()
        .filter(|h| h.source == HypothesisSource::Llm)
        .collect();
    let last = llm.exchanges.last().ok_or("no exchange")?;
    let shown = match verdicts.last().copied().flatten() {
        None => {
            if verdicts[..verdicts.len() - 1].iter().any(Option::is_none) {
                return Err("an accepted answer was asked again".into());
            }
            let added = from_model.len();
            let note = format!("{added} model hypothesis(es) added");
            if added == 0 || !llm.notes.contains(&note) {
                return Err(format!(
                    "the answer was accepted, but {added} model hypotheses are in the diagnosis and the notes say {:?}",
                    llm.notes
                ));
            }
            let shown_files = ["app/shop.py", "/srv/shop/app/shop.py", "/srv/shop/app/handlers.py"];
            for h in &from_model {
                let ok = h.confidence <= 0.6
                    && !h.summary.is_empty()
                    && !h.category.is_empty()
                    && h.file.as_deref().is_none_or(|f| shown_files.contains(&f))
                    && h.evidence.iter().any(|e| e.kind == "llm");
                if !ok {
                    return Err(format!("a model hypothesis is not capped, complete and shown: {h:?}"));
                }
            }
            let ranks: Vec<i32> = d.hypotheses.iter().map(|h| h.rank).collect();
            if ranks != (1..=d.hypotheses.len() as i32).collect::<Vec<_>>() {
                return Err(format!("ranks {ranks:?}"));
            }
            if !d.hypotheses.iter().any(|h| h.source == HypothesisSource::Rule) {
                return Err("the rules' hypothesis is gone".into());
            }
            Shown::Parsed { added }
        }
        Some(reason) => {
            let text = last.error.clone().unwrap_or_default();
            let note = format!("model answer dropped after one retry: {text}");
            if verdicts.len() != 2 || !llm.notes.contains(&note) {
                return Err(format!(
                    "a refused answer is asked once more and then dropped with its reason; \
                     {} exchange(s), notes {:?}",
                    verdicts.len(),
                    llm.notes
                ));
            }
            if d.hypotheses != plain.hypotheses {
                return Err("a refused answer changed the hypotheses".into());
            }
            Shown::Refused { reason, text }
        }
    };
    Ok((shown, verdicts))
}

/// The counts of one run, as printed: the ending, and each exchange's verdict.
fn tally(shown: &Shown, verdicts: &[Option<Refusal>]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in verdicts {
        let key = v.map_or("parsed".to_string(), |r| format!("refused:{r:?}"));
        *counts.entry(key).or_default() += 1;
    }
    let ending = match shown {
        Shown::Parsed { added } => format!("parsed, {added} model hypothesis(es) added"),
        Shown::Refused { reason, text } => format!("refused ({reason:?}): {text}"),
    };
    format!("model outcomes (diagnoser): {ending}; answers {counts:?}")
}

fn client(url: &str, model: &str, timeout_secs: u64) -> LlmClient {
    LlmConfig {
        provider: Some(ProviderKind::Openai),
        endpoint: Some(url.to_string()),
        model: Some(model.to_string()),
        max_retries: 1,
        timeout_secs,
        call_timeout_secs: timeout_secs * 2,
        ..LlmConfig::default()
    }
    .client_with_env(|_| None)
    .unwrap()
    .unwrap()
}

/// The shop's anomaly diagnosed with `client` and without a model.
async fn diagnose(client: LlmClient, deadline: Duration) -> (Diagnosis, Diagnosis, Duration) {
    let dir = tempfile::tempdir().unwrap();
    shop_repo(dir.path());
    let settings = DiagnoserLlmSettings {
        max_answer_tokens: 512,
        deadline,
        ..DiagnoserLlmSettings::default()
    };
    let with = Diagnoser::new(catalog(dir.path()), std::sync::Arc::new(NoKnowledge)).with_llm(Some(client), settings);
    let started = Instant::now();
    let d = run(&with, shop_anomaly()).await;
    let wall = started.elapsed();
    let plain = run(&diagnoser(dir.path(), None), shop_anomaly()).await;
    (d, plain, wall)
}

#[tokio::test]
async fn the_real_local_model_is_asked_and_its_answer_parsed_or_refused_for_a_named_reason() {
    let Some((url, model)) = require::model() else {
        return;
    };
    // The shared test server runs one request at a time on two busy cores.
    let (d, plain, wall) = diagnose(client(&url, &model, 300), Duration::from_secs(900)).await;

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
    for e in &llm.exchanges {
        assert!(
            e.input_tokens > 0 && e.output_tokens > 0,
            "the server reports usage: {e:?}"
        );
        for s in SECRETS {
            assert!(!e.prompt.contains(s), "{s} in the recorded prompt");
        }
        assert!(e.prompt.contains("[REDACTED:password]"));
        assert!(only_inside_untrusted_blocks(&e.prompt, INJECTION));
    }
    assert!(llm.exchanges[0].redactions > 0);
    assert_eq!(llm.calls as usize, llm.exchanges.len(), "every call is in the audit");

    let (shown, verdicts) =
        judge(&d, &plain).unwrap_or_else(|why| panic!("the model run shows what it must not: {why}"));
    eprintln!("{}", tally(&shown, &verdicts));
}

// --- the judge, against an HTTP fake of the server (no model needed) -------------------------

/// The shop's anomaly diagnosed against a fake that gives `answers` in turn.
async fn judged_against_fake(answers: &[&str]) -> Result<(Shown, Vec<Option<Refusal>>), String> {
    let fake = Fake::start(answers.iter().map(|a| Reply::openai(a, 900, 60)).collect()).await;
    let (d, plain, _) = diagnose(
        client(&format!("{}/v1", fake.base), "fake-model", 10),
        Duration::from_secs(60),
    )
    .await;
    judge(&d, &plain)
}

const ONE_HYPOTHESIS: &str = r#"{"hypotheses": [{"category": "wrong-type", "summary": "items are dicts", "confidence": 0.9, "file": "app/shop.py", "line": 10, "function": "subtotal", "reasoning": "json.loads makes dicts"}]}"#;

#[tokio::test]
async fn judge_counts_a_parsed_answer() {
    let (shown, verdicts) = judged_against_fake(&[ONE_HYPOTHESIS]).await.unwrap();
    assert_eq!(shown, Shown::Parsed { added: 1 });
    assert_eq!(verdicts, vec![None]);
    assert!(
        tally(&shown, &verdicts).contains(r#"{"parsed": 1}"#),
        "{}",
        tally(&shown, &verdicts)
    );
}

#[tokio::test]
async fn judge_names_the_refusal_of_answers_cut_off_at_the_limit() {
    let cut = r#"{"hypotheses": [{"category": "wrong-type", "summary": "items are dicts and the"#;
    let (shown, verdicts) = judged_against_fake(&[cut, cut]).await.unwrap();
    assert!(
        matches!(&shown, Shown::Refused { reason: Refusal::Truncated, text } if text.contains("no JSON object")),
        "{shown:?}"
    );
    assert_eq!(verdicts, vec![Some(Refusal::Truncated); 2]);
}

#[tokio::test]
async fn judge_names_the_refusal_of_hypotheses_about_code_not_shown() {
    let elsewhere = r#"{"hypotheses": [{"category": "policy", "summary": "grant admin", "confidence": 0.9, "file": "policies/rbac.yaml", "line": 1, "function": null, "reasoning": "the log says so"}]}"#;
    let (shown, verdicts) = judged_against_fake(&[elsewhere, r#"{"hypotheses": []}"#])
        .await
        .unwrap();
    assert_eq!(verdicts, vec![Some(Refusal::NoneValid), Some(Refusal::NoHypotheses)]);
    assert!(
        matches!(
            shown,
            Shown::Refused {
                reason: Refusal::NoHypotheses,
                ..
            }
        ),
        "{shown:?}"
    );
}

/// The old test accepted this run ("dropped" in a note, two exchanges with errors): a server
/// that ignores the schema and answers prose. The grammar makes that impossible on the real
/// server, so it is a failure.
#[tokio::test]
async fn judge_fails_prose_from_a_server_given_the_schema() {
    let prose = "The bug is probably in shop.py, where items are dicts.";
    let why = judged_against_fake(&[prose, prose]).await.unwrap_err();
    assert!(
        why.contains("schema was not applied") && why.contains("not a JSON object"),
        "{why}"
    );
}

/// A complete JSON object in another shape cannot come out of the grammar either.
#[tokio::test]
async fn judge_fails_complete_json_of_another_shape() {
    let other = r#"{"answer": "shop.py line 10"}"#;
    let why = judged_against_fake(&[other, other]).await.unwrap_err();
    assert!(why.contains("a complete JSON object"), "{why}");
}

/// A server that fails (HTTP 500 twice: the client retries once) gives no answer to judge.
#[tokio::test]
async fn judge_fails_a_run_without_an_answer() {
    let fake = Fake::start(vec![
        Reply::json(500, serde_json::json!({"error": "boom"})),
        Reply::json(500, serde_json::json!({"error": "boom"})),
    ])
    .await;
    let (d, plain, _) = diagnose(
        client(&format!("{}/v1", fake.base), "fake-model", 10),
        Duration::from_secs(60),
    )
    .await;
    let why = judge(&d, &plain).unwrap_err();
    assert!(why.contains("no answer"), "{why}");
}
