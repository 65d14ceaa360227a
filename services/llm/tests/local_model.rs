//! The real client code against a real model: llama.cpp's `llama-server` with
//! SmolLM2-135M-Instruct on 127.0.0.1, started by `deploy/llm.sh up` (and by `scripts/test.sh`).
//!
//! The server comes from `SELFHEAL_TEST_LLM_URL` (e.g. `http://127.0.0.1:18089/v1`) and the model
//! name from `SELFHEAL_TEST_LLM_MODEL`; `eval "$(deploy/llm.sh env)"` sets both. Like the
//! real-broker tests, these fail when the server is missing, unless `SELFHEAL_REQUIRE_LLM=0`
//! (see `tests/src/require.rs`).
//!
//! Requests go at temperature 0 to a server with one slot, so answers are greedy and the same on
//! every run; the assertions are still about what the client must guarantee (text, token counts,
//! a parsed structured answer, the audit trail) rather than about the wording of a tiny model.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../../tests/src/require.rs"]
mod require;

use selfheal_llm::prompt::{DATA_RULES, untrusted};
use selfheal_llm::{ChatRequest, LlmClient, LlmConfig, LlmError, ProviderKind};
use serde::Deserialize;
use serde_json::{Value, json};

/// The configuration a stage would get from `--llm-provider openai --llm-endpoint ... --llm-model ...`,
/// once the server answers (`None` only when `SELFHEAL_REQUIRE_LLM=0` lets the test skip).
fn local_model() -> Option<LlmClient> {
    let (url, model) = require::model()?;
    let cfg = LlmConfig {
        provider: Some(ProviderKind::Openai),
        endpoint: Some(url),
        model: Some(model),
        max_output_tokens: 256,
        ..LlmConfig::default()
    };
    // No key: a local OpenAI-compatible server needs none, and none is sent.
    Some(
        cfg.client_with_env(|_| None)
            .expect("valid configuration")
            .expect("a provider is configured"),
    )
}

#[tokio::test]
async fn plain_chat_returns_text_and_counts_tokens() {
    let Some(client) = local_model() else {
        return;
    };
    let budget = client.budget();
    let req = ChatRequest::new(
        "You are a helpful assistant. Answer briefly.",
        "What is the capital of France?",
        32,
    );
    let (resp, exchange) = client.chat(&budget, &req).await.unwrap();

    assert!(!resp.text.trim().is_empty(), "empty answer");
    assert!(resp.usage.input_tokens > 10, "prompt tokens counted: {:?}", resp.usage);
    assert!(
        (1..=32).contains(&resp.usage.output_tokens),
        "output tokens counted and capped by max_tokens: {:?}",
        resp.usage
    );
    assert_eq!(resp.usage.cost_usd, None, "a local model has no price");
    assert!(!resp.model.is_empty());
    assert_eq!(exchange.answer.as_deref(), Some(resp.text.as_str()));
    assert!(exchange.prompt.contains("capital of France"));
    assert_eq!(budget.spent().calls, 1);
    assert_eq!(budget.spent().tokens, resp.usage.total_tokens());
}

#[derive(Debug, Deserialize)]
struct Capital {
    country: String,
    capital: String,
}

fn capital_schema() -> Value {
    json!({
        "type": "object",
        // maxLength bounds the generation (the server's grammar enforces it): the whole object fits in
        // max_tokens even if the model spends a token per character, so it is never cut off.
        "properties": {
            "country": {"type": "string", "maxLength": 40},
            "capital": {"type": "string", "maxLength": 40},
        },
        "required": ["country", "capital"],
    })
}

