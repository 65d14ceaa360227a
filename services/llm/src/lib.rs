//! Provider-neutral LLM client for the selfheal stages (issue 6).
//!
//! Two wire protocols cover the providers we care about: OpenAI-compatible chat
//! completions (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio) and the Anthropic
//! Messages API. Around them this crate keeps the rules every caller must follow:
//!
//! - nothing configured means no LLM ([`LlmConfig::client`] returns `Ok(None)`), so the
//!   deterministic path keeps working exactly as before;
//! - the API key lives in a [`SecretString`] and never reaches logs, errors or records;
//! - retries with backoff on 429/5xx/connection errors, a timeout per call, and a
//!   per-incident [`Budget`] of calls, tokens and cost;
//! - everything derived from telemetry is redacted ([`Redactor`]) and wrapped as
//!   labelled, delimited data ([`prompt::untrusted`]) before it goes into a prompt;
//! - answers are structured JSON, validated by the caller, retried once when malformed
//!   ([`structured::ask_json`]), with every exchange kept for the audit log.

pub mod anthropic;
pub mod audit;
pub mod budget;
pub mod client;
pub mod config;
pub mod error;
pub mod openai;
pub mod prompt;
pub mod provider;
pub mod redact;
pub mod structured;

pub use audit::IncidentLlm;
pub use budget::{Budget, BudgetLimits, BudgetSpent};
pub use client::LlmClient;
pub use config::{LlmConfig, ProviderKind, SecretString};
pub use error::LlmError;
pub use provider::{
    ChatMessage, ChatProvider, ChatRequest, ChatResponse, HttpSettings, Pricing, RetryPolicy, Role, Usage,
};
pub use redact::{RedactionCounts, Redactor};
pub use structured::{Exchange, ask_json, ask_json_audited};
