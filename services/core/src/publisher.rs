//! Publishing records: encode through the registry, produce, and await the delivery report.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use selfheal_events::{Codec, CodecError, Record};

use crate::headers;

/// Why a record was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Encoding failed because the registry is down, or the broker did not acknowledge: retry.
    #[error("transient: {0}")]
    Transient(String),
    /// The record cannot be encoded (it does not fit its schema, or the registry refused it).
    #[error("cannot encode record: {0}")]
    Encode(String),
}

impl From<CodecError> for PublishError {
    fn from(e: CodecError) -> Self {
        if e.is_transient() {
            PublishError::Transient(e.to_string())
        } else {
            PublishError::Encode(e.to_string())
        }
    }
}

/// How long a record may wait for room in the producer's queue before it counts as not sent.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// The partition and offset of a delivered record, or why it was not delivered.
pub fn delivered(
    topic: &str,
    report: Result<OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
) -> Result<(i32, i64), PublishError> {
    match report {
        Ok(Ok(d)) => Ok((d.partition, d.offset)),
        Ok(Err((e, _))) => Err(PublishError::Transient(format!("delivery to {topic} failed: {e}"))),
        Err(_) => Err(PublishError::Transient(format!(
            "delivery to {topic} failed: the producer was closed"
        ))),
    }
}

/// A producer plus the codec; shared by the runner, the collector and the CLI.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    codec: Arc<Codec>,
    produced_by: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("produced_by", &self.produced_by)
            .finish()
    }
}

impl Publisher {
    /// A publisher that stamps its records as produced by `produced_by`.
    pub fn new(producer: FutureProducer, codec: Arc<Codec>, produced_by: &str) -> Self {
        Publisher {
            producer,
            codec,
            produced_by: produced_by.to_string(),
        }
    }

    /// The codec.
    pub fn codec(&self) -> &Arc<Codec> {
        &self.codec
    }

    /// The underlying producer.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Encodes `record` and produces it to `topic` with `extra` headers, returning once the
    /// broker acknowledged it (partition, offset).
    pub async fn publish<R: Record>(
        &self,
        topic: &str,
        record: &R,
        extra: &HashMap<String, String>,
    ) -> Result<(i32, i64), PublishError> {
        let delivery = self.enqueue(topic, record, extra).await?;
        delivered(topic, delivery.await)
    }

    /// Encodes `record` and hands it to the producer without waiting for the broker: the
    /// returned future resolves with the delivery report. Callers that must know the record
    /// arrived (the runner, before storing an offset) await it, possibly together with others.
    pub async fn enqueue<R: Record>(
        &self,
        topic: &str,
        record: &R,
        extra: &HashMap<String, String>,
    ) -> Result<DeliveryFuture, PublishError> {
        let (key, value) = self.codec.encode(topic, record).await?;
        let incident = if R::TOPIC == selfheal_events::TELEMETRY_RAW {
            None
        } else {
            Some(record.key())
        };
        let mut hdrs = OwnedHeaders::new_with_capacity(extra.len() + 2);
        for (k, v) in extra {
            hdrs = hdrs.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        hdrs = hdrs.insert(Header {
            key: headers::PRODUCED_BY,
            value: Some(self.produced_by.as_bytes()),
        });
        if let Some(id) = &incident {
            hdrs = hdrs.insert(Header {
                key: headers::INCIDENT_ID,
                value: Some(id.as_bytes()),
            });
        }
        self.enqueue_raw(topic, Some(&key), &value, hdrs).await
    }

    /// Produces raw bytes (dead letters keep the original bytes) and awaits delivery.
    pub async fn send_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(i32, i64), PublishError> {
        let delivery = self.enqueue_raw(topic, key, value, headers).await?;
        delivered(topic, delivery.await)
    }

    /// Produces again a record whose delivery failed, byte for byte, headers included.
    pub async fn resend(&self, failed: &OwnedMessage) -> Result<DeliveryFuture, PublishError> {
        let headers = failed.headers().cloned().unwrap_or_else(OwnedHeaders::new);
        self.enqueue_raw(
            failed.topic(),
            failed.key(),
            failed.payload().unwrap_or_default(),
            headers,
        )
        .await
    }

    /// Hands raw bytes to the producer; while its queue is full, waits for room (as
    /// `FutureProducer::send` does) for at most the delivery timeout.
    pub async fn enqueue_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: OwnedHeaders,
    ) -> Result<DeliveryFuture, PublishError> {
        let mut rec = FutureRecord::to(topic).payload(value).headers(headers);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        let deadline = tokio::time::Instant::now() + QUEUE_TIMEOUT;
        loop {
            match self.producer.send_result(rec) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if tokio::time::Instant::now() < deadline =>
                {
                    rec = back;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => {
                    return Err(PublishError::Transient(format!("cannot produce to {topic}: {e}")));
                }
            }
        }
    }

    /// Flushes outstanding messages (on shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush did not complete");
        }
    }
}
