//! Reading pipeline topics outside a stage: bounded reads up to the end offsets taken at
//! start (record, pending, the demo's report) and unbounded tails (tail, the demo timeline).
//!
//! These readers assign partitions explicitly instead of joining a consumer group: a CLI
//! that only looks must not trigger a rebalance of, or commit offsets for, the services'
//! own groups, and explicit assignment starts in milliseconds where a group join takes seconds.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use selfheal_core::KafkaArgs;

/// How long metadata and watermark requests may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition to read and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRange {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset present (low watermark).
    pub low: i64,
    /// Offset of the next record to be written (high watermark) when the range was taken.
    pub high: i64,
}

/// Where an unbounded read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still present.
    Beginning,
    /// Only records written from now on.
    End,
    /// The last `n` records of each partition.
    LastPerPartition(i64),
}

fn reader_config(kafka: &KafkaArgs) -> Result<rdkafka::ClientConfig> {
    let mut cfg = selfheal_core::kafka::client_config(kafka).map_err(|e| anyhow!(e))?;
    // A group id is required by librdkafka even with manual assignment; nothing is committed under it.
    cfg.set("group.id", format!("selfheal-cli-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    Ok(cfg)
}

/// Partitions of `topics` with their watermarks now (a blocking call; run it off the async workers).
pub fn partition_ranges(kafka: &KafkaArgs, topics: &[String]) -> Result<Vec<PartitionRange>> {
    let consumer: BaseConsumer = reader_config(kafka)?.create().context("creating a Kafka client")?;
    let mut ranges = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .with_context(|| format!("reading metadata of topic {topic} from {}", kafka.brokers))?;
        for t in metadata.topics() {
            if let Some(err) = t.error() {
                return Err(anyhow!(
                    "topic {topic}: {:?} (does it exist?)",
                    rdkafka::error::RDKafkaErrorCode::from(err)
                ));
            }
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(topic, p.id(), METADATA_TIMEOUT)
                    .with_context(|| format!("reading offsets of {topic}/{}", p.id()))?;
                ranges.push(PartitionRange {
                    topic: topic.clone(),
                    partition: p.id(),
                    low,
                    high,
                });
            }
        }
    }
    ranges.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(ranges)
}

/// [`partition_ranges`] on a blocking thread.
pub async fn partition_ranges_async(kafka: &KafkaArgs, topics: &[String]) -> Result<Vec<PartitionRange>> {
    let kafka = kafka.clone();
    let topics = topics.to_vec();
    tokio::task::spawn_blocking(move || partition_ranges(&kafka, &topics))
        .await
        .context("metadata task")?
}

/// A consumer assigned to `ranges`, each starting at the offset `start` gives it.
pub fn assigned_consumer(kafka: &KafkaArgs, ranges: &[PartitionRange], start: StartAt) -> Result<StreamConsumer> {
    let consumer: StreamConsumer = reader_config(kafka)?.create().context("creating a Kafka consumer")?;
    let mut tpl = TopicPartitionList::new();
    for r in ranges {
        let offset = match start {
            StartAt::Beginning => Offset::Beginning,
            StartAt::End => Offset::Offset(r.high),
            StartAt::LastPerPartition(n) => Offset::Offset((r.high - n).max(r.low)),
        };
        tpl.add_partition_offset(&r.topic, r.partition, offset)
            .context("building the assignment")?;
    }
    consumer.assign(&tpl).context("assigning partitions")?;
    Ok(consumer)
}

/// A raw record as read, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Producer or broker timestamp, epoch milliseconds.
    pub timestamp_ms: Option<i64>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers in order (a header may repeat or have no value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl RawRecord {
    /// Copies a borrowed message.
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        RawRecord {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Reads every record of `topics` present now (up to the end offsets taken at start), in
/// partition order, calling `each`; returns how many were read. `idle` bounds the wait for
/// a record the watermarks promise.
pub async fn read_to_end(
    kafka: &KafkaArgs,
    topics: &[String],
    idle: Duration,
    mut each: impl FnMut(RawRecord),
) -> Result<u64> {
    let ranges: Vec<PartitionRange> = partition_ranges_async(kafka, topics)
        .await?
        .into_iter()
        .filter(|r| r.high > r.low)
        .collect();
    if ranges.is_empty() {
        return Ok(0);
    }
    let consumer = assigned_consumer(kafka, &ranges, StartAt::Beginning)?;
    let mut remaining: HashMap<(String, i32), i64> = ranges
        .iter()
        .map(|r| ((r.topic.clone(), r.partition), r.high))
        .collect();
    let mut n = 0u64;
    while !remaining.is_empty() {
        let msg = tokio::time::timeout(idle, consumer.recv())
            .await
            .map_err(|_| {
                anyhow!(
                    "no record for {}s while {} partition(s) had records left to read",
                    idle.as_secs(),
                    remaining.len()
                )
            })?
            .context("reading from Kafka")?;
        let key = (msg.topic().to_string(), msg.partition());
        let Some(high) = remaining.get(&key).copied() else {
            continue;
        };
        if msg.offset() < high {
            each(RawRecord::from_message(&msg));
            n += 1;
        }
        // Offsets may have gaps (transaction markers, compaction): reaching high - 1 or beyond ends the partition.
        if msg.offset() + 1 >= high {
            remaining.remove(&key);
        }
    }
    Ok(n)
}

/// Creates the topics of `topics` that do not exist yet. Existing topics need no admin
/// request at all (the embedded mock cluster does not answer them); a failed creation is
/// logged, not fatal, since brokers that auto-create topics still accept the records.
pub async fn ensure_topics(kafka: &KafkaArgs, topics: &[String]) {
    let mut missing = Vec::new();
    for t in topics {
        match partition_ranges_async(kafka, std::slice::from_ref(t)).await {
            Ok(r) if !r.is_empty() => {}
            _ => missing.push(t.clone()),
        }
    }
    if missing.is_empty() {
        return;
    }
    match tokio::time::timeout(
        Duration::from_secs(15),
        selfheal_core::kafka::ensure_topics(kafka, &missing),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("creating {missing:?}: {e}; relying on the broker creating them on first write"),
        Err(_) => tracing::warn!("creating {missing:?} timed out; relying on the broker creating them on first write"),
    }
}
