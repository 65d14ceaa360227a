//! The monitor's logic as plain synchronous state: telemetry events in, anomalies out.
//!
//! For each event, in event time (`timestamp_ms`, or `observed_ms` when the two are
//! further apart than `max_clock_skew`):
//!
//! 1. A SERVER span (span kind `server`, or a span without parent) is a request of its
//!    operation (the span name); it failed when its status is `Error` or its
//!    `http.response.status_code` is 500 or above. It is counted in the operation's
//!    sliding window (see [`crate::window`] and the rule in [`crate::baseline`]).
//! 2. A log record's body feeds the service's log template model ([`crate::logs`]).
//! 3. An event with an exception (span event or `exception.*` log attributes) is a
//!    failure with a fingerprint ([`crate::fingerprint`]) when the span failed (status
//!    `Error` or HTTP 5xx) or the log record is at error level or above (or has no
//!    level); a handled exception on a successful request is not a failure. A span and the log record of
//!    the same failure (same trace and span id) count once.
//!    - An open incident of (service, fingerprint) absorbs it: counters change, nothing
//!      is emitted.
//!    - A fingerprint the service never showed opens an incident at once, with the
//!      window's counts so far: signals `NewFingerprint`, plus `ErrorRate` when the
//!      error-rate rule holds for the operation's window.
//!    - A known fingerprint whose incident closed opens a new incident (signal
//!      `ErrorRate`) when it occurred `min_errors` times within one window, or when
//!      the rule holds for its operation's window.
//! 4. A failed request without an exception joins the open incident of its operation;
//!    without one, it opens an error-rate incident (fingerprint derived from service,
//!    operation and `error-rate`) when the rule holds and the window holds at least
//!    `min_errors` failures.
//! 5. A new log template at error level or above, or a warning-and-above template
//!    surging, on a line without an exception, opens an incident (`NewLogTemplate`,
//!    `LogTemplateSurge`) unless the service already has an open incident active in the
//!    current window; either way the template becomes evidence of the service's
//!    incidents opened within the window.
//!
//! An incident closes after `incident_quiet` of event time without an occurrence.

use std::collections::HashMap;

use selfheal_drain::signals::SignalKind as LogSignal;
use selfheal_events::{Anomaly, AnomalyKind, Evidence, Severity, SignalKind, SpanStatus, TelemetryEvent, Timeline};

use crate::baseline::{Baseline, RateRule};
use crate::config::MonitorConfig;
use crate::error::MonitorError;
use crate::evidence::{percent, sample_inputs};
use crate::fingerprint::{Failure, derived_fingerprint, failure_of, truncate_head};
use crate::incidents::{Incident, IncidentBook};
use crate::logs::{LogTemplates, LogTrigger, RecentTemplate, signal_config};
use crate::lru::Lru;
use crate::state::{STATE_VERSION, SavedBaseline, SavedState};
use crate::window::{FailureSample, SlidingWindow, WindowTotals};

/// Bytes kept of a service or operation name.
const MAX_NAME: usize = 256;
/// Trace ids and inputs per anomaly.
const MAX_SAMPLES: usize = 5;
/// Log templates per anomaly.
const MAX_TEMPLATES: usize = 5;

/// Whether a span is a request: kind server, or no parent.
pub fn is_request(e: &TelemetryEvent) -> bool {
    if e.kind != SignalKind::Span {
        return false;
    }
    let server = e.span_kind.as_deref().is_some_and(|k| {
        let k = k.to_ascii_lowercase();
        k == "server" || k == "span_kind_server"
    });
    server
        || e.parent_span_id
            .as_deref()
            .is_none_or(|p| p.trim().is_empty() || p.chars().all(|c| c == '0'))
}

/// Whether a request failed: status `Error` or HTTP status 500 and above.
pub fn is_error(e: &TelemetryEvent) -> bool {
    if e.status == SpanStatus::Error {
        return true;
    }
    ["http.response.status_code", "http.status_code"]
        .iter()
        .filter_map(|k| e.attributes.get(*k))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .any(|c| c >= 500.0)
}

