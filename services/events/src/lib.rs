//! Avro contracts of every selfheal topic and their Confluent wire-format codec.
//!
//! The Rust types in this crate are the source of truth: each derives its Avro schema,
//! and `schemas/*.avsc` at the repository root are generated from them (see
//! [`schemas::write_all`]). A test keeps the two from drifting apart and round-trips the
//! example record kept next to each schema.
//!
//! Every record travels as Confluent wire format (magic byte 0, 4-byte schema id, Avro
//! body) through `schema_registry_converter`, under `<topic>-value` / `<topic>-key`
//! subjects, so any Kafka client in any language can subscribe.

pub mod codec;
pub mod common;
pub mod examples;
pub mod records;
pub mod schemas;
pub mod topics;

pub use codec::{Codec, CodecError};
pub use common::*;
pub use records::*;
pub use topics::*;

/// A record that lives on one selfheal topic: its topic, its Avro schema, its key.
pub trait Record:
    serde::Serialize
    + serde::de::DeserializeOwned
    + apache_avro::AvroSchema
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The topic this record type is written to (its default name; deployments may prefix it).
    const TOPIC: &'static str;
    /// The file name of its schema under `schemas/`, without extension.
    const SCHEMA_FILE: &'static str;
    /// The Kafka key: the service for telemetry, the incident id for everything after it.
    fn key(&self) -> String;
}
