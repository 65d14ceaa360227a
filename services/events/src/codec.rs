//! Confluent wire-format codec: records to and from `magic byte · schema id · Avro body`,
//! against any registry that speaks the Confluent REST API.
//!
//! Schemas are registered through `schema_registry_converter`; the bodies are written and
//! read here, with every schema parsed once and every writer schema's resolution against a
//! Rust type decided once (see [`Codec`]).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use apache_avro::AvroSchema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{NamesRef, RecordField, ResolvedSchema, Schema};
use apache_avro::schema_compatibility::SchemaCompatibility;
use schema_registry_converter::async_impl::avro::AvroEncoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::avro_common::get_supplied_schema;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;
use serde::{Deserialize, Serialize};

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

/// A schema id this codec has written under a topic: (record type, is the key, schema id).
type SubjectId = (TypeId, bool, u32);

/// Encodes and decodes records, registering schemas on first use.
///
/// Everything that does not depend on the record is done once and kept: each record type's
/// schema is derived and its names resolved once per process; the schema id of each
/// (topic, type) is looked up or registered once per codec; each writer schema is fetched once
/// per schema id, and how it is read into each Rust type (the plan) is decided once per
/// (schema id, type). Per record, only the Avro body is written or read, straight from or into
/// the Rust type through serde, without building a generic `Value`.
pub struct Codec {
    url: String,
    http: reqwest::Client,
    /// Registers schemas (and looks up their ids) the first time a subject is used.
    encoder: AvroEncoder,
    /// Schema id of each (topic, type, key or value) this codec has written.
    ids: RwLock<HashMap<String, Vec<SubjectId>>>,
    /// Writer schemas by the id in the frame, fetched once.
    writers: RwLock<HashMap<u32, &'static WriterSchema>>,
    /// How records written with a schema id are read into a type.
    plans: RwLock<HashMap<(TypeId, u32), Plan>>,
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

/// `GET /schemas/ids/{id}`: the schema text and its type (absent means Avro).
#[derive(Deserialize)]
struct SchemaById {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

impl Codec {
    /// A codec for the registry at `url` (e.g. `http://127.0.0.1:8085/apis/ccompat/v7`).
    pub fn new(url: &str) -> Result<Self, CodecError> {
        let url = url.trim_end_matches('/').to_string();
        let settings = SrSettings::new_builder(url.clone())
            .set_timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(from_src)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| CodecError::Registry(e.to_string()))?;
        Ok(Codec {
            encoder: AvroEncoder::new(settings),
            url,
            http,
            ids: RwLock::default(),
            writers: RwLock::default(),
            plans: RwLock::default(),
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
        let schema = TypeSchema::of::<R>()?;
        let id = self.subject_id::<R>(topic, false, schema).await?;
        schema.frame(id, record)
    }

    /// Encodes the key of a record type: a `ServiceKey` for telemetry, an `IncidentKey` after it.
    pub async fn encode_key<R: Record>(&self, topic: &str, key: &str) -> Result<Vec<u8>, CodecError> {
        if R::TOPIC == crate::topics::TELEMETRY_RAW {
            let schema = TypeSchema::of::<crate::ServiceKey>()?;
            let id = self.subject_id::<crate::ServiceKey>(topic, true, schema).await?;
            schema.frame(id, &ServiceKeyRef { service: key })
        } else {
            let schema = TypeSchema::of::<crate::IncidentKey>()?;
            let id = self.subject_id::<crate::IncidentKey>(topic, true, schema).await?;
            schema.frame(id, &IncidentKeyRef { incident_id: key })
        }
    }

    /// The schema id of `T` under `<topic>-key` or `<topic>-value`, registered on first use.
    async fn subject_id<T: AvroSchema + 'static>(
        &self,
        topic: &str,
        is_key: bool,
        schema: &TypeSchema,
    ) -> Result<u32, CodecError> {
        let ty = TypeId::of::<T>();
        if let Some(id) = self.cached_id(topic, ty, is_key) {
            return Ok(id);
        }
        let subject = if is_key {
            key_subject(topic)
        } else {
            value_subject(topic)
        };
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_string(),
            is_key,
            get_supplied_schema(schema.schema),
        );
        let id = self
            .encoder
            .get_schema_and_id(&subject, strategy)
            .await
            .map_err(from_src)?
            .id;
        self.remember_id(topic, ty, is_key, id);
        Ok(id)
    }

    fn cached_id(&self, topic: &str, ty: TypeId, is_key: bool) -> Option<u32> {
        read(&self.ids)
            .get(topic)?
            .iter()
            .find(|(t, k, _)| *t == ty && *k == is_key)
            .map(|(_, _, id)| *id)
    }

