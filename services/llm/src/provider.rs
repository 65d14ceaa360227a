//! The provider-neutral chat interface and the HTTP plumbing both wire protocols share:
//! retries with exponential backoff and jitter on 429 (honouring `Retry-After`), 5xx and
//! connection errors; no retry on other 4xx; a timeout per attempt and per call.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::config::SecretString;
use crate::error::LlmError;
use crate::redact::Redactor;

/// Who said a message in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The caller (our prompt).
    User,
    /// The model (an earlier answer, e.g. when asking for a correction).
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A message from the caller.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    /// A message from the model.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A provider-neutral chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// System prompt (instructions; never telemetry-derived text outside untrusted blocks).
    pub system: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature (0 for reproducible answers).
    pub temperature: f32,
    /// JSON schema the answer must follow, when a structured answer is wanted.
    pub json_schema: Option<serde_json::Value>,
}

impl ChatRequest {
    /// A single-turn request with temperature 0 and no schema.
    pub fn new(system: impl Into<String>, user: impl Into<String>, max_tokens: u32) -> Self {
        Self {
            system: system.into(),
            messages: vec![ChatMessage::user(user)],
            max_tokens,
            temperature: 0.0,
            json_schema: None,
        }
    }

    /// The same request with a JSON schema for the answer.
    pub fn with_schema(mut self, schema: serde_json::Value) -> Self {
        self.json_schema = Some(schema);
        self
    }

    /// Readable rendering of the whole prompt, for audit records.
    pub fn render(&self) -> String {
        let mut out = format!("[system]\n{}\n", self.system);
        for m in &self.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            out.push_str(&format!("[{role}]\n{}\n", m.content));
        }
        out
    }

    /// The system prompt plus an instruction naming the schema, for providers (or fallbacks)
    /// that cannot take the schema as a request parameter.
    pub(crate) fn system_with_schema(&self) -> String {
        match &self.json_schema {
            Some(schema) => format!(
                "{}\n\nAnswer with exactly one JSON object and nothing else. It must follow this JSON schema:\n{}",
                self.system, schema
            ),
            None => self.system.clone(),
        }
    }
}

/// Tokens used by a call, and its cost when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Cost in US dollars, when the provider reports it or a price is configured.
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A provider-neutral chat answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The answer text.
    pub text: String,
    /// Tokens and cost of this call.
    pub usage: Usage,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Wall time of the call, retries included.
    pub latency: Duration,
}

/// A chat-capable model behind some wire protocol.
#[async_trait]
pub trait ChatProvider: Send + Sync {
    /// Send one request and wait for the whole answer.
    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError>;
}

/// Prices per million tokens, used when the provider does not report a cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    /// USD per million input tokens.
    pub input_per_mtok: f64,
    /// USD per million output tokens.
    pub output_per_mtok: f64,
}

impl Pricing {
    /// Cost of the given token counts.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok) / 1_000_000.0
    }
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// First backoff; doubled after each attempt.
    pub base_backoff: Duration,
    /// Cap on any one wait, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `retry` (0-based): exponential with "equal jitter", so
    /// concurrent stages that failed together do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base_backoff.saturating_mul(1u32 << retry.min(16));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        let jitter_ms = if half.as_millis() > 0 {
            rand::random_range(0..=half.as_millis() as u64)
        } else {
            0
        };
        half + Duration::from_millis(jitter_ms)
    }
}

/// HTTP behaviour shared by the providers.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Limit on one HTTP attempt (connect + generate + read).
    pub request_timeout: Duration,
    /// Limit on connecting.
    pub connect_timeout: Duration,
    /// Limit on the whole call, retries and backoff included.
    pub call_timeout: Duration,
    /// Retry behaviour.
    pub retry: RetryPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
        }
    }
}

