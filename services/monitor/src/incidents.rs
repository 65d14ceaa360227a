//! Open incidents and the fingerprints each service has ever shown.
//!
//! One incident per (service, fingerprint) at a time: while it is open, further
//! occurrences only update its counters. It closes after `incident_quiet` of event
//! time without an occurrence; the same fingerprint later opens a new incident (a
//! recurrence) once it reappears `min_errors` times within a window or with the
//! error rate above baseline. Everything here is bounded: services, fingerprints per
//! service, open incidents per service, and the keys used to count a failure reported
//! twice (its span and its log record) once.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::lru::Lru;

/// Open incidents kept per service (the least recently active one closes beyond it).
const MAX_OPEN_PER_SERVICE: usize = 64;
/// Failure keys remembered per service to count a span and its log record once.
const MAX_FAILURE_KEYS: usize = 4096;
/// Known fingerprints whose reappearance is being counted, per service.
const MAX_RECURRENCES: usize = 1024;

/// An open incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// UUID v7.
    pub incident_id: String,
    /// The service.
    pub service: String,
    /// The fingerprint it groups.
    pub fingerprint: String,
    /// Where it failed, when known.
    pub operation: Option<String>,
    /// Event time of its first failing event.
    pub first_error_ms: i64,
    /// Event time of its newest occurrence.
    pub last_seen_ms: i64,
    /// Occurrences so far (a span and its log record count once).
    pub occurrences: u64,
}

impl Incident {
    /// Counts one more occurrence at `ts`.
    pub fn touch(&mut self, ts: i64) {
        self.occurrences = self.occurrences.saturating_add(1);
        self.last_seen_ms = self.last_seen_ms.max(ts);
        self.first_error_ms = self.first_error_ms.min(ts);
    }
}

/// Incident state of one service.
#[derive(Debug)]
pub struct ServiceIncidents {
    open: Vec<Incident>,
    seen: Lru<String, ()>,
    recurrences: Lru<String, VecDeque<i64>>,
    failures: Lru<String, ()>,
}

impl ServiceIncidents {
    fn new(max_fingerprints: usize) -> Self {
        ServiceIncidents {
            open: Vec::new(),
            seen: Lru::new(max_fingerprints),
            recurrences: Lru::new(MAX_RECURRENCES),
            failures: Lru::new(MAX_FAILURE_KEYS),
        }
    }

    /// Closes the incidents quiet for more than `quiet_ms` before `ts`; returns them.
    pub fn close_quiet(&mut self, ts: i64, quiet_ms: i64) -> Vec<Incident> {
        let (closed, open): (Vec<Incident>, Vec<Incident>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|i| ts.saturating_sub(i.last_seen_ms) > quiet_ms);
        self.open = open;
        closed
    }

    /// The open incident of `fingerprint`.
    pub fn open_mut(&mut self, fingerprint: &str) -> Option<&mut Incident> {
        self.open.iter_mut().find(|i| i.fingerprint == fingerprint)
    }

    /// The most recently active open incident on `operation`.
    pub fn open_on_operation(&mut self, operation: &str) -> Option<&mut Incident> {
        self.open
            .iter_mut()
            .filter(|i| i.operation.as_deref() == Some(operation))
            .max_by_key(|i| i.last_seen_ms)
    }

    /// Open incidents.
    pub fn open(&self) -> &[Incident] {
        &self.open
    }

    /// Adds an incident (closing the least recently active beyond the cap).
    pub fn add(&mut self, incident: Incident) {
        if self.open.len() >= MAX_OPEN_PER_SERVICE
            && let Some(idx) = self
                .open
                .iter()
                .enumerate()
                .min_by_key(|(_, i)| i.last_seen_ms)
                .map(|(i, _)| i)
        {
            self.open.swap_remove(idx);
        }
        self.recurrences.remove(&incident.fingerprint);
        self.open.push(incident);
    }

    /// Whether the service ever showed `fingerprint` (since its state was kept).
    pub fn is_known(&self, fingerprint: &str) -> bool {
        self.seen.contains(fingerprint)
    }

