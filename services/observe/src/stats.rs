//! The statistics of canary analysis: one-sided tests that ask "is the canary worse?".
//!
//! - error counts: Fisher's exact test (hypergeometric tail), or a pooled two-proportion
//!   z-test once both groups are so large that the normal approximation is exact enough
//!   ([`LARGE_GROUP`]) and the exact sum would be slow;
//! - latency samples: the Mann-Whitney U test with the normal approximation, tie-corrected
//!   and with a continuity correction.
//!
//! Distributions come from `statrs`. Every p-value here is one-sided: the alternative is
//! always "the canary errs more" or "the canary is slower", because a canary that is better
//! than stable is exactly what a fix should be.

use statrs::distribution::{ContinuousCDF, DiscreteCDF, Hypergeometric, Normal};

/// Groups at least this large (each) use the two-proportion z-test instead of Fisher's.
pub const LARGE_GROUP: u64 = 100_000;

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// Which test ran.
    pub test: TestKind,
    /// The test statistic: the canary's error count (Fisher), z (two-proportion) or U (Mann-Whitney).
    pub statistic: f64,
    /// One-sided p-value for "the canary is worse".
    pub p_value: f64,
}

/// The tests this module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    /// Fisher's exact test on a 2×2 table.
    FisherExact,
    /// Pooled two-proportion z-test.
    TwoProportionZ,
    /// Mann-Whitney U test.
    MannWhitneyU,
}

impl TestKind {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TestKind::FisherExact => "fisher-exact",
            TestKind::TwoProportionZ => "two-proportion-z",
            TestKind::MannWhitneyU => "mann-whitney-u",
        }
    }
}

fn standard_normal_sf(z: f64) -> f64 {
    // Normal::new(0, 1) only fails for a non-positive deviation.
    match Normal::new(0.0, 1.0) {
        Ok(n) => 1.0 - n.cdf(z),
        Err(_) => f64::NAN,
    }
}

/// Is the canary's error proportion greater than stable's? `errors <= total` is assumed
/// for both (larger counts are clamped). Chooses Fisher's exact test unless both groups
/// hold at least [`LARGE_GROUP`] requests.
pub fn errors_greater(canary_errors: u64, canary_total: u64, stable_errors: u64, stable_total: u64) -> TestResult {
    let (ce, ct) = (canary_errors.min(canary_total), canary_total);
    let (se, st) = (stable_errors.min(stable_total), stable_total);
    if ct >= LARGE_GROUP && st >= LARGE_GROUP {
        two_proportion_z_greater(ce, ct, se, st)
    } else {
        fisher_exact_greater(ce, ct, se, st)
    }
}

/// Fisher's exact test, one-sided: P(canary errors ≥ observed) given both margins.
/// The canary's errors follow a hypergeometric law: population `ct + st`, `ce + se`
/// failures, `ct` draws.
pub fn fisher_exact_greater(ce: u64, ct: u64, se: u64, st: u64) -> TestResult {
    let statistic = ce as f64;
    let population = ct + st;
    let failures = ce + se;
    let p_value = if ce == 0 || ct == 0 || population == 0 {
        1.0
    } else {
        match Hypergeometric::new(population, failures, ct) {
            // sf(x) = P(X > x), so P(X >= ce) = sf(ce - 1).
            Ok(h) => h.sf(ce - 1).clamp(0.0, 1.0),
            Err(_) => 1.0,
        }
    };
    TestResult {
        test: TestKind::FisherExact,
        statistic,
        p_value,
    }
}

/// The pooled two-proportion z-test, one-sided (canary proportion greater).
pub fn two_proportion_z_greater(ce: u64, ct: u64, se: u64, st: u64) -> TestResult {
    let (ct_f, st_f) = (ct as f64, st as f64);
    let (pc, ps) = (ce as f64 / ct_f.max(1.0), se as f64 / st_f.max(1.0));
    let pooled = (ce + se) as f64 / (ct_f + st_f).max(1.0);
    let se_diff = (pooled * (1.0 - pooled) * (1.0 / ct_f.max(1.0) + 1.0 / st_f.max(1.0))).sqrt();
    let z = if se_diff > 0.0 { (pc - ps) / se_diff } else { 0.0 };
    let p_value = if se_diff > 0.0 { standard_normal_sf(z) } else { 1.0 };
    TestResult {
        test: TestKind::TwoProportionZ,
        statistic: z,
        p_value,
    }
}

