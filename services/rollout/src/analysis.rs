//! Canary analysis: compare the canary's error rate with stable's over the same period.
//!
//! The rule, kept simple so a reviewer can check it in their head:
//!
//! - observe at least `min_window`; stop as soon as after that both sides served
//!   `min_requests`, or at `max_window` whatever was seen;
//! - promote when the canary served at least `min_requests` and its error rate is at most
//!   stable's plus `tolerance`;
//! - otherwise roll back; when the canary saw fewer than `min_requests` the reason is
//!   "insufficient canary traffic" (no evidence is not good evidence).
//!
//! Stable's request count is reported but not required: at 25 % canary share stable always
//! sees more traffic than the canary.

use std::time::Duration;

use async_trait::async_trait;

/// Requests and failed requests of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Failed requests (span status error or HTTP status >= 500).
    pub errors: i64,
    /// All requests.
    pub total: i64,
}

impl Counts {
    /// Error rate 0..1; 0 without requests.
    pub fn rate(&self) -> f64 {
        if self.total <= 0 {
            0.0
        } else {
            self.errors as f64 / self.total as f64
        }
    }
}

/// Request and error counts per service version, from telemetry.
#[async_trait]
pub trait ErrorRates: Send + Sync {
    /// Server requests of `service` at `version` with a timestamp at or after `since_ms`.
    async fn rates(&self, service: &str, version: &str, since_ms: i64) -> Counts;
}

/// How the canary is judged.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Observe at least this long (`--canary-secs`).
    pub min_window: Duration,
    /// Decide at the latest after this long (`--canary-max-secs`).
    pub max_window: Duration,
    /// Requests each side should see; the canary must (`--min-requests`).
    pub min_requests: i64,
    /// How much worse than stable the canary's error rate may be (absolute, 0..1).
    pub tolerance: f64,
    /// How often counts are read.
    pub poll: Duration,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            min_window: Duration::from_secs(10),
            max_window: Duration::from_secs(30),
            min_requests: 10,
            tolerance: 0.01,
            poll: Duration::from_millis(500),
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
}

/// The analysis result.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Promote or roll back.
    pub decision: Decision,
    /// The canary's counts.
    pub canary: Counts,
    /// Stable's counts over the same period.
    pub stable: Counts,
    /// How long it observed.
    pub observed: Duration,
    /// One line for a person.
    pub reason: String,
}

/// Decides from counts alone (the rule in the module docs).
pub fn decide(canary: Counts, stable: Counts, config: &AnalysisConfig) -> (Decision, String) {
    let (c, s) = (canary.rate() * 100.0, stable.rate() * 100.0);
    if canary.total < config.min_requests {
        return (
            Decision::RollBack,
            format!(
                "insufficient canary traffic: {} requests, {} needed",
                canary.total, config.min_requests
            ),
        );
    }
    if canary.rate() <= stable.rate() + config.tolerance {
        (
            Decision::Promote,
            format!(
                "canary {c:.1}% errors vs stable {s:.1}% ({} vs {} requests)",
                canary.total, stable.total
            ),
        )
    } else {
        (
            Decision::RollBack,
            format!(
                "canary {c:.1}% errors is worse than stable {s:.1}% ({} vs {} requests)",
                canary.total, stable.total
            ),
        )
    }
}

/// Observes both versions from `since_ms` and decides.
pub async fn analyze(
    rates: &dyn ErrorRates,
    service: &str,
    stable_version: &str,
    canary_version: &str,
    since_ms: i64,
    config: &AnalysisConfig,
) -> Analysis {
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(config.poll).await;
        let observed = started.elapsed();
        let canary = rates.rates(service, canary_version, since_ms).await;
        let stable = rates.rates(service, stable_version, since_ms).await;
        let enough = canary.total >= config.min_requests && stable.total >= config.min_requests;
        if (observed >= config.min_window && enough) || observed >= config.max_window {
            let (decision, reason) = decide(canary, stable, config);
            return Analysis {
                decision,
                canary,
                stable,
                observed,
                reason,
            };
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Counts that grow by a fixed step per read, per version.
    struct Growing {
        step: HashMap<String, Counts>,
        now: Mutex<HashMap<String, Counts>>,
    }

    #[async_trait]
    impl ErrorRates for Growing {
        async fn rates(&self, _service: &str, version: &str, _since: i64) -> Counts {
            let step = self.step.get(version).copied().unwrap_or_default();
            let mut now = self.now.lock().unwrap();
            let c = now.entry(version.to_string()).or_default();
            c.errors += step.errors;
            c.total += step.total;
            *c
        }
    }

    fn growing(canary: (i64, i64), stable: (i64, i64)) -> Growing {
        let mut step = HashMap::new();
        step.insert(
            "new".to_string(),
            Counts {
                errors: canary.0,
                total: canary.1,
            },
        );
        step.insert(
            "old".to_string(),
            Counts {
                errors: stable.0,
                total: stable.1,
            },
        );
        Growing {
            step,
            now: Mutex::new(HashMap::new()),
        }
    }

    fn fast() -> AnalysisConfig {
        AnalysisConfig {
            min_window: Duration::from_millis(20),
            max_window: Duration::from_millis(200),
            poll: Duration::from_millis(5),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn healthy_canary_is_promoted() {
        let rates = growing((0, 3), (1, 9));
        let a = analyze(&rates, "svc", "old", "new", 0, &fast()).await;
        assert_eq!(a.decision, Decision::Promote, "{}", a.reason);
        assert!(a.canary.total >= 10 && a.canary.errors == 0);
        assert!(a.stable.rate() > 0.1);
        assert!(a.observed >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn worse_canary_is_rolled_back() {
        let rates = growing((2, 3), (1, 9));
        let a = analyze(&rates, "svc", "old", "new", 0, &fast()).await;
        assert_eq!(a.decision, Decision::RollBack);
        assert!(a.reason.contains("worse"), "{}", a.reason);
    }

    #[tokio::test]
    async fn canary_without_traffic_is_rolled_back_at_max_window() {
        let rates = growing((0, 0), (0, 9));
        let a = analyze(&rates, "svc", "old", "new", 0, &fast()).await;
        assert_eq!(a.decision, Decision::RollBack);
        assert!(a.reason.contains("insufficient canary traffic"), "{}", a.reason);
        assert!(a.observed >= Duration::from_millis(200));
    }

    #[test]
    fn tolerance_allows_equal_or_slightly_worse() {
        let cfg = AnalysisConfig::default();
        let stable = Counts { errors: 10, total: 100 };
        assert_eq!(
            decide(Counts { errors: 10, total: 100 }, stable, &cfg).0,
            Decision::Promote
        );
        assert_eq!(
            decide(
                Counts {
                    errors: 105,
                    total: 1000
                },
                stable,
                &cfg
            )
            .0,
            Decision::Promote
        );
        assert_eq!(
            decide(Counts { errors: 12, total: 100 }, stable, &cfg).0,
            Decision::RollBack
        );
        assert_eq!(
            decide(Counts { errors: 0, total: 9 }, stable, &cfg).0,
            Decision::RollBack
        );
    }
}
