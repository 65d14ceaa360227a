//! Watching telemetry for an incident's fingerprint after promotion.
//!
//! The verifier asks one question of telemetry: between two instants, how often did this
//! service fail with this fingerprint, and how many requests did it serve? The question
//! sits behind [`FingerprintWatch`] so the stage logic is testable without Kafka;
//! [`KafkaFingerprintWatch`] answers it from `telemetry.raw` with its own consumer group
//! and a bounded ring of recent events per service.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use selfheal_core::{KafkaArgs, Shutdown};
use selfheal_events::{Codec, TelemetryEvent};
pub use selfheal_observe::{is_failed, is_server_span};

/// What telemetry showed for one service in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchReport {
    /// Events carrying the incident's fingerprint.
    pub occurrences: i64,
    /// Server spans (requests) of the service.
    pub requests: i64,
    /// Failed server spans (status error or HTTP status >= 500), whatever their fingerprint.
    pub errors: i64,
}

/// What telemetry showed for the failing operation: the route whose requests carried the
/// fingerprint before `from_ms`, and its requests in the window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperationReport {
    /// The route most often failing with the fingerprint before the window, when any was seen.
    pub operation: Option<String>,
    /// Requests that route served in the window.
    pub requests: i64,
}

/// Answers "how often did `fingerprint` occur for `service` between `from_ms` and `to_ms`".
#[async_trait]
pub trait FingerprintWatch: Send + Sync {
    /// Counts over `[from_ms, to_ms]` (event timestamps, epoch milliseconds).
    async fn occurrences(&self, service: &str, fingerprint: &str, from_ms: i64, to_ms: i64) -> WatchReport;

    /// The failing operation of `fingerprint` (seen before `from_ms`) and its requests in
    /// `[from_ms, to_ms]`; unknown by default.
    async fn operation(&self, _service: &str, _fingerprint: &str, _from_ms: i64, _to_ms: i64) -> OperationReport {
        OperationReport::default()
    }
}

/// Computes the failure fingerprint of a telemetry event, the same way the monitor does.
pub trait Fingerprinter: Send + Sync {
    /// The fingerprint of the event's exception, `None` when it carries none.
    fn fingerprint(&self, event: &TelemetryEvent) -> Option<String>;
}

/// Fingerprints with the monitor's definition (`selfheal_observe::fingerprint_of`, shared by
/// both), so the verifier looks for exactly the value the incident was opened with; it also
/// recognises exceptions that log records carry as attributes.
#[derive(Debug, Clone, Default)]
pub struct MonitorFingerprinter;

impl Fingerprinter for MonitorFingerprinter {
    fn fingerprint(&self, event: &TelemetryEvent) -> Option<String> {
        selfheal_observe::fingerprint_of(event)
    }
}

/// One remembered event: only what the question needs.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    at_ms: i64,
    fingerprint: Option<String>,
    request: bool,
    failed: bool,
    route: Option<String>,
}

/// Recent events per service, bounded in count per service and in age.
#[derive(Debug)]
pub struct RecentEvents {
    per_service: HashMap<String, VecDeque<Seen>>,
    max_per_service: usize,
    max_services: usize,
}

impl RecentEvents {
    /// A ring keeping at most `max_per_service` events for each of at most `max_services` services.
    pub fn new(max_per_service: usize, max_services: usize) -> Self {
        RecentEvents {
            per_service: HashMap::new(),
            max_per_service: max_per_service.max(1),
            max_services: max_services.max(1),
        }
    }

    /// Remembers an event if it is a request or carries a fingerprint.
    pub fn record(&mut self, event: &TelemetryEvent, fingerprinter: &dyn Fingerprinter) {
        let request = is_server_span(event);
        let fingerprint = fingerprinter.fingerprint(event);
        if !request && fingerprint.is_none() {
            return;
        }
        if !self.per_service.contains_key(&event.service) && self.per_service.len() >= self.max_services {
            // Telemetry names services; a flood of new names must not grow memory without bound.
            return;
        }
        let ring = self.per_service.entry(event.service.clone()).or_default();
        if ring.len() >= self.max_per_service {
            ring.pop_front();
        }
        ring.push_back(Seen {
            at_ms: event.timestamp_ms,
            fingerprint,
            request,
            failed: request && is_failed(event),
            route: request.then(|| selfheal_observe::route_of(event)),
        });
    }