/// The operation of an event: the span name, or for a log record its HTTP method and
/// route (`POST /price`, the span name HTTP instrumentations use).
pub fn operation_of(e: &TelemetryEvent) -> Option<String> {
    let op = match e.kind {
        SignalKind::Span => Some(e.name.clone()),
        _ => {
            let a = |k: &str| e.attributes.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
            let method = a("http.request.method").or_else(|| a("http.method"));
            let route = a("http.route").or_else(|| a("url.path")).or_else(|| a("http.target"));
            match (method, route) {
                (Some(m), Some(r)) => Some(format!("{m} {r}")),
                (None, Some(r)) => Some(r.to_string()),
                _ => None,
            }
        }
    };
    op.map(|o| truncate_head(o.trim(), MAX_NAME).to_string())
        .filter(|o| !o.is_empty())
}

/// Whether an event's exception is a failure rather than a handled exception: a span
/// that failed (status `Error` or HTTP 5xx), a log record at error level or above (or
/// without a level), anything else that carries one.
fn reports_a_failure(e: &TelemetryEvent) -> bool {
    match e.kind {
        SignalKind::Span => is_error(e),
        SignalKind::Log => e.severity >= Severity::Error || e.severity == Severity::Unspecified,
        SignalKind::Metric | SignalKind::Alert => true,
    }
}

/// The key under which a failure reported as a span and as a log record counts once.
fn failure_key(e: &TelemetryEvent) -> String {
    match (e.trace_id.as_deref(), e.span_id.as_deref()) {
        (Some(t), Some(s)) if !t.is_empty() && !s.is_empty() => format!("{t}/{s}"),
        _ => format!("event/{}", e.event_id),
    }
}

/// What an incident is opened with.
struct Opening<'a> {
    service: &'a str,
    operation: Option<String>,
    ts: i64,
    event: &'a TelemetryEvent,
    fingerprint: String,
    signals: Vec<AnomalyKind>,
    failure: Option<&'a Failure>,
    first_error_ms: i64,
    occurrences: u64,
    headline: String,
    evidence: Vec<Evidence>,
}

/// The monitor's state.
#[derive(Debug)]
pub struct Detector {
    config: MonitorConfig,
    rule: RateRule,
    windows: Lru<String, Lru<String, SlidingWindow>>,
    book: IncidentBook,
    logs: LogTemplates,
    clock: fn() -> i64,
}

impl Detector {
    /// A detector that has seen nothing.
    pub fn new(config: MonitorConfig) -> Self {
        let logs = LogTemplates::new(signal_config(
            config.window_ms(),
            config.log_warmup_lines,
            config.max_services,
        ));
        Detector {
            rule: RateRule {
                min_requests: config.min_requests,
                min_rate_increase: config.min_rate_increase,
                sigmas: config.rate_sigmas,
            },
            windows: Lru::new(config.max_services),
            book: IncidentBook::new(config.max_services, config.max_fingerprints),
            logs,
            clock: selfheal_core::now_ms,
            config,
        }
    }

    /// A detector continuing from saved state. Log templates that do not restore are
    /// dropped with a warning (they are re-learnt); the rest is kept.
    pub fn restore(config: MonitorConfig, saved: SavedState) -> Self {
        let mut d = Detector::new(config);
        if !saved.log_templates.is_empty() {
            let cfg = signal_config(d.config.window_ms(), d.config.log_warmup_lines, d.config.max_services);
            match LogTemplates::restore(&saved.log_templates, cfg) {
                Ok(l) => d.logs = l,
                Err(e) => tracing::warn!("log template snapshot not restored, templates are re-learnt: {e}"),
            }
        }
        for (service, fps) in &saved.seen {
            let s = d.book.service(service);
            for fp in fps {
                s.remember(fp);
            }
        }
        for inc in saved.open {
            d.book.service(&inc.service.clone()).add(inc);
        }
        for b in saved.baselines {
            d.window_mut(&b.service, &b.operation).baseline = b.baseline;
        }
        d
    }

    /// Uses `clock` for `detected_ms` / `anomaly_ms` (wall time of detection).
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// Everything worth persisting.
    pub fn snapshot(&self) -> SavedState {
        let seen = self
            .book
            .services()
            .map(|(name, s)| (name.clone(), s.known().map(str::to_string).collect()))
            .collect();
        let baselines = self
            .windows
            .iter()
            .flat_map(|(service, ops)| {
                ops.iter()
                    .filter(|(_, w)| w.baseline.samples > 0)
                    .map(move |(op, w)| SavedBaseline {
                        service: service.clone(),
                        operation: op.clone(),
                        baseline: w.baseline,
                    })
            })
            .collect();
        SavedState {
            version: STATE_VERSION,
            seen,
            open: self.book.open_incidents(),
            baselines,
            log_templates: self.logs.snapshot(),
        }
    }

