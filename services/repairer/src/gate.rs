//! The policy gate: the governance crate's patch policy, asked before any branch exists.
//!
//! Any governance error is a denial (fail closed), reported as a violation.

use selfheal_catalog::ServiceEntry;
use selfheal_events::PolicyVerdict;
use selfheal_governance::{PatchInput, PatchOrigin, PolicyEngine, Validation};

/// The verdict on one validated candidate.
pub fn evaluate(
    engine: &PolicyEngine,
    entry: &ServiceEntry,
    diff: &str,
    strategy: &str,
    origin: PatchOrigin,
    validation: Validation,
) -> PolicyVerdict {
    let verdict = PatchInput::for_service(entry, diff, strategy, origin)
        .map(|input| input.with_validation(validation))
        .and_then(|input| engine.evaluate_patch(&input));
    match verdict {
        Ok(v) => PolicyVerdict {
            allowed: v.allowed,
            violations: v.violations,
            rules_evaluated: i32::try_from(v.rules_evaluated).unwrap_or(i32::MAX),
            policy_digest: v.policy_digest,
        },
        Err(err) => PolicyVerdict {
            allowed: false,
            violations: vec![format!("policy-error: (patch): no verdict, denied: {err}")],
            rules_evaluated: 0,
            policy_digest: engine.policy_digest().to_string(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DIFF: &str = "--- a/pricing_logic.py\n+++ b/pricing_logic.py\n@@ -14 +14,2 @@\n-def calc(p, d): return p / d\n+def calc(p, d):\n+    return p / d if d != 0 else p\n";

    fn entry() -> ServiceEntry {
        ServiceEntry::new("pricing-api", "/tmp/x", "python", vec!["python3".into()])
    }

    #[test]
    fn a_proven_small_fix_is_allowed_and_protected_files_are_denied() {
        let engine = PolicyEngine::embedded().unwrap();
        let v = evaluate(
            &engine,
            &entry(),
            DIFF,
            "python.zero-division-guard",
            PatchOrigin::Template,
            Validation::proven(),
        );
        assert!(v.allowed, "{:?}", v.violations);
        assert!(v.rules_evaluated > 0);
        let mut protected = entry();
        protected.protected_globs = vec!["pricing_logic.py".into()];
        let v = evaluate(
            &engine,
            &protected,
            DIFF,
            "python.zero-division-guard",
            PatchOrigin::Learned,
            Validation::proven(),
        );
        assert!(!v.allowed);
        assert!(
            v.violations
                .iter()
                .any(|m| m.starts_with("protected-path: pricing_logic.py")),
            "{:?}",
            v.violations
        );
        let v = evaluate(&engine, &entry(), DIFF, "x", PatchOrigin::Llm, Validation::default());
        assert!(v.violations.iter().any(|m| m.starts_with("validation-not-proven")));
    }

    #[test]
    fn an_unreadable_diff_is_a_denial() {
        let engine = PolicyEngine::embedded().unwrap();
        let v = evaluate(
            &engine,
            &entry(),
            "--- a/x\n+++ b/x\n@@ garbage\n",
            "x",
            PatchOrigin::Template,
            Validation::proven(),
        );
        assert!(!v.allowed);
    }
}
