//! Requests seen in telemetry, remembered per service, and the samples analysis reads.
//!
//! A request is a SERVER span ([`classify`]): when it happened, which version served it,
//! on which route, whether it failed, how long it took and the fingerprint of the
//! exception it recorded. A log record or span that carries an exception but is no request
//! is remembered as a bare fingerprint occurrence, so a crash reported only by a log line
//! still counts. [`RequestWindow`] keeps a bounded ring per service; [`RequestWindow::sample`]
//! gives the [`Sample`] of one version (or all) over a time range, the unit the canary
//! analysis and the verifier read.

use std::collections::{BTreeMap, HashMap, VecDeque};

use selfheal_events::{SignalKind, SpanStatus, TelemetryEvent};

use crate::fingerprint::fingerprint_of;

/// One remembered event.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Event time, epoch milliseconds.
    pub at_ms: i64,
    /// `service.version`, empty when the event names none.
    pub version: String,
    /// Route (`http.route`) or span name; empty for events that are no request.
    pub route: String,
    /// Whether it is a request (a SERVER span).
    pub request: bool,
    /// Whether the request failed (status error or HTTP status ≥ 500).
    pub failed: bool,
    /// Span duration, milliseconds.
    pub latency_ms: Option<f64>,
    /// Fingerprint of the exception the event records.
    pub fingerprint: Option<String>,
}

/// Whether a telemetry event is a SERVER span (a request the service served).
pub fn is_server_span(event: &TelemetryEvent) -> bool {
    event.kind == SignalKind::Span
        && event
            .span_kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("server") || k.eq_ignore_ascii_case("span_kind_server"))
}

/// Whether a span failed: status error or an HTTP status of 500 or more.
pub fn is_failed(event: &TelemetryEvent) -> bool {
    event.status == SpanStatus::Error
        || ["http.response.status_code", "http.status_code"]
            .iter()
            .filter_map(|k| event.attributes.get(*k))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .any(|code| code >= 500.0)
}

/// `Some(failed)` for a request, `None` for anything else.
pub fn classify(event: &TelemetryEvent) -> Option<bool> {
    is_server_span(event).then(|| is_failed(event))
}

/// The operation of a request: its `http.route`, else its span name.
pub fn route_of(event: &TelemetryEvent) -> String {
    event
        .attributes
        .get("http.route")
        .filter(|r| !r.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| event.name.clone())
}

impl Seen {
    /// What an event contributes, `None` when it is neither a request nor a fingerprint.
    pub fn of(event: &TelemetryEvent) -> Option<Seen> {
        let request = is_server_span(event);
        let fingerprint = fingerprint_of(event);
        if !request && fingerprint.is_none() {
            return None;
        }
        Some(Seen {
            at_ms: event.timestamp_ms,
            version: event.service_version.clone().unwrap_or_default(),
            route: if request { route_of(event) } else { String::new() },
            request,
            failed: request && is_failed(event),
            latency_ms: if request {
                event.duration_ms.filter(|d| d.is_finite() && *d >= 0.0)
            } else {
                None
            },
            fingerprint,
        })
    }
}

/// Requests and errors of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteCounts {
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
}

/// What one group (a version, or the whole service) showed over a time range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// Requests served.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Durations of the requests that succeeded, milliseconds (failures are the error metric's).
    pub latencies_ms: Vec<f64>,
    /// Requests and errors per route.
    pub routes: BTreeMap<String, RouteCounts>,
    /// Occurrences of each exception fingerprint (requests and log records alike).
    pub fingerprints: BTreeMap<String, u64>,
}

impl Sample {
    /// Adds one event's contribution.
    pub fn add(&mut self, seen: &Seen) {
        if let Some(fp) = &seen.fingerprint {
            *self.fingerprints.entry(fp.clone()).or_default() += 1;
        }
        if !seen.request {
            return;
        }
        self.requests += 1;
        let route = self.routes.entry(seen.route.clone()).or_default();
        route.requests += 1;
        if seen.failed {
            self.errors += 1;
            route.errors += 1;
        } else if let Some(l) = seen.latency_ms {
            self.latencies_ms.push(l);
        }
    }

    /// Error rate 0..1, 0 without requests.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// Which events of a service a query takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    /// Only this version; every version when `None`.
    pub version: Option<&'a str>,
    /// Only this route (fingerprint occurrences of non-request events are kept whatever the route).
    pub route: Option<&'a str>,
    /// From this instant, inclusive (epoch ms).
    pub from_ms: i64,
    /// Up to this instant, inclusive (epoch ms).
    pub to_ms: i64,
}

/// Recent events per service, bounded in count per service and in services.
#[derive(Debug)]
pub struct RequestWindow {
    per_service: HashMap<String, VecDeque<Seen>>,
    max_per_service: usize,
    max_services: usize,
}