    /// Services and operations whose windows are tracked.
    pub fn tracked(&self) -> (usize, usize) {
        (self.windows.len(), self.windows.iter().map(|(_, ops)| ops.len()).sum())
    }

    /// Open incidents of every service.
    pub fn open_incidents(&self) -> Vec<Incident> {
        self.book.open_incidents()
    }

    /// The log template models.
    pub fn log_templates(&self) -> &LogTemplates {
        &self.logs
    }

    /// The event's time: its own timestamp unless the clock that made it is off by more
    /// than the tolerated skew from the collector's.
    pub fn event_time(&self, e: &TelemetryEvent) -> i64 {
        if e.observed_ms > 0
            && (e.timestamp_ms <= 0 || e.timestamp_ms.abs_diff(e.observed_ms) > self.config.skew_ms().unsigned_abs())
        {
            e.observed_ms
        } else {
            e.timestamp_ms
        }
    }

    fn window_mut(&mut self, service: &str, op: &str) -> &mut SlidingWindow {
        let (w, rule, alpha, max_ops) = (
            self.config.window_ms(),
            self.rule,
            self.config.baseline_alpha,
            self.config.max_operations,
        );
        self.windows
            .get_or_insert_with(service.to_string(), || Lru::new(max_ops))
            .get_or_insert_with(op.to_string(), || SlidingWindow::new(w, rule, alpha))
    }

    /// The window counts and baseline of an operation, or of the whole service when the
    /// operation is unknown (requests summed, baselines weighted by requests).
    fn stats(&self, service: &str, op: Option<&str>) -> (WindowTotals, Baseline, Vec<FailureSample>) {
        let Some(ops) = self.windows.peek(service) else {
            return (WindowTotals::default(), Baseline::default(), Vec::new());
        };
        // A log record's operation may have no requests (its route is not the span name).
        if let Some(w) = op.and_then(|o| ops.peek(o)).filter(|w| w.totals().requests > 0) {
            return (w.totals(), w.baseline, w.samples());
        }
        let mut t = WindowTotals {
            start_ms: i64::MAX,
            end_ms: i64::MIN,
            ..WindowTotals::default()
        };
        let (mut weighted, mut weight) = (0.0, 0.0);
        let mut samples = Vec::new();
        for (_, w) in ops.iter() {
            let x = w.totals();
            if x.requests == 0 {
                continue;
            }
            t.requests += x.requests;
            t.errors += x.errors;
            t.start_ms = t.start_ms.min(x.start_ms);
            t.end_ms = t.end_ms.max(x.end_ms);
            weighted += w.baseline.mean * x.requests as f64;
            weight += x.requests as f64;
            samples.extend(w.samples());
        }
        if t.requests == 0 {
            t.start_ms = 0;
            t.end_ms = 0;
        }
        samples.sort_by_key(|s| std::cmp::Reverse(s.ts));
        let baseline = Baseline {
            mean: if weight > 0.0 { weighted / weight } else { 0.0 },
            ..Baseline::default()
        };
        (t, baseline, samples)
    }