/// A header value that is a credential: marked sensitive so hyper/reqwest never print it.
pub(crate) fn secret_header(secret: &SecretString, prefix: &str) -> Result<HeaderValue, LlmError> {
    let mut v = HeaderValue::from_str(&format!("{prefix}{}", secret.expose()))
        .map_err(|_| LlmError::Config("the API key contains characters not allowed in an HTTP header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// The reqwest client and retry loop used by both protocols.
#[derive(Clone)]
pub(crate) struct HttpCore {
    client: reqwest::Client,
    settings: HttpSettings,
}

impl std::fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCore")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One unsuccessful HTTP attempt, before deciding whether to retry.
enum Attempt {
    Retry {
        status: Option<u16>,
        retry_after: Option<Duration>,
        err: LlmError,
    },
    Fail(LlmError),
}

impl HttpCore {
    /// Build the client. A model server on this host is reached without the environment's proxy.
    pub(crate) fn new(settings: HttpSettings, endpoint: &str) -> Result<Self, LlmError> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout);
        if is_loopback(endpoint) {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| LlmError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { client, settings })
    }

    /// POST `body` to `url` with `headers`, retrying as the policy says; returns the parsed
    /// JSON of the first 2xx answer. The whole call is bounded by `call_timeout`.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, LlmError> {
        let limit = self.settings.call_timeout;
        match tokio::time::timeout(limit, self.post_with_retries(url, headers, body)).await {
            Ok(r) => r,
            Err(_) => Err(LlmError::Timeout { after: limit }),
        }
    }

    async fn post_with_retries(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, LlmError> {
        let policy = self.settings.retry;
        let mut retry = 0u32;
        loop {
            let started = Instant::now();
            match self.attempt(url, headers, body).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry {
                    status,
                    retry_after,
                    err,
                }) => {
                    if retry >= policy.max_retries {
                        tracing::warn!(url, attempts = retry + 1, error = %err, "LLM call failed after retries");
                        return Err(err);
                    }
                    let wait = retry_after
                        .map(|d| d.min(policy.max_backoff))
                        .unwrap_or_else(|| policy.backoff(retry));
                    tracing::info!(
                        url,
                        status,
                        attempt = retry + 1,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        wait_ms = wait.as_millis() as u64,
                        error = %err,
                        "LLM call will be retried"
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Attempt> {
        tracing::debug!(url, "LLM request");
        let resp = match self.client.post(url).headers(headers.clone()).json(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(Attempt::Fail(LlmError::Timeout {
                    after: self.settings.request_timeout,
                }));
            }
            Err(e) => {
                return Err(Attempt::Retry {
                    status: None,
                    retry_after: None,
                    err: LlmError::Transport(describe(&e)),
                });
            }
        };
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers());
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => {
                return Err(Attempt::Fail(LlmError::Timeout {
                    after: self.settings.request_timeout,
                }));
            }
            Err(e) => {
                return Err(Attempt::Retry {
                    status: None,
                    retry_after: None,
                    err: LlmError::Transport(describe(&e)),
                });
            }
        };
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| Attempt::Fail(LlmError::Decode(format!("response is not JSON: {e}"))));
        }
        let err = LlmError::Status {
            status: status.as_u16(),
            body: error_body(&text),
        };
        if status.as_u16() == 429 || status.is_server_error() {
            Err(Attempt::Retry {
                status: Some(status.as_u16()),
                retry_after,
                err,
            })
        } else {
            Err(Attempt::Fail(err))
        }
    }
}

/// Header map with the given names and values (names are static, values built by the caller).
pub(crate) fn header_map(pairs: Vec<(&'static str, HeaderValue)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(HeaderName::from_static(name), value);
    }
    map
}

/// `Retry-After` in seconds (integer or decimal); an HTTP date falls back to our own backoff.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// An error body bounded and redacted: some providers echo part of the key back.
fn error_body(text: &str) -> String {
    let bounded: String = text.chars().take(500).collect();
    Redactor::builtin().redact(&bounded).0
}

/// reqwest's error with its source chain, which is where the useful part (e.g. "connection refused") is.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Whether the endpoint's host is this machine.
fn is_loopback(endpoint: &str) -> bool {
    reqwest::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
        .map(|h| h == "localhost" || h == "[::1]" || h == "::1" || h.starts_with("127."))
        .unwrap_or(false)
}

/// Join an endpoint and a path without doubling or dropping slashes.
pub(crate) fn join_url(endpoint: &str, path: &str) -> String {
    format!("{}/{}", endpoint.trim_end_matches('/'), path.trim_start_matches('/'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 5,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        for _ in 0..20 {
            let b0 = p.backoff(0);
            assert!(
                b0 >= Duration::from_millis(50) && b0 <= Duration::from_millis(100),
                "{b0:?}"
            );
            let b3 = p.backoff(3);
            assert!(
                b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(800),
                "{b3:?}"
            );
            let b10 = p.backoff(10);
            assert!(
                b10 <= Duration::from_millis(1000) && b10 >= Duration::from_millis(500),
                "{b10:?}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_parsed_dates_ignored() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(500)));
        h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn loopback_and_join() {
        assert!(is_loopback("http://127.0.0.1:8080/v1"));
        assert!(is_loopback("http://localhost:11434/v1"));
        assert!(!is_loopback("https://api.anthropic.com"));
        assert_eq!(
            join_url("http://h/v1/", "/chat/completions"),
            "http://h/v1/chat/completions"
        );
    }

    #[test]
    fn secret_header_is_sensitive_and_hidden_in_debug() {
        let s = SecretString::new("sk-test-abcdefghijklmnop".to_string());
        let v = secret_header(&s, "Bearer ").unwrap();
        assert!(v.is_sensitive());
        assert!(!format!("{v:?}").contains("abcdefghijklmnop"));
    }
}
