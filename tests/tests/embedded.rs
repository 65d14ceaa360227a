//! The same runner on the embedded stack (librdkafka's mock cluster and the in-process
//! registry) that `selfheal demo` uses: the client code path is the one used with a real broker.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use selfheal_core::embedded::EmbeddedStack;
use selfheal_core::http::Health;
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{Shared, run_stage};
use selfheal_core::{RuntimeArgs, Shutdown, headers};
use selfheal_e2e::*;
use selfheal_events::{Anomaly, Codec, TelemetryEvent};

#[tokio::test]
async fn a_stage_runs_on_the_embedded_stack_with_dead_letters_and_trace_context() {
    let shutdown = Shutdown::new();
    let stack = EmbeddedStack::start(shutdown.clone()).await.unwrap();
    let prefix = format!("{}.", unique("t"));
    stack.create_pipeline_topics(&prefix, 1).unwrap();
    stack.create_topic(&format!("{prefix}echo.dlq"), 1).unwrap();
    let kafka = stack.kafka_args(&prefix);
    let codec = Arc::new(Codec::new(&stack.registry.url()).unwrap());
    let health = Health::new();
    let shared = Shared {
        kafka: kafka.clone(),
        runtime: RuntimeArgs {
            retry_initial_ms: 20,
            retry_max_ms: 100,
            ..Default::default()
        },
        codec: codec.clone(),
        metrics: Metrics::shared(),
        health: health.clone(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(run_stage(Arc::new(EchoStage::default()), shared));

    let input = kafka.topic(selfheal_events::TELEMETRY_RAW);
    codec.register::<TelemetryEvent>(&input).await.unwrap();
    let p = raw_producer(&stack.brokers());
    let ev = event("svc", &[(ATTR_TRANSIENT, "2")]);
    let (k, v) = codec.encode(&input, &ev).await.unwrap();
    produce_raw(
        &p,
        &input,
        &k,
        &v,
        &[(
            headers::TRACEPARENT,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )],
    )
    .await;
    let poison = produce_raw(&p, &input, b"k", b"\x00\x01", &[]).await;

    let out = consume(
        &stack.brokers(),
        &kafka.topic(selfheal_events::ANOMALIES),
        1,
        Duration::from_secs(60),
    )
    .await;
    let dead = consume(
        &stack.brokers(),
        &format!("{prefix}echo.dlq"),
        1,
        Duration::from_secs(30),
    )
    .await;
    assert!(health.is_ready());
    assert_eq!(out.len(), 1);
    // Decode before shutdown: the embedded registry stops with the same signal.
    let anomaly: Anomaly = codec.decode(&out[0].value).await.unwrap();
    shutdown.trigger();
    let summary = task.await.unwrap().unwrap();

    assert_eq!(anomaly.incident_id, ev.event_id);
    assert!(out[0].headers[headers::TRACEPARENT].contains("0af7651916cd43dd8448eb211c80319c"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].headers[headers::DLQ_OFFSET], poison.1.to_string());
    assert_eq!(summary.retries, 2);
    assert_eq!(summary.dead_letters, 1);
}
