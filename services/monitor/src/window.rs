//! Sliding windows of request and error counts of one operation, in event time.
//!
//! The window is made of ten buckets of `window / 10`; the current window is the
//! buckets within one window length of the newest one. Buckets that slide out are
//! merged into an "older window" that enters the operation's [`Baseline`] once it is
//! at least one window long and holds at least `min_requests` requests. An older
//! window that was itself anomalous by the [`RateRule`] enters with a tenth of the
//! usual weight, so an incident's own errors do not hide its recurrence, while a
//! lasting change of level is still learnt, slowly. A late event
//! (out of order, or a skewed clock) is counted in the bucket of its time while that
//! bucket is still in the window and in the oldest bucket otherwise, so replaying the
//! same records gives the same counts and nothing is lost.

use std::collections::HashMap;
use std::collections::VecDeque;

use crate::baseline::{Baseline, RateRule};

/// Buckets per window.
const BUCKETS: i64 = 10;
/// Failing requests remembered per operation as samples.
pub const MAX_SAMPLES: usize = 5;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: i64,
    requests: u64,
    errors: u64,
}

/// One failing request kept as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureSample {
    /// Event time.
    pub ts: i64,
    /// Its trace id, when known.
    pub trace_id: Option<String>,
    /// Its inputs (filtered attributes).
    pub inputs: HashMap<String, String>,
}

/// Counts of the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowTotals {
    /// Requests in the window.
    pub requests: u64,
    /// Failed requests in the window.
    pub errors: u64,
    /// Start of the window, epoch ms.
    pub start_ms: i64,
    /// End of the window, epoch ms.
    pub end_ms: i64,
}

impl WindowTotals {
    /// Error rate (0 without requests).
    pub fn rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// Sliding window and baseline of one (service, operation).
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    window_ms: i64,
    bucket_ms: i64,
    buckets: VecDeque<Bucket>,
    /// Older buckets not yet in the baseline: (start, end, requests, errors).
    pending: Option<(i64, i64, u64, u64)>,
    rule: RateRule,
    alpha: f64,
    /// The operation's own recent error rate.
    pub baseline: Baseline,
    samples: VecDeque<FailureSample>,
}

impl SlidingWindow {
    /// An empty window of `window_ms`; older windows enter the baseline with weight
    /// `alpha` once they hold `rule.min_requests` requests.
    pub fn new(window_ms: i64, rule: RateRule, alpha: f64) -> Self {
        let window_ms = window_ms.max(BUCKETS);
        SlidingWindow {
            window_ms,
            bucket_ms: window_ms / BUCKETS,
            buckets: VecDeque::new(),
            pending: None,
            rule,
            alpha,
            baseline: Baseline::default(),
            samples: VecDeque::new(),
        }
    }

    /// Counts one request at event time `ts`.
    pub fn record(&mut self, ts: i64, error: bool) {
        let start = ts.div_euclid(self.bucket_ms) * self.bucket_ms;
        self.advance(start);
        let idx = match self.buckets.iter().position(|b| b.start >= start) {
            Some(i) if self.buckets[i].start == start => i,
            Some(0) => 0, // older than the window: the oldest bucket takes it
            Some(i) => {
                self.buckets.insert(
                    i,
                    Bucket {
                        start,
                        requests: 0,
                        errors: 0,
                    },
                );
                i
            }
            None => {
                self.buckets.push_back(Bucket {
                    start,
                    requests: 0,
                    errors: 0,
                });
                self.buckets.len() - 1
            }
        };
        if let Some(b) = self.buckets.get_mut(idx) {
            b.requests += 1;
            b.errors += u64::from(error);
        }
    }

