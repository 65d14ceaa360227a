//! Publishing records: encode through the registry, produce, and await the delivery report.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
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
        self.send_raw(topic, Some(&key), &value, hdrs).await
    }

    /// Produces raw bytes (dead letters keep the original bytes) and awaits delivery.
    pub async fn send_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(i32, i64), PublishError> {
        let mut rec = FutureRecord::to(topic).payload(value).headers(headers);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        match self.producer.send(rec, Duration::from_secs(30)).await {
            Ok(d) => Ok((d.partition, d.offset)),
            Err((e, _)) => Err(PublishError::Transient(format!("delivery to {topic} failed: {e}"))),
        }
    }

    /// Flushes outstanding messages (on shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush did not complete");
        }
    }
}
