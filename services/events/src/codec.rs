//! Confluent wire-format codec: records to and from `magic byte · schema id · Avro body`,
//! through `schema_registry_converter` against any registry that speaks the Confluent REST API.

use std::time::Duration;

use apache_avro::schema::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::avro_common::get_supplied_schema;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;
use serde::Deserialize;

use crate::Record;

/// Largest value the codec accepts; anything above is refused before decoding.
pub const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// What went wrong while encoding, decoding or registering.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a Confluent wire-format record (no magic byte, too short).
    #[error("not Confluent wire format: {0}")]
    NotWireFormat(String),
    /// The record is larger than [`MAX_RECORD_BYTES`].
    #[error("record of {0} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
    /// The registry answered, but the schema id or subject is unknown or the body is invalid.
    #[error("schema registry refused: {0}")]
    Registry(String),
    /// The registry could not be reached or answered with a server error: retry later.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The Avro body does not decode, or does not fit the Rust type.
    #[error("cannot decode Avro body: {0}")]
    Avro(String),
    /// A new schema breaks BACKWARD compatibility with the registered one.
    #[error("schema for subject {subject} is not backward compatible with the registered version: {reason}")]
    Incompatible {
        /// The subject.
        subject: String,
        /// Which field broke which rule.
        reason: String,
    },
}

impl CodecError {
    /// Whether retrying later may succeed (registry down) rather than the record being bad.
    pub fn is_transient(&self) -> bool {
        matches!(self, CodecError::RegistryUnavailable(_))
    }
}

fn from_src(e: SRCError) -> CodecError {
    // schema_registry_converter marks network failures and 502/503 as retriable.
    let text = match &e.cause {
        Some(c) => format!("{}: {}", e.error, c),
        None => e.error.clone(),
    };
    if e.retriable || text.contains("error sending request") || text.contains("onnection refused") {
        CodecError::RegistryUnavailable(text)
    } else if text.contains("Could not decode") || text.contains("could not decode") {
        CodecError::Avro(text)
    } else {
        CodecError::Registry(text)
    }
}

/// The subject of a topic's values under the topic name strategy.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// The subject of a topic's keys under the topic name strategy.
pub fn key_subject(topic: &str) -> String {
    format!("{topic}-key")
}

/// Encodes and decodes records, registering schemas on first use.
pub struct Codec {
    url: String,
    http: reqwest::Client,
    encoder: AvroEncoder,
    decoder: AvroDecoder,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec").field("url", &self.url).finish()
    }
}

#[derive(Deserialize)]
struct LatestSchema {
    schema: String,
}

impl Codec {
    /// A codec for the registry at `url` (e.g. `http://127.0.0.1:8085/apis/ccompat/v7`).
    pub fn new(url: &str) -> Result<Self, CodecError> {
        let url = url.trim_end_matches('/').to_string();
        let settings = || {
            SrSettings::new_builder(url.clone())
                .set_timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .map_err(from_src)
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| CodecError::Registry(e.to_string()))?;
        Ok(Codec {
            encoder: AvroEncoder::new(settings()?),
            decoder: AvroDecoder::new(settings()?),
            url,
            http,
        })
    }

