//! Structured answers: find the JSON object in the model's answer, deserialise it into the
//! caller's type, run the caller's validation; a malformed answer is retried once with a
//! correction message, then recorded and dropped. Every exchange is kept for the audit log.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::error::LlmError;
use crate::provider::{ChatMessage, ChatProvider, ChatRequest, Usage};
use crate::redact::RedactionCounts;

/// Bound on a raw answer kept in an audit record.
const MAX_AUDIT_ANSWER: usize = 16_000;

/// One request/answer pair, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// The prompt as sent (already redacted when it went through [`crate::LlmClient`]).
    pub prompt: String,
    /// The raw answer, when there was one.
    pub answer: Option<String>,
    /// Tokens and cost.
    pub usage: Usage,
    /// Wall time of the call.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Why the call or its answer was rejected, if it was.
    pub error: Option<String>,
    /// What [`crate::LlmClient`] redacted from this request (kinds and counts, never values);
    /// set on the first exchange of a request so that sums over an audit list stay right.
    #[serde(default)]
    pub redactions: RedactionCounts,
}

/// Ask for a JSON answer of type `T`, accepted when `validate` says so. One retry with a
/// correction message on a malformed answer; then `LlmError::Malformed` carrying both exchanges.
/// Other failures (budget, transport) lose the audit list: use [`ask_json_audited`] to keep it.
pub async fn ask_json<T, F>(
    provider: &dyn ChatProvider,
    budget: &Budget,
    req: &ChatRequest,
    validate: F,
) -> Result<(T, Vec<Exchange>), LlmError>
where
    T: DeserializeOwned,
    F: Fn(&T) -> Result<(), String>,
{
    let mut audit = Vec::new();
    let value = ask_json_audited(provider, budget, req, validate, &mut audit).await?;
    Ok((value, audit))
}

/// [`ask_json`] that appends every exchange to `audit`, whatever the outcome.
pub async fn ask_json_audited<T, F>(
    provider: &dyn ChatProvider,
    budget: &Budget,
    req: &ChatRequest,
    validate: F,
    audit: &mut Vec<Exchange>,
) -> Result<T, LlmError>
where
    T: DeserializeOwned,
    F: Fn(&T) -> Result<(), String>,
{
    let first_index = audit.len();
    let mut request = req.clone();
    let mut last_reason = String::new();
    for attempt in 0..2 {
        budget.check()?;
        let prompt = request.render();
        let resp = match provider.chat(&request).await {
            Ok(r) => r,
            Err(e) => {
                budget.record(&Usage::default());
                audit.push(Exchange {
                    prompt,
                    answer: None,
                    usage: Usage::default(),
                    latency: Duration::ZERO,
                    error: Some(e.to_string()),
                    redactions: RedactionCounts::default(),
                });
                return Err(e);
            }
        };
        budget.record(&resp.usage);
        let outcome = parse_answer::<T>(&resp.text).and_then(|v| validate(&v).map(|()| v));
        audit.push(Exchange {
            prompt,
            answer: Some(bounded(&resp.text)),
            usage: resp.usage,
            latency: resp.latency,
            error: outcome.as_ref().err().cloned(),
            redactions: RedactionCounts::default(),
        });
        match outcome {
            Ok(v) => return Ok(v),
            Err(reason) => {
                tracing::info!(attempt = attempt + 1, %reason, "LLM answer rejected");
                last_reason = reason.clone();
                request.messages.push(ChatMessage::assistant(bounded(&resp.text)));
                request.messages.push(ChatMessage::user(format!(
                    "Your previous answer was rejected: {reason}. Answer again with exactly one JSON object \
                     that follows the requested schema, and nothing else."
                )));
            }
        }
    }
    Err(LlmError::Malformed {
        reason: last_reason,
        exchanges: audit[first_index..].to_vec(),
    })
}

/// Deserialise the first JSON object found in `text` into `T`.
pub fn parse_answer<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let value = extract_json(text).ok_or_else(|| "no JSON object in the answer".to_string())?;
    serde_json::from_value(value).map_err(|e| format!("JSON does not have the expected shape: {e}"))
}

/// The first JSON object in `text`: inside a ```json fence when there is one, else the first
/// `{` from which a complete object parses (prose before or after is ignored).
pub fn extract_json(text: &str) -> Option<serde_json::Value> {
    if let Some(v) = fenced(text).and_then(first_object) {
        return Some(v);
    }
    first_object(text)
}

fn fenced(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    let body_start = after.find('\n')? + 1;
    let body = &after[body_start..];
    let end = body.find("```").unwrap_or(body.len());
    Some(&body[..end])
}

fn first_object(text: &str) -> Option<serde_json::Value> {
    for (i, _) in text.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde_json::Value>();
        if let Some(Ok(v @ serde_json::Value::Object(_))) = stream.next() {
            return Some(v);
        }
    }
    None
}

fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_AUDIT_ANSWER {
        return text.to_string();
    }
    let mut s: String = text.chars().take(MAX_AUDIT_ANSWER).collect();
    s.push_str("…[truncated]");
    s
}

/// Durations as whole milliseconds in audit records.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_plain_fenced_and_embedded_objects() {
        assert_eq!(extract_json(r#"{"a":1}"#), Some(json!({"a": 1})));
        assert_eq!(
            extract_json("Sure!\n```json\n{\"a\": {\"b\": \"}\"}}\n```\nDone."),
            Some(json!({"a": {"b": "}"}}))
        );
        assert_eq!(
            extract_json("The answer is {\"a\": 2} as shown {\"b\": 3}"),
            Some(json!({"a": 2}))
        );
        // A broken brace before the real object is skipped.
        assert_eq!(
            extract_json("use {braces} like {\"ok\": true}"),
            Some(json!({"ok": true}))
        );
        assert_eq!(extract_json("no json here"), None);
        assert_eq!(extract_json("[1,2]"), None);
    }

    #[test]
    fn exchange_serialises_latency_as_millis() {
        let e = Exchange {
            prompt: "p".into(),
            answer: None,
            usage: Usage::default(),
            latency: Duration::from_millis(1500),
            error: Some("x".into()),
            redactions: RedactionCounts::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["latency"], 1500);
        assert_eq!(serde_json::from_value::<Exchange>(v).unwrap(), e);
    }
}
