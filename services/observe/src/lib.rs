//! observe: windows over telemetry and the statistics that judge them, shared by the
//! monitor, the rollout and the verifier (so that no stage library depends on another stage).
//!
//! - [`fingerprint`]: the one definition of a failure's fingerprint;
//! - [`requests`]: requests per service, version and route ([`RequestWindow`], [`Sample`]);
//! - [`tap`]: a window fed by a consumer of `telemetry.raw` of its own ([`TelemetryTap`]);
//! - [`stats`]: Fisher's exact / two-proportion z-test, Mann-Whitney U, quantiles (`statrs`);
//! - [`canary`]: canary analysis, below.
//!
//! # The canary analysis contract
//!
//! **Input.** Two [`Sample`]s from the *same window* (since the canary took traffic): the
//! canary's and stable's requests, failed requests, successful requests' latencies,
//! per-route counts and exception fingerprints. Settings: [`CanaryConfig`], defaults for all
//! services, overridden per service in the catalog:
//!
//! ```toml
//! [services.pricing-api.deploy.canary]
//! alpha = 0.05                 # significance of every one-sided test
//! min_samples = 50             # per group, before any metric may pass
//! error_rate_bound = 0.01      # canary error rate may exceed stable's by this (absolute)
//! latency_ratio_bound = 1.5    # canary median latency / stable median latency
//! latency_min_delta_ms = 20    # median differences below this are noise
//! steps = [{ weight = 25, duration_secs = 10 }, { weight = 50, duration_secs = 10 }]
//! failure_limit = 0            # failed measurements tolerated (Argo Rollouts' failureLimit)
//! inconclusive_limit = 2       # extensions before a person decides (inconclusiveLimit)
//! ```
//!
//! **Metrics and verdicts** ([`analyze`] → [`Report`]; every test one-sided, "is the canary worse?"):
//!
//! | metric | test | fail | pass | otherwise |
//! |---|---|---|---|---|
//! | `new-fingerprint <fp>` | a fingerprint in the canary, never in stable | always, at once (a crash the fix introduced) | — | — |
//! | `error-rate` | Fisher's exact (two-proportion z when both groups ≥ 100,000) | p < alpha **and** effect (canary − stable rate) > bound | p ≥ alpha, both groups ≥ `min_samples`, effect ≤ bound | inconclusive |
//! | `latency` (successful requests) | Mann-Whitney U; p50/p95/p99 reported | both ≥ `min_samples`, p < alpha, median ratio > bound and delta > `latency_min_delta_ms` | both ≥ `min_samples` and not slower beyond the bound (or not significantly) | inconclusive |
//! | `error-rate <route>` | Fisher's exact at alpha / number of routes | as `error-rate` | — | advisory |
//!
//! The error rate is stricter than latency on purpose: a canary whose error rate is
//! significantly higher is never passed, even within the bound (inconclusive: a person
//! decides), since errors are the failure being healed. A *fail* needs evidence (an exact
//! test is valid for small groups), a *pass* needs enough data: too little traffic is
//! inconclusive, never a pass and never a fail. The analysis verdict is fail when any metric
//! fails, inconclusive when a deciding metric (all but the route metrics) is, else pass.
//!
//! **Steps** ([`Progress::next`] → [`Action`]), like Argo Rollouts: each step sets the canary's
//! weight and is measured after its duration, over everything since the canary started.
//! A crash (`new-fingerprint`) rolls back at once. A failed measurement counts toward
//! `failure_limit`; past it → roll back, else the step is measured again. An inconclusive
//! measurement extends the step by its duration, up to `inconclusive_limit` times; past
//! that the canary is **held for a person** (the approval channel). A pass moves to the next
//! step; after the last one → promote. So a canary is never promoted on too little data and
//! never rolled back only because traffic was low.

pub mod canary;
pub mod fingerprint;
pub mod requests;
pub mod stats;
pub mod tap;

pub use canary::{
    Action, CanaryConfig, ConfigError, MetricResult, Progress, Quantiles, Report, Step, Verdict, analyze,
};
pub use fingerprint::{Failure, derived_fingerprint, failure_of, fingerprint_of};
pub use requests::{Query, RequestWindow, RouteCounts, Sample, Seen, classify, is_failed, is_server_span, route_of};
pub use tap::TelemetryTap;
