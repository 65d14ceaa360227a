//! The demo's markdown report: what happened, when, on what evidence, and the fix.

use std::fmt::Write as _;

use selfheal_events::{Anomaly, Diagnosis, Outcome, Patch, Rollout};

use super::timeline::Entry;
use crate::render::{secs, since_first_error, status_word};

/// Everything the report draws on; any part may be missing when the demo stopped early.
#[derive(Debug, Default, Clone)]
pub struct Story {
    /// The run id.
    pub run_id: String,
    /// The timeline entries as printed.
    pub entries: Vec<Entry>,
    /// The incident.
    pub anomaly: Option<Anomaly>,
    /// The diagnosis.
    pub diagnosis: Option<Diagnosis>,
    /// The patch.
    pub patch: Option<Patch>,
    /// Rollout steps in order.
    pub rollouts: Vec<Rollout>,
    /// The outcome.
    pub outcome: Option<Outcome>,
    /// Why the demo stopped without an outcome, if it did.
    pub stopped: Option<String>,
}

/// The report as markdown.
pub fn markdown(s: &Story) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# selfheal demo report — run {}\n", s.run_id);
    match (&s.outcome, &s.stopped) {
        (Some(o), _) => {
            let _ = writeln!(
                md,
                "**{}** — {} · incident `{}` · {} from first error to verdict\n",
                status_word(o.status),
                o.service,
                o.incident_id,
                secs(since_first_error(&o.timeline, o.timeline.outcome_ms))
            );
            let _ = writeln!(md, "{}\n", o.summary);
        }
        (None, Some(why)) => {
            let _ = writeln!(md, "**No outcome** — {why}\n");
        }
        (None, None) => {
            let _ = writeln!(md, "**No outcome**\n");
        }
    }
    let _ = writeln!(md, "## Timeline\n\n| t | stage | what |\n|---|---|---|");
    for e in &s.entries {
        let t = e.t.map(|t| format!("+{t:.1}s")).unwrap_or_else(|| "?".into());
        let text = e.lines.join("<br>").replace('|', "\\|");
        let _ = writeln!(md, "| {t} | {} | {text} |", e.stage);
    }
    if let Some(a) = &s.anomaly {
        let _ = writeln!(
            md,
            "\n## Incident\n\n- service `{}`, operation `{}`, version `{}`",
            a.service,
            a.operation.as_deref().unwrap_or("-"),
            a.service_version.as_deref().unwrap_or("-")
        );
        let _ = writeln!(md, "- fingerprint `{}`; signals {:?}", a.fingerprint, a.signals);
        let _ = writeln!(
            md,
            "- {} of {} requests failed (error rate {:.1}%, baseline {:.1}%)",
            a.error_count,
            a.request_count,
            a.error_rate * 100.0,
            a.baseline_error_rate * 100.0
        );
        if let Some(e) = &a.exception {
            let _ = writeln!(
                md,
                "\n```text\n{}: {}\n{}\n```",
                e.r#type,
                e.message,
                e.stacktrace.as_deref().unwrap_or("").trim_end()
            );
        }
    }
    if let Some(d) = &s.diagnosis {
        let _ = writeln!(
            md,
            "\n## Diagnosis ({:?}, confidence {:.2})\n\n{}\n",
            d.status, d.confidence, d.summary
        );
        for h in &d.hypotheses {
            let _ = writeln!(
                md,
                "{}. **{}** ({:?}, {:.2}): {}",
                h.rank, h.category, h.source, h.confidence, h.summary
            );
            for e in &h.evidence {
                let _ = writeln!(md, "   - {}: {}", e.kind, e.detail);
            }
        }
        if let Some(rc) = &s.diagnosis.as_ref().and_then(|d| d.root_cause.clone())
            && let Some(snippet) = &rc.code_snippet
        {
            let _ = writeln!(md, "\n```python\n{}\n```", snippet.trim_end());
        }
        for f in &d.known_fixes {
            let _ = writeln!(
                md,
                "- learning store: `{}` healed {}/{}",
                f.strategy, f.healed, f.attempts
            );
        }
    }
    if let Some(p) = &s.patch {
        let _ = writeln!(
            md,
            "\n## Patch ({:?}{})\n\n{}\n",
            p.status,
            if p.learned { ", learned" } else { "" },
            p.summary
        );
        if let (Some(b), Some(c)) = (&p.branch, &p.commit) {
            let _ = writeln!(
                md,
                "Branch `{b}` at `{c}` in `{}`.\n",
                p.repository.as_deref().unwrap_or("?")
            );
        }
        if !p.diff.is_empty() {
            let _ = writeln!(md, "```diff\n{}\n```", p.diff.trim_end());
        }
        if let Some(v) = &p.validation {
            let _ = writeln!(
                md,
                "\n| regression test failed before | passed after | suite passed | tests run | failed | sandbox | time |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} | {:.1}s |",
                v.failed_before,
                v.passed_after,
                v.suite_passed,
                v.tests_run,
                v.tests_failed,
                v.sandbox,
                v.duration_ms as f64 / 1000.0
            );
            if !v.output_tail.is_empty() {
                let _ = writeln!(md, "\n```text\n{}\n```", v.output_tail.trim_end());
            }
        }
        if let Some(pv) = &p.policy {
            let _ = writeln!(
                md,
                "\nPolicy: {} ({} rules, digest `{}`){}",
                if pv.allowed { "allowed" } else { "denied" },
                pv.rules_evaluated,
                pv.policy_digest,
                if pv.violations.is_empty() {
                    String::new()
                } else {
                    format!(": {}", pv.violations.join("; "))
                }
            );
        }
        for a in &p.attempts {
            let _ = writeln!(md, "- tried `{}`: {} — {}", a.strategy, a.result, a.reason);
        }
    }
    if !s.rollouts.is_empty() {
        let _ = writeln!(
            md,
            "\n## Rollout\n\n| step | detail | canary errors | stable errors |\n|---|---|---|---|"
        );
        for r in &s.rollouts {
            let rate = |x: Option<f64>, n: i64| {
                x.map(|x| format!("{:.1}% of {n}", x * 100.0))
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                md,
                "| {:?} | {} | {} | {} |",
                r.step,
                r.detail.replace('|', "\\|"),
                rate(r.canary_error_rate, r.canary_requests),
                rate(r.stable_error_rate, r.stable_requests)
            );
        }
    }
    if let Some(o) = &s.outcome {
        let t = &o.timeline;
        let _ = writeln!(
            md,
            "\n## Seconds from first error\n\n| anomaly | diagnosis | patch | approval | canary | promotion | outcome |\n|---|---|---|---|---|---|---|"
        );
        let f = |ms| secs(since_first_error(t, ms));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f(t.anomaly_ms),
            f(t.diagnosis_ms),
            f(t.patch_ms),
            f(t.approval_ms),
            f(t.canary_ms),
            f(t.promotion_ms),
            f(t.outcome_ms)
        );
    }
    md
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use selfheal_events::examples;

    #[test]
    fn the_report_carries_verdict_diff_tests_and_times() {
        let s = Story {
            run_id: "r1".into(),
            entries: vec![super::super::timeline::anomaly(&examples::anomaly())],
            anomaly: Some(examples::anomaly()),
            diagnosis: Some(examples::diagnosis()),
            patch: Some(examples::patch()),
            rollouts: vec![examples::rollout()],
            outcome: Some(examples::outcome()),
            stopped: None,
        };
        let md = markdown(&s);
        assert!(md.contains("**HEALED**"), "{md}");
        assert!(md.contains("+    return p / d if d != 0 else p"), "{md}");
        assert!(md.contains("| true | true | true | 26 | 0 |"), "{md}");
        assert!(md.contains("| +1.1s | monitor |"), "{md}");
        assert!(md.contains("## Seconds from first error"), "{md}");
    }

    #[test]
    fn a_stopped_demo_says_why() {
        let md = markdown(&Story {
            run_id: "r".into(),
            stopped: Some("timed out after 150s".into()),
            ..Story::default()
        });
        assert!(md.contains("**No outcome** — timed out after 150s"));
    }
}
