//! The dead-letter topic of a stage: records that can never succeed, with their original
//! bytes and headers, plus headers saying which stage gave up, why, and where the record was.

use rdkafka::message::{Header, OwnedHeaders};

use crate::headers;
use crate::publisher::{PublishError, Publisher};

/// What kind of failure sent a record to the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// Not Confluent wire format, unknown schema id, Avro that does not decode.
    Decode,
    /// Larger than the record size limit.
    TooLarge,
    /// Decoded, but the stage found it invalid.
    Invalid,
}

impl DeadLetterKind {
    /// The header and metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Decode => "decode",
            DeadLetterKind::TooLarge => "too-large",
            DeadLetterKind::Invalid => "invalid",
        }
    }
}

/// The original record as consumed.
#[derive(Debug, Clone)]
pub struct Original<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Original key bytes.
    pub key: Option<&'a [u8]>,
    /// Original value bytes.
    pub payload: &'a [u8],
    /// Original headers (all of them, binary values included).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Writes `original` to `dlq_topic` with the reason headers, awaiting delivery.
pub async fn send(
    publisher: &Publisher,
    dlq_topic: &str,
    stage: &str,
    kind: DeadLetterKind,
    error: &str,
    original: &Original<'_>,
) -> Result<(), PublishError> {
    let mut h = OwnedHeaders::new_with_capacity(original.headers.len() + 7);
    for (k, v) in &original.headers {
        h = h.insert(Header {
            key: k,
            value: v.as_deref(),
        });
    }
    let partition = original.partition.to_string();
    let offset = original.offset.to_string();
    let now = crate::now_ms().to_string();
    // Bound the error text: it may quote untrusted input.
    let error: String = error.chars().take(2000).collect();
    for (k, v) in [
        (headers::DLQ_STAGE, stage),
        (headers::DLQ_ERROR, error.as_str()),
        (headers::DLQ_ERROR_KIND, kind.as_str()),
        (headers::DLQ_TOPIC, original.topic),
        (headers::DLQ_PARTITION, partition.as_str()),
        (headers::DLQ_OFFSET, offset.as_str()),
        (headers::DLQ_TIMESTAMP, now.as_str()),
    ] {
        h = h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    publisher
        .send_raw(dlq_topic, original.key, original.payload, h)
        .await
        .map(|_| ())
}
