//! The monitor's settings, as plain values (the binary maps its flags onto them).

use std::path::PathBuf;
use std::time::Duration;

/// Settings of the [`crate::Monitor`].
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Length of the sliding error-rate window (event time).
    pub window: Duration,
    /// Requests a window must hold before its error rate can be anomalous.
    pub min_requests: u64,
    /// Smallest error-rate increase over the baseline that is anomalous (0..1).
    pub min_rate_increase: f64,
    /// Standard deviations of the baseline above its mean that are anomalous.
    pub rate_sigmas: f64,
    /// Weight of the newest older window in the EWMA baseline.
    pub baseline_alpha: f64,
    /// An incident closes after this long (event time) without its fingerprint.
    pub incident_quiet: Duration,
    /// Occurrences within one window that reopen a known (closed) fingerprint, and
    /// failing requests an error-rate-only incident needs.
    pub min_errors: u64,
    /// An event whose timestamp is further than this from its observed time uses the
    /// observed time instead (a broken clock must not move the windows).
    pub max_clock_skew: Duration,
    /// Log lines per service during which new templates are learnt silently.
    pub log_warmup_lines: u64,
    /// Where the seen fingerprints, open incidents and log templates are persisted.
    pub state_dir: Option<PathBuf>,
    /// How often the state is written (at most once per this interval, and at shutdown).
    pub state_save_interval: Duration,
    /// Services tracked at once (least recently active forgotten beyond it).
    pub max_services: usize,
    /// Operations tracked per service.
    pub max_operations: usize,
    /// Seen fingerprints remembered per service.
    pub max_fingerprints: usize,
    /// Open incidents tracked at once.
    pub max_open_incidents: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            window: Duration::from_secs(10),
            min_requests: 5,
            min_rate_increase: 0.05,
            rate_sigmas: 3.0,
            baseline_alpha: 0.3,
            incident_quiet: Duration::from_secs(60),
            min_errors: 3,
            max_clock_skew: Duration::from_secs(3600),
            log_warmup_lines: 20,
            state_dir: None,
            state_save_interval: Duration::from_secs(30),
            max_services: 1000,
            max_operations: 200,
            max_fingerprints: 10_000,
            max_open_incidents: 10_000,
        }
    }
}

impl MonitorConfig {
    /// The window in milliseconds (at least 10).
    pub fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX).max(10)
    }

    /// The quiet period in milliseconds.
    pub fn quiet_ms(&self) -> i64 {
        i64::try_from(self.incident_quiet.as_millis()).unwrap_or(i64::MAX)
    }

    /// The clock-skew tolerance in milliseconds.
    pub fn skew_ms(&self) -> i64 {
        i64::try_from(self.max_clock_skew.as_millis()).unwrap_or(i64::MAX)
    }
}
