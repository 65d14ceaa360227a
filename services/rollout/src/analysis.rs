//! Canary analysis in the rollout: steps of traffic, measurements, and the decision.
//!
//! The statistics and the rule are `selfheal_observe`'s (its crate docs hold the contract):
//! per metric canary against stable in the same window, pass / fail / inconclusive, and the
//! Argo-like step machine. This module runs it against live samples ([`CanarySamples`]):
//! each step is observed for its duration while a crash (a fingerprint only the canary shows)
//! is looked for at every poll, then measured; an inconclusive measurement extends the step,
//! up to the limit, after which the canary is held for a person. Every measurement's metrics
//! go into the [`CanaryReport`] carried by the `rollouts` record.
//!
//! Settings: [`AnalysisConfig`] gives the defaults of every service (the rollout's flags),
//! the catalog's `[services.<name>.deploy.canary]` overrides them per service
//! ([`AnalysisConfig::for_service`]).

use std::time::Duration;

use async_trait::async_trait;
use selfheal_catalog::ServiceEntry;
use selfheal_events::{CanaryMetric, CanaryReport};
use selfheal_observe::{Action, CanaryConfig, ConfigError, Progress, Query, Report, Sample, Step, TelemetryTap};

/// Samples of one version of a service since an instant, from telemetry.
#[async_trait]
pub trait CanarySamples: Send + Sync {
    /// Requests of `service` at `version` with a timestamp at or after `since_ms`.
    async fn sample(&self, service: &str, version: &str, since_ms: i64) -> Sample;
}

/// The former name of [`CanarySamples`] (it only counted errors then).
pub use CanarySamples as ErrorRates;

#[async_trait]
impl CanarySamples for TelemetryTap {
    async fn sample(&self, service: &str, version: &str, since_ms: i64) -> Sample {
        TelemetryTap::sample(
            self,
            service,
            Query {
                version: Some(version),
                route: None,
                from_ms: since_ms,
                to_ms: i64::MAX,
            },
        )
    }
}

/// Sets the canary's share of traffic when the analysis moves to another step.
#[async_trait]
pub trait Weights: Send + Sync {
    /// Sends `percent` of the traffic to the canary.
    async fn set(&self, percent: u8) -> Result<(), String>;
}

/// The rollout's defaults for every service's canary (the flags of `selfheal-rollout`).
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Duration of a step when the catalog names no steps (`--canary-secs`).
    pub min_window: Duration,
    /// Longest analysis when the catalog names no `inconclusive_limit` (`--canary-max-secs`):
    /// inconclusive measurements extend the step while they fit in it, then the canary is held.
    pub max_window: Duration,
    /// Requests per group before a metric may pass (`--min-requests`), unless the catalog says.
    pub min_requests: i64,
    /// How much higher the canary's error rate may be (absolute, 0..1), unless the catalog says.
    pub tolerance: f64,
    /// How often the samples are read for a crash during a step.
    pub poll: Duration,
    /// Everything else (alpha, latency bounds, failure limit).
    pub canary: CanaryConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            min_window: Duration::from_secs(10),
            max_window: Duration::from_secs(30),
            min_requests: 50,
            tolerance: 0.01,
            poll: Duration::from_millis(500),
            canary: CanaryConfig::default(),
        }
    }
}

impl AnalysisConfig {
    /// The settings for `svc`: these defaults (one step of `canary_traffic_percent`, or
    /// `default_weight`, for `min_window`), then the catalog's `deploy.canary` table.
    pub fn for_service(&self, svc: &ServiceEntry, default_weight: u8) -> Result<CanaryConfig, ConfigError> {
        let step = self.min_window.max(Duration::from_millis(1));
        let extra = self.max_window.saturating_sub(step).as_millis() / step.as_millis().max(1);
        let base = CanaryConfig {
            min_samples: self.min_requests.max(1) as u64,
            error_rate_bound: self.tolerance,
            steps: vec![Step {
                weight: default_weight.clamp(1, 100),
                duration: step,
            }],
            inconclusive_limit: u32::try_from(extra).unwrap_or(u32::MAX),
            ..self.canary.clone()
        };
        match svc.deploy.get("canary") {
            None => {
                base.validate()?;
                Ok(base)
            }
            Some(toml::Value::Table(t)) => base.with_overrides(t),
            Some(other) => Err(ConfigError {
                key: "canary".into(),
                problem: format!("expected a table, found {}", other.type_str()),
            }),
        }
    }
}

