//! The demo's live timeline: one entry per stage with the time since the first error and
//! the evidence that convinced the stage, rendered from the records on the topics.

use selfheal_events::{
    Anomaly, AnomalyKind, ApprovalMode, Diagnosis, DiagnosisStatus, HypothesisSource, KnownFix, Outcome, Patch,
    PatchStatus, Rollout, RolloutStep, Timeline,
};

use crate::render::{clip, short, status_word};

/// One stage's entry: when (seconds since the first error), who, and lines of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Seconds since the first error, when known.
    pub t: Option<f64>,
    /// `monitor`, `diagnoser`, …
    pub stage: &'static str,
    /// First line, then evidence lines.
    pub lines: Vec<String>,
}

impl Entry {
    fn new(t: Option<f64>, stage: &'static str, first: String) -> Self {
        Entry {
            t,
            stage,
            lines: vec![first],
        }
    }

    fn more(mut self, line: String) -> Self {
        if !line.trim().is_empty() {
            self.lines.push(line);
        }
        self
    }

    /// The entry as terminal lines: `  t+1.1s   monitor     …` with evidence indented under the text.
    pub fn render(&self) -> String {
        let t = match self.t {
            Some(t) => format!("t+{t:.1}s"),
            None => "t+?".into(),
        };
        let mut s = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            if i == 0 {
                s.push_str(&format!("  {t:<8} {:<11} {line}\n", self.stage));
            } else {
                s.push_str(&format!("  {:<8} {:<11} {line}\n", "", ""));
            }
        }
        s
    }
}

