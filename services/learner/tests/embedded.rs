//! The learner as a stage under the real runner, on the embedded broker and registry:
//! outcomes published to `outcomes` end up in RocksDB, a replayed outcome counts once, and
//! the stage publishes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use selfheal_core::embedded::EmbeddedStack;
use selfheal_core::http::Health;
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{Shared, start_stage};
use selfheal_core::{Publisher, RuntimeArgs, Shutdown, kafka};
use selfheal_events::{Codec, Outcome, examples, topics};
use selfheal_learner::Learner;

/// Polls until `done` or a generous limit: the limit only turns a hang into a failure.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_on_the_topic_are_learned_once() {
    let shutdown = Shutdown::new();
    let stack = EmbeddedStack::start(shutdown.clone()).await.unwrap();
    // One partition keeps the records in order, so "the last one is stored" means all were seen.
    stack.create_pipeline_topics("", 1).unwrap();
    let kafka = stack.kafka_args("");
    let codec = Arc::new(Codec::new(&stack.registry.url()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let learner = Learner::open(dir.path().join("db")).unwrap();
    let shared = Shared {
        kafka: kafka.clone(),
        runtime: RuntimeArgs {
            group_id: Some("learner-embedded-test".into()),
            ..RuntimeArgs::default()
        },
        codec: codec.clone(),
        metrics: Metrics::shared(),
        health: Health::new(),
        shutdown: shutdown.clone(),
    };
    let handle = start_stage(Arc::new(learner.clone()), shared);

    let publisher = Publisher::new(kafka::producer(&kafka).unwrap(), codec, "learner-test");
    let first = examples::outcome();
    let mut second: Outcome = examples::outcome();
    second.incident_id = "second-incident".into();
    for o in [&first, &first, &second] {
        publisher.publish(topics::OUTCOMES, o, &HashMap::new()).await.unwrap();
    }

    let stored = eventually(|| handle.is_finished() || learner.outcome("second-incident").unwrap().is_some()).await;
    if !stored || handle.is_finished() {
        shutdown.trigger();
        panic!("the stage never stored the outcomes: {:?}", handle.await);
    }
    let fixes = learner.fixes_for(&first.fingerprint);
    assert_eq!(fixes.len(), 1);
    assert_eq!(
        (fixes[0].healed, fixes[0].attempts),
        (2, 2),
        "the replayed outcome must count once"
    );

    shutdown.trigger();
    let summary = handle.await.unwrap().unwrap();
    assert_eq!(summary.dead_letters, 0, "{summary:?}");
    assert_eq!(summary.outputs, 0, "the learner publishes nothing: {summary:?}");
    assert_eq!(summary.records, 3, "{summary:?}");
}