    fn remember_id(&self, topic: &str, ty: TypeId, is_key: bool, id: u32) {
        let mut ids = write(&self.ids);
        let entries = ids.entry(topic.to_string()).or_default();
        entries.retain(|(t, k, _)| !(*t == ty && *k == is_key));
        entries.push((ty, is_key, id));
    }

    /// Decodes a value written in the Confluent wire format into `R`, resolving the writer's
    /// schema (fetched by id) against `R`'s schema so older records still decode.
    pub async fn decode<R: Record>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        check_wire_format(bytes)?;
        let id = frame_id(bytes);
        let body = &bytes[5..];
        let key = (TypeId::of::<R>(), id);
        if let Some(decoded) = read(&self.plans).get(&key).map(|plan| plan.decode::<R>(body)) {
            return decoded;
        }
        // The first record of this schema id for this type: fetch the writer's schema and
        // decide, once, how its records are read into `R`.
        let writer = self.writer(id).await?;
        let plan = Plan::compile(writer, TypeSchema::of::<R>()?)?;
        let decoded = plan.decode::<R>(body);
        write(&self.plans).entry(key).or_insert(plan);
        decoded
    }

    /// Decodes a value into JSON without knowing its type (for `selfheal tail`).
    pub async fn decode_json(&self, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        check_wire_format(bytes)?;
        let writer = self.writer(frame_id(bytes)).await?;
        let value = writer
            .reader
            .read_value(&mut &bytes[5..])
            .map_err(|e| CodecError::Avro(e.to_string()))?;
        serde_json::Value::try_from(value).map_err(|e| CodecError::Avro(e.to_string()))
    }

    /// The writer schema registered under `id`, fetched from the registry the first time.
    async fn writer(&self, id: u32) -> Result<&'static WriterSchema, CodecError> {
        if let Some(w) = read(&self.writers).get(&id) {
            return Ok(w);
        }
        // `deleted=true`: records written before a version was soft-deleted still decode.
        let url = format!("{}/schemas/ids/{id}?deleted=true", self.url);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| CodecError::RegistryUnavailable(format!("GET /schemas/ids/{id}: {e}")))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(CodecError::Registry(format!(
                "schema id {id} is unknown to the registry at {}",
                self.url
            )));
        }
        status_ok(resp.status(), &format!("GET /schemas/ids/{id}"))?;
        let found: SchemaById = resp
            .json()
            .await
            .map_err(|e| CodecError::Registry(format!("GET /schemas/ids/{id}: {e}")))?;
        if let Some(kind) = found.schema_type.as_deref().filter(|k| !k.eq_ignore_ascii_case("AVRO")) {
            return Err(CodecError::Registry(format!(
                "schema id {id} is a {kind} schema, not Avro"
            )));
        }
        let writer = WriterSchema::intern(&found.schema)?;
        write(&self.writers).insert(id, writer);
        Ok(writer)
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
                Ok(s) => {
                    self.remember_id(topic, TypeId::of::<R>(), false, s.id);
                    return Ok(s.id);
                }
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

/// The schema id of a framed record (the caller checked the framing).
fn frame_id(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])
}

// The caches only ever gain complete entries, so one left behind by a panicking thread is
// still sound: recover it rather than fail every later record.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// `ServiceKey` borrowed from the record, so encoding a key copies no string.
#[derive(Serialize)]
struct ServiceKeyRef<'a> {
    service: &'a str,
}

/// `IncidentKey` borrowed from the record.
#[derive(Serialize)]
struct IncidentKeyRef<'a> {
    incident_id: &'a str,
}

/// A Rust type's Avro schema, derived and name-resolved once per process.
///
/// Schemas live for the whole process (`'static`) so the readers and writers built on them
/// can be kept: there is one per record type, a fixed handful.
struct TypeSchema {
    schema: &'static Schema,
    resolved: ResolvedSchema<'static>,
    /// The largest body written so far (bounded), so buffers are allocated once per record.
    size_hint: AtomicUsize,
}

/// Bodies above this size do not raise the buffer size hint (a rare huge record should not
/// make every later buffer huge).
const MAX_SIZE_HINT: usize = 64 * 1024;