/// What to do with the canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The canary becomes stable.
    Promote,
    /// The canary goes away.
    RollBack,
    /// The evidence stayed inconclusive: a person decides; the canary keeps its traffic meanwhile.
    Hold,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Promote => "promote",
            Decision::RollBack => "roll-back",
            Decision::Hold => "hold",
        }
    }
}

/// The analysis result.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Promote, roll back or hold.
    pub decision: Decision,
    /// The canary's sample at the last measurement.
    pub canary: Sample,
    /// Stable's sample over the same window.
    pub stable: Sample,
    /// How long it observed.
    pub observed: Duration,
    /// One line for a person.
    pub reason: String,
    /// Every measurement, for the `rollouts` record.
    pub report: CanaryReport,
    /// The weight the canary had at the end.
    pub weight: u8,
}

fn metrics_of(report: &Report, step: usize, measurement: u32, weight: u8) -> Vec<CanaryMetric> {
    let q = |q: Option<selfheal_observe::Quantiles>| q.map(|q| vec![q.p50, q.p95, q.p99]);
    // Avro and JSON readers want finite numbers.
    let finite = |x: f64| if x.is_finite() { x } else { f64::MAX };
    report
        .metrics
        .iter()
        .map(|m| CanaryMetric {
            step: i32::try_from(step).unwrap_or(i32::MAX),
            measurement: i32::try_from(measurement).unwrap_or(i32::MAX),
            weight: i32::from(weight),
            metric: m.metric.clone(),
            test: m.test.clone(),
            canary_samples: i64::try_from(m.canary_samples).unwrap_or(i64::MAX),
            stable_samples: i64::try_from(m.stable_samples).unwrap_or(i64::MAX),
            statistic: finite(m.statistic),
            p_value: finite(m.p_value),
            effect: finite(m.effect),
            bound: finite(m.bound),
            verdict: m.verdict.as_str().into(),
            reason: m.reason.clone(),
            canary_latency_ms: q(m.canary_latency),
            stable_latency_ms: q(m.stable_latency),
        })
        .collect()
}

fn crashed(canary: &Sample, stable: &Sample) -> bool {
    canary.fingerprints.keys().any(|f| !stable.fingerprints.contains_key(f))
}