    /// The registry URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Encodes a record's key and value for `topic` (values under `<topic>-value`, keys under
    /// `<topic>-key`), registering the schemas on first use.
    pub async fn encode<R: Record>(&self, topic: &str, record: &R) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
        let value = self.encode_value(topic, record).await?;
        let key = self.encode_key::<R>(topic, &record.key()).await?;
        Ok((key, value))
    }

    /// Encodes a record's value for `topic`.
    pub async fn encode_value<R: Record>(&self, topic: &str, record: &R) -> Result<Vec<u8>, CodecError> {
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_string(),
            false,
            get_supplied_schema(&R::get_schema()),
        );
        self.encoder.encode_struct(record, &strategy).await.map_err(from_src)
    }

    /// Encodes the key of a record type: a `ServiceKey` for telemetry, an `IncidentKey` after it.
    pub async fn encode_key<R: Record>(&self, topic: &str, key: &str) -> Result<Vec<u8>, CodecError> {
        let (schema, value): (Schema, serde_json::Value) = if R::TOPIC == crate::topics::TELEMETRY_RAW {
            (
                <crate::ServiceKey as apache_avro::AvroSchema>::get_schema(),
                serde_json::json!({"service": key}),
            )
        } else {
            (
                <crate::IncidentKey as apache_avro::AvroSchema>::get_schema(),
                serde_json::json!({"incident_id": key}),
            )
        };
        let strategy =
            SubjectNameStrategy::TopicNameStrategyWithSchema(topic.to_string(), true, get_supplied_schema(&schema));
        self.encoder.encode_struct(value, &strategy).await.map_err(from_src)
    }

    /// Decodes a value written in the Confluent wire format into `R`, resolving the writer's
    /// schema (fetched by id) against `R`'s schema so older records still decode.
    pub async fn decode<R: Record>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        check_wire_format(bytes)?;
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(from_src)?;
        let resolved = decoded
            .value
            .resolve(&R::get_schema())
            .map_err(|e| CodecError::Avro(e.to_string()))?;
        apache_avro::from_value::<R>(&resolved).map_err(|e| CodecError::Avro(e.to_string()))
    }

    /// Decodes a value into JSON without knowing its type (for `selfheal tail`).
    pub async fn decode_json(&self, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        check_wire_format(bytes)?;
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(from_src)?;
        let json: serde_json::Value =
            serde_json::Value::try_from(decoded.value).map_err(|e| CodecError::Avro(e.to_string()))?;
        Ok(json)
    }

    /// Prepares `topic` for records of type `R`: sets BACKWARD compatibility on the value
    /// subject, checks the current schema against the registered one (naming the field and
    /// the rule when it breaks), and registers it. Returns the schema id.
    pub async fn register<R: Record>(&self, topic: &str) -> Result<u32, CodecError> {
        let subject = value_subject(topic);
        let schema = R::get_schema();
        self.set_backward(&subject).await?;
        if let Some(registered) = self.latest_schema(&subject).await? {
            // BACKWARD: consumers on the new schema must read data written with the old one.
            if let Err(e) = SchemaCompatibility::can_read(&registered, &schema) {
                return Err(CodecError::Incompatible {
                    subject,
                    reason: e.to_string(),
                });
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
                topic.to_string(),
                false,
                get_supplied_schema(&schema),
            );
            match self
                .encoder
                .get_schema_and_id(&subject, strategy)
                .await
                .map_err(from_src)
            {
                Ok(s) => return Ok(s.id),
                // Services start together and register the same subjects (one's output is the
                // next one's input): a registry may answer 409 to the loser of that race. The
                // local check above already passed, so try again before calling it incompatible.
                Err(CodecError::Registry(reason)) if reason.contains("409") && attempt < CONFLICT_ATTEMPTS => {
                    tracing::info!(%subject, attempt, "schema registration conflicted with another writer; retrying");
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                }
                Err(CodecError::Registry(reason)) if reason.contains("409") => {
                    return Err(CodecError::Incompatible { subject, reason });
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Sets BACKWARD compatibility on a subject. A 409 from a registry racing another
    /// service setting the same subject is retried, and accepted once the subject says BACKWARD.
    pub async fn set_backward(&self, subject: &str) -> Result<(), CodecError> {
        let url = format!("{}/config/{}", self.url, subject);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self
                .http
                .put(&url)
                .header("content-type", "application/vnd.schemaregistry.v1+json")
                .body(r#"{"compatibility":"BACKWARD"}"#)
                .send()
                .await
                .map_err(|e| CodecError::RegistryUnavailable(e.to_string()))?;
            if resp.status() != reqwest::StatusCode::CONFLICT {
                return status_ok(resp.status(), "PUT /config");
            }
            if self.is_backward(&url).await {
                return Ok(());
            }
            if attempt >= CONFLICT_ATTEMPTS {
                return status_ok(resp.status(), "PUT /config");
            }
            tracing::info!(%subject, attempt, "setting compatibility conflicted with another writer; retrying");
            tokio::time::sleep(conflict_backoff(attempt)).await;
        }
    }

    /// Whether the subject's compatibility (as `GET /config/{subject}` reports it) is BACKWARD.
    async fn is_backward(&self, config_url: &str) -> bool {
        match self.http.get(config_url).send().await {
            Ok(resp) if resp.status().is_success() => resp.text().await.is_ok_and(|body| body.contains("\"BACKWARD\"")),
            _ => false,
        }
    }

    /// The latest schema registered under a subject, if any.
    pub async fn latest_schema(&self, subject: &str) -> Result<Option<Schema>, CodecError> {
        let url = format!("{}/subjects/{}/versions/latest", self.url, subject);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| CodecError::RegistryUnavailable(e.to_string()))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        status_ok(resp.status(), "GET /subjects/../versions/latest")?;
        let latest: LatestSchema = resp.json().await.map_err(|e| CodecError::Registry(e.to_string()))?;
        Schema::parse_str(&latest.schema)
            .map(Some)
            .map_err(|e| CodecError::Registry(e.to_string()))
    }
}

/// Attempts at a registry write that conflicts with a concurrent writer of the same subject.
const CONFLICT_ATTEMPTS: u32 = 6;

/// 100, 200, 400, … ms, with a little jitter so racing services do not collide again.
fn conflict_backoff(attempt: u32) -> std::time::Duration {
    let base = 100u64 << attempt.min(6);
    let jitter = u64::from(std::process::id() % 50);
    std::time::Duration::from_millis(base + jitter)
}

fn status_ok(status: reqwest::StatusCode, what: &str) -> Result<(), CodecError> {
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() {
        Err(CodecError::RegistryUnavailable(format!("{what}: HTTP {status}")))
    } else {
        Err(CodecError::Registry(format!("{what}: HTTP {status}")))
    }
}

/// Checks the framing before asking the registry anything.
pub fn check_wire_format(bytes: &[u8]) -> Result<(), CodecError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    if bytes.len() < 5 {
        return Err(CodecError::NotWireFormat(format!(
            "{} bytes, need at least 5",
            bytes.len()
        )));
    }
    if bytes[0] != 0 {
        return Err(CodecError::NotWireFormat(format!(
            "magic byte is {:#04x}, expected 0x00",
            bytes[0]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_checked_before_the_registry() {
        assert!(matches!(check_wire_format(b""), Err(CodecError::NotWireFormat(_))));
        assert!(matches!(
            check_wire_format(b"{\"json\":1}"),
            Err(CodecError::NotWireFormat(_))
        ));
        assert!(matches!(check_wire_format(&[0, 0, 0, 0, 1, 2]), Ok(())));
        let big = vec![0u8; MAX_RECORD_BYTES + 1];
        assert!(matches!(check_wire_format(&big), Err(CodecError::TooLarge(_))));
    }
}
