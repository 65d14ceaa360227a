//! Decisions of the canary analysis, from canary and stable samples: each case asserts the
//! verdict of the metrics that matter, the analysis verdict and what the step machine does
//! with it. The property at the end: whatever the counts, a canary whose error count is
//! significantly above stable's (by an exact test written independently here) is never
//! passed and never promoted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use selfheal_observe::{Action, CanaryConfig, Progress, Report, RouteCounts, Sample, Step, Verdict, analyze};

/// Latencies around `center` ms, spread ±`spread`, deterministic per `seed` (an LCG).
fn latencies(n: u64, center: f64, spread: f64, seed: u64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            center + (u * 2.0 - 1.0) * spread
        })
        .collect()
}

/// A group: per route (requests, errors), success latencies around `center` ms, fingerprints.
fn group(routes: &[(&str, u64, u64)], center: f64, seed: u64, fingerprints: &[(&str, u64)]) -> Sample {
    let mut s = Sample::default();
    for (route, requests, errors) in routes {
        s.requests += requests;
        s.errors += errors;
        s.routes.insert(
            route.to_string(),
            RouteCounts {
                requests: *requests,
                errors: *errors,
            },
        );
        s.latencies_ms
            .extend(latencies(requests - errors, center, center * 0.2, seed + requests));
    }
    s.fingerprints = fingerprints
        .iter()
        .map(|(f, n)| (f.to_string(), *n))
        .collect::<BTreeMap<_, _>>();
    s
}

fn metric<'a>(r: &'a Report, name: &str) -> &'a selfheal_observe::MetricResult {
    r.metrics
        .iter()
        .find(|m| m.metric == name)
        .unwrap_or_else(|| panic!("no metric {name} in {r:#?}"))
}

/// What the step machine does with one report, from a fresh start.
fn first_action(r: &Report, c: &CanaryConfig) -> Action {
    Progress::default().next(r, c)
}

struct Case {
    name: &'static str,
    canary: Sample,
    stable: Sample,
    config: CanaryConfig,
    verdict: Verdict,
    /// (metric, verdict) pairs that must hold.
    metrics: &'static [(&'static str, Verdict)],
    action: fn(&Action) -> bool,
}

fn defaults() -> CanaryConfig {
    CanaryConfig::default()
}

