//! Per fingerprint and strategy, what the learner remembers about a fix, how one outcome
//! contributes to it, and how fixes are ranked.
//!
//! The contribution of an outcome is a pure function of the outcome, so a replayed outcome
//! can be recognised and a corrected one (same incident, different content) can be undone
//! and applied again without double counting.

use std::collections::HashMap;

use selfheal_events::{KnownFix, Outcome, OutcomeStatus};
use serde::{Deserialize, Serialize};

/// Heal-time samples kept per fix; older ones are dropped (the median follows recent behaviour).
pub const MAX_HEAL_SAMPLES: usize = 256;
/// Largest diff kept as `last_diff`, in bytes; a larger one is cut at a character boundary.
pub const MAX_DIFF_BYTES: usize = 64 * 1024;
/// z for the Wilson lower bound (95 %).
const WILSON_Z: f64 = 1.96;
/// Prefix of the pseudo-fingerprint under which template fixes are remembered per crash class.
pub const CLASS_PREFIX: &str = "class:";
/// [`KnownFix::scope`] of a fix that healed this very failure.
pub const SCOPE_FINGERPRINT: &str = "fingerprint";
/// [`KnownFix::scope`] of a template that healed the same crash class elsewhere.
pub const SCOPE_CRASH_CLASS: &str = "crash-class";

/// The pseudo-fingerprint of a crash class (`class:KeyError`,
/// `class:java.lang.NullPointerException`): where template fixes are remembered so that the
/// same crash at another site, in this or another service, gets the template that healed it
/// ranked first. The exception type is kept whole: `TypeError` of Python and of Node are
/// told apart by the templates themselves, which apply only to their language.
pub fn class_key(exception_type: &str) -> Option<String> {
    let t = exception_type.trim();
    (!t.is_empty()).then(|| format!("{CLASS_PREFIX}{t}"))
}

/// What an outcome says about its fix strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The failure fingerprint.
    pub fingerprint: String,
    /// The fix strategy.
    pub strategy: String,
    /// Whether the fix healed the incident.
    pub healed: bool,
    /// Seconds from first error to outcome, for healed incidents with both timestamps.
    pub heal_secs: Option<f64>,
    /// The incident.
    pub incident_id: String,
    /// The fix's diff (bounded).
    pub diff: String,
    /// When the outcome was decided (epoch ms), for recency; 0 when unknown.
    pub seen_ms: i64,
    /// The template's parameters at this site, when the fix is a template.
    pub params: Option<HashMap<String, String>>,
    /// The service that was healed (or not).
    pub service: String,
}

/// Everything an outcome contributes: to its fingerprint's fix and, when the fix is a template
/// (it carries the template's parameters) and the exception type is known, to its crash
/// class's fix (see [`class_key`]). A learned diff or a model-written fix is specific to its
/// site and is remembered for the fingerprint only.
pub fn contributions(outcome: &Outcome) -> Vec<Contribution> {
    let Some(c) = contribution(outcome) else {
        return Vec::new();
    };
    let class = c
        .params
        .as_ref()
        .and(outcome.exception_type.as_deref())
        .and_then(class_key);
    match class {
        Some(class) => {
            let by_class = Contribution {
                fingerprint: class,
                ..c.clone()
            };
            vec![c, by_class]
        }
        None => vec![c],
    }
}

/// The contribution of an outcome to its fingerprint's fix, or `None` when no fix was tried on a running service
/// (no fix, or the fix never reached production: rejected, not validated, deploy failed).
pub fn contribution(outcome: &Outcome) -> Option<Contribution> {
    let fix = outcome.fix.as_ref()?;
    let healed = match outcome.status {
        OutcomeStatus::Healed => true,
        OutcomeStatus::Recurred | OutcomeStatus::RolledBack => false,
        _ => return None,
    };
    if fix.strategy.trim().is_empty() || outcome.fingerprint.is_empty() {
        return None;
    }
    let t = &outcome.timeline;
    let heal_secs = match (healed, t.first_error_ms, t.outcome_ms) {
        (true, Some(first), Some(end)) if end >= first => Some((end - first) as f64 / 1000.0),
        _ => None,
    };
    let seen_ms = t
        .outcome_ms
        .or(t.promotion_ms)
        .or(t.rollback_ms)
        .or(t.anomaly_ms)
        .unwrap_or(0);
    Some(Contribution {
        fingerprint: outcome.fingerprint.clone(),
        strategy: fix.strategy.clone(),
        healed,
        heal_secs,
        incident_id: outcome.incident_id.clone(),
        diff: bounded(&fix.diff, MAX_DIFF_BYTES).to_string(),
        seen_ms,
        params: fix.params.clone(),
        service: outcome.service.clone(),
    })
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// One heal time with the incident it came from, so it can be removed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealSample {
    /// The incident.
    pub incident_id: String,
    /// Seconds from first error to healed.
    pub secs: f64,
}