impl TypeSchema {
    fn of<T: AvroSchema + 'static>() -> Result<&'static TypeSchema, CodecError> {
        static TYPES: OnceLock<RwLock<HashMap<TypeId, &'static TypeSchema>>> = OnceLock::new();
        let types = TYPES.get_or_init(RwLock::default);
        let ty = TypeId::of::<T>();
        if let Some(found) = read(types).get(&ty) {
            return Ok(found);
        }
        let mut types = write(types);
        if let Some(found) = types.get(&ty) {
            return Ok(found);
        }
        let schema: &'static Schema = Box::leak(Box::new(T::get_schema()));
        let resolved = ResolvedSchema::new(schema).map_err(|e| CodecError::Avro(format!("schema of the type: {e}")))?;
        let entry: &'static TypeSchema = Box::leak(Box::new(TypeSchema {
            schema,
            resolved,
            size_hint: AtomicUsize::new(64),
        }));
        types.insert(ty, entry);
        Ok(entry)
    }

    /// `0x00 · id · body`, the body written straight from `value` through serde.
    fn frame<T: Serialize>(&self, id: u32, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut buf = Vec::with_capacity(5 + self.size_hint.load(Ordering::Relaxed));
        buf.push(0);
        buf.extend_from_slice(&id.to_be_bytes());
        apache_avro::write_avro_datum_ref(self.schema, self.resolved.get_names(), value, &mut buf)
            .map_err(|e| CodecError::Avro(format!("record does not fit its schema: {e}")))?;
        let body = buf.len() - 5;
        if body <= MAX_SIZE_HINT {
            self.size_hint.fetch_max(body, Ordering::Relaxed);
        }
        Ok(buf)
    }
}

/// A schema some producer wrote with, as fetched from the registry.
struct WriterSchema {
    schema: &'static Schema,
    resolved: ResolvedSchema<'static>,
    /// Reads bodies as written: into a `Value`, or straight into a type through serde.
    reader: GenericDatumReader<'static>,
}

impl WriterSchema {
    /// The writer schema for this text, parsed once per process: schema ids differ between
    /// registries and codecs, the schemas behind them are few.
    fn intern(text: &str) -> Result<&'static WriterSchema, CodecError> {
        static WRITERS: OnceLock<RwLock<HashMap<String, &'static WriterSchema>>> = OnceLock::new();
        let writers = WRITERS.get_or_init(RwLock::default);
        if let Some(found) = read(writers).get(text) {
            return Ok(found);
        }
        let schema = Schema::parse_str(text).map_err(|e| CodecError::Registry(format!("writer schema: {e}")))?;
        let mut writers = write(writers);
        if let Some(found) = writers.get(text) {
            return Ok(found);
        }
        let schema: &'static Schema = Box::leak(Box::new(schema));
        let resolved = ResolvedSchema::new(schema).map_err(|e| CodecError::Registry(format!("writer schema: {e}")))?;
        let reader = GenericDatumReader::builder(schema)
            .resolved_writer_schemata(resolved.clone())
            .build()
            .map_err(|e| CodecError::Registry(format!("writer schema: {e}")))?;
        let writer: &'static WriterSchema = Box::leak(Box::new(WriterSchema {
            schema,
            resolved,
            reader,
        }));
        writers.insert(text.to_string(), writer);
        Ok(writer)
    }
}