impl RequestWindow {
    /// A window keeping at most `max_per_service` events for each of at most `max_services` services.
    pub fn new(max_per_service: usize, max_services: usize) -> Self {
        RequestWindow {
            per_service: HashMap::new(),
            max_per_service: max_per_service.max(1),
            max_services: max_services.max(1),
        }
    }

    /// Remembers an event if it is a request or carries a fingerprint.
    pub fn record(&mut self, event: &TelemetryEvent) {
        if let Some(seen) = Seen::of(event) {
            self.push(&event.service, seen);
        }
    }

    /// Remembers an already classified event.
    pub fn push(&mut self, service: &str, seen: Seen) {
        if !self.per_service.contains_key(service) && self.per_service.len() >= self.max_services {
            // Telemetry names services; a flood of new names must not grow memory without bound.
            return;
        }
        let ring = self.per_service.entry(service.to_string()).or_default();
        if ring.len() >= self.max_per_service {
            ring.pop_front();
        }
        ring.push_back(seen);
    }

    /// Every remembered event of `service` matching `query`, oldest first.
    pub fn events<'a>(&'a self, service: &str, query: Query<'a>) -> impl Iterator<Item = &'a Seen> + 'a {
        self.per_service.get(service).into_iter().flatten().filter(move |s| {
            s.at_ms >= query.from_ms
                && s.at_ms <= query.to_ms
                && query.version.is_none_or(|v| s.version == v)
                && query.route.is_none_or(|r| !s.request || s.route == r)
        })
    }

    /// The sample of `service` matching `query`.
    pub fn sample(&self, service: &str, query: Query<'_>) -> Sample {
        let mut sample = Sample::default();
        for seen in self.events(service, query) {
            sample.add(seen);
        }
        sample
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok_span() -> TelemetryEvent {
        let mut ok = selfheal_events::examples::telemetry_event();
        ok.exception = None;
        ok.status = SpanStatus::Unset;
        ok.attributes.insert("http.response.status_code".into(), "200".into());
        ok
    }

    #[test]
    fn samples_per_version_route_and_time() {
        let failing = selfheal_events::examples::telemetry_event();
        let t = failing.timestamp_ms;
        let mut ok = ok_span();
        ok.duration_ms = Some(12.0);
        let mut canary = ok.clone();
        canary.service_version = Some("e4f5a6b".into());
        canary.attributes.insert("http.route".into(), "/other".into());
        let mut log = failing.clone();
        log.kind = SignalKind::Log;
        let mut w = RequestWindow::new(100, 10);
        for e in [&failing, &ok, &canary, &log] {
            w.record(e);
        }
        let stable = w.sample(
            "pricing-api",
            Query {
                version: Some("a1b2c3d"),
                from_ms: t,
                to_ms: t,
                ..Default::default()
            },
        );
        assert_eq!((stable.requests, stable.errors), (2, 1));
        assert_eq!(stable.latencies_ms, vec![12.0], "failed requests give no latency");
        assert_eq!(
            stable.fingerprints.values().sum::<u64>(),
            2,
            "span and log of one exception"
        );
        let c = w.sample(
            "pricing-api",
            Query {
                version: Some("e4f5a6b"),
                from_ms: t,
                to_ms: t,
                ..Default::default()
            },
        );
        assert_eq!((c.requests, c.errors), (1, 0));
        assert_eq!(c.routes.keys().collect::<Vec<_>>(), ["/other"]);
        let later = w.sample(
            "pricing-api",
            Query {
                from_ms: t + 1,
                to_ms: i64::MAX,
                ..Default::default()
            },
        );
        assert_eq!(later, Sample::default());
        let all_other = w.sample(
            "pricing-api",
            Query {
                route: Some("/other"),
                from_ms: t,
                to_ms: t,
                ..Default::default()
            },
        );
        assert_eq!(all_other.requests, 1);
        assert_eq!(
            all_other.fingerprints.values().sum::<u64>(),
            1,
            "the log record counts on any route"
        );
    }

    #[test]
    fn window_is_bounded() {
        let ev = selfheal_events::examples::telemetry_event();
        let mut w = RequestWindow::new(3, 1);
        for i in 0..10 {
            let mut e = ev.clone();
            e.timestamp_ms = i;
            w.record(&e);
        }
        let all = Query {
            from_ms: 0,
            to_ms: i64::MAX,
            ..Default::default()
        };
        assert_eq!(w.sample(&ev.service, all).requests, 3);
        let mut other = ev.clone();
        other.service = "another".into();
        w.record(&other);
        assert_eq!(w.sample("another", all).requests, 0, "service cap holds");
    }
}
