//! `selfheal record` and `selfheal replay`: incident topics as files, so a recorded
//! incident can be produced again as a regression suite.
//!
//! A recording is JSON lines: a header line, then one line per record with its key,
//! value and headers as base64 (bytes are kept exactly) and its original position and
//! timestamp. Values stay in the Confluent wire format, whose first bytes carry the
//! schema id of the registry they were written with: replay into a cluster that uses the
//! same registry (or one holding the same ids), or consumers will not find the schema.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use selfheal_core::{KafkaArgs, RegistryArgs};
use serde::{Deserialize, Serialize};

use crate::topics_io::{self, RawRecord};

/// Format version written in the header line.
pub const FORMAT_VERSION: u32 = 1;

/// Arguments of `selfheal record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Topics without prefix (e.g. `anomalies diagnoses patches rollouts outcomes`).
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// The recording to write (JSON lines).
    #[arg(long, env = "SELFHEAL_RECORD_OUT")]
    pub out: PathBuf,
    /// Kafka connection (`--topic-prefix` names the recorded topics).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry (its URL is noted in the recording, since values carry its schema ids).
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `selfheal replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A recording made by `selfheal record`.
    pub file: PathBuf,
    /// Keep the recorded timestamps instead of letting the broker stamp records now.
    #[arg(long, env = "SELFHEAL_REPLAY_KEEP_TIMESTAMPS")]
    pub keep_timestamps: bool,
    /// Replay only these topics (without prefix); all recorded topics when absent.
    #[arg(long = "only", env = "SELFHEAL_REPLAY_ONLY", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Kafka connection (`--topic-prefix` names the target topics: prefix + recorded topic name).
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header0 {
    /// Format version.
    pub selfheal_recording: u32,
    /// When it was recorded, epoch milliseconds.
    pub recorded_ms: i64,
    /// The registry whose schema ids the values carry.
    pub registry: String,
    /// Topic prefix at recording time.
    pub topic_prefix: String,
    /// Recorded topics, without prefix.
    pub topics: Vec<String>,
}

/// One header of a recorded record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderLine {
    /// Header key.
    pub key: String,
    /// Header value, base64; absent for a null value.
    pub value_b64: Option<String>,
}

/// One recorded record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordLine {
    /// Topic without prefix.
    pub topic: String,
    /// Topic as recorded (with prefix).
    pub source_topic: String,
    /// Partition it was read from.
    pub partition: i32,
    /// Offset it was read from.
    pub offset: i64,
    /// Its timestamp, epoch milliseconds.
    pub timestamp_ms: Option<i64>,
    /// Key bytes, base64.
    pub key_b64: Option<String>,
    /// Value bytes, base64.
    pub value_b64: Option<String>,
    /// Headers, in order.
    pub headers: Vec<HeaderLine>,
}

impl RecordLine {
    /// The line for a raw record of logical topic `topic`.
    pub fn from_raw(topic: &str, r: &RawRecord) -> Self {
        RecordLine {
            topic: topic.to_string(),
            source_topic: r.topic.clone(),
            partition: r.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key_b64: r.key.as_deref().map(|k| B64.encode(k)),
            value_b64: r.value.as_deref().map(|v| B64.encode(v)),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| HeaderLine {
                    key: k.clone(),
                    value_b64: v.as_deref().map(|v| B64.encode(v)),
                })
                .collect(),
        }
    }

    fn bytes(field: &Option<String>, what: &str) -> Result<Option<Vec<u8>>> {
        field
            .as_deref()
            .map(|s| B64.decode(s).with_context(|| format!("{what} is not base64")))
            .transpose()
    }

    /// The key bytes.
    pub fn key(&self) -> Result<Option<Vec<u8>>> {
        Self::bytes(&self.key_b64, "key")
    }

    /// The value bytes.
    pub fn value(&self) -> Result<Option<Vec<u8>>> {
        Self::bytes(&self.value_b64, "value")
    }
}

/// Records `topics` up to their current end into `out`; returns the number of records.
pub async fn record(args: &RecordArgs) -> Result<u64> {
    let prefix = &args.kafka.topic_prefix;
    let logical: Vec<String> = args
        .topics
        .iter()
        .map(|t| t.strip_prefix(prefix.as_str()).unwrap_or(t).to_string())
        .collect();
    let full: Vec<String> = logical.iter().map(|t| args.kafka.topic(t)).collect();
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let header = Header0 {
        selfheal_recording: FORMAT_VERSION,
        recorded_ms: selfheal_core::now_ms(),
        registry: args.registry.url.clone(),
        topic_prefix: prefix.clone(),
        topics: logical.clone(),
    };
    writeln!(w, "{}", serde_json::to_string(&header)?)?;
    let mut err = None;
    let n = topics_io::read_to_end(&args.kafka, &full, Duration::from_secs(15), |r| {
        let name = r.topic.strip_prefix(prefix.as_str()).unwrap_or(&r.topic).to_string();
        let line = RecordLine::from_raw(&name, &r);
        if err.is_none()
            && let Err(e) = serde_json::to_string(&line)
                .map_err(anyhow::Error::from)
                .and_then(|s| Ok(writeln!(w, "{s}")?))
        {
            err = Some(e);
        }
    })
    .await?;
    if let Some(e) = err {
        return Err(e.context(format!("writing {}", args.out.display())));
    }
    w.flush().with_context(|| format!("writing {}", args.out.display()))?;
    Ok(n)
}

/// Reads a recording: its header and records, ordered by original timestamp so that
/// cause comes before effect across topics.
pub fn read_recording(path: &Path) -> Result<(Header0, Vec<RecordLine>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let first = lines.next().ok_or_else(|| anyhow!("{} is empty", path.display()))??;
    let header: Header0 = serde_json::from_str(&first)
        .with_context(|| format!("{} is not a selfheal recording (bad header line)", path.display()))?;
    if header.selfheal_recording > FORMAT_VERSION {
        bail!(
            "{} is recording format {}, this selfheal reads up to {FORMAT_VERSION}",
            path.display(),
            header.selfheal_recording
        );
    }
    let mut records = Vec::new();
    for (i, line) in lines.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let r: RecordLine =
            serde_json::from_str(&line).with_context(|| format!("{} line {}", path.display(), i + 2))?;
        records.push(r);
    }
    records.sort_by_key(|r| {
        (
            r.timestamp_ms.unwrap_or(i64::MAX),
            r.topic.clone(),
            r.partition,
            r.offset,
        )
    });
    Ok((header, records))
}

/// Produces every recorded record again; returns how many.
pub async fn replay(args: &ReplayArgs) -> Result<u64> {
    let (header, records) = read_recording(&args.file)?;
    let only: BTreeSet<&str> = args.only.iter().map(String::as_str).collect();
    let wanted: Vec<&RecordLine> = records
        .iter()
        .filter(|r| only.is_empty() || only.contains(r.topic.as_str()))
        .collect();
    let targets: BTreeSet<String> = wanted.iter().map(|r| args.kafka.topic(&r.topic)).collect();
    let targets: Vec<String> = targets.into_iter().collect();
    if !targets.is_empty() {
        topics_io::ensure_topics(&args.kafka, &targets).await;
    }
    tracing::info!(registry = %header.registry, "replaying values that carry schema ids of this registry");
    selfheal_core::kafka::probe(&args.kafka).await?;
    let producer = selfheal_core::kafka::producer(&args.kafka)?;
    let mut n = 0u64;
    for r in wanted {
        let topic = args.kafka.topic(&r.topic);
        let key = r.key()?;
        let value = r.value()?;
        let mut hdrs = OwnedHeaders::new_with_capacity(r.headers.len());
        let header_values: Vec<(String, Option<Vec<u8>>)> = r
            .headers
            .iter()
            .map(|h| {
                Ok((
                    h.key.clone(),
                    h.value_b64.as_deref().map(|v| B64.decode(v)).transpose()?,
                ))
            })
            .collect::<Result<_, base64::DecodeError>>()
            .context("header is not base64")?;
        for (k, v) in &header_values {
            hdrs = hdrs.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).headers(hdrs);
        if let Some(k) = key.as_deref() {
            rec = rec.key(k);
        }
        if let Some(v) = value.as_deref() {
            rec = rec.payload(v);
        }
        if args.keep_timestamps
            && let Some(ts) = r.timestamp_ms
        {
            rec = rec.timestamp(ts);
        }
        producer
            .send(rec, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow!("producing to {topic}: {e}"))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_headers_survive_a_round_trip_through_the_file() {
        let raw = RawRecord {
            topic: "p.anomalies".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: Some(1000),
            key: Some(vec![0, 0, 0, 0, 1, 0xff]),
            value: Some(vec![0, 0, 0, 0, 3, 1, 2, 3, 0x80]),
            headers: vec![("traceparent".into(), Some(b"00-abc".to_vec())), ("null".into(), None)],
        };
        let line = RecordLine::from_raw("anomalies", &raw);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let header = Header0 {
            selfheal_recording: 1,
            recorded_ms: 1,
            registry: "http://r".into(),
            topic_prefix: "p.".into(),
            topics: vec!["anomalies".into()],
        };
        let mut later = line.clone();
        later.timestamp_ms = Some(2000);
        later.topic = "outcomes".into();
        std::fs::write(
            &path,
            format!(
                "{}\n{}\n\n{}\n",
                serde_json::to_string(&header).unwrap(),
                serde_json::to_string(&later).unwrap(),
                serde_json::to_string(&line).unwrap()
            ),
        )
        .unwrap();
        let (h, recs) = read_recording(&path).unwrap();
        assert_eq!(h, header);
        assert_eq!(recs.len(), 2);
        // Ordered by timestamp, not by file order.
        assert_eq!(recs[0].topic, "anomalies");
        assert_eq!(recs[0].key().unwrap(), raw.key);
        assert_eq!(recs[0].value().unwrap(), raw.value);
        assert_eq!(recs[0].headers[1].value_b64, None);
        assert_eq!(
            B64.decode(recs[0].headers[0].value_b64.as_deref().unwrap()).unwrap(),
            b"00-abc"
        );
    }

    #[test]
    fn a_file_that_is_not_a_recording_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "{\"hello\":1}\n").unwrap();
        assert!(format!("{:#}", read_recording(&path).unwrap_err()).contains("not a selfheal recording"));
    }
}
