//! Canary analysis: per metric, canary against stable over the same window, with a verdict.
//!
//! The contract is in the crate documentation ([`crate`]); this module holds its
//! configuration ([`CanaryConfig`], with per-service overrides from the catalog's
//! `[services.<name>.deploy.canary]` table), one analysis ([`analyze`] → [`Report`]) and the
//! step machine that turns reports into actions ([`Progress::next`] → [`Action`]).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::requests::Sample;
use crate::stats::{TestKind, errors_greater, mann_whitney_greater, quantile};

/// The verdict of one metric or of one analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Enough data and no evidence that the canary is worse beyond its bound.
    Pass,
    /// Not enough data, or evidence that is not decisive: look longer, then ask a person.
    Inconclusive,
    /// Evidence that the canary is worse beyond its bound.
    Fail,
}

impl Verdict {
    /// `pass`, `inconclusive` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Fail => "fail",
        }
    }
}

/// One step of the canary: its share of traffic and how long it is observed before a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Percent of the traffic sent to the canary, 1..=100.
    pub weight: u8,
    /// Observation time before the step is measured (and again after each extension).
    pub duration: Duration,
}

/// How canaries are judged. [`Default`] holds the defaults for every service; the catalog
/// overrides them per service ([`CanaryConfig::with_overrides`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryConfig {
    /// Significance level of every one-sided test (`alpha`, default 0.05).
    pub alpha: f64,
    /// Requests each group must have served before a metric may pass (`min_samples`, default 50,
    /// as Kayenta); successful requests for latency.
    pub min_samples: u64,
    /// How much higher the canary's error rate may be than stable's, absolute 0..1
    /// (`error_rate_bound`, default 0.01).
    pub error_rate_bound: f64,
    /// How much slower the canary's median latency may be, as a ratio to stable's
    /// (`latency_ratio_bound`, default 1.5).
    pub latency_ratio_bound: f64,
    /// Median latency differences below this are noise whatever their ratio
    /// (`latency_min_delta_ms`, default 20).
    pub latency_min_delta_ms: f64,
    /// Traffic steps (`steps = [{ weight = 25, duration_secs = 10 }]`, default one step of 25 % for 10 s).
    pub steps: Vec<Step>,
    /// Failed measurements tolerated before rollback (`failure_limit`, default 0, as Argo Rollouts).
    pub failure_limit: u32,
    /// Inconclusive measurements (each extends its step once more) tolerated before the canary is
    /// held for a person (`inconclusive_limit`, default 2).
    pub inconclusive_limit: u32,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            alpha: 0.05,
            min_samples: 50,
            error_rate_bound: 0.01,
            latency_ratio_bound: 1.5,
            latency_min_delta_ms: 20.0,
            steps: vec![Step {
                weight: 25,
                duration: Duration::from_secs(10),
            }],
            failure_limit: 0,
            inconclusive_limit: 2,
        }
    }
}

/// A catalog override that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("canary setting `{key}`: {problem}")]
pub struct ConfigError {
    /// The key under `[services.<name>.deploy.canary]`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        problem: problem.into(),
    }
}

fn number(table: &toml::Table, key: &str) -> Result<Option<f64>, ConfigError> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::Float(f)) => Ok(Some(*f)),
        Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
        Some(other) => Err(bad(key, format!("expected a number, found {}", other.type_str()))),
    }
}

fn count(table: &toml::Table, key: &str) -> Result<Option<u64>, ConfigError> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Some(other) => Err(bad(key, format!("expected a non-negative integer, found {other}"))),
    }
}

/// Keys accepted under `[services.<name>.deploy.canary]`.
pub const CONFIG_KEYS: &[&str] = &[
    "alpha",
    "min_samples",
    "error_rate_bound",
    "latency_ratio_bound",
    "latency_min_delta_ms",
    "steps",
    "failure_limit",
    "inconclusive_limit",
];

