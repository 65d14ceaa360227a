//! OpenAI-compatible chat completions: OpenAI itself, vLLM, Ollama (`/v1`), llama.cpp
//! server and LM Studio all speak `POST {endpoint}/chat/completions`.

use std::sync::atomic::{AtomicBool, Ordering};
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

/// A client for one OpenAI-compatible deployment (endpoint + model + optional key).
#[derive(Debug)]
pub struct OpenAiProvider {
    http: HttpCore,
    url: String,
    model: String,
    api_key: Option<SecretString>,
    pricing: Option<Pricing>,
    /// Set once the server rejected `response_format`; later calls put the schema in the prompt.
    schema_unsupported: AtomicBool,
}

impl OpenAiProvider {
    /// `endpoint` is the base including `/v1` (e.g. `http://127.0.0.1:8080/v1`). Local
    /// servers usually need no key; when one is given it is sent as `Authorization: Bearer`.
    pub fn new(
        endpoint: &str,
        model: impl Into<String>,
        api_key: Option<SecretString>,
        settings: HttpSettings,
        pricing: Option<Pricing>,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            http: HttpCore::new(settings, endpoint)?,
            url: join_url(endpoint, "chat/completions"),
            model: model.into(),
            api_key,
            pricing,
            schema_unsupported: AtomicBool::new(false),
        })
    }

    fn body(&self, req: &ChatRequest, with_schema: bool) -> Value {
        let system = if with_schema {
            req.system.clone()
        } else {
            req.system_with_schema()
        };
        let mut messages = vec![json!({"role": "system", "content": system})];
        for m in &req.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": m.content}));
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "stream": false,
        });
        if let (true, Some(schema)) = (with_schema, &req.json_schema) {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": false},
            });
        }
        body
    }
}

#[async_trait]
impl ChatProvider for OpenAiProvider {
    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let mut pairs = vec![("content-type", HeaderValue::from_static("application/json"))];
        if let Some(key) = &self.api_key {
            pairs.push(("authorization", secret_header(key, "Bearer ")?));
        }
        let headers = header_map(pairs);
        let want_schema = req.json_schema.is_some() && !self.schema_unsupported.load(Ordering::Relaxed);
        let value = match self
            .http
            .post_json(&self.url, &headers, &self.body(req, want_schema))
            .await
        {
            // Some servers (older llama.cpp, Ollama, LM Studio builds) reject json_schema
            // response formats with a 400: ask again with the schema in the prompt instead.
            Err(LlmError::Status {
                status: 400 | 422,
                body,
            }) if want_schema => {
                tracing::info!(url = %self.url, %body, "server rejected response_format; schema goes into the prompt");
                self.schema_unsupported.store(true, Ordering::Relaxed);
                self.http.post_json(&self.url, &headers, &self.body(req, false)).await?
            }
            other => other?,
        };
        parse_response(&value, &self.model, self.pricing, started)
    }
}

fn parse_response(
    v: &Value,
    model: &str,
    pricing: Option<Pricing>,
    started: Instant,
) -> Result<ChatResponse, LlmError> {
    let message = v
        .pointer("/choices/0/message")
        .ok_or_else(|| LlmError::Decode("no choices[0].message in the answer".into()))?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        // Some servers return content parts.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => {
            let refusal = message.get("refusal").and_then(Value::as_str).unwrap_or("no content");
            return Err(LlmError::Decode(format!("answer has no text content ({refusal})")));
        }
    };
    let input_tokens = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
    let output_tokens = v
        .pointer("/usage/completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    // OpenRouter and some gateways report the cost of the call.
    let cost_usd = v
        .pointer("/usage/cost")
        .and_then(Value::as_f64)
        .or_else(|| pricing.map(|p| p.cost(input_tokens, output_tokens)));
    Ok(ChatResponse {
        text,
        usage: Usage {
            input_tokens,
            output_tokens,
            cost_usd,
        },
        model: v.get("model").and_then(Value::as_str).unwrap_or(model).to_string(),
        latency: started.elapsed(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn provider() -> OpenAiProvider {
        OpenAiProvider::new("http://127.0.0.1:1/v1", "m", None, HttpSettings::default(), None).unwrap()
    }

    #[test]
    fn body_carries_schema_as_response_format_or_in_prompt() {
        let req = ChatRequest::new("sys", "hi", 100).with_schema(json!({"type": "object"}));
        let p = provider();
        let with = p.body(&req, true);
        assert_eq!(with["response_format"]["type"], "json_schema");
        assert_eq!(with["messages"][0]["content"], "sys");
        assert_eq!(with["messages"][1]["role"], "user");
        let without = p.body(&req, false);
        assert!(without.get("response_format").is_none());
        assert!(
            without["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("JSON schema")
        );
    }

    #[test]
    fn parses_content_usage_and_cost() {
        let v = json!({"model": "qwen", "choices": [{"message": {"content": "ok"}}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25}});
        let r = parse_response(&v, "m", None, Instant::now()).unwrap();
        assert_eq!(r.text, "ok");
        assert_eq!(r.model, "qwen");
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 10,
                output_tokens: 5,
                cost_usd: Some(0.25)
            }
        );
        let v = json!({"choices": [{"message": {"content": null, "refusal": "no"}}]});
        assert!(matches!(
            parse_response(&v, "m", None, Instant::now()),
            Err(LlmError::Decode(_))
        ));
        let priced = Pricing {
            input_per_mtok: 1_000_000.0,
            output_per_mtok: 0.0,
        };
        let v =
            json!({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}});
        assert_eq!(
            parse_response(&v, "m", Some(priced), Instant::now())
                .unwrap()
                .usage
                .cost_usd,
            Some(2.0)
        );
    }
}