    /// Processes one event; returns the incidents it opened (zero or one, rarely more).
    pub fn observe(&mut self, e: &TelemetryEvent) -> Result<Vec<Anomaly>, MonitorError> {
        let service = truncate_head(e.service.trim(), MAX_NAME).to_string();
        if service.is_empty() {
            return Err(MonitorError::Invalid(format!(
                "event {} ({:?} `{}`) has an empty service name: set the service.name resource attribute",
                truncate_head(&e.event_id, 64),
                e.kind,
                truncate_head(&e.name, 64)
            )));
        }
        let ts = self.event_time(e);
        let quiet = self.config.quiet_ms();
        for closed in self.book.service(&service).close_quiet(ts, quiet) {
            tracing::info!(incident = %closed.incident_id, service = %service, fingerprint = %closed.fingerprint,
                occurrences = closed.occurrences, "incident closed after a quiet period");
        }
        let op = operation_of(e);
        let request = is_request(e);
        let failed = request && is_error(e);
        if request && let Some(op) = &op {
            self.window_mut(&service, op).record(ts, failed);
        }
        let failure = failure_of(e).filter(|_| reports_a_failure(e));
        let first_report = if failure.is_some() || failed {
            self.book.service(&service).first_report(&failure_key(e))
        } else {
            true
        };
        if first_report
            && (failed || failure.is_some())
            && let Some(op) = &op
        {
            let inputs = sample_inputs(e);
            self.window_mut(&service, op).sample(FailureSample {
                ts,
                trace_id: e.trace_id.clone().filter(|t| !t.is_empty()),
                inputs,
            });
        }
        let log = match (&e.kind, e.body.as_deref()) {
            (SignalKind::Log, Some(body)) => Some(self.logs.observe(&service, ts, e.severity, body)),
            _ => None,
        };
        let mut out = Vec::new();
        if let Some(f) = &failure {
            out.extend(self.on_failure(&service, op, ts, e, f, first_report));
        } else if failed {
            out.extend(self.on_failed_request(&service, op, ts, e, first_report));
        } else if let Some(log) = log {
            if let Some(id) = log.template {
                let fp = log_fingerprint(&service, id);
                if let Some(inc) = self.book.service(&service).open_mut(&fp) {
                    inc.touch(ts);
                }
            }
            for t in log.triggers {
                out.extend(self.on_log_trigger(&service, ts, e, t));
            }
        }
        Ok(out)
    }

    fn on_failure(
        &mut self,
        service: &str,
        op: Option<String>,
        ts: i64,
        e: &TelemetryEvent,
        f: &Failure,
        first_report: bool,
    ) -> Option<Anomaly> {
        let window_ms = self.config.window_ms();
        let min_errors = self.config.min_errors;
        let svc = self.book.service(service);
        if let Some(inc) = svc.open_mut(&f.fingerprint) {
            if first_report {
                inc.touch(ts);
            } else {
                inc.last_seen_ms = inc.last_seen_ms.max(ts);
            }
            return None;
        }
        let known = svc.is_known(&f.fingerprint);
        svc.remember(&f.fingerprint);
        let (totals, baseline, _) = self.stats(service, op.as_deref());
        let rate = self.rule.fires(totals.requests, totals.errors, &baseline);
        if !known {
            let mut signals = vec![AnomalyKind::NewFingerprint];
            if rate {
                signals.push(AnomalyKind::ErrorRate);
            }
            let detail = format!("fingerprint {} never seen before for {service}", f.fingerprint);
            return Some(self.open(Opening {
                service,
                operation: op,
                ts,
                event: e,
                fingerprint: f.fingerprint.clone(),
                signals,
                failure: Some(f),
                first_error_ms: ts,
                occurrences: 1,
                headline: format!("new fingerprint {}", f.label()),
                evidence: vec![Evidence {
                    kind: "fingerprint".into(),
                    detail,
                }],
            }));
        }
        if !first_report {
            return None;
        }
        let (n, first) = self.book.service(service).reappear(
            &f.fingerprint,
            ts,
            window_ms,
            usize::try_from(min_errors).unwrap_or(usize::MAX),
        );
        if n < min_errors && !rate {
            return None;
        }
        let detail = format!(
            "fingerprint {} seen before for {service}; it reappeared {n} time(s) within {}s after its last incident closed",
            f.fingerprint,
            window_ms / 1000
        );
        Some(self.open(Opening {
            service,
            operation: op,
            ts,
            event: e,
            fingerprint: f.fingerprint.clone(),
            signals: vec![AnomalyKind::ErrorRate],
            failure: Some(f),
            first_error_ms: first,
            occurrences: n,
            headline: format!("recurring fingerprint {}", f.label()),
            evidence: vec![Evidence {
                kind: "recurrence".into(),
                detail,
            }],
        }))
    }

