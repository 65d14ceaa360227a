//! One incident's use of the model, as the records carry it.
//!
//! The budget is per incident, but the diagnoser and the repairer are separate processes:
//! each stage resumes the incident's spend from the [`LlmReport`] of the record it consumed
//! (the repairer from `Diagnosis.llm`), so the incident never gets a fresh budget per stage.
//! Every exchange (prompt after redaction, answer, usage, error) is appended here and ends up
//! in the stage's output record, which is where `selfheal explain` reads it.

use selfheal_events::{LlmExchange, LlmReport};

use crate::budget::{Budget, BudgetSpent};
use crate::client::LlmClient;
use crate::error::LlmError;
use crate::structured::Exchange;

/// Bound on a prompt or answer kept in a record: records must stay well under Kafka's 1 MB.
pub const MAX_AUDIT_TEXT: usize = 12_000;

/// The model use of one incident within one stage.
#[derive(Debug)]
pub struct IncidentLlm {
    model: String,
    budget: Budget,
    prior_input: u64,
    prior_output: u64,
    prior_cost: Option<f64>,
    input: u64,
    output: u64,
    cost: Option<f64>,
    exhausted: bool,
    notes: Vec<String>,
    exchanges: Vec<LlmExchange>,
}

impl IncidentLlm {
    /// Starts the stage's accounting, resuming the incident's spend from an earlier stage's report.
    pub fn start(client: &LlmClient, earlier: Option<&LlmReport>) -> Self {
        let (calls, input, output, cost) = earlier
            .map(|r| {
                (
                    u32::try_from(r.calls).unwrap_or(0),
                    u64::try_from(r.input_tokens).unwrap_or(0),
                    u64::try_from(r.output_tokens).unwrap_or(0),
                    r.cost_usd,
                )
            })
            .unwrap_or((0, 0, 0, None));
        let budget = Budget::resume(
            client.budget().limits(),
            BudgetSpent {
                calls,
                tokens: input + output,
                cost_usd: cost.unwrap_or(0.0),
            },
        );
        IncidentLlm {
            model: client.description().to_string(),
            budget,
            prior_input: input,
            prior_output: output,
            prior_cost: cost,
            input: 0,
            output: 0,
            cost: None,
            exhausted: false,
            notes: Vec::new(),
            exchanges: Vec::new(),
        }
    }

