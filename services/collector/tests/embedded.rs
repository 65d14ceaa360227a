//! The collector end to end on the embedded stack (in-process mock Kafka cluster and
//! registry): the real protobuf capture of pricing-api's zero-division failure, POSTed
//! over HTTP, arrives on `telemetry.raw` as Avro `TelemetryEvent`s keyed by "pricing-api".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use selfheal_collector::{CollectorConfig, start};
use selfheal_core::embedded::EmbeddedStack;
use selfheal_core::http::Health;
use selfheal_core::metrics::Metrics;
use selfheal_core::service::register_schema;
use selfheal_core::{KafkaArgs, Publisher, RuntimeArgs, Shutdown, kafka};
use selfheal_events::{Codec, Record, SignalKind, TelemetryEvent};

const TRACES_PB: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-traces.pb");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_otlp_spans_arrive_on_telemetry_raw_keyed_by_service() {
    let shutdown = Shutdown::new();
    let stack = EmbeddedStack::start(shutdown.clone()).await.unwrap();
    let kafka_args = KafkaArgs {
        partitions: 1,
        ..KafkaArgs::for_brokers(&stack.brokers())
    };
    let codec = Arc::new(Codec::new(&stack.registry.url()).unwrap());
    let topic = kafka_args.topic(TelemetryEvent::TOPIC);
    // The mock cluster creates topics directly (its CreateTopics admin request is not reliable).
    stack.create_topic(&topic, 1).unwrap();
    register_schema::<TelemetryEvent>(&codec, &topic, &shutdown, &RuntimeArgs::default())
        .await
        .unwrap();

    let publisher = Publisher::new(kafka::producer(&kafka_args).unwrap(), codec.clone(), "collector");
    let config = CollectorConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), topic.clone());
    let metrics = Metrics::shared();
    let addr = start(config, publisher, metrics.clone(), Health::new(), shutdown.clone())
        .await
        .unwrap();
    assert_ne!(addr.port(), 0);

    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(TRACES_PB.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    // The answer came after delivery: the counter is already there.
    assert!(
        metrics
            .render()
            .contains(r#"event="otlp_spans",service="collector"} 4"#)
    );
    let metrics_page = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics_page.contains("otlp_spans"));

    let consumer: StreamConsumer = kafka::client_config(&kafka_args)
        .unwrap()
        .set("group.id", format!("collector-test-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut events = Vec::new();
    while events.len() < 4 {
        let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("four events")
            .unwrap();
        let key = codec.decode_json(msg.key().unwrap()).await.unwrap();
        assert_eq!(key["service"], "pricing-api");
        let event: TelemetryEvent = codec.decode(msg.payload().unwrap()).await.unwrap();
        events.push(event);
    }
    assert!(
        events
            .iter()
            .all(|e| e.service == "pricing-api" && e.kind == SignalKind::Span && e.source == "otlp-http")
    );
    let span_ids: HashSet<_> = events.iter().filter_map(|e| e.span_id.clone()).collect();
    assert_eq!(
        span_ids,
        HashSet::from(
            [
                "c06dc85ac3935dfd",
                "7da5c956ce084cbd",
                "7ebe7016a77a2507",
                "9af5bd5b1dabdf70"
            ]
            .map(String::from)
        )
    );
    let failing: Vec<_> = events.iter().filter_map(|e| e.exception.as_ref()).collect();
    assert_eq!(failing.len(), 2);
    assert!(
        failing
            .iter()
            .all(|x| x.r#type == "ZeroDivisionError" && x.stacktrace.as_deref().unwrap().contains("line 14, in calc"))
    );
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_gone_gives_503_not_200() {
    let shutdown = Shutdown::new();
    let stack = EmbeddedStack::start(shutdown.clone()).await.unwrap();
    let codec = Arc::new(Codec::new(&stack.registry.url()).unwrap());
    // A producer pointed at a port where no broker listens: nothing can be acknowledged.
    let nowhere = KafkaArgs::for_brokers("127.0.0.1:1");
    let publisher = Publisher::new(kafka::producer(&nowhere).unwrap(), codec, "collector");
    let mut config = CollectorConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), "telemetry.raw");
    config.publish_timeout = Duration::from_secs(2);
    let addr = start(config, publisher, Metrics::shared(), Health::new(), shutdown.clone())
        .await
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(TRACES_PB.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    shutdown.trigger();
}
