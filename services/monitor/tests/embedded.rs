//! The monitor stage end to end on the embedded stack (in-process mock Kafka cluster and
//! registry): a failing span published to `telemetry.raw` comes out of `anomalies` as one
//! Avro-encoded `Anomaly`, and more failures of the same kind add none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use selfheal_core::embedded::EmbeddedStack;
use selfheal_core::http::Health;
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{Shared, start_stage};
use selfheal_core::{KafkaArgs, Publisher, RuntimeArgs, Shutdown, kafka};
use selfheal_events::{Anomaly, AnomalyKind, Codec, Record, TelemetryEvent};
use selfheal_monitor::{Monitor, MonitorConfig, fingerprint_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_span_becomes_one_anomaly_on_the_topic() {
    let shutdown = Shutdown::new();
    let stack = EmbeddedStack::start(shutdown.clone()).await.unwrap();
    // The mock cluster does not answer CreateTopics: topics are created on it directly.
    let kafka_args = KafkaArgs {
        partitions: 1,
        ..stack.kafka_args("")
    };
    let codec = Arc::new(Codec::new(&stack.registry.url()).unwrap());
    let input = kafka_args.topic(TelemetryEvent::TOPIC);
    let output = kafka_args.topic(Anomaly::TOPIC);
    // The mock cluster creates topics directly (as `selfheal up --embedded` does).
    for t in [&input, &output, &kafka_args.topic("monitor.dlq")] {
        stack.create_topic(t, 1).unwrap();
    }

    let shared = Shared {
        kafka: kafka_args.clone(),
        runtime: RuntimeArgs::default(),
        codec: codec.clone(),
        metrics: Metrics::shared(),
        health: Health::new(),
        shutdown: shutdown.clone(),
    };
    let monitor = Arc::new(Monitor::new(MonitorConfig::default()));
    let stage = start_stage(monitor.clone(), shared);

    let publisher = Publisher::new(kafka::producer(&kafka_args).unwrap(), codec.clone(), "test");
    let failing = selfheal_events::examples::telemetry_event();
    for i in 0..5 {
        let mut e = failing.clone();
        e.event_id = format!("event-{i}");
        e.span_id = Some(format!("{i:016x}"));
        e.timestamp_ms += i * 100;
        publisher.publish(&input, &e, &HashMap::new()).await.unwrap();
    }

    // Wait until the stage has handled the records (or failed to start).
    for _ in 0..600 {
        if !monitor.open_incidents().is_empty() || stage.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if stage.is_finished() {
        panic!("the stage stopped: {:?}", stage.await);
    }
    assert_eq!(
        monitor.open_incidents().len(),
        1,
        "the stage did not process the records"
    );

    let consumer: StreamConsumer = kafka::client_config(&kafka_args)
        .unwrap()
        .set("group.id", "monitor-embedded-test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&output]).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(120), consumer.recv())
        .await
        .expect("an anomaly")
        .unwrap();
    let anomaly: Anomaly = codec.decode(msg.payload().unwrap()).await.unwrap();
    assert_eq!(anomaly.service, "pricing-api");
    assert_eq!(Some(anomaly.fingerprint.clone()), fingerprint_of(&failing));
    assert!(anomaly.signals.contains(&AnomalyKind::NewFingerprint));
    assert_eq!(anomaly.timeline.first_error_ms, Some(failing.timestamp_ms));
    assert_eq!(anomaly.exception.unwrap().r#type, "ZeroDivisionError");
    // The other four failures joined the incident: nothing more arrives.
    let more = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await;
    assert!(more.is_err(), "a second anomaly arrived");
    assert_eq!(monitor.open_incidents().len(), 1);
    assert_eq!(monitor.open_incidents()[0].occurrences, 5);

    shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(30), stage).await;
}