    /// The incident's budget, to pass to the client's calls.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Whether the budget allows another call; when not, notes it once and says why.
    pub fn can_call(&mut self) -> bool {
        match self.budget.check() {
            Ok(()) => true,
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }

    /// Keeps the exchanges of one call (or of one structured ask, with its retry).
    pub fn record(&mut self, purpose: &str, round: i32, exchanges: &[Exchange]) {
        for e in exchanges {
            self.input += e.usage.input_tokens;
            self.output += e.usage.output_tokens;
            if let Some(c) = e.usage.cost_usd {
                self.cost = Some(self.cost.unwrap_or(0.0) + c);
            }
            self.exchanges.push(LlmExchange {
                purpose: purpose.to_string(),
                round,
                prompt: bounded(&e.prompt),
                answer: e.answer.as_deref().map(bounded),
                error: e.error.as_deref().map(bounded),
                input_tokens: i64::try_from(e.usage.input_tokens).unwrap_or(i64::MAX),
                output_tokens: i64::try_from(e.usage.output_tokens).unwrap_or(i64::MAX),
                cost_usd: e.usage.cost_usd,
                latency_ms: i64::try_from(e.latency.as_millis()).unwrap_or(i64::MAX),
                redactions: i32::try_from(e.redactions.total()).unwrap_or(i32::MAX),
            });
        }
    }

    /// Notes a failed call (keeping a malformed answer's exchanges); budget exhaustion is flagged.
    pub fn failed_call(&mut self, purpose: &str, round: i32, err: &LlmError) {
        if let LlmError::Malformed { exchanges, .. } = err {
            self.record(purpose, round, exchanges);
        }
        self.failed(err);
    }

    fn failed(&mut self, err: &LlmError) {
        if matches!(err, LlmError::BudgetExhausted { .. }) {
            if self.exhausted {
                return;
            }
            self.exhausted = true;
        }
        self.note(err.to_string());
    }

    /// Adds a line for a person (bounded).
    pub fn note(&mut self, text: impl AsRef<str>) {
        self.notes.push(bounded_to(text.as_ref(), 500));
    }

    /// Exchanges kept so far.
    pub fn exchanges(&self) -> &[LlmExchange] {
        &self.exchanges
    }

    /// Whether the budget ran out during this stage.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// The record's report: the incident's totals so far and this stage's exchanges.
    pub fn report(&self) -> LlmReport {
        let spent = self.budget.spent();
        let cost = match (self.prior_cost, self.cost) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        LlmReport {
            model: self.model.clone(),
            calls: i32::try_from(spent.calls).unwrap_or(i32::MAX),
            input_tokens: i64::try_from(self.prior_input + self.input).unwrap_or(i64::MAX),
            output_tokens: i64::try_from(self.prior_output + self.output).unwrap_or(i64::MAX),
            cost_usd: cost,
            budget_exhausted: self.exhausted,
            notes: self.notes.clone(),
            exchanges: self.exchanges.clone(),
        }
    }
}

fn bounded(text: &str) -> String {
    bounded_to(text, MAX_AUDIT_TEXT)
}

/// At most `max` characters, cut on a character boundary, marked when cut.
fn bounded_to(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push_str(" …[truncated]");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{LlmConfig, ProviderKind};
    use crate::provider::Usage;
    use crate::redact::RedactionCounts;

    fn client(max_calls: u32) -> LlmClient {
        let cfg = LlmConfig {
            provider: Some(ProviderKind::Openai),
            endpoint: Some("http://127.0.0.1:9/v1".into()),
            model: Some("tiny".into()),
            max_calls,
            ..LlmConfig::default()
        };
        cfg.client_with_env(|_| None).unwrap().unwrap()
    }

    fn exchange(input: u64, output: u64) -> Exchange {
        Exchange {
            prompt: "p".repeat(MAX_AUDIT_TEXT + 10),
            answer: Some("{}".into()),
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
                cost_usd: None,
            },
            latency: Duration::from_millis(42),
            error: None,
            redactions: RedactionCounts::default(),
        }
    }

    #[test]
    fn resumes_the_incidents_spend_from_an_earlier_stage() {
        let c = client(3);
        let mut diag = IncidentLlm::start(&c, None);
        diag.budget().record(&exchange(100, 20).usage);
        diag.record("hypotheses", 0, &[exchange(100, 20)]);
        let report = diag.report();
        assert_eq!((report.calls, report.input_tokens, report.output_tokens), (1, 100, 20));
        assert!(report.exchanges[0].prompt.ends_with("[truncated]"));
        assert_eq!(report.exchanges[0].latency_ms, 42);

        let mut repair = IncidentLlm::start(&c, Some(&report));
        assert_eq!(repair.budget().spent().calls, 1);
        repair.budget().record(&exchange(10, 5).usage);
        repair.budget().record(&exchange(10, 5).usage);
        assert!(!repair.can_call(), "3 calls of 3 spent over two stages");
        assert!(!repair.can_call());
        let r = repair.report();
        assert!(r.budget_exhausted);
        assert_eq!(r.notes.len(), 1, "exhaustion noted once: {:?}", r.notes);
        assert!(r.notes[0].contains("calls: 3 of 3"), "{:?}", r.notes);
        assert_eq!(r.calls, 3);
        assert_eq!(
            r.input_tokens, 100,
            "this stage's exchanges were not recorded, only the earlier spend"
        );
    }

    #[test]
    fn malformed_answers_keep_their_exchanges() {
        let c = client(6);
        let mut s = IncidentLlm::start(&c, None);
        let err = LlmError::Malformed {
            reason: "no JSON object in the answer".into(),
            exchanges: vec![exchange(5, 5), exchange(6, 6)],
        };
        s.failed_call("patch", 1, &err);
        let r = s.report();
        assert_eq!(r.exchanges.len(), 2);
        assert!(r.exchanges.iter().all(|e| e.purpose == "patch" && e.round == 1));
        assert_eq!(r.input_tokens, 11);
        assert!(!r.budget_exhausted);
        assert!(r.notes[0].contains("malformed"), "{:?}", r.notes);
    }
}
