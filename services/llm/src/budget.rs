//! The per-incident budget: how many calls, tokens and dollars one incident may spend on
//! the model. A stage makes one [`Budget`] per incident, checks before every call and
//! records after it; when it is spent the stage says so in its record and goes on
//! with what it has.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::LlmError;
use crate::provider::Usage;

/// Limits for one incident. `None` means unlimited for that dimension.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetLimits {
    /// Model calls (a retried HTTP request is one call).
    pub max_calls: Option<u32>,
    /// Input plus output tokens.
    pub max_tokens: Option<u64>,
    /// US dollars, counted only where the provider reports a cost or a price is configured.
    pub max_cost_usd: Option<f64>,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        Self {
            max_calls: Some(6),
            max_tokens: Some(60_000),
            max_cost_usd: None,
        }
    }
}

/// What an incident has spent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetSpent {
    /// Calls made.
    pub calls: u32,
    /// Tokens used (input + output).
    pub tokens: u64,
    /// Dollars reported.
    pub cost_usd: f64,
}

/// A per-incident budget, shareable between tasks of the same incident. `check` and `record`
/// are separate steps, so calls made concurrently for one incident may overshoot by their number.
#[derive(Debug, Default)]
pub struct Budget {
    limits: BudgetLimits,
    spent: Mutex<BudgetSpent>,
}

impl Budget {
    /// A fresh budget with these limits.
    pub fn new(limits: BudgetLimits) -> Self {
        Self {
            limits,
            spent: Mutex::new(BudgetSpent::default()),
        }
    }

    /// A budget that continues an incident's spend from an earlier stage.
    pub fn resume(limits: BudgetLimits, spent: BudgetSpent) -> Self {
        Self {
            limits,
            spent: Mutex::new(spent),
        }
    }

    /// The limits.
    pub fn limits(&self) -> BudgetLimits {
        self.limits
    }

    /// What was spent so far.
    pub fn spent(&self) -> BudgetSpent {
        *self.spent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok` when another call may be made; otherwise which limit is reached.
    pub fn check(&self) -> Result<(), LlmError> {
        let s = self.spent();
        if let Some(max) = self.limits.max_calls
            && s.calls >= max
        {
            return Err(LlmError::BudgetExhausted {
                what: format!("calls: {} of {max} used", s.calls),
            });
        }
        if let Some(max) = self.limits.max_tokens
            && s.tokens >= max
        {
            return Err(LlmError::BudgetExhausted {
                what: format!("tokens: {} of {max} used", s.tokens),
            });
        }
        if let Some(max) = self.limits.max_cost_usd
            && s.cost_usd >= max
        {
            return Err(LlmError::BudgetExhausted {
                what: format!("cost: ${:.4} of ${max:.4} used", s.cost_usd),
            });
        }
        Ok(())
    }

    /// Tokens still available, to cap a request's `max_tokens` (None = unlimited).
    pub fn remaining_tokens(&self) -> Option<u64> {
        self.limits
            .max_tokens
            .map(|max| max.saturating_sub(self.spent().tokens))
    }

    /// Count one call and what it used (also for failed calls, with zero usage: they cost time).
    pub fn record(&self, usage: &Usage) {
        let mut s = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        s.calls += 1;
        s.tokens += usage.total_tokens();
        s.cost_usd += usage.cost_usd.unwrap_or(0.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, c: Option<f64>) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cost_usd: c,
        }
    }

    #[test]
    fn calls_limit() {
        let b = Budget::new(BudgetLimits {
            max_calls: Some(2),
            max_tokens: None,
            max_cost_usd: None,
        });
        b.check().unwrap();
        b.record(&usage(1, 1, None));
        b.check().unwrap();
        b.record(&usage(1, 1, None));
        match b.check() {
            Err(LlmError::BudgetExhausted { what }) => assert!(what.starts_with("calls"), "{what}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            b.spent(),
            BudgetSpent {
                calls: 2,
                tokens: 4,
                cost_usd: 0.0
            }
        );
    }

    #[test]
    fn tokens_and_cost_limits() {
        let b = Budget::new(BudgetLimits {
            max_calls: None,
            max_tokens: Some(100),
            max_cost_usd: None,
        });
        b.record(&usage(60, 30, None));
        b.check().unwrap();
        assert_eq!(b.remaining_tokens(), Some(10));
        b.record(&usage(5, 5, None));
        assert!(matches!(b.check(), Err(LlmError::BudgetExhausted { what }) if what.starts_with("tokens")));

        let c = Budget::new(BudgetLimits {
            max_calls: None,
            max_tokens: None,
            max_cost_usd: Some(0.5),
        });
        c.record(&usage(1, 1, None));
        c.check().unwrap();
        c.record(&usage(1, 1, Some(0.6)));
        assert!(matches!(c.check(), Err(LlmError::BudgetExhausted { what }) if what.starts_with("cost")));
    }
}