#[test]
fn table_of_canary_decisions() {
    let cases = vec![
        Case {
            name: "low traffic: 8 canary requests, no errors anywhere",
            canary: group(&[("/price", 8, 0)], 10.0, 1, &[]),
            stable: group(&[("/price", 30, 0)], 10.0, 2, &[]),
            config: defaults(),
            verdict: Verdict::Inconclusive,
            metrics: &[
                ("error-rate", Verdict::Inconclusive),
                ("latency", Verdict::Inconclusive),
            ],
            action: |a| *a == Action::Extend,
        },
        Case {
            name: "equal error rates (5%), equal latency",
            canary: group(&[("/price", 100, 5)], 10.0, 3, &[("fp-known", 5)]),
            stable: group(&[("/price", 400, 20)], 10.0, 4, &[("fp-known", 20)]),
            config: defaults(),
            verdict: Verdict::Pass,
            metrics: &[("error-rate", Verdict::Pass), ("latency", Verdict::Pass)],
            action: |a| *a == Action::Promote,
        },
        Case {
            name: "3/40 canary vs 2/400 stable",
            canary: group(&[("/price", 40, 3)], 10.0, 5, &[("fp-known", 3)]),
            stable: group(&[("/price", 400, 2)], 10.0, 6, &[("fp-known", 2)]),
            config: defaults(),
            verdict: Verdict::Fail,
            metrics: &[("error-rate", Verdict::Fail)],
            action: |a| matches!(a, Action::RollBack(_)),
        },
        Case {
            name: "3/40 vs 2/400 with few samples required: still not passed",
            canary: group(&[("/price", 40, 3)], 10.0, 5, &[("fp-known", 3)]),
            stable: group(&[("/price", 400, 2)], 10.0, 6, &[("fp-known", 2)]),
            config: CanaryConfig {
                min_samples: 5,
                error_rate_bound: 0.1,
                ..defaults()
            },
            verdict: Verdict::Inconclusive,
            metrics: &[("error-rate", Verdict::Inconclusive)],
            action: |a| *a == Action::Extend,
        },
        Case {
            name: "slower but not more failing: p50 ~120 ms vs ~50 ms, 1/200 vs 4/800 errors",
            canary: group(&[("/price", 200, 1)], 120.0, 7, &[("fp-known", 1)]),
            stable: group(&[("/price", 800, 4)], 50.0, 8, &[("fp-known", 4)]),
            config: defaults(),
            verdict: Verdict::Fail,
            metrics: &[("error-rate", Verdict::Pass), ("latency", Verdict::Fail)],
            action: |a| matches!(a, Action::RollBack(_)),
        },
        Case {
            name: "a little slower, within bounds (12 ms vs 10 ms)",
            canary: group(&[("/price", 200, 0)], 12.0, 9, &[]),
            stable: group(&[("/price", 800, 0)], 10.0, 10, &[]),
            config: defaults(),
            verdict: Verdict::Pass,
            metrics: &[("error-rate", Verdict::Pass), ("latency", Verdict::Pass)],
            action: |a| *a == Action::Promote,
        },
        Case {
            name: "fails on one route only (500s without an exception), overall rate hides it",
            canary: group(&[("/price", 150, 0), ("/refund", 20, 6)], 10.0, 11, &[]),
            stable: group(&[("/price", 450, 20), ("/refund", 60, 0)], 10.0, 12, &[]),
            config: defaults(),
            verdict: Verdict::Fail,
            metrics: &[
                ("error-rate", Verdict::Pass),
                ("error-rate /refund", Verdict::Fail),
                ("error-rate /price", Verdict::Pass),
            ],
            action: |a| matches!(a, Action::RollBack(_)),
        },
        Case {
            name: "crashes on one route with a fingerprint stable never shows",
            canary: group(&[("/price", 150, 0), ("/refund", 20, 2)], 10.0, 13, &[("fp-new", 2)]),
            stable: group(&[("/price", 450, 20), ("/refund", 60, 0)], 10.0, 14, &[("fp-old", 20)]),
            config: defaults(),
            verdict: Verdict::Fail,
            metrics: &[("new-fingerprint fp-new", Verdict::Fail)],
            action: |a| matches!(a, Action::RollBack(r) if r.contains("crashes")),
        },
        Case {
            name: "the fix: canary 0/60 vs stable 9/180 (the incident's failure)",
            canary: group(&[("/price", 60, 0)], 10.0, 15, &[]),
            stable: group(&[("/price", 180, 9)], 10.0, 16, &[("fp-incident", 9)]),
            config: defaults(),
            verdict: Verdict::Pass,
            metrics: &[("error-rate", Verdict::Pass), ("latency", Verdict::Pass)],
            action: |a| *a == Action::Promote,
        },
        Case {
            name: "significantly worse but within the bound (6% vs 5%, bound 2%): a person decides",
            canary: group(&[("/price", 10_000, 600)], 10.0, 17, &[]),
            stable: group(&[("/price", 100_000, 5_000)], 10.0, 18, &[]),
            config: CanaryConfig {
                error_rate_bound: 0.02,
                ..defaults()
            },
            verdict: Verdict::Inconclusive,
            metrics: &[("error-rate", Verdict::Inconclusive)],
            action: |a| *a == Action::Extend,
        },
    ];
    for case in cases {
        let report = analyze(&case.canary, &case.stable, &case.config);
        assert_eq!(report.verdict, case.verdict, "{}: {report:#?}", case.name);
        for (name, verdict) in case.metrics {
            let m = metric(&report, name);
            assert_eq!(m.verdict, *verdict, "{}: metric {name}: {m:#?}", case.name);
            if m.test != "fingerprint" {
                assert!(
                    m.canary_samples > 0 && m.stable_samples > 0,
                    "{}: sizes reported",
                    case.name
                );
            }
        }
        let action = first_action(&report, &case.config);
        assert!(
            (case.action)(&action),
            "{}: action {action:?} ({})",
            case.name,
            report.summary()
        );
    }
}

#[test]
fn latency_reports_quantiles_and_the_3_40_case_has_its_numbers() {
    let r = analyze(
        &group(&[("/price", 40, 3)], 10.0, 5, &[]),
        &group(&[("/price", 400, 2)], 10.0, 6, &[]),
        &defaults(),
    );
    let e = metric(&r, "error-rate");
    assert_eq!((e.canary_samples, e.stable_samples), (40, 400));
    assert_eq!(e.test, "fisher-exact");
    assert!((e.p_value - 0.006146).abs() < 1e-5, "{e:?}");
    assert!((e.effect - 0.07).abs() < 1e-9);
    assert_eq!(e.bound, 0.01);
    let l = metric(&r, "latency");
    let (c, s) = (l.canary_latency.unwrap(), l.stable_latency.unwrap());
    assert!(c.p50 <= c.p95 && c.p95 <= c.p99 && s.p50 <= s.p99);
    assert_eq!(l.test, "mann-whitney-u");
}

#[test]
fn low_traffic_is_extended_then_held_never_promoted_or_rolled_back() {
    let config = defaults();
    let low = analyze(
        &group(&[("/price", 8, 0)], 10.0, 1, &[]),
        &group(&[("/price", 30, 0)], 10.0, 2, &[]),
        &config,
    );
    let mut p = Progress::default();
    let actions: Vec<Action> = (0..4).map(|_| p.next(&low, &config)).collect();
    assert_eq!(actions[..2], [Action::Extend, Action::Extend]);
    assert!(
        matches!(&actions[2], Action::Hold(r) if r.contains("too few")),
        "{actions:?}"
    );
}