/// How records written with one schema are read into one Rust type, decided once.
enum Plan {
    /// The writer's schema is the type's, or differs only in ways serde resolves exactly as
    /// Avro does (fields the type lacks are skipped, optional fields the writer lacks are
    /// `None`, fields in another order): read the body straight into the type.
    Direct(&'static WriterSchema),
    /// Anything else Avro resolution allows (promotions, non-null defaults, changed enums or
    /// unions): read a `Value`, resolve it against the type's schema, deserialize. The schemas
    /// are still parsed and name-resolved once; only the value is resolved per record.
    Resolve(GenericDatumReader<'static>),
}

impl Plan {
    fn compile(writer: &'static WriterSchema, reader: &'static TypeSchema) -> Result<Plan, CodecError> {
        let mut seen = Vec::new();
        if serde_reads_directly(
            writer.schema,
            writer.resolved.get_names(),
            reader.schema,
            reader.resolved.get_names(),
            &mut seen,
        ) {
            return Ok(Plan::Direct(writer));
        }
        let resolving = GenericDatumReader::builder(writer.schema)
            .resolved_writer_schemata(writer.resolved.clone())
            .reader_schema(reader.schema)
            .resolved_reader_schemata(reader.resolved.clone())
            .build()
            .map_err(|e| CodecError::Avro(e.to_string()))?;
        Ok(Plan::Resolve(resolving))
    }

    fn decode<R: Record>(&self, mut body: &[u8]) -> Result<R, CodecError> {
        match self {
            Plan::Direct(writer) => writer
                .reader
                .read_deser::<R>(&mut body)
                .map_err(|e| CodecError::Avro(e.to_string())),
            Plan::Resolve(reader) => {
                let value = reader
                    .read_value(&mut body)
                    .map_err(|e| CodecError::Avro(e.to_string()))?;
                apache_avro::from_value::<R>(&value).map_err(|e| CodecError::Avro(e.to_string()))
            }
        }
    }
}

/// Whether serde, reading a body with the writer's schema into the type of `reader`, gets
/// exactly what Avro schema resolution would. Conservative: anything it does not recognise
/// goes through full resolution.
fn serde_reads_directly(
    writer: &Schema,
    writer_names: &NamesRef<'_>,
    reader: &Schema,
    reader_names: &NamesRef<'_>,
    seen: &mut Vec<(usize, usize)>,
) -> bool {
    let (Some(writer), Some(reader)) = (deref(writer, writer_names), deref(reader, reader_names)) else {
        return false;
    };
    macro_rules! same {
        ($w:expr, $r:expr) => {
            serde_reads_directly($w, writer_names, $r, reader_names, seen)
        };
    }
    match (writer, reader) {
        (Schema::Record(w), Schema::Record(r)) => {
            // serde matches a struct by its name and its fields by theirs.
            if w.name.name() != r.name.name() {
                return false;
            }
            let pair = (std::ptr::from_ref(w) as usize, std::ptr::from_ref(r) as usize);
            if seen.contains(&pair) {
                return true; // a recursive type: already being checked further up
            }
            seen.push(pair);
            r.fields.iter().all(|rf| match w.lookup.get(&rf.name) {
                Some(&i) => w.fields.get(i).is_some_and(|wf| same!(&wf.schema, &rf.schema)),
                None => rf.aliases.is_empty() && defaults_to_none(rf),
            })
        }
        (Schema::Union(w), Schema::Union(r)) => {
            w.variants().len() == r.variants().len() && w.variants().iter().zip(r.variants()).all(|(w, r)| same!(w, r))
        }
        (Schema::Array(w), Schema::Array(r)) => same!(&w.items, &r.items),
        (Schema::Map(w), Schema::Map(r)) => same!(&w.types, &r.types),
        (Schema::Enum(w), Schema::Enum(r)) => w.name.name() == r.name.name() && w.symbols == r.symbols,
        (Schema::Record(_) | Schema::Union(_) | Schema::Array(_) | Schema::Map(_) | Schema::Enum(_), _)
        | (_, Schema::Record(_) | Schema::Union(_) | Schema::Array(_) | Schema::Map(_) | Schema::Enum(_)) => false,
        // Primitives, fixed and logical types: only the very same type reads directly.
        (w, r) => w.canonical_form() == r.canonical_form(),
    }
}

fn deref<'a>(schema: &'a Schema, names: &NamesRef<'a>) -> Option<&'a Schema> {
    match schema {
        Schema::Ref { name } => names.get(name).copied(),
        other => Some(other),
    }
}

/// An optional field (`["null", T]`, default null): serde gives `None` when it is absent.
fn defaults_to_none(field: &RecordField) -> bool {
    matches!(&field.schema, Schema::Union(u) if u.variants().len() == 2 && matches!(u.variants()[0], Schema::Null))
        && matches!(field.default, Some(serde_json::Value::Null))
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
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    use crate::{TelemetryEvent, examples};

    /// The schema JSON of `TelemetryEvent`, edited by `edit`, as a registry would hand it out.
    fn telemetry_writer(edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> &'static WriterSchema {
        let mut json = serde_json::to_value(TelemetryEvent::get_schema()).unwrap();
        edit(json["fields"].as_array_mut().unwrap());
        WriterSchema::intern(&json.to_string()).unwrap()
    }

    /// Writes `value` with the writer's schema, as an older producer would have.
    fn written_with(writer: &WriterSchema, value: apache_avro::types::Value) -> Vec<u8> {
        apache_avro::writer::datum::GenericDatumWriter::builder(writer.schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap()
    }

    fn record_fields(value: &mut apache_avro::types::Value) -> &mut Vec<(String, apache_avro::types::Value)> {
        match value {
            apache_avro::types::Value::Record(fields) => fields,
            other => panic!("not a record: {other:?}"),
        }
    }

    /// What the generic path (decode a `Value`, resolve, deserialize) makes of the same body.
    fn by_resolution(writer: &WriterSchema, body: &[u8]) -> TelemetryEvent {
        let reader = TypeSchema::of::<TelemetryEvent>().unwrap();
        #[allow(deprecated)]
        let value = apache_avro::from_avro_datum(writer.schema, &mut &body[..], Some(reader.schema)).unwrap();
        apache_avro::from_value(&value).unwrap()
    }

    #[test]
    fn the_types_own_schema_is_read_directly_and_round_trips() {
        let writer = telemetry_writer(|_| {});
        let plan = Plan::compile(writer, TypeSchema::of::<TelemetryEvent>().unwrap()).unwrap();
        assert!(matches!(plan, Plan::Direct(_)));
        let ev = examples::telemetry_event();
        let framed = TypeSchema::of::<TelemetryEvent>().unwrap().frame(7, &ev).unwrap();
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 7], "magic byte and big-endian schema id");
        let back: TelemetryEvent = plan.decode(&framed[5..]).unwrap();
        assert_eq!(back, ev);
        // Any Avro reader gets the same record back (the bytes differ from the generic path's
        // only in the order of map entries, which a `HashMap` does not keep).
        #[allow(deprecated)]
        let generic = apache_avro::from_avro_datum(&TelemetryEvent::get_schema(), &mut &framed[5..], None).unwrap();
        assert_eq!(apache_avro::from_value::<TelemetryEvent>(&generic).unwrap(), ev);
    }

    #[test]
    fn an_older_writer_missing_an_optional_field_and_with_a_dropped_one_is_read_directly() {
        // Older producer: no `environment` yet, and a `legacy` field today's type dropped,
        // in another position.
        let writer = telemetry_writer(|fields| {
            fields.retain(|f| f["name"] != "environment");
            fields.insert(
                2,
                serde_json::json!({"name": "legacy", "type": {"type": "array", "items": "string"}}),
            );
        });
        let plan = Plan::compile(writer, TypeSchema::of::<TelemetryEvent>().unwrap()).unwrap();
        assert!(
            matches!(plan, Plan::Direct(_)),
            "no per-record resolution for this evolution"
        );
        let mut ev = examples::telemetry_event();
        let mut value = apache_avro::to_value(&ev).unwrap();
        let fields = record_fields(&mut value);
        fields.retain(|(k, _)| k != "environment");
        fields.insert(
            2,
            (
                "legacy".into(),
                apache_avro::types::Value::Array(vec![apache_avro::types::Value::String("x".into())]),
            ),
        );
        let body = written_with(writer, value);
        let back: TelemetryEvent = plan.decode(&body).unwrap();
        ev.environment = None;
        assert_eq!(back, ev);
        assert_eq!(back, by_resolution(writer, &body), "same as Avro resolution");
    }

    #[test]
    fn a_promoted_field_goes_through_resolution() {
        // An older producer wrote `duration_ms` as a float: Avro promotes it to double.
        let writer = telemetry_writer(|fields| {
            for f in fields.iter_mut() {
                if f["name"] == "duration_ms" {
                    f["type"] = serde_json::json!(["null", "float"]);
                }
            }
        });
        let plan = Plan::compile(writer, TypeSchema::of::<TelemetryEvent>().unwrap()).unwrap();
        assert!(matches!(plan, Plan::Resolve(_)));
        let mut ev = examples::telemetry_event();
        ev.duration_ms = Some(12.5);
        let mut value = apache_avro::to_value(&ev).unwrap();
        for (k, v) in record_fields(&mut value).iter_mut() {
            if k == "duration_ms" {
                *v = apache_avro::types::Value::Union(1, Box::new(apache_avro::types::Value::Float(12.5)));
            }
        }
        let body = written_with(writer, value);
        let back: TelemetryEvent = plan.decode(&body).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn a_required_field_the_writer_lacks_is_an_error_not_a_default() {
        let writer = telemetry_writer(|fields| fields.retain(|f| f["name"] != "source"));
        let plan = Plan::compile(writer, TypeSchema::of::<TelemetryEvent>().unwrap()).unwrap();
        assert!(
            matches!(plan, Plan::Resolve(_)),
            "serde would not know what `source` should be"
        );
        let mut value = apache_avro::to_value(examples::telemetry_event()).unwrap();
        record_fields(&mut value).retain(|(k, _)| k != "source");
        let body = written_with(writer, value);
        assert!(matches!(plan.decode::<TelemetryEvent>(&body), Err(CodecError::Avro(_))));
    }

    #[test]
    fn a_changed_enum_goes_through_resolution() {
        let writer = telemetry_writer(|fields| {
            for f in fields.iter_mut() {
                if f["name"] == "kind" {
                    f["type"]["symbols"] = serde_json::json!(["Span", "Log", "Metric"]);
                }
            }
        });
        let plan = Plan::compile(writer, TypeSchema::of::<TelemetryEvent>().unwrap()).unwrap();
        assert!(matches!(plan, Plan::Resolve(_)));
    }

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
