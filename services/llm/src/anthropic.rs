//! The Anthropic Messages API: `POST {endpoint}/v1/messages` with `x-api-key` and
//! `anthropic-version`, the system prompt as a top-level field.

use std::time::Instant;

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::config::SecretString;
use crate::error::LlmError;
use crate::provider::{
    ChatProvider, ChatRequest, ChatResponse, HttpCore, HttpSettings, Pricing, Role, Usage, header_map, join_url,
    secret_header,
};

/// The API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client for the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicProvider {
    http: HttpCore,
    url: String,
    model: String,
    api_key: SecretString,
    pricing: Option<Pricing>,
}

impl AnthropicProvider {
    /// `endpoint` is the API base, e.g. `https://api.anthropic.com` (a trailing `/v1` is accepted).
    pub fn new(
        endpoint: &str,
        model: impl Into<String>,
        api_key: SecretString,
        settings: HttpSettings,
        pricing: Option<Pricing>,
    ) -> Result<Self, LlmError> {
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with("/v1") {
            join_url(base, "messages")
        } else {
            join_url(base, "v1/messages")
        };
        Ok(Self {
            http: HttpCore::new(settings, endpoint)?,
            url,
            model: model.into(),
            api_key,
            pricing,
        })
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({"role": role, "content": m.content})
            })
            .collect();
        // The classic Messages API has no response-format parameter: the schema goes into the system prompt.
        json!({
            "model": self.model,
            "system": req.system_with_schema(),
            "messages": messages,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
        })
    }
}

#[async_trait]
impl ChatProvider for AnthropicProvider {
    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let headers = header_map(vec![
            ("content-type", HeaderValue::from_static("application/json")),
            ("x-api-key", secret_header(&self.api_key, "")?),
            ("anthropic-version", HeaderValue::from_static(ANTHROPIC_VERSION)),
        ]);
        let value = self.http.post_json(&self.url, &headers, &self.body(req)).await?;
        parse_response(&value, &self.model, self.pricing, started)
    }
}

fn parse_response(
    v: &Value,
    model: &str,
    pricing: Option<Pricing>,
    started: Instant,
) -> Result<ChatResponse, LlmError> {
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Decode("no content array in the answer".into()))?;
    let text: String = content
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("");
    if text.is_empty() {
        let reason = v.get("stop_reason").and_then(Value::as_str).unwrap_or("unknown");
        return Err(LlmError::Decode(format!(
            "answer has no text block (stop_reason {reason})"
        )));
    }
    let input_tokens = v.pointer("/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
    let output_tokens = v.pointer("/usage/output_tokens").and_then(Value::as_u64).unwrap_or(0);
    Ok(ChatResponse {
        text,
        usage: Usage {
            input_tokens,
            output_tokens,
            cost_usd: pricing.map(|p| p.cost(input_tokens, output_tokens)),
        },
        model: v.get("model").and_then(Value::as_str).unwrap_or(model).to_string(),
        latency: started.elapsed(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn url_and_body_shape() {
        let key = SecretString::new("k".into());
        let p = AnthropicProvider::new(
            "https://api.anthropic.com/",
            "claude",
            key.clone(),
            HttpSettings::default(),
            None,
        )
        .unwrap();
        assert_eq!(p.url, "https://api.anthropic.com/v1/messages");
        let p2 = AnthropicProvider::new("http://127.0.0.1:9/v1", "claude", key, HttpSettings::default(), None).unwrap();
        assert_eq!(p2.url, "http://127.0.0.1:9/v1/messages");
        let body = p.body(&ChatRequest::new("sys", "hi", 50));
        assert_eq!(body["system"], "sys");
        assert_eq!(body["messages"][0], json!({"role": "user", "content": "hi"}));
        assert_eq!(body["max_tokens"], 50);
    }

    #[test]
    fn parses_text_blocks_and_usage() {
        let v = json!({"model": "claude-x", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                       "usage": {"input_tokens": 7, "output_tokens": 3}});
        let r = parse_response(&v, "m", None, Instant::now()).unwrap();
        assert_eq!(r.text, "ab");
        assert_eq!(r.usage.total_tokens(), 10);
        assert_eq!(r.model, "claude-x");
        let empty = json!({"content": [], "stop_reason": "max_tokens"});
        assert!(matches!(
            parse_response(&empty, "m", None, Instant::now()),
            Err(LlmError::Decode(_))
        ));
    }
}
