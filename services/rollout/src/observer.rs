//! Request and error counts per service version, read from `telemetry.raw`.
//!
//! [`KafkaErrorRates`] runs its own consumer in a group of its own, starting at the latest
//! offset (it only cares about what happens from now on), and keeps a bounded ring of
//! recent SERVER spans per (service, version).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use selfheal_core::{KafkaArgs, Shutdown};
use selfheal_events::{Codec, SignalKind, SpanStatus, TelemetryEvent};

use crate::analysis::{Counts, ErrorRates};

/// Requests remembered per (service, version).
const RING: usize = 50_000;
/// (service, version) pairs remembered at most; telemetry names them, so it is bounded.
const MAX_KEYS: usize = 2_000;

/// Whether a telemetry event is a request the service served, and whether it failed.
pub fn classify(event: &TelemetryEvent) -> Option<bool> {
    let server = event.kind == SignalKind::Span
        && event
            .span_kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("server") || k.eq_ignore_ascii_case("span_kind_server"));
    if !server {
        return None;
    }
    let http_failed = ["http.response.status_code", "http.status_code"]
        .iter()
        .filter_map(|k| event.attributes.get(*k))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .any(|code| code >= 500.0);
    Some(event.status == SpanStatus::Error || http_failed)
}

/// Recent requests per (service, version), bounded.
#[derive(Debug, Default)]
pub struct RequestLog {
    rings: HashMap<(String, String), VecDeque<(i64, bool)>>,
}

impl RequestLog {
    /// Remembers a server span; anything else is ignored.
    pub fn record(&mut self, event: &TelemetryEvent) {
        let Some(failed) = classify(event) else { return };
        let version = event.service_version.clone().unwrap_or_default();
        let key = (event.service.clone(), version);
        if !self.rings.contains_key(&key) && self.rings.len() >= MAX_KEYS {
            return;
        }
        let ring = self.rings.entry(key).or_default();
        if ring.len() >= RING {
            ring.pop_front();
        }
        ring.push_back((event.timestamp_ms, failed));
    }

    /// Counts since `since_ms`.
    pub fn counts(&self, service: &str, version: &str, since_ms: i64) -> Counts {
        let mut c = Counts::default();
        if let Some(ring) = self.rings.get(&(service.to_string(), version.to_string())) {
            for (at, failed) in ring {
                if *at >= since_ms {
                    c.total += 1;
                    c.errors += i64::from(*failed);
                }
            }
        }
        c
    }
}

/// [`ErrorRates`] from a consumer of `telemetry.raw`.
#[derive(Clone, Debug)]
pub struct KafkaErrorRates {
    log: Arc<Mutex<RequestLog>>,
}

impl KafkaErrorRates {
    /// Starts consuming `topic` (full, prefixed name) until `shutdown`; undecodable records are skipped.
    pub fn start(
        kafka: &KafkaArgs,
        codec: Arc<Codec>,
        topic: &str,
        shutdown: Shutdown,
    ) -> Result<Self, selfheal_core::kafka::KafkaError> {
        let group = format!("selfheal-rollout-observer-{}", uuid::Uuid::new_v4());
        let mut cfg = selfheal_core::kafka::consumer_config(kafka, &group)?;
        cfg.set("auto.offset.reset", "latest")
            .set("enable.auto.commit", "false");
        let consumer: StreamConsumer = cfg
            .create()
            .map_err(|e| selfheal_core::kafka::KafkaError::Config(e.to_string()))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| selfheal_core::kafka::KafkaError::Config(e.to_string()))?;
        let rates = KafkaErrorRates {
            log: Arc::new(Mutex::new(RequestLog::default())),
        };
        let log = rates.log.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.wait() => break,
                    m = consumer.recv() => m,
                };
                let bytes = match &msg {
                    Ok(m) => m.payload().unwrap_or_default().to_vec(),
                    Err(e) => {
                        tracing::debug!(error = %e, "traffic observer: consume error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                drop(msg);
                match codec.decode::<TelemetryEvent>(&bytes).await {
                    Ok(event) => {
                        if let Ok(mut l) = log.lock() {
                            l.record(&event);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "traffic observer: undecodable event skipped"),
                }
            }
        });
        Ok(rates)
    }
}

#[async_trait]
impl ErrorRates for KafkaErrorRates {
    async fn rates(&self, service: &str, version: &str, since_ms: i64) -> Counts {
        self.log
            .lock()
            .map(|l| l.counts(service, version, since_ms))
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_server_spans_per_version_since() {
        let failing = selfheal_events::examples::telemetry_event();
        let mut ok = failing.clone();
        ok.status = SpanStatus::Unset;
        ok.attributes.insert("http.response.status_code".into(), "200".into());
        let mut canary = ok.clone();
        canary.service_version = Some("e4f5a6b".into());
        let mut log_record = failing.clone();
        log_record.kind = SignalKind::Log;
        let mut log = RequestLog::default();
        for e in [&failing, &ok, &canary, &log_record] {
            log.record(e);
        }
        let t = failing.timestamp_ms;
        assert_eq!(log.counts("pricing-api", "a1b2c3d", t), Counts { errors: 1, total: 2 });
        assert_eq!(log.counts("pricing-api", "e4f5a6b", t), Counts { errors: 0, total: 1 });
        assert_eq!(log.counts("pricing-api", "a1b2c3d", t + 1), Counts::default());
    }
}
