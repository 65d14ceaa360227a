//! The Kafka-facing commands against the embedded stack: approve publishes an Approval
//! that tail decodes; record writes it to a file and replay produces the same bytes to a
//! prefixed topic; an undecodable record is skipped by tail, not fatal; pending lists a
//! rollout that waits for approval.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::message::OwnedHeaders;
use selfheal::cmd::{approve, record, tail};
use selfheal_core::embedded::EmbeddedStack;
use selfheal_core::{KafkaArgs, Publisher, RegistryArgs, Shutdown};
use selfheal_events::{Codec, Record, Rollout, RolloutStep};

fn tail_args(topic: &str, kafka: &KafkaArgs, registry: &str) -> tail::TailArgs {
    tail::TailArgs {
        topic: topic.into(),
        from_beginning: true,
        last: 10,
        json: true,
        follow: false,
        max: None,
        kafka: kafka.clone(),
        registry: RegistryArgs { url: registry.into() },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_tail_record_replay_and_pending_on_the_embedded_stack() {
    let shutdown = Shutdown::new();
    let stack = EmbeddedStack::start(shutdown.clone()).await.unwrap();
    let mut kafka = stack.kafka_args("");
    kafka.partitions = 1;
    stack.create_pipeline_topics("", 1).unwrap();
    stack.create_pipeline_topics("copy.", 1).unwrap();
    let registry = stack.registry.url();

    // approve → one Approval on `approvals`.
    let args = approve::DecideArgs {
        incident_id: "inc-42".into(),
        by: Some("alice".into()),
        reason: Some("looks right".into()),
        kafka: kafka.clone(),
        registry: RegistryArgs { url: registry.clone() },
    };
    let a = approve::decide(&args, true, &shutdown).await.unwrap();
    assert!(a.decision.approved);

    // A record that is not Confluent wire format, after it: tail reports it and goes on.
    let codec = Arc::new(Codec::new(&registry).unwrap());
    let publisher = Publisher::new(selfheal_core::kafka::producer(&kafka).unwrap(), codec.clone(), "test");
    publisher
        .send_raw("approvals", Some(b"k"), b"not avro", OwnedHeaders::new())
        .await
        .unwrap();

    let mut out = Vec::new();
    let printed = tail::run(&tail_args("approvals", &kafka, &registry), &shutdown, &mut out)
        .await
        .unwrap();
    assert_eq!(printed, 1, "the approval is printed, the garbage skipped");
    let line: serde_json::Value = serde_json::from_slice(out.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["incident_id"], "inc-42");
    assert_eq!(line["decision"]["by"], "alice");

    // record → replay into the `copy.` prefix → tail there shows the same approval.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("approvals.jsonl");
    let n = record::record(&record::RecordArgs {
        topics: vec!["approvals".into()],
        out: file.clone(),
        kafka: kafka.clone(),
        registry: RegistryArgs { url: registry.clone() },
    })
    .await
    .unwrap();
    assert_eq!(n, 2);
    let mut target = kafka.clone();
    target.topic_prefix = "copy.".into();
    let replayed = record::replay(&record::ReplayArgs {
        file: file.clone(),
        keep_timestamps: false,
        only: vec![],
        kafka: target.clone(),
    })
    .await
    .unwrap();
    assert_eq!(replayed, 2);
    let (_, recorded) = record::read_recording(&file).unwrap();
    let copied = {
        let mut v = Vec::new();
        selfheal::topics_io::read_to_end(
            &kafka,
            &["copy.approvals".to_string()],
            std::time::Duration::from_secs(10),
            |r| v.push(r),
        )
        .await
        .unwrap();
        v
    };
    assert_eq!(copied.len(), 2);
    for (rec, copy) in recorded.iter().zip(&copied) {
        assert_eq!(rec.value().unwrap(), copy.value, "replay keeps the bytes");
        assert_eq!(rec.key().unwrap(), copy.key);
    }

    // pending: a rollout step waiting for approval is listed.
    let mut waiting = selfheal_events::examples::rollout();
    waiting.incident_id = "inc-7".into();
    waiting.step = RolloutStep::AwaitingApproval;
    publisher
        .publish(&kafka.topic(Rollout::TOPIC), &waiting, &HashMap::new())
        .await
        .unwrap();
    let mut out = Vec::new();
    let listed = approve::pending(
        &approve::PendingArgs {
            json: false,
            kafka: kafka.clone(),
            registry: RegistryArgs { url: registry.clone() },
        },
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(listed, 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("inc-7") && text.contains("pricing-api"), "{text}");
    shutdown.trigger();
}
