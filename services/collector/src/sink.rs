//! Where converted events go: Kafka through the `Publisher` in production, memory in tests.
//!
//! The HTTP layer answers 200 only after the sink returned `Ok`, i.e. after the broker
//! acknowledged every event of the request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use selfheal_core::Publisher;
use selfheal_core::publisher::PublishError;
use selfheal_events::TelemetryEvent;

/// Why events were not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// Kafka or the registry is down or slow: the sender should retry later (503).
    #[error("telemetry store unavailable: {0}")]
    Unavailable(String),
    /// The events can never be stored (they do not fit the schema): retrying cannot help (500).
    #[error("events cannot be stored: {0}")]
    Rejected(String),
}

/// Stores the events of one request, returning once all are durable.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Stores every event or reports why not (some may be stored anyway: delivery is at least once).
    async fn publish(&self, events: &[TelemetryEvent]) -> Result<(), SinkError>;
}

/// Publishes to a Kafka topic, keyed by service, awaiting every delivery report.
#[derive(Debug, Clone)]
pub struct PublisherSink {
    publisher: Publisher,
    topic: String,
    timeout: Duration,
}

impl PublisherSink {
    /// A sink writing to `topic`; a request whose events are not all acknowledged within
    /// `timeout` is answered 503 (the sender retries; some events may then arrive twice).
    pub fn new(publisher: Publisher, topic: impl Into<String>, timeout: Duration) -> Self {
        PublisherSink {
            publisher,
            topic: topic.into(),
            timeout,
        }
    }
}

#[async_trait]
impl EventSink for PublisherSink {
    async fn publish(&self, events: &[TelemetryEvent]) -> Result<(), SinkError> {
        let headers = std::collections::HashMap::new();
        // All at once: librdkafka batches them, and one request waits for one round trip.
        let sends = futures::future::join_all(events.iter().map(|e| self.publisher.publish(&self.topic, e, &headers)));
        let results = tokio::time::timeout(self.timeout, sends)
            .await
            .map_err(|_| SinkError::Unavailable(format!("no acknowledgement from Kafka within {:?}", self.timeout)))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err(PublishError::Transient(e)) => return Err(SinkError::Unavailable(e)),
                Err(PublishError::Encode(e)) => return Err(SinkError::Rejected(e)),
            }
        }
        Ok(())
    }
}

/// Keeps events in memory; can be switched to "unavailable" (tests, dry runs).
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<TelemetryEvent>>,
    unavailable: AtomicBool,
}

impl MemorySink {
    /// An empty, available sink.
    pub fn new() -> Self {
        Self::default()
    }
    /// Makes every later publish fail as unavailable (or succeed again).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }
    /// The events stored so far.
    pub fn events(&self) -> Vec<TelemetryEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl EventSink for MemorySink {
    async fn publish(&self, events: &[TelemetryEvent]) -> Result<(), SinkError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable("memory sink switched off".into()));
        }
        self.events
            .lock()
            .map_err(|_| SinkError::Unavailable("memory sink poisoned".into()))?
            .extend_from_slice(events);
        Ok(())
    }
}
