//! Shared helpers of the integration tests: where the real broker and registry are, random
//! topic and group names, a configurable test stage, and produce/consume helpers.
//!
//! The broker address comes from `SELFHEAL_KAFKA_BROKERS` (default `127.0.0.1:9092`) and the
//! registry from `SELFHEAL_SCHEMA_REGISTRY_URL` (default Apicurio's ccompat API on 8085).
//! A test fails when they are missing (`scripts/test.sh` starts both), unless
//! `SELFHEAL_REQUIRE_BROKER=0` says it may skip: see [`require`].

pub mod examples;
pub mod fake_model;
pub mod pipeline;
pub mod require;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{Anomaly, TelemetryEvent};

/// Bootstrap servers of the real broker.
pub fn brokers() -> String {
    std::env::var("SELFHEAL_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// URL of the real registry's Confluent-compatible API.
pub fn registry_url() -> String {
    std::env::var("SELFHEAL_SCHEMA_REGISTRY_URL").unwrap_or_else(|_| "http://127.0.0.1:8085/apis/ccompat/v7".into())
}

/// A unique name for a topic or group of one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Whether the real broker answers. When it does not, fails the test with how to start it,
/// unless `SELFHEAL_REQUIRE_BROKER=0`: then prints why it skips and gives `false`, on which the
/// test returns (see [`require`]). A caller that ignores the `false` fails later instead of
/// skipping, which is the safe side.
pub async fn require_broker() -> bool {
    let args = selfheal_core::KafkaArgs::for_brokers(&brokers());
    let found = selfheal_core::kafka::probe(&args)
        .await
        .map_err(|e| format!("no answer from {} ({e})", args.brokers));
    require::present(&require::BROKER, found).is_some()
}

/// Attribute that makes the test stage sleep this many milliseconds.
pub const ATTR_SLEEP_MS: &str = "test.sleep_ms";
/// Attribute that makes the test stage fail transiently this many times first.
pub const ATTR_TRANSIENT: &str = "test.transient_failures";
/// Attribute that makes the test stage reject the record as invalid.
pub const ATTR_INVALID: &str = "test.invalid";

/// A stage for runner tests: one Anomaly per TelemetryEvent, keyed by the event id, with
/// behaviour chosen by the event's attributes (sleep, transient failures, invalid).
#[derive(Default)]
pub struct EchoStage {
    failures: Mutex<HashMap<String, u32>>,
    seen: Mutex<HashSet<String>>,
}

impl EchoStage {
    /// Events processed at least once.
    pub fn seen(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

#[async_trait]
impl Stage for EchoStage {
    type Input = TelemetryEvent;
    type Output = Anomaly;

    fn name(&self) -> &'static str {
        "echo"
    }

    async fn process(&self, input: TelemetryEvent, _ctx: &RecordContext) -> Result<Vec<Anomaly>, StageError> {
        if input.attributes.contains_key(ATTR_INVALID) {
            return Err(StageError::Invalid(format!(
                "event {} is marked invalid",
                input.event_id
            )));
        }
        if let Some(n) = input.attributes.get(ATTR_TRANSIENT).and_then(|v| v.parse::<u32>().ok()) {
            let mut f = self.failures.lock().map_err(|_| StageError::Fatal("poisoned".into()))?;
            let done = f.entry(input.event_id.clone()).or_insert(0);
            if *done < n {
                *done += 1;
                return Err(StageError::Transient(format!("simulated outage {}/{n}", *done)));
            }
        }
        if let Some(ms) = input.attributes.get(ATTR_SLEEP_MS).and_then(|v| v.parse::<u64>().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Ok(mut s) = self.seen.lock() {
            s.insert(input.event_id.clone());
        }
        Ok(vec![Anomaly {
            incident_id: input.event_id.clone(),
            service: input.service.clone(),
            fingerprint: "echo".into(),
            summary: format!("echo of {}", input.event_id),
            detected_ms: selfheal_core::now_ms(),
            ..Default::default()
        }])
    }
}

/// A telemetry event with a fresh id and the given attributes.
pub fn event(service: &str, attrs: &[(&str, &str)]) -> TelemetryEvent {
    TelemetryEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        service: service.into(),
        name: "POST /price".into(),
        timestamp_ms: selfheal_core::now_ms(),
        observed_ms: selfheal_core::now_ms(),
        attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        source: "test".into(),
        ..Default::default()
    }
}

/// A plain producer for test input (raw bytes, own headers).
pub fn raw_producer(brokers: &str) -> FutureProducer {
    #[allow(clippy::expect_used)]
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer config is valid")
}

/// Produces raw bytes with headers and waits for the ack.
pub async fn produce_raw(
    p: &FutureProducer,
    topic: &str,
    key: &[u8],
    value: &[u8],
    headers: &[(&str, &str)],
) -> (i32, i64) {
    let mut h = OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    match p
        .send(
            FutureRecord::to(topic).key(key).payload(value).headers(h),
            Duration::from_secs(10),
        )
        .await
    {
        Ok(d) => (d.partition, d.offset),
        Err((e, _)) => panic!("produce to {topic} failed: {e}"),
    }
}

/// One consumed record, owned.
#[derive(Debug, Clone)]
pub struct Consumed {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Vec<u8>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// UTF-8 headers.
    pub headers: HashMap<String, String>,
}

/// Reads `topic` from the beginning until `want` records arrived or `timeout` passed.
pub async fn consume(brokers: &str, topic: &str, want: usize, timeout: Duration) -> Vec<Consumed> {
    #[allow(clippy::expect_used)]
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer config is valid");
    #[allow(clippy::expect_used)]
    c.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < want {
        let Ok(Ok(m)) = tokio::time::timeout_at(deadline, c.recv()).await else {
            break;
        };
        let mut headers = HashMap::new();
        if let Some(h) = m.headers() {
            for x in h.iter() {
                if let Some(v) = x.value.and_then(|v| std::str::from_utf8(v).ok()) {
                    headers.insert(x.key.to_string(), v.to_string());
                }
            }
        }
        out.push(Consumed {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().unwrap_or_default().to_vec(),
            value: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    out
}