#[test]
fn steps_failure_limit_and_inconclusive_limit() {
    let config = CanaryConfig {
        steps: vec![
            Step {
                weight: 10,
                duration: Duration::from_secs(5),
            },
            Step {
                weight: 50,
                duration: Duration::from_secs(5),
            },
        ],
        failure_limit: 1,
        inconclusive_limit: 0,
        ..defaults()
    };
    let pass = analyze(
        &group(&[("/a", 100, 0)], 10.0, 1, &[]),
        &group(&[("/a", 300, 0)], 10.0, 2, &[]),
        &config,
    );
    let fail = analyze(
        &group(&[("/a", 100, 20)], 10.0, 1, &[]),
        &group(&[("/a", 300, 0)], 10.0, 2, &[]),
        &config,
    );
    assert_eq!((pass.verdict, fail.verdict), (Verdict::Pass, Verdict::Fail));
    let mut p = Progress::default();
    assert_eq!(p.next(&pass, &config), Action::NextStep(1));
    assert_eq!(p.next(&pass, &config), Action::Promote);
    let mut p = Progress::default();
    assert_eq!(p.next(&fail, &config), Action::Extend, "one failure tolerated");
    assert!(matches!(p.next(&fail, &config), Action::RollBack(_)));
    let low = analyze(
        &group(&[("/a", 3, 0)], 10.0, 1, &[]),
        &group(&[("/a", 3, 0)], 10.0, 2, &[]),
        &config,
    );
    assert!(matches!(Progress::default().next(&low, &config), Action::Hold(_)));
}

#[test]
fn catalog_overrides_are_applied_and_checked() {
    let table: toml::Table = toml::from_str(
        r#"
        min_samples = 20
        error_rate_bound = 0.02
        steps = [{ weight = 10, duration_secs = 5 }, { weight = 50, duration_secs = 20 }]
        inconclusive_limit = 4
        "#,
    )
    .unwrap();
    let c = defaults().with_overrides(&table).unwrap();
    assert_eq!(c.min_samples, 20);
    assert_eq!(c.error_rate_bound, 0.02);
    assert_eq!(c.inconclusive_limit, 4);
    assert_eq!(c.steps[1].weight, 50);
    assert_eq!(c.steps[1].duration, Duration::from_secs(20));
    assert_eq!(c.alpha, 0.05, "untouched keys keep the default");
    for (text, key) in [
        ("min_sample = 3", "min_sample"),
        ("alpha = 0.9", "alpha"),
        ("steps = [{ weight = 0, duration_secs = 5 }]", "steps[0]"),
        ("steps = [{ weight = 10 }]", "steps[0]"),
        ("latency_ratio_bound = 0.5", "latency_ratio_bound"),
        ("min_samples = \"many\"", "min_samples"),
    ] {
        let t: toml::Table = toml::from_str(text).unwrap();
        let err = defaults().with_overrides(&t).unwrap_err();
        assert_eq!(err.key, key, "{text}: {err}");
    }
}

/// ln(k!) for k up to `n`.
fn log_factorials(n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n + 1];
    for k in 1..=n {
        v[k] = v[k - 1] + (k as f64).ln();
    }
    v
}

/// One-sided Fisher p-value written apart from the library: sum of hypergeometric
/// probabilities P(X = x) for x ≥ ce, in log space.
fn reference_fisher(ce: u64, cn: u64, se: u64, sn: u64, lf: &[f64]) -> f64 {
    let (n, k, draws) = ((cn + sn) as usize, (ce + se) as usize, cn as usize);
    let ln_choose = |a: usize, b: usize| lf[a] - lf[b] - lf[a - b];
    let top = k.min(draws);
    let mut p = 0.0;
    for x in (ce as usize)..=top {
        if draws - x > n - k {
            continue;
        }
        p += (ln_choose(k, x) + ln_choose(n - k, draws - x) - ln_choose(n, draws)).exp();
    }
    p.min(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The analysis never passes, and the steps never promote, a canary whose error count is
    /// significantly above stable's, however small the samples and whatever the bound.
    #[test]
    fn never_promotes_a_canary_with_significantly_more_errors(
        cn in 1u64..2000,
        cfrac in 0.0f64..=1.0,
        sn in 1u64..4000,
        sfrac in 0.0f64..=0.3,
        bound in 0.0f64..0.3,
        min_samples in 1u64..60,
    ) {
        let ce = ((cn as f64) * cfrac).round() as u64;
        let se = ((sn as f64) * sfrac).round() as u64;
        let lf = log_factorials((cn + sn) as usize);
        let p = reference_fisher(ce, cn, se, sn, &lf);
        let config = CanaryConfig { error_rate_bound: bound, min_samples, ..CanaryConfig::default() };
        // Equal latencies and no fingerprints: only the error count can stop a pass.
        let canary = group(&[("/r", cn, ce)], 10.0, 1, &[]);
        let stable = group(&[("/r", sn, se)], 10.0, 1, &[]);
        let report = analyze(&canary, &stable, &config);
        if p < config.alpha {
            prop_assert_ne!(report.verdict, Verdict::Pass, "p={} {}", p, report.summary());
            prop_assert_ne!(Progress::default().next(&report, &config), Action::Promote);
        }
    }
}