/// Everything remembered about one strategy for one fingerprint (`fix/<fingerprint>/<strategy>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FixAggregate {
    /// The failure fingerprint.
    pub fingerprint: String,
    /// The fix strategy.
    pub strategy: String,
    /// Incidents it healed.
    pub healed: u32,
    /// Incidents it was deployed on (healed, recurred or rolled back).
    pub attempts: u32,
    /// Recent heal times.
    pub heal_samples: Vec<HealSample>,
    /// The most recent incident it was tried on.
    pub last_incident_id: Option<String>,
    /// That incident's diff.
    pub last_diff: Option<String>,
    /// When that incident's outcome was decided, epoch ms.
    pub last_seen_ms: i64,
    /// The most recent incident it healed: the diff worth reusing.
    pub last_healed_incident_id: Option<String>,
    /// That incident's diff.
    pub last_healed_diff: Option<String>,
    /// When that incident's outcome was decided, epoch ms.
    pub last_healed_ms: i64,
    /// The template's parameters where it last healed (absent in aggregates stored before).
    #[serde(default)]
    pub last_healed_params: Option<HashMap<String, String>>,
    /// The service it last healed.
    #[serde(default)]
    pub last_healed_service: Option<String>,
}

impl FixAggregate {
    /// An empty aggregate for a fingerprint and strategy.
    pub fn new(fingerprint: &str, strategy: &str) -> Self {
        FixAggregate {
            fingerprint: fingerprint.to_string(),
            strategy: strategy.to_string(),
            ..Default::default()
        }
    }

    /// Adds one outcome's contribution.
    pub fn add(&mut self, c: &Contribution) {
        self.attempts = self.attempts.saturating_add(1);
        if c.healed {
            self.healed = self.healed.saturating_add(1);
            if c.seen_ms >= self.last_healed_ms || self.last_healed_incident_id.is_none() {
                self.last_healed_incident_id = Some(c.incident_id.clone());
                self.last_healed_diff = Some(c.diff.clone());
                self.last_healed_ms = c.seen_ms;
                self.last_healed_params = c.params.clone();
                self.last_healed_service = Some(c.service.clone());
            }
        }
        if let Some(secs) = c.heal_secs {
            self.heal_samples.push(HealSample {
                incident_id: c.incident_id.clone(),
                secs,
            });
            if self.heal_samples.len() > MAX_HEAL_SAMPLES {
                let extra = self.heal_samples.len() - MAX_HEAL_SAMPLES;
                self.heal_samples.drain(..extra);
            }
        }
        if c.seen_ms >= self.last_seen_ms || self.last_incident_id.is_none() {
            self.last_incident_id = Some(c.incident_id.clone());
            self.last_diff = Some(c.diff.clone());
            self.last_seen_ms = c.seen_ms;
        }
    }

    /// Removes a contribution added before (a corrected outcome replaces the old one).
    /// The "last" fields are kept unless they named this incident; then they are cleared,
    /// since the aggregate does not remember the incident before it.
    pub fn remove(&mut self, c: &Contribution) {
        self.attempts = self.attempts.saturating_sub(1);
        if c.healed {
            self.healed = self.healed.saturating_sub(1);
        }
        self.heal_samples.retain(|s| s.incident_id != c.incident_id);
        if self.last_incident_id.as_deref() == Some(c.incident_id.as_str()) {
            self.last_incident_id = None;
            self.last_diff = None;
            self.last_seen_ms = 0;
        }
        if self.last_healed_incident_id.as_deref() == Some(c.incident_id.as_str()) {
            self.last_healed_incident_id = None;
            self.last_healed_diff = None;
            self.last_healed_ms = 0;
            self.last_healed_params = None;
            self.last_healed_service = None;
        }
    }