    fn on_failed_request(
        &mut self,
        service: &str,
        op: Option<String>,
        ts: i64,
        e: &TelemetryEvent,
        first_report: bool,
    ) -> Option<Anomaly> {
        let op_name = op.clone()?;
        let svc = self.book.service(service);
        if let Some(inc) = svc.open_on_operation(&op_name) {
            if first_report {
                inc.touch(ts);
            }
            return None;
        }
        let (totals, baseline, samples) = self.stats(service, Some(&op_name));
        if !self.rule.fires(totals.requests, totals.errors, &baseline) || totals.errors < self.config.min_errors {
            return None;
        }
        let fingerprint = derived_fingerprint(&["error-rate", service, &op_name]);
        self.book.service(service).remember(&fingerprint);
        let first = samples.iter().map(|s| s.ts).min().unwrap_or(ts).min(ts);
        let detail = format!(
            "error rate {} at or above the threshold {} ({} + max({}, {} x stddev))",
            percent(totals.rate()),
            percent(self.rule.threshold(&baseline)),
            percent(baseline.mean),
            percent(self.rule.min_rate_increase),
            self.rule.sigmas
        );
        Some(self.open(Opening {
            service,
            operation: op,
            ts,
            event: e,
            fingerprint,
            signals: vec![AnomalyKind::ErrorRate],
            failure: None,
            first_error_ms: first,
            occurrences: totals.errors,
            headline: format!("{} failed requests without an exception", totals.errors),
            evidence: vec![Evidence {
                kind: "error_rate".into(),
                detail,
            }],
        }))
    }

    fn on_log_trigger(&mut self, service: &str, ts: i64, e: &TelemetryEvent, t: LogTrigger) -> Option<Anomaly> {
        use selfheal_drain::signals::Level;
        let window_ms = self.config.window_ms();
        let fingerprint = log_fingerprint(service, t.template.id);
        let svc = self.book.service(service);
        if let Some(inc) = svc.open_mut(&fingerprint) {
            inc.touch(ts);
            return None;
        }
        // Something else already explains this service's trouble right now.
        if svc.open().iter().any(|i| i.last_seen_ms > ts - window_ms) {
            return None;
        }
        let (signal, headline) = match t.kind {
            LogSignal::NewTemplate if t.template.level >= Level::Error => (
                AnomalyKind::NewLogTemplate,
                format!(
                    "new log template at {:?}: {}",
                    t.template.level,
                    truncate_head(&t.template.text, 160)
                ),
            ),
            LogSignal::RateSurge => (
                AnomalyKind::LogTemplateSurge,
                format!(
                    "log template surging ({} lines): {}",
                    t.template.count,
                    truncate_head(&t.template.text, 160)
                ),
            ),
            LogSignal::NewTemplate => return None,
        };
        svc.remember(&fingerprint);
        Some(self.open(Opening {
            service,
            operation: operation_of(e),
            ts,
            event: e,
            fingerprint,
            signals: vec![signal],
            failure: None,
            first_error_ms: t.template.first_ms.min(ts),
            occurrences: t.template.count.max(1),
            headline,
            evidence: Vec::new(),
        }))
    }