impl CanaryConfig {
    /// These settings with the keys of a catalog table applied; unknown keys and values out of
    /// range are errors (a typo must not silently fall back to a default).
    pub fn with_overrides(&self, table: &toml::Table) -> Result<CanaryConfig, ConfigError> {
        if let Some(unknown) = table.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
            return Err(bad(
                unknown,
                format!("unknown key, expected one of: {}", CONFIG_KEYS.join(", ")),
            ));
        }
        let mut c = self.clone();
        if let Some(v) = number(table, "alpha")? {
            c.alpha = v;
        }
        if let Some(v) = count(table, "min_samples")? {
            c.min_samples = v;
        }
        if let Some(v) = number(table, "error_rate_bound")? {
            c.error_rate_bound = v;
        }
        if let Some(v) = number(table, "latency_ratio_bound")? {
            c.latency_ratio_bound = v;
        }
        if let Some(v) = number(table, "latency_min_delta_ms")? {
            c.latency_min_delta_ms = v;
        }
        if let Some(v) = count(table, "failure_limit")? {
            c.failure_limit = u32::try_from(v).map_err(|_| bad("failure_limit", "too large"))?;
        }
        if let Some(v) = count(table, "inconclusive_limit")? {
            c.inconclusive_limit = u32::try_from(v).map_err(|_| bad("inconclusive_limit", "too large"))?;
        }
        if let Some(steps) = table.get("steps") {
            let list = steps
                .as_array()
                .ok_or_else(|| bad("steps", "expected an array of { weight, duration_secs }"))?;
            c.steps = list
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let key = format!("steps[{i}]");
                    let t = s
                        .as_table()
                        .ok_or_else(|| bad(&key, "expected { weight, duration_secs }"))?;
                    let weight = count(t, "weight")
                        .map_err(|e| bad(&key, e.problem))?
                        .ok_or_else(|| bad(&key, "`weight` is missing"))?;
                    let secs = count(t, "duration_secs")
                        .map_err(|e| bad(&key, e.problem))?
                        .ok_or_else(|| bad(&key, "`duration_secs` is missing"))?;
                    Ok(Step {
                        weight: u8::try_from(weight).unwrap_or(u8::MAX),
                        duration: Duration::from_secs(secs),
                    })
                })
                .collect::<Result<_, ConfigError>>()?;
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks ranges: alpha in (0, 0.5], bounds non-negative, ratio ≥ 1, at least one step,
    /// weights 1..=100, durations > 0, at least one sample.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.alpha > 0.0 && self.alpha <= 0.5) {
            return Err(bad("alpha", "must be in (0, 0.5]"));
        }
        if self.min_samples == 0 {
            return Err(bad("min_samples", "must be at least 1"));
        }
        if !(self.error_rate_bound >= 0.0 && self.error_rate_bound <= 1.0) {
            return Err(bad("error_rate_bound", "must be in [0, 1]"));
        }
        if !(self.latency_ratio_bound >= 1.0 && self.latency_ratio_bound.is_finite()) {
            return Err(bad("latency_ratio_bound", "must be a finite ratio of at least 1"));
        }
        if !(self.latency_min_delta_ms >= 0.0 && self.latency_min_delta_ms.is_finite()) {
            return Err(bad("latency_min_delta_ms", "must be a finite number ≥ 0"));
        }
        if self.steps.is_empty() {
            return Err(bad("steps", "at least one step is needed"));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if s.weight == 0 || s.weight > 100 {
                return Err(bad(&format!("steps[{i}]"), "`weight` must be 1..=100"));
            }
            if s.duration.is_zero() {
                return Err(bad(&format!("steps[{i}]"), "`duration_secs` must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The p50, p95 and p99 of a latency sample, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// The quantiles of `values`, `None` when empty.
    pub fn of(values: &[f64]) -> Option<Quantiles> {
        Some(Quantiles {
            p50: quantile(values, 0.5)?,
            p95: quantile(values, 0.95)?,
            p99: quantile(values, 0.99)?,
        })
    }
}

/// The result of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    /// `error-rate`, `error-rate <route>`, `latency` or `new-fingerprint <fingerprint>`.
    pub metric: String,
    /// `fisher-exact`, `two-proportion-z`, `mann-whitney-u` or `fingerprint`.
    pub test: String,
    /// The canary's sample size (requests; successful requests for latency; occurrences for a fingerprint).
    pub canary_samples: u64,
    /// Stable's sample size.
    pub stable_samples: u64,
    /// The test statistic.
    pub statistic: f64,
    /// One-sided p-value for "the canary is worse".
    pub p_value: f64,
    /// Observed effect: error-rate difference (canary − stable) or ratio of median latencies.
    pub effect: f64,
    /// The largest acceptable effect.
    pub bound: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one line for a person.
    pub reason: String,
    /// Canary latency quantiles (latency only).
    pub canary_latency: Option<Quantiles>,
    /// Stable latency quantiles (latency only).
    pub stable_latency: Option<Quantiles>,
    /// Whether this metric decides the analysis (route metrics only do when they fail).
    pub deciding: bool,
}

/// One analysis of canary against stable.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Every metric, the deciding ones first.
    pub metrics: Vec<MetricResult>,
    /// Fail if any metric fails; else inconclusive if a deciding metric is; else pass.
    pub verdict: Verdict,
    /// A fingerprint seen only in the canary: the canary crashes in a way stable does not.
    pub crashed: bool,
}

impl Report {
    /// One line: the verdict and the metrics that made it.
    pub fn summary(&self) -> String {
        let worst: Vec<&str> = self
            .metrics
            .iter()
            .filter(|m| m.verdict == self.verdict && (m.deciding || m.verdict == Verdict::Fail))
            .map(|m| m.reason.as_str())
            .collect();
        format!("{}: {}", self.verdict.as_str(), worst.join("; "))
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The error-rate verdict (see the crate docs for the rule).
fn error_metric(metric: String, c: (u64, u64), s: (u64, u64), alpha: f64, config: &CanaryConfig) -> MetricResult {
    let (ce, cn) = c;
    let (se, sn) = s;
    let t = errors_greater(ce, cn, se, sn);
    let rate = |e: u64, n: u64| if n == 0 { 0.0 } else { e as f64 / n as f64 };
    let effect = rate(ce, cn) - rate(se, sn);
    let bound = config.error_rate_bound;
    let significant = t.p_value < alpha;
    let seen = format!(
        "canary {} ({ce}/{cn}) vs stable {} ({se}/{sn}), p={:.4}",
        pct(rate(ce, cn)),
        pct(rate(se, sn)),
        t.p_value
    );
    let (verdict, why) = if significant && effect > bound {
        (Verdict::Fail, format!("{metric} worse: {seen}"))
    } else if significant {
        (
            Verdict::Inconclusive,
            format!(
                "{metric} significantly higher but within the bound {}: {seen}",
                pct(bound)
            ),
        )
    } else if cn < config.min_samples || sn < config.min_samples {
        (
            Verdict::Inconclusive,
            format!(
                "{metric}: too few requests ({cn} canary, {sn} stable; {} each needed): {seen}",
                config.min_samples
            ),
        )
    } else if effect > bound {
        (
            Verdict::Inconclusive,
            format!(
                "{metric} higher by more than {} but not significant: {seen}",
                pct(bound)
            ),
        )
    } else {
        (Verdict::Pass, format!("{metric} {seen}"))
    };
    MetricResult {
        metric,
        test: t.test.as_str().to_string(),
        canary_samples: cn,
        stable_samples: sn,
        statistic: t.statistic,
        p_value: t.p_value,
        effect,
        bound,
        verdict,
        reason: why,
        canary_latency: None,
        stable_latency: None,
        deciding: true,
    }
}

fn latency_metric(canary: &[f64], stable: &[f64], config: &CanaryConfig) -> MetricResult {
    let t = mann_whitney_greater(canary, stable);
    let (cq, sq) = (Quantiles::of(canary), Quantiles::of(stable));
    let (cn, sn) = (canary.len() as u64, stable.len() as u64);
    let (c50, s50) = (cq.map_or(0.0, |q| q.p50), sq.map_or(0.0, |q| q.p50));
    let effect = if s50 > 0.0 {
        c50 / s50
    } else if c50 > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let bound = config.latency_ratio_bound;
    let material = effect > bound && c50 - s50 > config.latency_min_delta_ms;
    let significant = t.p_value < config.alpha;
    let seen = match (cq, sq) {
        (Some(c), Some(s)) => format!(
            "p50/p95/p99 canary {:.1}/{:.1}/{:.1} ms vs stable {:.1}/{:.1}/{:.1} ms, p={:.4}",
            c.p50, c.p95, c.p99, s.p50, s.p95, s.p99, t.p_value
        ),
        _ => "no latency samples".to_string(),
    };
    let (verdict, why) = if cn < config.min_samples || sn < config.min_samples {
        (
            Verdict::Inconclusive,
            format!(
                "latency: too few successful requests ({cn} canary, {sn} stable; {} each needed): {seen}",
                config.min_samples
            ),
        )
    } else if significant && material {
        (Verdict::Fail, format!("latency worse: {seen}"))
    } else if material {
        (
            Verdict::Inconclusive,
            format!("latency slower but not significant: {seen}"),
        )
    } else {
        (Verdict::Pass, format!("latency {seen}"))
    };
    MetricResult {
        metric: "latency".into(),
        test: TestKind::MannWhitneyU.as_str().into(),
        canary_samples: cn,
        stable_samples: sn,
        statistic: t.statistic,
        p_value: t.p_value,
        effect,
        bound,
        verdict,
        reason: why,
        canary_latency: cq,
        stable_latency: sq,
        deciding: true,
    }
}

/// Compares the canary's sample with stable's from the same window.
pub fn analyze(canary: &Sample, stable: &Sample, config: &CanaryConfig) -> Report {
    let mut metrics = Vec::new();
    // A failure only the canary shows is a crash the fix introduced: no statistics needed.
    for (fp, n) in &canary.fingerprints {
        if !stable.fingerprints.contains_key(fp) {
            metrics.push(MetricResult {
                metric: format!("new-fingerprint {fp}"),
                test: "fingerprint".into(),
                canary_samples: *n,
                stable_samples: 0,
                statistic: *n as f64,
                p_value: 0.0,
                effect: *n as f64,
                bound: 0.0,
                verdict: Verdict::Fail,
                reason: format!("failure {fp} occurs in the canary only ({n} times)"),
                canary_latency: None,
                stable_latency: None,
                deciding: true,
            });
        }
    }
    let crashed = !metrics.is_empty();
    metrics.push(error_metric(
        "error-rate".into(),
        (canary.errors, canary.requests),
        (stable.errors, stable.requests),
        config.alpha,
        config,
    ));
    metrics.push(latency_metric(&canary.latencies_ms, &stable.latencies_ms, config));
    // Per route, with a Bonferroni share of alpha: a canary failing on one route only is
    // caught there even when the overall rate hides it.
    let routes: BTreeSet<&String> = canary.routes.keys().collect();
    let alpha_route = config.alpha / routes.len().max(1) as f64;
    for route in routes {
        let c = canary.routes.get(route).copied().unwrap_or_default();
        let s = stable.routes.get(route).copied().unwrap_or_default();
        let mut m = error_metric(
            format!("error-rate {route}"),
            (c.errors, c.requests),
            (s.errors, s.requests),
            alpha_route,
            config,
        );
        m.deciding = false;
        metrics.push(m);
    }
    let verdict = if metrics.iter().any(|m| m.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if metrics.iter().any(|m| m.deciding && m.verdict == Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    Report {
        metrics,
        verdict,
        crashed,
    }
}

/// What to do after a measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go to step `n` (0-based): set its weight, observe its duration.
    NextStep(usize),
    /// Observe the current step for its duration once more.
    Extend,
    /// Every step passed: promote.
    Promote,
    /// Roll back, for this reason.
    RollBack(String),
    /// Stop measuring and leave the decision to a person, for this reason.
    Hold(String),
}

/// Where a canary is in its steps, and what it has counted so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// The current step, 0-based.
    pub step: usize,
    /// Failed measurements so far.
    pub failures: u32,
    /// Inconclusive measurements so far.
    pub inconclusives: u32,
    /// Measurements so far.
    pub measurements: u32,
}

impl Progress {
    /// Counts `report` and says what comes next (the rule is in the crate docs).
    pub fn next(&mut self, report: &Report, config: &CanaryConfig) -> Action {
        self.measurements += 1;
        if report.crashed {
            return Action::RollBack(format!("canary crashes: {}", report.summary()));
        }
        match report.verdict {
            Verdict::Fail => {
                self.failures += 1;
                if self.failures > config.failure_limit {
                    Action::RollBack(format!(
                        "{} failed measurement(s), limit {}: {}",
                        self.failures,
                        config.failure_limit,
                        report.summary()
                    ))
                } else {
                    Action::Extend
                }
            }
            Verdict::Inconclusive => {
                self.inconclusives += 1;
                if self.inconclusives > config.inconclusive_limit {
                    Action::Hold(format!(
                        "{} inconclusive measurement(s), limit {}: {}",
                        self.inconclusives,
                        config.inconclusive_limit,
                        report.summary()
                    ))
                } else {
                    Action::Extend
                }
            }
            Verdict::Pass => {
                if self.step + 1 >= config.steps.len() {
                    Action::Promote
                } else {
                    self.step += 1;
                    Action::NextStep(self.step)
                }
            }
        }
    }
}