    /// Remembers a failing request as a sample (newest kept).
    pub fn sample(&mut self, s: FailureSample) {
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    /// Failing samples of the current window, newest first.
    pub fn samples(&self) -> Vec<FailureSample> {
        let from = self.totals().start_ms;
        self.samples.iter().rev().filter(|s| s.ts >= from).cloned().collect()
    }

    /// Moves the window so that its newest bucket starts at `start` (never backwards).
    fn advance(&mut self, start: i64) {
        if self.buckets.back().is_some_and(|b| b.start >= start) {
            return;
        }
        // Buckets starting at or before `start - window` leave; time before `cutoff` has passed.
        let cutoff = start - self.window_ms + self.bucket_ms;
        let mut retired = false;
        while let Some(b) = self.buckets.front().copied() {
            if b.start >= cutoff {
                break;
            }
            self.buckets.pop_front();
            self.pending = Some(match self.pending {
                Some((s, _, r, e)) => (s, cutoff, r + b.requests, e + b.errors),
                None => (b.start, cutoff, b.requests, b.errors),
            });
            retired = true;
        }
        if let Some(p) = self.pending.as_mut() {
            p.1 = p.1.max(cutoff);
        }
        if !retired && self.pending.is_none() {
            return;
        }
        if let Some((s, e, r, err)) = self.pending
            && e - s >= self.window_ms
            && r >= self.rule.min_requests.max(1)
        {
            if self.rule.fires(r, err, &self.baseline) {
                self.baseline.update_slow(err as f64 / r as f64, self.alpha / 10.0);
            } else {
                self.baseline.update(err as f64 / r as f64, self.alpha);
            }
            self.pending = None;
        }
    }

    /// Counts of the current window.
    pub fn totals(&self) -> WindowTotals {
        let (requests, errors) = self
            .buckets
            .iter()
            .fold((0, 0), |(r, e), b| (r + b.requests, e + b.errors));
        let end_ms = self.buckets.back().map_or(0, |b| b.start + self.bucket_ms);
        WindowTotals {
            requests,
            errors,
            start_ms: end_ms - self.window_ms,
            end_ms,
        }
    }

    /// Event time of the newest bucket's end (0 when empty).
    pub fn end_ms(&self) -> i64 {
        self.totals().end_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_the_window_and_slides() {
        let mut w = SlidingWindow::new(10_000, RateRule::default(), 0.3);
        for i in 0..20 {
            w.record(1_000_000 + i * 100, i % 10 == 0);
        }
        let t = w.totals();
        assert_eq!((t.requests, t.errors), (20, 2));
        assert_eq!(t.end_ms - t.start_ms, 10_000);
        // 15 s later the first events have left the window and entered the baseline.
        w.record(1_000_000 + 25_000, false);
        let t = w.totals();
        assert_eq!((t.requests, t.errors), (1, 0));
        assert_eq!(w.baseline.samples, 2);
        // 10 % was anomalous against an empty baseline: it enters with a tenth of the weight.
        assert!((w.baseline.mean - 0.003).abs() < 1e-9, "{:?}", w.baseline);
        // A normal window enters with the full weight.
        for i in 0..20 {
            w.record(1_030_000 + i * 100, i == 0);
        }
        w.record(1_060_000, false);
        assert_eq!(w.baseline.samples, 3);
        assert!(
            (w.baseline.mean - (0.003 + 0.3 * (1.0 / 21.0 - 0.003))).abs() < 1e-9,
            "{:?}",
            w.baseline
        );
    }

    #[test]
    fn late_events_are_counted_once() {
        let mut w = SlidingWindow::new(10_000, RateRule::default(), 0.3);
        w.record(50_000, false);
        w.record(45_000, true); // out of order, inside the window
        w.record(10_000, true); // very late: counted in the oldest bucket
        let t = w.totals();
        assert_eq!((t.requests, t.errors), (3, 2));
    }

    #[test]
    fn quiet_windows_merge_until_they_have_enough_requests() {
        let mut w = SlidingWindow::new(1_000, RateRule::default(), 0.3);
        for i in 0..4 {
            w.record(i * 2_000, true);
        }
        // Four requests in four retired windows: not enough for a baseline yet.
        w.record(20_000, false);
        assert_eq!(w.baseline.samples, 0);
        w.record(21_000, false);
        assert_eq!(w.baseline.samples, 2);
        assert!((w.baseline.mean - 0.03 * 0.8).abs() < 1e-9, "{:?}", w.baseline);
        w.record(40_000, false);
        assert_eq!(w.baseline.samples, 2);
    }

    #[test]
    fn samples_are_bounded_and_windowed() {
        let mut w = SlidingWindow::new(10_000, RateRule::default(), 0.3);
        for i in 0..8 {
            w.record(i * 100, true);
            w.sample(FailureSample {
                ts: i * 100,
                trace_id: Some(format!("t{i}")),
                inputs: HashMap::new(),
            });
        }
        let s = w.samples();
        assert_eq!(s.len(), MAX_SAMPLES);
        assert_eq!(s[0].trace_id.as_deref(), Some("t7"));
        w.record(100_000, false);
        assert!(w.samples().is_empty());
    }
}