    /// Counts events of `service` in `[from_ms, to_ms]`.
    pub fn count(&self, service: &str, fingerprint: &str, from_ms: i64, to_ms: i64) -> WatchReport {
        let mut report = WatchReport::default();
        for seen in self.per_service.get(service).into_iter().flatten() {
            if seen.at_ms < from_ms || seen.at_ms > to_ms {
                continue;
            }
            if seen.fingerprint.as_deref() == Some(fingerprint) {
                report.occurrences += 1;
            }
            if seen.request {
                report.requests += 1;
                if seen.failed {
                    report.errors += 1;
                }
            }
        }
        report
    }

    /// The route whose requests carried `fingerprint` most often before `from_ms`, and the
    /// requests it served in `[from_ms, to_ms]`.
    pub fn operation(&self, service: &str, fingerprint: &str, from_ms: i64, to_ms: i64) -> OperationReport {
        let mut failing: HashMap<&str, usize> = HashMap::new();
        let ring = self.per_service.get(service);
        for seen in ring.into_iter().flatten() {
            if seen.at_ms < from_ms
                && seen.fingerprint.as_deref() == Some(fingerprint)
                && let Some(route) = &seen.route
            {
                *failing.entry(route.as_str()).or_default() += 1;
            }
        }
        let Some(route) = failing
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(r, _)| r.to_string())
        else {
            return OperationReport::default();
        };
        let requests = ring
            .into_iter()
            .flatten()
            .filter(|s| s.at_ms >= from_ms && s.at_ms <= to_ms && s.route.as_deref() == Some(route.as_str()))
            .count() as i64;
        OperationReport {
            operation: Some(route),
            requests,
        }
    }
}

/// A [`FingerprintWatch`] fed by its own consumer of `telemetry.raw`.
#[derive(Clone)]
pub struct KafkaFingerprintWatch {
    recent: Arc<Mutex<RecentEvents>>,
}

impl std::fmt::Debug for KafkaFingerprintWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaFingerprintWatch").finish()
    }
}

/// Events kept per service: at 20 requests a second with a log per failure, several minutes.
const RING_PER_SERVICE: usize = 20_000;
/// Services tracked at most.
const MAX_SERVICES: usize = 1_000;

impl KafkaFingerprintWatch {
    /// Starts consuming `topic` (the full, prefixed name) from its latest offset in a group of
    /// its own, until `shutdown`. Undecodable records are skipped: this is an observer.
    pub fn start(
        kafka: &KafkaArgs,
        codec: Arc<Codec>,
        topic: &str,
        fingerprinter: Arc<dyn Fingerprinter>,
        shutdown: Shutdown,
    ) -> Result<Self, selfheal_core::kafka::KafkaError> {
        let group = format!("selfheal-verifier-watch-{}", uuid::Uuid::new_v4());
        let mut cfg = selfheal_core::kafka::consumer_config(kafka, &group)?;
        // An observer: it wants what happens from now on and never needs its offsets again.
        cfg.set("auto.offset.reset", "latest")
            .set("enable.auto.commit", "false");
        let consumer: StreamConsumer = cfg
            .create()
            .map_err(|e| selfheal_core::kafka::KafkaError::Config(e.to_string()))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| selfheal_core::kafka::KafkaError::Config(e.to_string()))?;
        let watch = KafkaFingerprintWatch {
            recent: Arc::new(Mutex::new(RecentEvents::new(RING_PER_SERVICE, MAX_SERVICES))),
        };
        let recent = watch.recent.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.wait() => break,
                    m = consumer.recv() => m,
                };
                let bytes = match &msg {
                    Ok(m) => m.payload().unwrap_or_default().to_vec(),
                    Err(e) => {
                        tracing::debug!(error = %e, "telemetry watch: consume error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                drop(msg);
                match codec.decode::<TelemetryEvent>(&bytes).await {
                    Ok(event) => {
                        if let Ok(mut r) = recent.lock() {
                            r.record(&event, fingerprinter.as_ref());
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "telemetry watch: undecodable event skipped"),
                }
            }
        });
        Ok(watch)
    }
}

#[async_trait]
impl FingerprintWatch for KafkaFingerprintWatch {
    async fn occurrences(&self, service: &str, fingerprint: &str, from_ms: i64, to_ms: i64) -> WatchReport {
        match self.recent.lock() {
            Ok(r) => r.count(service, fingerprint, from_ms, to_ms),
            Err(_) => WatchReport::default(),
        }
    }

