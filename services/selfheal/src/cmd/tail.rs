//! `selfheal tail <topic>`: print the records of a pipeline topic as they arrive, decoded
//! from Avro through the registry: one JSON line per record, or a one-line summary for
//! outcomes. A record that does not decode is reported on stderr and skipped.

use std::time::Duration;

use anyhow::{Result, bail};
use selfheal_core::{KafkaArgs, RegistryArgs, Shutdown};
use selfheal_events::{Codec, Outcome, topics};

use crate::render;
use crate::topics_io::{self, RawRecord, StartAt};

/// Arguments of `selfheal tail`.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// The topic without prefix: telemetry.raw, anomalies, diagnoses, patches, approvals, rollouts, outcomes
    /// (a dead-letter topic such as `monitor.dlq` is printed as JSON metadata).
    pub topic: String,
    /// Start at the oldest record still present instead of the last few.
    #[arg(long, env = "SELFHEAL_TAIL_FROM_BEGINNING")]
    pub from_beginning: bool,
    /// Records per partition printed from before now, when not reading from the beginning.
    #[arg(long, env = "SELFHEAL_TAIL_LAST", default_value_t = 10)]
    pub last: i64,
    /// Print every record as one JSON line, outcomes included.
    #[arg(long, env = "SELFHEAL_TAIL_JSON")]
    pub json: bool,
    /// Keep waiting for new records after the current end (until Ctrl-C or --max).
    #[arg(long, short = 'f', env = "SELFHEAL_TAIL_FOLLOW")]
    pub follow: bool,
    /// Stop after printing this many records.
    #[arg(long, env = "SELFHEAL_TAIL_MAX")]
    pub max: Option<u64>,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Known topic names, for a clear error on a typo.
fn known(topic: &str) -> bool {
    topics::ALL.contains(&topic) || topic.ends_with(".dlq")
}

/// Runs the tail until the end (or forever with `--follow`), `--max` records, or shutdown.
pub async fn run(args: &TailArgs, shutdown: &Shutdown, out: &mut (dyn std::io::Write + Send)) -> Result<u64> {
    if !known(&args.topic) {
        bail!(
            "unknown topic `{}`; pipeline topics are: {}",
            args.topic,
            topics::ALL.join(", ")
        );
    }
    let full = args.kafka.topic(&args.topic);
    let codec = Codec::new(&args.registry.url)?;
    let ranges = topics_io::partition_ranges_async(&args.kafka, std::slice::from_ref(&full)).await?;
    let start = if args.from_beginning {
        StartAt::Beginning
    } else {
        StartAt::LastPerPartition(args.last.max(0))
    };
    // What "the current end" is for a read without --follow.
    let mut end: std::collections::HashMap<i32, i64> = ranges
        .iter()
        .filter(|r| match start {
            StartAt::Beginning => r.high > r.low,
            StartAt::LastPerPartition(n) => n > 0 && r.high > r.low,
            StartAt::End => false,
        })
        .map(|r| (r.partition, r.high))
        .collect();
    if !args.follow && end.is_empty() {
        return Ok(0);
    }
    let consumer = topics_io::assigned_consumer(&args.kafka, &ranges, start)?;
    let mut printed = 0u64;
    loop {
        if args.max.is_some_and(|m| printed >= m) || (!args.follow && end.is_empty()) {
            break;
        }
        let msg = tokio::select! {
            _ = shutdown.wait() => break,
            m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()) => match m {
                Err(_) if args.follow => continue,
                Err(_) => bail!("no record for 30s from {full} though its end offsets promised more"),
                Ok(m) => m?,
            },
        };
        let rec = RawRecord::from_message(&msg);
        drop(msg);
        if let Some(high) = end.get(&rec.partition).copied()
            && rec.offset + 1 >= high
        {
            end.remove(&rec.partition);
        }
        if print_record(&codec, &args.topic, &rec, args.json, out).await? {
            printed += 1;
        }
    }
    Ok(printed)
}

/// Prints one record; false (and a stderr line) when it does not decode.
pub async fn print_record(
    codec: &Codec,
    topic: &str,
    rec: &RawRecord,
    json: bool,
    out: &mut (dyn std::io::Write + Send),
) -> Result<bool> {
    let Some(value) = rec.value.as_deref() else {
        eprintln!(
            "{}/{} offset {}: record without a value (tombstone), skipped",
            rec.topic, rec.partition, rec.offset
        );
        return Ok(false);
    };
    if topic.ends_with(".dlq") {
        let headers: serde_json::Map<String, serde_json::Value> = rec
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).into(),
                )
            })
            .collect();
        let line = serde_json::json!({"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
            "timestamp_ms": rec.timestamp_ms, "bytes": value.len(), "headers": headers});
        writeln!(out, "{line}")?;
        return Ok(true);
    }
    if topic == topics::OUTCOMES && !json {
        return match codec.decode::<Outcome>(value).await {
            Ok(o) => {
                writeln!(out, "{}", render::outcome_line(&o))?;
                Ok(true)
            }
            Err(e) => {
                eprintln!(
                    "{}/{} offset {}: cannot decode: {e}; skipped",
                    rec.topic, rec.partition, rec.offset
                );
                Ok(false)
            }
        };
    }
    match codec.decode_json(value).await {
        Ok(v) => {
            writeln!(out, "{v}")?;
            Ok(true)
        }
        Err(e) => {
            eprintln!(
                "{}/{} offset {}: cannot decode: {e}; skipped",
                rec.topic, rec.partition, rec.offset
            );
            Ok(false)
        }
    }
}