    /// Remembers `fingerprint` as seen.
    pub fn remember(&mut self, fingerprint: &str) {
        if self.seen.get_mut(fingerprint).is_none() {
            self.seen.insert(fingerprint.to_string(), ());
        }
    }

    /// Known fingerprints, in no particular order.
    pub fn known(&self) -> impl Iterator<Item = &str> {
        self.seen.iter().map(|(k, _)| k.as_str())
    }

    /// Counts one reappearance of a known, closed fingerprint at `ts`; returns how many
    /// fell within `window_ms` up to `ts`, and the earliest of them.
    pub fn reappear(&mut self, fingerprint: &str, ts: i64, window_ms: i64, keep: usize) -> (u64, i64) {
        let q = self
            .recurrences
            .get_or_insert_with(fingerprint.to_string(), VecDeque::new);
        q.push_back(ts);
        q.retain(|t| *t > ts - window_ms && *t <= ts + window_ms);
        while q.len() > keep.max(1) {
            q.pop_front();
        }
        let first = q.iter().copied().min().unwrap_or(ts);
        (q.len() as u64, first)
    }

    /// Whether this failure (by trace and span id, else event id) is reported for the
    /// first time; its span and its log record share the key.
    pub fn first_report(&mut self, key: &str) -> bool {
        if self.failures.contains(key) {
            return false;
        }
        self.failures.insert(key.to_string(), ());
        true
    }
}

/// Incident state of every service.
#[derive(Debug)]
pub struct IncidentBook {
    services: Lru<String, ServiceIncidents>,
    max_fingerprints: usize,
}

impl IncidentBook {
    /// Empty, for at most `max_services` services of `max_fingerprints` each.
    pub fn new(max_services: usize, max_fingerprints: usize) -> Self {
        IncidentBook {
            services: Lru::new(max_services),
            max_fingerprints,
        }
    }

    /// The state of `service`, created when absent.
    pub fn service(&mut self, service: &str) -> &mut ServiceIncidents {
        let max = self.max_fingerprints;
        self.services
            .get_or_insert_with(service.to_string(), || ServiceIncidents::new(max))
    }

    /// Every service's state.
    pub fn services(&self) -> impl Iterator<Item = (&String, &ServiceIncidents)> {
        self.services.iter()
    }

    /// Open incidents of every service.
    pub fn open_incidents(&self) -> Vec<Incident> {
        self.services.iter().flat_map(|(_, s)| s.open.iter().cloned()).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn incident(fp: &str, ts: i64) -> Incident {
        Incident {
            incident_id: format!("id-{fp}"),
            service: "api".into(),
            fingerprint: fp.into(),
            operation: Some("GET /".into()),
            first_error_ms: ts,
            last_seen_ms: ts,
            occurrences: 1,
        }
    }

    #[test]
    fn incidents_close_after_quiet_period() {
        let mut b = IncidentBook::new(10, 10);
        let s = b.service("api");
        s.add(incident("a", 1000));
        s.add(incident("b", 50_000));
        s.open_mut("a").unwrap().touch(30_000);
        assert!(s.close_quiet(80_000, 60_000).is_empty());
        let closed = s.close_quiet(90_001, 60_000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].fingerprint, "a");
        assert_eq!(closed[0].occurrences, 2);
        assert!(s.open_mut("a").is_none());
        assert!(s.open_on_operation("GET /").is_some());
    }

    #[test]
    fn reappearances_are_counted_within_a_window() {
        let mut b = IncidentBook::new(10, 10);
        let s = b.service("api");
        assert_eq!(s.reappear("a", 1000, 10_000, 3), (1, 1000));
        assert_eq!(s.reappear("a", 20_000, 10_000, 3), (1, 20_000));
        assert_eq!(s.reappear("a", 21_000, 10_000, 3), (2, 20_000));
        assert_eq!(s.reappear("a", 22_000, 10_000, 3).0, 3);
        assert!(s.first_report("t/s"));
        assert!(!s.first_report("t/s"));
        s.remember("a");
        assert!(s.is_known("a") && !s.is_known("b"));
    }
}
