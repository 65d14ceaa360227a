//! A service operation's own recent error rate, and the rule that says when the current
//! window is anomalous against it.
//!
//! # The error-rate rule
//!
//! The baseline is an exponentially weighted mean `m` and variance `v` of the error
//! rates of *older* windows (each at least one window long and holding at least
//! `min_requests` requests; quieter stretches are merged until they do). The current
//! sliding window, with `requests` requests of which `errors` failed, is anomalous when
//!
//! ```text
//! requests >= min_requests  and  errors >= 1  and
//! errors / requests >= m + max(min_rate_increase, sigmas * sqrt(v))
//! ```
//!
//! with defaults `min_requests = 5`, `min_rate_increase = 0.05`, `sigmas = 3`. A new
//! operation has `m = v = 0`, so its threshold is 5 %.

use serde::{Deserialize, Serialize};

/// EWMA mean and variance of per-window error rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Weighted mean error rate (0..1).
    pub mean: f64,
    /// Weighted variance of the error rate.
    pub variance: f64,
    /// Windows that entered the baseline.
    pub samples: u64,
}

impl Baseline {
    /// Adds one older window's error rate with weight `alpha` for the newest.
    pub fn update(&mut self, rate: f64, alpha: f64) {
        let rate = if rate.is_finite() { rate.clamp(0.0, 1.0) } else { 0.0 };
        let alpha = alpha.clamp(0.0, 1.0);
        if self.samples == 0 {
            self.mean = rate;
            self.variance = 0.0;
        } else {
            // West's incremental EWMA variance.
            let d = rate - self.mean;
            self.mean += alpha * d;
            self.variance = (1.0 - alpha) * (self.variance + alpha * d * d);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// Adds an anomalous window's rate with the small weight `alpha`; a first sample
    /// starts from a zero prior instead of becoming the mean.
    pub fn update_slow(&mut self, rate: f64, alpha: f64) {
        if self.samples == 0 {
            self.samples = 1;
            self.mean = 0.0;
            self.variance = 0.0;
        }
        self.update(rate, alpha);
    }

    /// Standard deviation of the error rate.
    pub fn stddev(&self) -> f64 {
        self.variance.max(0.0).sqrt()
    }
}

/// The thresholds of the error-rate rule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRule {
    /// Fewest requests in the window before the rule can fire.
    pub min_requests: u64,
    /// Smallest increase over the baseline that counts.
    pub min_rate_increase: f64,
    /// Standard deviations above the baseline that count.
    pub sigmas: f64,
}

impl Default for RateRule {
    fn default() -> Self {
        RateRule {
            min_requests: 5,
            min_rate_increase: 0.05,
            sigmas: 3.0,
        }
    }
}

impl RateRule {
    /// The error rate at and above which the window is anomalous.
    pub fn threshold(&self, b: &Baseline) -> f64 {
        b.mean + self.min_rate_increase.max(self.sigmas * b.stddev())
    }

    /// Whether `errors` of `requests` is anomalous against `b`.
    pub fn fires(&self, requests: u64, errors: u64, b: &Baseline) -> bool {
        if requests < self.min_requests.max(1) || errors == 0 {
            return false;
        }
        errors as f64 / requests as f64 >= self.threshold(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_operation_fires_at_five_percent() {
        let r = RateRule::default();
        let b = Baseline::default();
        assert!(r.fires(20, 1, &b)); // 5 %
        assert!(!r.fires(21, 1, &b)); // 4.8 %
        assert!(!r.fires(4, 4, &b)); // too few requests
        assert!(!r.fires(100, 0, &b));
    }

    #[test]
    fn noisy_baseline_raises_the_threshold() {
        let r = RateRule::default();
        let mut b = Baseline::default();
        for rate in [0.10, 0.30, 0.10, 0.30, 0.10, 0.30] {
            b.update(rate, 0.3);
        }
        assert!(b.mean > 0.15 && b.mean < 0.25, "{b:?}");
        assert!(r.threshold(&b) > b.mean + 0.05 + 0.1, "{}", r.threshold(&b));
        assert!(!r.fires(100, 35, &b));
        assert!(r.fires(100, 80, &b));
    }

    #[test]
    fn steady_baseline_keeps_the_minimum_increase() {
        let mut b = Baseline::default();
        for _ in 0..10 {
            b.update(0.02, 0.3);
        }
        assert!((b.mean - 0.02).abs() < 1e-9);
        assert!(b.stddev() < 1e-9);
        let r = RateRule::default();
        assert!(!r.fires(100, 6, &b));
        assert!(r.fires(100, 8, &b));
    }
}
