//! [`LlmClient`]: a configured provider plus the rules around every call — redaction of the
//! whole prompt before it leaves the process, the per-incident budget, bounded output, and
//! an audit [`Exchange`] for each call.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::budget::{Budget, BudgetLimits};
use crate::error::LlmError;
use crate::provider::{ChatMessage, ChatProvider, ChatRequest, ChatResponse, Usage};
use crate::redact::{RedactionCounts, Redactor};
use crate::structured::{self, Exchange};

/// The model a deployment talks to, with its redactor and budget limits.
#[derive(Clone)]
pub struct LlmClient {
    provider: Arc<dyn ChatProvider>,
    redactor: Arc<Redactor>,
    limits: BudgetLimits,
    max_output_tokens: u32,
    description: String,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("description", &self.description)
            .field("limits", &self.limits)
            .field("max_output_tokens", &self.max_output_tokens)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client over any provider (a fake in tests).
    pub fn new(provider: Arc<dyn ChatProvider>, redactor: Redactor, limits: BudgetLimits) -> Self {
        Self {
            provider,
            redactor: Arc::new(redactor),
            limits,
            max_output_tokens: 2048,
            description: "custom".into(),
        }
    }

    /// Set the human-readable description (provider, model, endpoint; never the key).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Cap on `max_tokens` of every request.
    pub fn with_max_output_tokens(mut self, max: u32) -> Self {
        self.max_output_tokens = max.max(1);
        self
    }

    /// Provider, model and endpoint, for records.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// A fresh budget for one incident.
    pub fn budget(&self) -> Budget {
        Budget::new(self.limits)
    }

    /// The redactor applied to every prompt.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The configured cap on generated tokens per call.
    pub fn max_output_tokens(&self) -> u32 {
        self.max_output_tokens
    }

    /// The request as it will leave the process: every text redacted, `max_tokens` capped by
    /// the configuration and by what the budget has left.
    pub fn prepare(&self, budget: &Budget, req: &ChatRequest) -> (ChatRequest, RedactionCounts) {
        let mut counts = RedactionCounts::default();
        let mut out = req.clone();
        out.system = self.redactor.redact_counting(&req.system, &mut counts);
        out.messages = req
            .messages
            .iter()
            .map(|m| ChatMessage {
                role: m.role,
                content: self.redactor.redact_counting(&m.content, &mut counts),
            })
            .collect();
        let mut max = out.max_tokens.clamp(1, self.max_output_tokens);
        if let Some(left) = budget.remaining_tokens() {
            max = max.min(u32::try_from(left).unwrap_or(u32::MAX).max(1));
        }
        out.max_tokens = max;
        if counts.total() > 0 {
            tracing::info!(redacted = ?counts.0, "secrets redacted from an LLM prompt");
        }
        (out, counts)
    }

    /// One free-text call within the budget; the exchange is returned for the audit log.
    pub async fn chat(&self, budget: &Budget, req: &ChatRequest) -> Result<(ChatResponse, Exchange), LlmError> {
        budget.check()?;
        let (req, counts) = self.prepare(budget, req);
        let prompt = req.render();
        match self.provider.chat(&req).await {
            Ok(resp) => {
                budget.record(&resp.usage);
                let exchange = Exchange {
                    prompt,
                    answer: Some(resp.text.clone()),
                    usage: resp.usage,
                    latency: resp.latency,
                    error: None,
                    redactions: counts,
                };
                Ok((resp, exchange))
            }
            Err(e) => {
                budget.record(&Usage::default());
                Err(e)
            }
        }
    }

    /// A structured answer (see [`structured::ask_json`]) with the prompt redacted first.
    pub async fn ask_json<T, F>(
        &self,
        budget: &Budget,
        req: &ChatRequest,
        validate: F,
    ) -> Result<(T, Vec<Exchange>), LlmError>
    where
        T: DeserializeOwned,
        F: Fn(&T) -> Result<(), String>,
    {
        let mut audit = Vec::new();
        match self.ask_json_audited(budget, req, validate, &mut audit).await {
            Ok(v) => Ok((v, audit)),
            Err(LlmError::Malformed { reason, .. }) => Err(LlmError::Malformed {
                reason,
                exchanges: audit,
            }),
            Err(e) => Err(e),
        }
    }

    /// [`LlmClient::ask_json`] appending every exchange to `audit` whatever the outcome.
    pub async fn ask_json_audited<T, F>(
        &self,
        budget: &Budget,
        req: &ChatRequest,
        validate: F,
        audit: &mut Vec<Exchange>,
    ) -> Result<T, LlmError>
    where
        T: DeserializeOwned,
        F: Fn(&T) -> Result<(), String>,
    {
        let (req, counts) = self.prepare(budget, req);
        let first = audit.len();
        let result = structured::ask_json_audited(self.provider.as_ref(), budget, &req, validate, audit).await;
        if let Some(e) = audit.get_mut(first) {
            e.redactions = counts;
        }
        result
    }
}