/// Runs the steps of `config` from `since_ms` (the first step's weight is already set) and
/// decides. `weights` moves the canary to later steps.
#[allow(clippy::too_many_arguments)]
pub async fn analyze(
    samples: &dyn CanarySamples,
    weights: &dyn Weights,
    service: &str,
    stable_version: &str,
    canary_version: &str,
    since_ms: i64,
    config: &CanaryConfig,
    poll: Duration,
) -> Analysis {
    let started = tokio::time::Instant::now();
    let mut progress = Progress::default();
    let mut report = CanaryReport::default();
    let mut weight = config.steps.first().map_or(0, |s| s.weight);
    loop {
        let step = config.steps.get(progress.step).copied().unwrap_or(Step {
            weight,
            duration: Duration::from_secs(1),
        });
        let until = tokio::time::Instant::now() + step.duration;
        // Look for a crash while the step runs: it needs no statistics and should not wait.
        while tokio::time::Instant::now() < until {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(poll.min(left).max(Duration::from_millis(1))).await;
            let c = samples.sample(service, canary_version, since_ms).await;
            let s = samples.sample(service, stable_version, since_ms).await;
            if crashed(&c, &s) {
                break;
            }
        }
        let canary = samples.sample(service, canary_version, since_ms).await;
        let stable = samples.sample(service, stable_version, since_ms).await;
        let measured = selfheal_observe::analyze(&canary, &stable, config);
        let step_index = progress.step;
        let action = progress.next(&measured, config);
        report
            .metrics
            .extend(metrics_of(&measured, step_index, progress.measurements, weight));
        report.verdict = measured.verdict.as_str().into();
        let done = |decision: Decision, reason: String, mut report: CanaryReport| {
            report.decision = decision.as_str().into();
            Analysis {
                decision,
                canary: canary.clone(),
                stable: stable.clone(),
                observed: started.elapsed(),
                reason,
                report,
                weight,
            }
        };
        match action {
            Action::Extend => continue,
            Action::NextStep(i) => {
                let next = config.steps.get(i).map_or(weight, |s| s.weight);
                if let Err(e) = weights.set(next).await {
                    return done(
                        Decision::RollBack,
                        format!("cannot move the canary to {next}% traffic: {e}"),
                        report,
                    );
                }
                weight = next;
            }
            Action::Promote => {
                let reason = format!(
                    "canary {:.1}% errors vs stable {:.1}% ({} vs {} requests) · {}",
                    canary.error_rate() * 100.0,
                    stable.error_rate() * 100.0,
                    canary.requests,
                    stable.requests,
                    measured.summary()
                );
                return done(Decision::Promote, reason, report);
            }
            Action::RollBack(why) => return done(Decision::RollBack, why, report),
            Action::Hold(why) => return done(Decision::Hold, why, report),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use selfheal_observe::RouteCounts;

    use super::*;

    /// Samples that grow by a fixed step per read, per version.
    struct Growing {
        step: HashMap<String, (u64, u64, Option<&'static str>)>,
        now: Mutex<HashMap<String, Sample>>,
    }

    #[async_trait]
    impl CanarySamples for Growing {
        async fn sample(&self, _service: &str, version: &str, _since: i64) -> Sample {
            let (errors, total, fp) = self.step.get(version).copied().unwrap_or_default();
            let mut now = self.now.lock().unwrap();
            let s = now.entry(version.to_string()).or_default();
            s.errors += errors;
            s.requests += total;
            let r: &mut RouteCounts = s.routes.entry("/price".into()).or_default();
            r.errors += errors;
            r.requests += total;
            s.latencies_ms
                .extend((0..total - errors).map(|i| 10.0 + (i % 5) as f64));
            if let Some(fp) = fp {
                *s.fingerprints.entry(fp.into()).or_default() += errors;
            }
            s.clone()
        }
    }

    struct NoWeights(Mutex<Vec<u8>>);
    #[async_trait]
    impl Weights for NoWeights {
        async fn set(&self, percent: u8) -> Result<(), String> {
            self.0.lock().unwrap().push(percent);
            Ok(())
        }
    }

    fn growing(canary: (u64, u64, Option<&'static str>), stable: (u64, u64, Option<&'static str>)) -> Growing {
        let mut step = HashMap::new();
        step.insert("new".to_string(), canary);
        step.insert("old".to_string(), stable);
        Growing {
            step,
            now: Mutex::new(HashMap::new()),
        }
    }

    fn fast(min_samples: u64) -> CanaryConfig {
        CanaryConfig {
            min_samples,
            steps: vec![
                Step {
                    weight: 10,
                    duration: Duration::from_millis(20),
                },
                Step {
                    weight: 50,
                    duration: Duration::from_millis(20),
                },
            ],
            inconclusive_limit: 2,
            ..CanaryConfig::default()
        }
    }

    async fn run(samples: &Growing, config: &CanaryConfig) -> (Analysis, Vec<u8>) {
        let w = NoWeights(Mutex::new(Vec::new()));
        let a = analyze(samples, &w, "svc", "old", "new", 0, config, Duration::from_millis(5)).await;
        (a, w.0.into_inner().unwrap())
    }

    #[tokio::test]
    async fn healthy_canary_walks_the_steps_and_is_promoted() {
        let (a, weights) = run(&growing((0, 3, None), (1, 9, Some("fp"))), &fast(10)).await;
        assert_eq!(a.decision, Decision::Promote, "{}", a.reason);
        assert_eq!(weights, [50], "moved to the second step");
        assert_eq!(a.report.decision, "promote");
        let steps: Vec<i32> = a.report.metrics.iter().map(|m| m.step).collect();
        assert!(steps.contains(&0) && steps.contains(&1), "{steps:?}");
        let e = a.report.metrics.iter().find(|m| m.metric == "error-rate").unwrap();
        assert!(e.canary_samples >= 10 && e.stable_samples >= 10);
        assert_eq!(e.test, "fisher-exact");
        assert!(
            a.report
                .metrics
                .iter()
                .any(|m| m.metric == "latency" && m.canary_latency_ms.is_some())
        );
    }

    #[tokio::test]
    async fn worse_canary_is_rolled_back() {
        let (a, _) = run(&growing((2, 3, Some("fp")), (1, 9, Some("fp"))), &fast(10)).await;
        assert_eq!(a.decision, Decision::RollBack, "{}", a.reason);
        assert!(a.reason.contains("error-rate worse"), "{}", a.reason);
    }

    #[tokio::test]
    async fn canary_crash_rolls_back_at_the_first_poll() {
        let slow = CanaryConfig {
            steps: vec![Step {
                weight: 25,
                duration: Duration::from_secs(30),
            }],
            ..fast(10)
        };
        let (a, _) = run(&growing((1, 3, Some("new-crash")), (0, 9, None)), &slow).await;
        assert_eq!(a.decision, Decision::RollBack);
        assert!(a.reason.contains("canary crashes"), "{}", a.reason);
        assert!(
            a.observed < Duration::from_secs(5),
            "did not wait for the step: {:?}",
            a.observed
        );
    }

    #[tokio::test]
    async fn low_traffic_is_extended_then_held_not_rolled_back() {
        let (a, weights) = run(&growing((0, 0, None), (0, 9, None)), &fast(10)).await;
        assert_eq!(a.decision, Decision::Hold, "{}", a.reason);
        assert!(a.reason.contains("too few"), "{}", a.reason);
        assert!(weights.is_empty(), "never left the first step");
        let measurements: std::collections::BTreeSet<i32> = a.report.metrics.iter().map(|m| m.measurement).collect();
        assert_eq!(measurements.len(), 3, "measured, extended twice, then held");
        assert_eq!(a.report.decision, "hold");
    }

    #[test]
    fn catalog_overrides_the_flags() {
        let mut svc = ServiceEntry::new("svc", "/x", "python", vec!["pytest".into()]);
        let flags = AnalysisConfig {
            min_window: Duration::from_secs(8),
            max_window: Duration::from_secs(25),
            min_requests: 5,
            ..AnalysisConfig::default()
        };
        let c = flags.for_service(&svc, 25).unwrap();
        assert_eq!(c.min_samples, 5);
        assert_eq!(c.inconclusive_limit, 2, "8 s steps fit twice more in 25 s");
        assert_eq!(c.steps[0].weight, 25);
        let t: toml::Table =
            toml::from_str("[canary]\nmin_samples = 30\nsteps = [{ weight = 10, duration_secs = 3 }]").unwrap();
        svc.deploy.extend(t);
        let c = flags.for_service(&svc, 25).unwrap();
        assert_eq!((c.min_samples, c.steps[0].weight), (30, 10));
        svc.deploy.insert("canary".into(), toml::Value::Integer(3));
        assert_eq!(flags.for_service(&svc, 25).unwrap_err().key, "canary");
    }
}
