//! Prometheus metrics of a service: records in and out, dead letters, retries, processing
//! time and consumer lag. Metric names are constants, defined once.

use std::sync::Arc;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// Records consumed, by stage.
pub const RECORDS_IN: &str = "selfheal_records_in_total";
/// Records produced, by stage.
pub const RECORDS_OUT: &str = "selfheal_records_out_total";
/// Records sent to the dead-letter topic, by stage and error kind.
pub const DEAD_LETTERS: &str = "selfheal_dead_letters_total";
/// Retries of transient failures, by stage.
pub const RETRIES: &str = "selfheal_retries_total";
/// Time to process one record, by stage.
pub const PROCESSING_SECONDS: &str = "selfheal_processing_seconds";
/// Consumer lag, by stage, topic and partition.
pub const CONSUMER_LAG: &str = "selfheal_consumer_lag";
/// Service-specific events (e.g. incidents opened, OTLP requests), by service and event.
pub const EVENTS: &str = "selfheal_events_total";

/// The metrics of one process; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Records consumed.
    pub records_in: IntCounterVec,
    /// Records produced.
    pub records_out: IntCounterVec,
    /// Dead letters.
    pub dead_letters: IntCounterVec,
    /// Retries.
    pub retries: IntCounterVec,
    /// Processing time.
    pub processing: HistogramVec,
    /// Consumer lag.
    pub lag: IntGaugeVec,
    /// Service-specific counters.
    pub events: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every selfheal metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        // Metric construction only fails on invalid names, which are constants here.
        #[allow(clippy::expect_used)]
        let m = Metrics {
            records_in: IntCounterVec::new(Opts::new(RECORDS_IN, "Records consumed"), &["stage"])
                .expect("valid metric"),
            records_out: IntCounterVec::new(Opts::new(RECORDS_OUT, "Records produced"), &["stage"])
                .expect("valid metric"),
            dead_letters: IntCounterVec::new(Opts::new(DEAD_LETTERS, "Records dead-lettered"), &["stage", "kind"])
                .expect("valid metric"),
            retries: IntCounterVec::new(Opts::new(RETRIES, "Retries of transient failures"), &["stage"])
                .expect("valid metric"),
            processing: HistogramVec::new(
                HistogramOpts::new(PROCESSING_SECONDS, "Time to process one record")
                    .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0]),
                &["stage"],
            )
            .expect("valid metric"),
            lag: IntGaugeVec::new(
                Opts::new(CONSUMER_LAG, "Consumer lag in records"),
                &["stage", "topic", "partition"],
            )
            .expect("valid metric"),
            events: IntCounterVec::new(Opts::new(EVENTS, "Service-specific events"), &["service", "event"])
                .expect("valid metric"),
            registry,
        };
        for c in [&m.records_in, &m.records_out, &m.retries] {
            let _ = m.registry.register(Box::new(c.clone()));
        }
        let _ = m.registry.register(Box::new(m.dead_letters.clone()));
        let _ = m.registry.register(Box::new(m.processing.clone()));
        let _ = m.registry.register(Box::new(m.lag.clone()));
        let _ = m.registry.register(Box::new(m.events.clone()));
        m
    }

    /// Shared handle.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new().encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Counts a service-specific event.
    pub fn event(&self, service: &str, event: &str) {
        self.events.with_label_values(&[service, event]).inc();
    }
}
