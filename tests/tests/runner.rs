//! The stage runtime's delivery rules, proven against the real Kafka broker and registry.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::Offset;
use selfheal_core::http::Health;
use selfheal_core::metrics::Metrics;
use selfheal_core::runner::{Runner, RunnerError, Topics};
use selfheal_core::service::{ServiceError, Shared};
use selfheal_core::{KafkaArgs, Publisher, RuntimeArgs, Shutdown, headers};
use selfheal_e2e::*;
use selfheal_events::{Anomaly, Codec, TelemetryEvent};

struct Bed {
    brokers: String,
    codec: Arc<Codec>,
    topics: Topics,
}

async fn bed() -> Bed {
    require_broker().await;
    let brokers = brokers();
    let codec = Arc::new(Codec::new(&registry_url()).unwrap());
    let topics = Topics {
        input: unique("in"),
        output: unique("out"),
        dead_letter: unique("dlq"),
    };
    // One partition: the tests reason about positions and order.
    let mut args = KafkaArgs::for_brokers(&brokers);
    args.partitions = 1;
    selfheal_core::kafka::ensure_topics(
        &args,
        &[topics.input.clone(), topics.output.clone(), topics.dead_letter.clone()],
    )
    .await
    .unwrap();
    Bed { brokers, codec, topics }
}

fn runtime(max_dead_letters: u32) -> RuntimeArgs {
    RuntimeArgs {
        max_consecutive_dead_letters: max_dead_letters,
        retry_initial_ms: 50,
        retry_max_ms: 200,
        grace_period_secs: 5,
        ..Default::default()
    }
}

fn runner(bed: &Bed, rt: RuntimeArgs) -> Runner<EchoStage> {
    let args = KafkaArgs::for_brokers(&bed.brokers);
    let publisher = Publisher::new(
        selfheal_core::kafka::producer(&args).unwrap(),
        bed.codec.clone(),
        "echo",
    );
    Runner::new(
        Arc::new(EchoStage::default()),
        &args,
        &unique("group"),
        bed.topics.clone(),
        publisher,
        rt,
        Metrics::shared(),
        Health::new(),
    )
    .unwrap()
}

async fn produce_event(bed: &Bed, ev: &TelemetryEvent, headers: &[(&str, &str)]) -> (i32, i64) {
    let (key, value) = bed.codec.encode(&bed.topics.input, ev).await.unwrap();
    produce_raw(&raw_producer(&bed.brokers), &bed.topics.input, &key, &value, headers).await
}

async fn decode_outputs(bed: &Bed, records: &[Consumed]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for r in records {
        out.push(bed.codec.decode::<Anomaly>(&r.value).await.unwrap());
    }
    out
}