/// The Mann-Whitney U test, one-sided: is the canary's distribution shifted to larger
/// values than stable's? `statistic` is the canary's U (pairs where the canary is larger,
/// ties counting half). Normal approximation with tie correction and continuity correction;
/// `p_value` is 1 when either sample is empty or all values are equal.
pub fn mann_whitney_greater(canary: &[f64], stable: &[f64]) -> TestResult {
    let (n1, n2) = (canary.len(), stable.len());
    let none = TestResult {
        test: TestKind::MannWhitneyU,
        statistic: 0.0,
        p_value: 1.0,
    };
    if n1 == 0 || n2 == 0 {
        return none;
    }
    let mut all: Vec<(f64, bool)> = canary
        .iter()
        .map(|v| (*v, true))
        .chain(stable.iter().map(|v| (*v, false)))
        .filter(|(v, _)| v.is_finite())
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut rank_sum_canary = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1..=j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_sum_canary += mean_rank * all[i..=j].iter().filter(|(_, c)| *c).count() as f64;
        i = j + 1;
    }
    let n1c = all.iter().filter(|(_, c)| *c).count() as f64;
    let n2c = n as f64 - n1c;
    if n1c == 0.0 || n2c == 0.0 {
        return none;
    }
    let u = rank_sum_canary - n1c * (n1c + 1.0) / 2.0;
    let mean = n1c * n2c / 2.0;
    let nn = n as f64;
    let var = n1c * n2c / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)));
    let p_value = if var > 0.0 {
        standard_normal_sf((u - mean - 0.5) / var.sqrt()).clamp(0.0, 1.0)
    } else {
        1.0
    };
    TestResult {
        test: TestKind::MannWhitneyU,
        statistic: u,
        p_value,
    }
}

/// The `q` quantile (0..=1) of `values` by linear interpolation between closest ranks;
/// `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (v[lo], v[hi.min(v.len() - 1)]);
    Some(a + (b - a) * (pos - lo as f64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn fisher_matches_reference_values() {
        // Reference values from the hypergeometric sum in exact integer arithmetic
        // (Python: sum(comb(K,x)*comb(N-K,n-x) for x >= a) / comb(N,n)).
        let r = fisher_exact_greater(3, 40, 2, 400);
        assert!(close(r.p_value, 0.006146, 1e-5), "{r:?}");
        // The lady tasting tea: fisher.test(matrix(c(3,1,1,3),2), alternative="greater") = 0.2429
        let tea = fisher_exact_greater(3, 4, 1, 4);
        assert!(close(tea.p_value, 0.242857, 1e-4), "{tea:?}");
        assert_eq!(fisher_exact_greater(0, 40, 5, 400).p_value, 1.0);
        // Canary better than stable: nowhere near significant.
        assert!(fisher_exact_greater(0, 38, 9, 118).p_value > 0.5);
    }

    #[test]
    fn z_test_agrees_with_fisher_on_large_groups() {
        let f = fisher_exact_greater(560, 10_000, 500, 10_000);
        assert!(close(f.p_value, 0.031265, 1e-5), "{f:?}");
        let z = two_proportion_z_greater(560, 10_000, 500, 10_000);
        assert!(close(f.p_value, z.p_value, 0.005), "{f:?} {z:?}");
        assert_eq!(errors_greater(1, 200_000, 1, 200_000).test, TestKind::TwoProportionZ);
        assert_eq!(errors_greater(1, 20, 1, 200_000).test, TestKind::FisherExact);
    }

    #[test]
    fn mann_whitney_matches_reference_values() {
        // x = [5..14], y = [1..10]: U = 82 (6 ties of 2); z = (82 - 50 - 0.5) / sd with the
        // tie-corrected variance, one-sided p = 0.00850 (as scipy's asymptotic method computes it).
        let x: Vec<f64> = (5..15).map(f64::from).collect();
        let y: Vec<f64> = (1..11).map(f64::from).collect();
        let r = mann_whitney_greater(&x, &y);
        assert_eq!(r.statistic, 82.0);
        assert!(close(r.p_value, 0.008503, 1e-5), "{r:?}");
        let back = mann_whitney_greater(&y, &x);
        assert_eq!(back.statistic, 18.0);
        assert!(back.p_value > 0.9);
        assert_eq!(mann_whitney_greater(&[1.0, 1.0], &[1.0, 1.0]).p_value, 1.0);
        assert_eq!(mann_whitney_greater(&[], &[1.0]).p_value, 1.0);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