    /// Median heal time of the kept samples.
    pub fn median_heal_secs(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.heal_samples.iter().map(|s| s.secs).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        })
    }

    /// Lower bound of the 95 % Wilson interval of the heal rate: 1 of 1 ranks below 9 of 10.
    pub fn score(&self) -> f64 {
        wilson_lower_bound(self.healed, self.attempts)
    }

    /// Whether this aggregate is a crash class's rather than a fingerprint's.
    pub fn is_crash_class(&self) -> bool {
        self.fingerprint.starts_with(CLASS_PREFIX)
    }

    /// The public view. The diff offered is the last one that healed, falling back to the
    /// last one tried, because a reused diff should be one that worked. A crash class's fix
    /// carries no diff: it was made at another site, only the template re-applies.
    pub fn to_known_fix(&self) -> KnownFix {
        let class = self.is_crash_class();
        let (incident, diff) = if self.last_healed_incident_id.is_some() {
            (self.last_healed_incident_id.clone(), self.last_healed_diff.clone())
        } else {
            (self.last_incident_id.clone(), self.last_diff.clone())
        };
        KnownFix {
            strategy: self.strategy.clone(),
            healed: i32::try_from(self.healed).unwrap_or(i32::MAX),
            attempts: i32::try_from(self.attempts).unwrap_or(i32::MAX),
            median_heal_secs: self.median_heal_secs(),
            last_incident_id: incident,
            last_diff: if class { None } else { diff },
            params: self.last_healed_params.clone(),
            scope: Some(if class { SCOPE_CRASH_CLASS } else { SCOPE_FINGERPRINT }.to_string()),
            service: self.last_healed_service.clone(),
        }
    }
}

/// Lower bound of the Wilson score interval for `healed` successes in `attempts` trials.
pub fn wilson_lower_bound(healed: u32, attempts: u32) -> f64 {
    if attempts == 0 {
        return 0.0;
    }
    let n = f64::from(attempts);
    let p = f64::from(healed.min(attempts)) / n;
    let z2 = WILSON_Z * WILSON_Z;
    let centre = p + z2 / (2.0 * n);
    let margin = WILSON_Z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt();
    ((centre - margin) / (1.0 + z2 / n)).max(0.0)
}

/// Sorts best first: Wilson lower bound, then healed count, then recency, then name (stable output).
pub fn rank(aggregates: &mut [FixAggregate]) {
    aggregates.sort_by(|a, b| {
        b.score()
            .total_cmp(&a.score())
            .then(b.healed.cmp(&a.healed))
            .then(b.last_seen_ms.cmp(&a.last_seen_ms))
            .then(a.strategy.cmp(&b.strategy))
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use selfheal_events::examples;

    #[test]
    fn healed_outcome_contributes_a_heal_with_its_time() {
        let c = contribution(&examples::outcome()).unwrap();
        assert!(c.healed);
        assert_eq!(c.strategy, "python.zero-division-guard");
        // first_error 1795720000000 → outcome 1795720026000.
        assert_eq!(c.heal_secs, Some(26.0));
    }

    #[test]
    fn rolled_back_is_a_failed_attempt_and_rejections_are_not_attempts() {
        let mut o = examples::outcome();
        o.status = OutcomeStatus::RolledBack;
        let c = contribution(&o).unwrap();
        assert!(!c.healed);
        assert_eq!(c.heal_secs, None);
        o.status = OutcomeStatus::RejectedByHuman;
        assert!(contribution(&o).is_none());
        o.status = OutcomeStatus::Healed;
        o.fix = None;
        assert!(contribution(&o).is_none());
    }

    #[test]
    fn wilson_prefers_evidence_over_a_single_success() {
        assert!(wilson_lower_bound(9, 10) > wilson_lower_bound(1, 1));
        assert!(wilson_lower_bound(1, 1) > wilson_lower_bound(1, 2));
        assert_eq!(wilson_lower_bound(0, 0), 0.0);
        assert_eq!(wilson_lower_bound(0, 5), 0.0);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        let mut a = FixAggregate::new("f", "s");
        for (i, s) in [10.0, 30.0, 20.0].iter().enumerate() {
            a.heal_samples.push(HealSample {
                incident_id: i.to_string(),
                secs: *s,
            });
        }
        assert_eq!(a.median_heal_secs(), Some(20.0));
        a.heal_samples.push(HealSample {
            incident_id: "x".into(),
            secs: 40.0,
        });
        assert_eq!(a.median_heal_secs(), Some(25.0));
    }

    #[test]
    fn add_then_remove_restores_counts() {
        let c = contribution(&examples::outcome()).unwrap();
        let mut a = FixAggregate::new(&c.fingerprint, &c.strategy);
        a.add(&c);
        assert_eq!((a.healed, a.attempts), (1, 1));
        assert_eq!(
            a.to_known_fix().last_incident_id.as_deref(),
            Some(c.incident_id.as_str())
        );
        a.remove(&c);
        assert_eq!((a.healed, a.attempts), (0, 0));
        assert!(a.heal_samples.is_empty());
        assert_eq!(a.to_known_fix().last_incident_id, None);
    }

    #[test]
    fn big_diffs_are_bounded_on_a_char_boundary() {
        let s = "é".repeat(MAX_DIFF_BYTES);
        let b = bounded(&s, MAX_DIFF_BYTES + 1);
        assert!(b.len() <= MAX_DIFF_BYTES + 1);
        assert!(s.starts_with(b));
    }
}