#[tokio::test]
async fn poison_records_are_dead_lettered_with_their_real_position_and_the_stage_moves_on() {
    let bed = bed().await;
    bed.codec.register::<TelemetryEvent>(&bed.topics.input).await.unwrap();
    let first = event("svc", &[]);
    produce_event(&bed, &first, &[]).await;
    let p = raw_producer(&bed.brokers);
    let garbage_pos = produce_raw(
        &p,
        &bed.topics.input,
        b"k",
        b"this is not avro",
        &[("origin", "fuzzer")],
    )
    .await;
    let unknown_id: &[u8] = &[0, 0x7f, 0xff, 0xff, 0xfe, 2, 4, 6];
    let unknown_pos = produce_raw(&p, &bed.topics.input, b"k", unknown_id, &[]).await;
    let invalid = event("svc", &[(ATTR_INVALID, "yes")]);
    let invalid_pos = produce_event(&bed, &invalid, &[]).await;
    let last = event("svc", &[]);
    produce_event(&bed, &last, &[]).await;

    let shutdown = Shutdown::new();
    let task = tokio::spawn(runner(&bed, runtime(10)).run(shutdown.clone()));
    let outputs = consume(&bed.brokers, &bed.topics.output, 2, Duration::from_secs(60)).await;
    let dead = consume(&bed.brokers, &bed.topics.dead_letter, 3, Duration::from_secs(30)).await;
    shutdown.trigger();
    let summary = task.await.unwrap().unwrap();

    let ids: Vec<String> = decode_outputs(&bed, &outputs)
        .await
        .into_iter()
        .map(|a| a.incident_id)
        .collect();
    assert_eq!(
        ids,
        vec![first.event_id.clone(), last.event_id.clone()],
        "the records after the poison ones were processed, in order"
    );
    assert_eq!(dead.len(), 3);
    assert_eq!(summary.dead_letters, 3);

    let garbage = &dead[0];
    assert_eq!(garbage.value, b"this is not avro", "original bytes kept");
    assert_eq!(garbage.key, b"k");
    assert_eq!(
        garbage.headers.get("origin").map(String::as_str),
        Some("fuzzer"),
        "original headers kept"
    );
    assert_eq!(garbage.headers[headers::DLQ_STAGE], "echo");
    assert_eq!(garbage.headers[headers::DLQ_ERROR_KIND], "decode");
    assert_eq!(garbage.headers[headers::DLQ_TOPIC], bed.topics.input);
    assert_eq!(garbage.headers[headers::DLQ_PARTITION], garbage_pos.0.to_string());
    assert_eq!(garbage.headers[headers::DLQ_OFFSET], garbage_pos.1.to_string());
    assert!(
        garbage.headers[headers::DLQ_ERROR].contains("magic byte"),
        "{}",
        garbage.headers[headers::DLQ_ERROR]
    );

    let unknown = &dead[1];
    assert_eq!(unknown.value, unknown_id);
    assert_eq!(unknown.headers[headers::DLQ_OFFSET], unknown_pos.1.to_string());
    assert_eq!(unknown.headers[headers::DLQ_ERROR_KIND], "decode");

    let inv = &dead[2];
    assert_eq!(inv.headers[headers::DLQ_ERROR_KIND], "invalid");
    assert_eq!(inv.headers[headers::DLQ_OFFSET], invalid_pos.1.to_string());
    assert!(inv.headers[headers::DLQ_ERROR].contains("marked invalid"));
    let original: TelemetryEvent = bed.codec.decode(&inv.value).await.unwrap();
    assert_eq!(
        original.event_id, invalid.event_id,
        "an invalid record is dead-lettered byte for byte"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_not_skipped() {
    let bed = bed().await;
    bed.codec.register::<TelemetryEvent>(&bed.topics.input).await.unwrap();
    let flaky = event("svc", &[(ATTR_TRANSIENT, "3")]);
    produce_event(&bed, &flaky, &[]).await;
    let after = event("svc", &[]);
    produce_event(&bed, &after, &[]).await;
    let shutdown = Shutdown::new();
    let task = tokio::spawn(runner(&bed, runtime(10)).run(shutdown.clone()));
    let outputs = consume(&bed.brokers, &bed.topics.output, 2, Duration::from_secs(60)).await;
    shutdown.trigger();
    let summary = task.await.unwrap().unwrap();
    let ids: Vec<String> = decode_outputs(&bed, &outputs)
        .await
        .into_iter()
        .map(|a| a.incident_id)
        .collect();
    assert_eq!(
        ids,
        vec![flaky.event_id, after.event_id],
        "the flaky record was finished before the next one"
    );
    assert_eq!(summary.retries, 3);
    assert_eq!(summary.dead_letters, 0);
    assert!(
        consume(&bed.brokers, &bed.topics.dead_letter, 1, Duration::from_secs(2))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn too_many_dead_letters_in_a_row_stop_the_stage() {
    let bed = bed().await;
    let p = raw_producer(&bed.brokers);
    for i in 0..5 {
        produce_raw(&p, &bed.topics.input, b"k", format!("garbage {i}").as_bytes(), &[]).await;
    }
    let result = tokio::time::timeout(Duration::from_secs(60), runner(&bed, runtime(3)).run(Shutdown::new()))
        .await
        .unwrap();
    match result {
        Err(RunnerError::TooManyDeadLetters { count, .. }) => assert_eq!(count, 3),
        other => panic!("expected the stage to stop, got {other:?}"),
    }
    let dead = consume(&bed.brokers, &bed.topics.dead_letter, 5, Duration::from_secs(5)).await;
    assert_eq!(dead.len(), 3, "the stage stopped at the limit");
}

#[tokio::test]
async fn trace_context_on_the_input_appears_on_the_output() {
    let bed = bed().await;
    bed.codec.register::<TelemetryEvent>(&bed.topics.input).await.unwrap();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    produce_event(&bed, &event("svc", &[]), &[(headers::TRACEPARENT, parent)]).await;
    let shutdown = Shutdown::new();
    let task = tokio::spawn(runner(&bed, runtime(10)).run(shutdown.clone()));
    let outputs = consume(&bed.brokers, &bed.topics.output, 1, Duration::from_secs(60)).await;
    shutdown.trigger();
    task.await.unwrap().unwrap();
    let tp = outputs[0]
        .headers
        .get(headers::TRACEPARENT)
        .expect("output carries traceparent");
    assert_eq!(
        tp.split('-').nth(1),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        "same trace: {tp}"
    );
    assert_eq!(
        outputs[0].headers[headers::INCIDENT_ID],
        outputs[0].headers[headers::INCIDENT_ID]
    );
    assert_eq!(outputs[0].headers[headers::PRODUCED_BY], "echo");
}

fn spawn_stage(bed: &Bed, group: &str, grace_secs: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_selfheal-test-stage"))
        .args([
            "--input",
            &bed.topics.input,
            "--output",
            &bed.topics.output,
            "--dlq",
            &bed.topics.dead_letter,
        ])
        .args([
            "--kafka-brokers",
            &bed.brokers,
            "--schema-registry-url",
            bed.codec.url(),
            "--group-id",
            group,
        ])
        .args([
            "--grace-period-secs",
            &grace_secs.to_string(),
            "--http-addr",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("test stage binary starts")
}

#[tokio::test]
async fn a_killed_stage_restarted_loses_no_record() {
    let bed = bed().await;
    bed.codec.register::<TelemetryEvent>(&bed.topics.input).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..60 {
        let ev = event("svc", &[(ATTR_SLEEP_MS, "50")]);
        ids.push(ev.event_id.clone());
        produce_event(&bed, &ev, &[]).await;
    }
    let group = unique("group");
    let mut first = spawn_stage(&bed, &group, 5);
    // Let it get part of the way, then kill it without warning.
    let early = consume(&bed.brokers, &bed.topics.output, 10, Duration::from_secs(60)).await;
    assert!(early.len() >= 10, "the stage made progress before the kill");
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = spawn_stage(&bed, &group, 5);
    let all = consume(&bed.brokers, &bed.topics.output, ids.len(), Duration::from_secs(120)).await;
    // Keep reading briefly for duplicates from the redone tail.
    let all = if all.len() >= ids.len() {
        consume(&bed.brokers, &bed.topics.output, ids.len() + 50, Duration::from_secs(5)).await
    } else {
        all
    };
    let _ = Command::new("kill").args(["-TERM", &second.id().to_string()]).status();
    second.wait().unwrap();
    let outputs = decode_outputs(&bed, &all).await;
    let got: HashSet<String> = outputs.iter().map(|a| a.incident_id.clone()).collect();
    for id in &ids {
        assert!(got.contains(id), "input {id} has no output after the kill and restart");
    }
    let duplicates = outputs.len() - got.len();
    // Duplicates are allowed (at-least-once) and recognisable by key: same incident id.
    println!(
        "{} inputs, {} outputs, {duplicates} duplicates recognised by key",
        ids.len(),
        outputs.len()
    );
}

#[tokio::test]
async fn sigterm_during_processing_commits_and_exits_within_the_grace_period() {
    let bed = bed().await;
    bed.codec.register::<TelemetryEvent>(&bed.topics.input).await.unwrap();
    for _ in 0..20 {
        produce_event(&bed, &event("svc", &[(ATTR_SLEEP_MS, "400")]), &[]).await;
    }
    let group = unique("group");
    let mut child = spawn_stage(&bed, &group, 5);
    let seen = consume(&bed.brokers, &bed.topics.output, 3, Duration::from_secs(60)).await;
    assert_eq!(seen.len(), 3);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the stage did not exit within 10 s of SIGTERM")
    });
    assert!(status.success(), "clean exit, got {status}");
    let outputs = consume(&bed.brokers, &bed.topics.output, 20, Duration::from_secs(3)).await;
    // The committed offset is exactly the number of finished records: the one in hand was finished.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bed.brokers)
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(&bed.topics.input, 0);
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let offset = committed.elements()[0].offset();
    assert_eq!(
        offset,
        Offset::Offset(outputs.len() as i64),
        "committed offset matches the {} finished records",
        outputs.len()
    );
    assert!(
        outputs.len() < 20,
        "shutdown stopped polling before the end of the topic"
    );
}

#[tokio::test]
async fn an_unreachable_broker_keeps_the_service_unready_until_shutdown() {
    let health = Health::new();
    let shutdown = Shutdown::new();
    let shared = Shared {
        kafka: KafkaArgs::for_brokers("127.0.0.1:1"),
        runtime: runtime(10),
        codec: Arc::new(Codec::new(&registry_url()).unwrap()),
        metrics: Metrics::shared(),
        health: health.clone(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(async move {
        selfheal_core::service::prepare_stage(Arc::new(EchoStage::default()), &shared)
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !task.is_finished(),
        "the service keeps retrying, it does not give up or panic"
    );
    assert!(!health.is_ready());
    shutdown.trigger();
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(result, Err(ServiceError::ShutDown)), "{result:?}");
}

/// The committed offset of `group` on partition 0 of `topic` (0 when nothing is committed).
fn committed(brokers: &str, group: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    match c.committed_offsets(tpl, Duration::from_secs(10)).unwrap().elements()[0].offset() {
        Offset::Offset(o) => o,
        _ => 0,
    }
}

/// SIGKILL while a batch of outputs is in flight (the runner no longer awaits each delivery
/// before taking the next record): every input committed before the kill already has its
/// output on the topic (nothing skipped), and after a restart every input has one (nothing lost).
#[tokio::test]
async fn a_stage_killed_mid_batch_skips_nothing_and_loses_nothing() {
    let bed = bed().await;
    bed.codec.register::<TelemetryEvent>(&bed.topics.input).await.unwrap();
    // Enough records, each a little slow, that the stage is mid-stream for several seconds
    // with outputs of many records in flight at once.
    let producer = raw_producer(&bed.brokers);
    let mut ids = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..3000 {
        let ev = event("svc", &[(ATTR_SLEEP_MS, "2")]);
        let (key, value) = bed.codec.encode(&bed.topics.input, &ev).await.unwrap();
        ids.push(ev.event_id);
        let record = rdkafka::producer::FutureRecord::to(&bed.topics.input)
            .key(&key)
            .payload(&value);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for (i, p) in pending.into_iter().enumerate() {
        let delivered = p.await.unwrap().map_err(|(e, _)| e).unwrap();
        assert_eq!(delivered.offset, i as i64, "inputs in order on one partition");
    }

    let group = unique("group");
    let mut first = spawn_stage(&bed, &group, 5);
    // Kill as soon as the stage has committed some progress: it is mid-batch then.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut before_kill = 0;
    while before_kill == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stage committed nothing in 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
        before_kill = committed(&bed.brokers, &group, &bed.topics.input);
    }
    first.kill().unwrap(); // SIGKILL: no flush, no final commit
    first.wait().unwrap();
    let at_kill = committed(&bed.brokers, &group, &bed.topics.input);
    assert!(
        at_kill < ids.len() as i64,
        "killed mid-stream (committed {at_kill} of {})",
        ids.len()
    );

    // Nothing skipped: every input below the committed offset already has its output.
    let so_far = consume(&bed.brokers, &bed.topics.output, usize::MAX, Duration::from_secs(8)).await;
    let delivered: HashSet<String> = decode_outputs(&bed, &so_far)
        .await
        .into_iter()
        .map(|a| a.incident_id)
        .collect();
    for (offset, id) in ids.iter().enumerate().take(at_kill as usize) {
        assert!(
            delivered.contains(id),
            "input at offset {offset} was committed before its output was delivered"
        );
    }

    // Nothing lost: the restarted stage redoes the rest.
    let mut second = spawn_stage(&bed, &group, 5);
    let mut got = delivered;
    let mut outputs = so_far.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while got.len() < ids.len() && std::time::Instant::now() < deadline {
        let all = consume(&bed.brokers, &bed.topics.output, usize::MAX, Duration::from_secs(8)).await;
        outputs = all.len();
        got = decode_outputs(&bed, &all)
            .await
            .into_iter()
            .map(|a| a.incident_id)
            .collect();
    }
    let _ = Command::new("kill").args(["-TERM", &second.id().to_string()]).status();
    second.wait().unwrap();
    let missing: Vec<&String> = ids.iter().filter(|id| !got.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} inputs have no output after the kill and restart (first: {:?})",
        missing.len(),
        missing.first()
    );
    println!(
        "{} inputs; committed {at_kill} when killed with {} outputs delivered; {outputs} outputs in the end, {} redone",
        ids.len(),
        so_far.len(),
        outputs - ids.len()
    );
}