    async fn operation(&self, service: &str, fingerprint: &str, from_ms: i64, to_ms: i64) -> OperationReport {
        match self.recent.lock() {
            Ok(r) => r.operation(service, fingerprint, from_ms, to_ms),
            Err(_) => OperationReport::default(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use selfheal_events::SpanStatus;

    use super::*;

    struct ByName;
    impl Fingerprinter for ByName {
        fn fingerprint(&self, e: &TelemetryEvent) -> Option<String> {
            e.exception.as_ref().map(|x| x.r#type.clone())
        }
    }

    #[test]
    fn counts_fingerprint_requests_and_errors_in_window() {
        let failing = selfheal_events::examples::telemetry_event();
        let mut ok = failing.clone();
        ok.exception = None;
        ok.status = SpanStatus::Ok;
        ok.attributes.insert("http.response.status_code".into(), "200".into());
        let t = failing.timestamp_ms;
        let mut ring = RecentEvents::new(100, 10);
        ring.record(&failing, &ByName);
        let mut later = ok.clone();
        later.timestamp_ms = t + 1000;
        ring.record(&later, &ByName);
        let mut outside = failing.clone();
        outside.timestamp_ms = t + 10_000;
        ring.record(&outside, &ByName);
        let fp = failing.exception.as_ref().unwrap().r#type.clone();
        let r = ring.count(&failing.service, &fp, t, t + 5000);
        assert_eq!(r.occurrences, 1);
        assert!(is_server_span(&failing), "example event is a server span");
        assert_eq!(r.requests, 2);
        assert_eq!(r.errors, 1);
        assert_eq!(ring.count("other", &fp, t, t + 5000), WatchReport::default());
    }

    #[test]
    fn the_failing_operation_is_the_route_that_failed_before_and_counts_its_requests() {
        let failing = selfheal_events::examples::telemetry_event();
        let t = failing.timestamp_ms;
        let route = selfheal_observe::route_of(&failing);
        let fp = failing.exception.as_ref().unwrap().r#type.clone();
        let mut ring = RecentEvents::new(100, 10);
        ring.record(&failing, &ByName);
        let mut ok = failing.clone();
        ok.exception = None;
        ok.status = SpanStatus::Ok;
        for i in 1..=3 {
            let mut later = ok.clone();
            later.timestamp_ms = t + 1000 * i;
            ring.record(&later, &ByName);
        }
        let mut elsewhere = ok.clone();
        elsewhere.attributes.insert("http.route".into(), "/healthz".into());
        elsewhere.timestamp_ms = t + 1500;
        ring.record(&elsewhere, &ByName);
        let op = ring.operation(&failing.service, &fp, t + 1, t + 10_000);
        assert_eq!(op.operation.as_deref(), Some(route.as_str()));
        assert_eq!(op.requests, 3, "only the failing route's requests after the failure");
        assert_eq!(
            ring.operation(&failing.service, "other", t + 1, t + 10_000),
            OperationReport::default()
        );
    }

    #[test]
    fn ring_is_bounded() {
        let ev = selfheal_events::examples::telemetry_event();
        let mut ring = RecentEvents::new(3, 1);
        for i in 0..10 {
            let mut e = ev.clone();
            e.timestamp_ms = i;
            ring.record(&e, &ByName);
        }
        let fp = ev.exception.as_ref().unwrap().r#type.clone();
        assert_eq!(ring.count(&ev.service, &fp, 0, 100).occurrences, 3);
        let mut other = ev.clone();
        other.service = "another".into();
        ring.record(&other, &ByName);
        assert_eq!(ring.count("another", &fp, 0, i64::MAX).requests, 0, "service cap holds");
    }

    #[test]
    fn monitor_fingerprinter_is_stable_and_none_without_exception() {
        let ev = selfheal_events::examples::telemetry_event();
        let f = MonitorFingerprinter;
        let a = f.fingerprint(&ev).unwrap();
        let mut moved = ev.clone();
        moved.timestamp_ms += 5;
        assert_eq!(f.fingerprint(&moved).unwrap(), a);
        let mut none = ev;
        none.exception = None;
        assert!(f.fingerprint(&none).is_none());
    }
}