    /// Registers the incident and builds its anomaly.
    fn open(&mut self, o: Opening<'_>) -> Anomaly {
        let (totals, baseline, samples) = self.stats(o.service, o.operation.as_deref());
        let error_count = totals.errors.max(o.occurrences);
        let request_count = totals.requests.max(error_count);
        let error_rate = if request_count == 0 {
            0.0
        } else {
            error_count as f64 / request_count as f64
        };
        let (window_start_ms, window_end_ms) = if totals.requests > 0 {
            (totals.start_ms, totals.end_ms.max(o.ts))
        } else {
            (o.ts - self.config.window_ms(), o.ts)
        };

        let mut signals = o.signals;
        let templates: Vec<RecentTemplate> = self.logs.recent(o.service, o.ts, MAX_TEMPLATES);
        for t in &templates {
            let extra = match t.signal {
                Some(LogSignal::NewTemplate) => AnomalyKind::NewLogTemplate,
                Some(LogSignal::RateSurge) => AnomalyKind::LogTemplateSurge,
                None => continue,
            };
            if !signals.contains(&extra) {
                signals.push(extra);
            }
        }

        let mut trace_ids: Vec<String> = Vec::new();
        let mut inputs: Vec<HashMap<String, String>> = Vec::new();
        let current = FailureSample {
            ts: o.ts,
            trace_id: o.event.trace_id.clone().filter(|t| !t.is_empty()),
            inputs: sample_inputs(o.event),
        };
        for s in std::iter::once(&current).chain(samples.iter()) {
            if let Some(t) = &s.trace_id
                && trace_ids.len() < MAX_SAMPLES
                && !trace_ids.contains(t)
            {
                trace_ids.push(t.clone());
            }
            if !s.inputs.is_empty() && inputs.len() < MAX_SAMPLES && !inputs.contains(&s.inputs) {
                inputs.push(s.inputs.clone());
            }
        }

        let place = match &o.operation {
            Some(op) => format!("on {op}"),
            None => format!("in {}", o.service),
        };
        let summary = if request_count > 0 && totals.requests > 0 {
            format!(
                "error rate {} (baseline {}) {place}; {}",
                percent(error_rate),
                percent(baseline.mean),
                o.headline
            )
        } else {
            format!("{} {place}", o.headline)
        };
        let window_secs = (window_end_ms - window_start_ms) as f64 / 1000.0;
        let mut evidence = vec![Evidence {
            kind: "failing_requests".into(),
            detail: format!(
                "{error_count} of {request_count} requests failed {place} in {window_secs:.0}s (baseline {}, threshold {})",
                percent(baseline.mean),
                percent(self.rule.threshold(&baseline))
            ),
        }];
        evidence.extend(o.evidence);
        if let Some(f) = o.failure {
            let at = match (&f.culprit, &f.location) {
                (Some(c), Some(l)) => format!(" in {c} ({l})"),
                (Some(c), None) => format!(" in {c}"),
                (None, Some(l)) => format!(" at {l}"),
                (None, None) => String::new(),
            };
            evidence.push(Evidence {
                kind: "exception".into(),
                detail: format!(
                    "{}: {}{at}",
                    f.exception.r#type,
                    truncate_head(&f.exception.message, 300)
                ),
            });
        }
        if let Some(first) = inputs.first() {
            let mut kv: Vec<String> = first
                .iter()
                .map(|(k, v)| format!("{k}={}", truncate_head(v, 64)))
                .collect();
            kv.sort();
            evidence.push(Evidence {
                kind: "input".into(),
                detail: truncate_head(&kv.join(", "), 512).to_string(),
            });
        }
        for t in &templates {
            let tag = match t.signal {
                Some(LogSignal::NewTemplate) => "new ",
                Some(LogSignal::RateSurge) => "surging ",
                None => "",
            };
            evidence.push(Evidence {
                kind: "log_template".into(),
                detail: format!(
                    "{}x {tag}{:?} template: {}",
                    t.count,
                    t.level,
                    truncate_head(&t.text, 300)
                ),
            });
        }

        let incident_id = uuid::Uuid::now_v7().to_string();
        let now = (self.clock)();
        self.book.service(o.service).add(Incident {
            incident_id: incident_id.clone(),
            service: o.service.to_string(),
            fingerprint: o.fingerprint.clone(),
            operation: o.operation.clone(),
            first_error_ms: o.first_error_ms,
            last_seen_ms: o.ts,
            occurrences: o.occurrences,
        });
        tracing::info!(incident = %incident_id, service = o.service, fingerprint = %o.fingerprint, %summary, "incident opened");
        Anomaly {
            incident_id,
            service: o.service.to_string(),
            fingerprint: o.fingerprint,
            operation: o.operation,
            service_version: o.event.service_version.clone(),
            signals,
            summary,
            detected_ms: now,
            window_start_ms,
            window_end_ms,
            error_count: i64::try_from(error_count).unwrap_or(i64::MAX),
            request_count: i64::try_from(request_count).unwrap_or(i64::MAX),
            error_rate,
            baseline_error_rate: baseline.mean,
            exception: o.failure.map(|f| f.exception.clone()),
            sample_trace_ids: trace_ids,
            sample_inputs: inputs,
            log_templates: templates.iter().map(RecentTemplate::evidence).collect(),
            evidence,
            timeline: Timeline {
                first_error_ms: Some(o.first_error_ms),
                anomaly_ms: Some(now),
                ..Timeline::default()
            },
        }
    }
}

/// The fingerprint of an incident opened by a log template.
fn log_fingerprint(service: &str, template_id: u64) -> String {
    derived_fingerprint(&["log-template", service, &template_id.to_string()])
}
