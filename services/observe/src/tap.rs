//! A [`RequestWindow`] fed by a consumer of `telemetry.raw` of its own.
//!
//! The rollout's canary observer and the verifier's watch both want what happens from now
//! on, never their offsets again, and must not slow the pipeline: each runs a consumer in a
//! group of its own starting at the latest offset, and skips records it cannot decode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use selfheal_core::kafka::KafkaError;
use selfheal_core::{KafkaArgs, Shutdown};
use selfheal_events::{Codec, TelemetryEvent};

use crate::requests::{Query, RequestWindow, Sample, Seen};

/// Events kept per service: at 20 requests a second with a log per failure, several minutes.
pub const RING_PER_SERVICE: usize = 50_000;
/// Services tracked at most; telemetry names them, so the number must be bounded.
pub const MAX_SERVICES: usize = 1_000;

/// A shared, bounded window over recent telemetry.
#[derive(Clone, Debug)]
pub struct TelemetryTap {
    window: Arc<Mutex<RequestWindow>>,
}

impl Default for TelemetryTap {
    fn default() -> Self {
        TelemetryTap {
            window: Arc::new(Mutex::new(RequestWindow::new(RING_PER_SERVICE, MAX_SERVICES))),
        }
    }
}

impl TelemetryTap {
    /// A tap fed by hand ([`TelemetryTap::record`]), for tests and in-process pipelines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts consuming `topic` (full, prefixed name) in group `<group_prefix>-<uuid>` until `shutdown`.
    pub fn start(
        kafka: &KafkaArgs,
        codec: Arc<Codec>,
        topic: &str,
        group_prefix: &str,
        shutdown: Shutdown,
    ) -> Result<Self, KafkaError> {
        let group = format!("{group_prefix}-{}", uuid::Uuid::new_v4());
        let mut cfg = selfheal_core::kafka::consumer_config(kafka, &group)?;
        cfg.set("auto.offset.reset", "latest")
            .set("enable.auto.commit", "false");
        let consumer: StreamConsumer = cfg.create().map_err(|e| KafkaError::Config(e.to_string()))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| KafkaError::Config(e.to_string()))?;
        let tap = TelemetryTap::new();
        let window = tap.window.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.wait() => break,
                    m = consumer.recv() => m,
                };
                let bytes = match &msg {
                    Ok(m) => m.payload().unwrap_or_default().to_vec(),
                    Err(e) => {
                        tracing::debug!(error = %e, "telemetry tap: consume error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                drop(msg);
                match codec.decode::<TelemetryEvent>(&bytes).await {
                    Ok(event) => {
                        // Classify outside the lock: fingerprinting parses stack traces.
                        if let Some(seen) = Seen::of(&event)
                            && let Ok(mut w) = window.lock()
                        {
                            w.push(&event.service, seen);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "telemetry tap: undecodable event skipped"),
                }
            }
        });
        Ok(tap)
    }

    /// Remembers one event.
    pub fn record(&self, event: &TelemetryEvent) {
        if let Some(seen) = Seen::of(event)
            && let Ok(mut w) = self.window.lock()
        {
            w.push(&event.service, seen);
        }
    }

    /// The sample of `service` matching `query`.
    pub fn sample(&self, service: &str, query: Query<'_>) -> Sample {
        self.window.lock().map(|w| w.sample(service, query)).unwrap_or_default()
    }

    /// Runs `f` over the window (for questions a [`Sample`] does not answer).
    pub fn with<T>(&self, f: impl FnOnce(&RequestWindow) -> T) -> Option<T> {
        self.window.lock().ok().map(|w| f(&w))
    }
}