#[tokio::test]
async fn structured_answer_is_grammar_constrained_json() {
    let Some(client) = local_model() else {
        return;
    };
    let budget = client.budget();
    let req = ChatRequest::new(
        "You answer questions about geography.",
        "Name a country and its capital.",
        128,
    )
    .with_schema(capital_schema());
    let (answer, exchanges): (Capital, _) = client
        .ask_json(&budget, &req, |c: &Capital| {
            if c.country.trim().is_empty() || c.capital.trim().is_empty() {
                Err("empty field".into())
            } else {
                Ok(())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("structured answer failed: {e}"));

    assert!(!answer.country.trim().is_empty() && !answer.capital.trim().is_empty());
    // Accepted the first time: the server turned response_format into a grammar, so the raw
    // answer is exactly one JSON object with the schema's keys, no prose, no code fence.
    assert_eq!(exchanges.len(), 1, "{exchanges:#?}");
    let raw = exchanges[0].answer.as_deref().unwrap();
    eprintln!("model answered: {raw}");
    let value: Value = serde_json::from_str(raw.trim()).unwrap_or_else(|e| panic!("not pure JSON ({e}): {raw}"));
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["capital", "country"]);
    assert!(exchanges[0].usage.output_tokens > 0);
    assert_eq!(exchanges[0].error, None);
    assert_eq!(budget.spent().calls, 1);
}

#[derive(Debug, Deserialize)]
struct Localisation {
    file: String,
    line: u32,
    root_cause: String,
}

#[tokio::test]
async fn diagnosis_sized_prompt_is_redacted_and_answered_in_shape() {
    let Some(client) = local_model() else {
        return;
    };
    let budget = client.budget();
    let secret = "sk-live0123456789abcdefghijklmnop";
    let logs = format!(
        "ERROR pricing-api POST /price 500 discount=0.0 api_key={secret}\n\
         Traceback (most recent call last):\n  File \"/srv/pricing-api/pricing_logic.py\", line 14, in calc\n    \
         def calc(p, d): return p / d\nZeroDivisionError: float division by zero"
    );
    let req = ChatRequest::new(
        format!(
            "You are the diagnoser of selfheal. Name the file and line to change and the root cause.\n\n{DATA_RULES}"
        ),
        format!(
            "Incident inc-1 in service pricing-api, reported by oncall@example.com.\n\n{}\n\n\
             Which file and line must change?",
            untrusted("logs", &logs)
        ),
        256,
    )
    .with_schema(json!({
        "type": "object",
        "properties": {
            "file": {"type": "string", "maxLength": 60},
            "line": {"type": "integer", "minimum": 1},
            "root_cause": {"type": "string", "maxLength": 100},
        },
        "required": ["file", "line", "root_cause"],
    }));
    let (loc, exchanges): (Localisation, _) = client
        .ask_json(&budget, &req, |_: &Localisation| Ok(()))
        .await
        .unwrap_or_else(|e| panic!("structured answer failed: {e}"));

    eprintln!("model answered: {loc:?}");
    assert!(loc.line >= 1, "{loc:?}");
    assert!(!loc.file.is_empty() && !loc.root_cause.is_empty(), "{loc:?}");
    assert_eq!(exchanges.len(), 1);
    // Neither the secret (redacted by `untrusted` already) nor the address (redacted by the
    // client on the way out, and counted in the audit) left the process.
    assert!(!exchanges[0].prompt.contains(secret));
    assert!(exchanges[0].prompt.contains("[REDACTED:api_key]"));
    assert!(!exchanges[0].prompt.contains("oncall@example.com"));
    assert_eq!(exchanges[0].redactions.get("email"), 1);
    assert!(exchanges[0].usage.input_tokens > 150, "{:?}", exchanges[0].usage);
}

#[tokio::test]
async fn rejected_answers_end_malformed_with_both_exchanges() {
    let Some(client) = local_model() else {
        return;
    };
    let budget = client.budget();
    let req = ChatRequest::new(
        "You answer questions about geography.",
        "Name a country and its capital.",
        128,
    )
    .with_schema(capital_schema());
    // A validator that rejects everything: the real model's answers take the retry path.
    let err = client
        .ask_json(&budget, &req, |_: &Capital| Err("rejected by the test".to_string()))
        .await
        .unwrap_err();

    let LlmError::Malformed { reason, exchanges } = err else {
        panic!("expected Malformed, got {err:?}");
    };
    assert_eq!(reason, "rejected by the test");
    assert_eq!(exchanges.len(), 2, "first answer and the corrected one");
    for e in &exchanges {
        let raw = e.answer.as_deref().expect("the raw answer is kept");
        assert!(
            serde_json::from_str::<Value>(raw.trim()).is_ok(),
            "grammar-constrained: {raw}"
        );
        assert_eq!(e.error.as_deref(), Some("rejected by the test"));
        assert!(e.usage.output_tokens > 0);
    }
    // The second request carried the first answer and the correction.
    assert!(
        exchanges[1]
            .prompt
            .contains("Your previous answer was rejected: rejected by the test")
    );
    assert!(exchanges[1].prompt.contains(exchanges[0].answer.as_deref().unwrap()));
    assert_eq!(budget.spent().calls, 2);
}