/// Seconds from the incident's first error to `ms`.
pub fn at(t: &Timeline, ms: Option<i64>) -> Option<f64> {
    crate::render::since_first_error(t, ms)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The `t+0.0s first 500` entry, printed when the anomaly reveals when the first error was.
pub fn first_error(a: &Anomaly) -> Entry {
    let op = a.operation.as_deref().unwrap_or("a request");
    let what = a
        .exception
        .as_ref()
        .map(|e| format!(" ({})", e.r#type))
        .unwrap_or_default();
    Entry::new(
        Some(0.0),
        "service",
        format!("first error from {} {op}{what}", a.service),
    )
}

/// The monitor's entry.
pub fn anomaly(a: &Anomaly) -> Entry {
    let mut head = format!(
        "incident {}  error rate {} (baseline {})",
        short(&a.incident_id),
        pct(a.error_rate),
        pct(a.baseline_error_rate)
    );
    if a.signals.contains(&AnomalyKind::NewFingerprint) {
        let what = match (&a.exception, a.operation.as_deref()) {
            (Some(e), _) => e.r#type.clone(),
            (None, Some(op)) => op.to_string(),
            (None, None) => "failure".into(),
        };
        head.push_str(&format!(" · new fingerprint {what} ({})", short(&a.fingerprint)));
    }
    let mut e = Entry::new(at(&a.timeline, a.timeline.anomaly_ms), "monitor", head);
    let window_s = (a.window_end_ms - a.window_start_ms) as f64 / 1000.0;
    e = e.more(format!(
        "evidence: {} of {} requests failed in {:.0}s{}",
        a.error_count,
        a.request_count,
        window_s,
        a.sample_inputs
            .first()
            .map(|i| {
                let mut kv: Vec<String> = i.iter().map(|(k, v)| format!("{k}={}", clip(v, 24))).collect();
                kv.sort();
                format!(" · failing input {}", clip(&kv.join(" "), 90))
            })
            .unwrap_or_default()
    ));
    if let Some(t) = a.log_templates.first() {
        e = e.more(format!("log template ×{}: {}", t.count, clip(&t.template, 100)));
    }
    e
}

fn fix_line(f: &KnownFix) -> String {
    format!(
        "learning store: {} healed {}/{}{}",
        f.strategy,
        f.healed,
        f.attempts,
        f.median_heal_secs
            .map(|s| format!(" (median {s:.0}s)"))
            .unwrap_or_default()
    )
}

/// The diagnoser's entry.
pub fn diagnosis(d: &Diagnosis) -> Entry {
    let t = at(&d.timeline, d.timeline.diagnosis_ms);
    if d.status != DiagnosisStatus::Localized {
        return Entry::new(t, "diagnoser", format!("{:?}: {}", d.status, clip(&d.summary, 140)));
    }
    let head = match &d.root_cause {
        Some(rc) => format!(
            "{}:{} in {} — {} (confidence {:.2})",
            rc.file,
            rc.line,
            rc.function,
            clip(
                d.hypotheses.first().map(|h| h.summary.as_str()).unwrap_or(&d.summary),
                90
            ),
            d.confidence
        ),
        None => format!("{} (confidence {:.2})", clip(&d.summary, 120), d.confidence),
    };
    let mut e = Entry::new(t, "diagnoser", head);
    if let Some(h) = d.hypotheses.first() {
        let ev: Vec<String> = h.evidence.iter().take(3).map(|x| clip(&x.detail, 70)).collect();
        if !ev.is_empty() {
            e = e.more(format!("evidence: {}", ev.join(" · ")));
        }
        if h.source == HypothesisSource::Learned {
            e = e.more("hypothesis from the learning store".into());
        }
    }
    if let Some(f) = d.known_fixes.first() {
        e = e.more(fix_line(f));
    }
    e
}

/// The repairer's entry.
pub fn patch(p: &Patch) -> Entry {
    let t = at(&p.timeline, p.timeline.patch_ms);
    if p.status != PatchStatus::Proposed {
        let mut e = Entry::new(t, "repairer", format!("{:?}: {}", p.status, clip(&p.summary, 140)));
        for a in p.attempts.iter().take(3) {
            e = e.more(format!("tried {}: {} — {}", a.strategy, a.result, clip(&a.reason, 80)));
        }
        return e;
    }
    let strategy = p.strategy.as_deref().unwrap_or("?");
    let origin = if p.learned {
        "learned fix tried first"
    } else {
        "template"
    };
    let test = p
        .regression_test
        .as_ref()
        .map(|t| format!(" · regression test {}", t.name))
        .unwrap_or_default();
    let mut e = Entry::new(t, "repairer", format!("{origin} {strategy}{test}"));
    if let Some(v) = &p.validation {
        e = e.more(format!(
            "before patch: regression test {} · after patch: {} passed, {} failed · {} · {:.1}s",
            if v.failed_before {
                "failed"
            } else {
                "PASSED (does not reproduce)"
            },
            v.tests_run - v.tests_failed,
            v.tests_failed,
            clip(&v.sandbox, 60),
            v.duration_ms as f64 / 1000.0
        ));
    }
    let policy = p
        .policy
        .as_ref()
        .map(|v| {
            if v.allowed {
                format!("policy: allowed ({} rules)", v.rules_evaluated)
            } else {
                format!("policy: DENIED ({})", v.violations.join("; "))
            }
        })
        .unwrap_or_else(|| "policy: ?".into());
    let branch = match (&p.branch, &p.commit) {
        (Some(b), Some(c)) => format!(" · branch {b} ({})", &c[..c.len().min(7)]),
        (Some(b), None) => format!(" · branch {b}"),
        _ => String::new(),
    };
    e.more(format!("{policy}{branch}"))
}

/// The rollout's entry for one step.
pub fn rollout(r: &Rollout) -> Entry {
    let t = at(&r.timeline, Some(r.step_ms));
    let text = match r.step {
        RolloutStep::Approved | RolloutStep::Rejected => {
            let verb = if r.step == RolloutStep::Approved {
                "approved"
            } else {
                "rejected"
            };
            match &r.approval {
                Some(a) if a.mode == ApprovalMode::Automatic => {
                    format!(
                        "{verb} automatically ({})",
                        clip(a.reason.as_deref().unwrap_or(&a.by), 100)
                    )
                }
                Some(a) => format!(
                    "{verb} by {}{}",
                    a.by,
                    a.reason
                        .as_deref()
                        .map(|x| format!(": {}", clip(x, 80)))
                        .unwrap_or_default()
                ),
                None => verb.to_string(),
            }
        }
        RolloutStep::AwaitingApproval => {
            format!("awaiting approval — run: selfheal approve {}", r.incident_id)
        }
        RolloutStep::Promoted => format!(
            "promoted: {}",
            clip(r.detail.trim_end_matches("· promoted").trim_end(), 120)
        ),
        RolloutStep::CanaryAnalyzed | RolloutStep::RolledBack => {
            let rates = match (r.canary_error_rate, r.stable_error_rate) {
                (Some(c), Some(s)) => format!(
                    "canary {} errors ({} req) vs stable {} ({} req)",
                    pct(c),
                    r.canary_requests,
                    pct(s),
                    r.stable_requests
                ),
                _ => clip(&r.detail, 120),
            };
            format!("{rates} · {}", crate::render::step_word(r.step))
        }
        _ => format!("{}: {}", crate::render::step_word(r.step), clip(&r.detail, 120)),
    };
    Entry::new(t, "rollout", text)
}

/// The verifier's entry.
pub fn outcome(o: &Outcome) -> Entry {
    let mut text = String::new();
    if let Some(v) = &o.verification {
        let what = o.exception_type.as_deref().unwrap_or("failure");
        text.push_str(&format!(
            "{} {what} in {:.0}s after promotion ({} requests) · ",
            v.occurrences,
            v.window_ms as f64 / 1000.0,
            v.requests
        ));
    }
    text.push_str(status_word(o.status));
    let e = Entry::new(at(&o.timeline, o.timeline.outcome_ms), "verifier", text);
    // Without a verification window the summary is the only explanation.
    if o.verification.is_none() {
        e.more(clip(&o.summary, 140))
    } else {
        e
    }
}

/// The learner's entry once the outcome is stored.
pub fn learned(t: Option<f64>, fingerprint: &str, fix: Option<&KnownFix>) -> Entry {
    match fix {
        Some(f) => Entry::new(
            t,
            "learner",
            format!(
                "stored: fingerprint {} → {} ({}/{} healed)",
                short(fingerprint),
                f.strategy,
                f.healed,
                f.attempts
            ),
        ),
        None => Entry::new(
            t,
            "learner",
            format!("stored: fingerprint {} (no fix counted)", short(fingerprint)),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use selfheal_events::examples;

    #[test]
    fn each_stage_shows_its_evidence() {
        let a = anomaly(&examples::anomaly());
        assert_eq!(a.t, Some(1.1));
        assert!(
            a.lines[0].contains("error rate 9.8% (baseline 0.0%)")
                && a.lines[0].contains("new fingerprint ZeroDivisionError"),
            "{:?}",
            a.lines
        );
        assert!(a.lines[1].contains("41 of 418"), "{:?}", a.lines);

        let d = diagnosis(&examples::diagnosis());
        assert!(
            d.lines[0].starts_with("pricing_logic.py:14 in calc") && d.lines[0].contains("confidence 0.94"),
            "{:?}",
            d.lines
        );
        assert!(d.lines[1].contains("pricing.discount=0.0"), "{:?}", d.lines);

        let p = patch(&examples::patch());
        assert!(
            p.lines[0].contains("python.zero-division-guard") && p.lines[0].contains("test_calc_zero_discount"),
            "{:?}",
            p.lines
        );
        assert!(
            p.lines[1].contains("regression test failed") && p.lines[1].contains("26 passed"),
            "{:?}",
            p.lines
        );
        assert!(
            p.lines[2].contains("allowed (12 rules)") && p.lines[2].contains("(e4f5a6b)"),
            "{:?}",
            p.lines
        );

        let r = rollout(&examples::rollout());
        assert!(
            r.lines[0].starts_with("promoted: canary 0.0% errors vs stable 9.6%"),
            "{:?}",
            r.lines
        );
        let mut analysed = examples::rollout();
        analysed.step = selfheal_events::RolloutStep::CanaryAnalyzed;
        let r = rollout(&analysed);
        assert!(
            r.lines[0].contains("canary 0.0% errors (52 req) vs stable 9.6% (157 req)"),
            "{:?}",
            r.lines
        );

        let o = outcome(&examples::outcome());
        assert!(o.lines[0].ends_with("HEALED"), "{:?}", o.lines);
    }

    #[test]
    fn a_learned_patch_says_so() {
        let mut p = examples::patch();
        p.learned = true;
        assert!(patch(&p).lines[0].starts_with("learned fix tried first"));
    }

    #[test]
    fn render_aligns_continuation_lines() {
        let e = Entry {
            t: Some(1.3),
            stage: "monitor",
            lines: vec!["a".into(), "b".into()],
        };
        let text = e.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "  t+1.3s   monitor     a");
        assert_eq!(lines[1].find('b'), lines[0].find('a'));
    }
}
