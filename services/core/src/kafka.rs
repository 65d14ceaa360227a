//! Kafka clients: consumer and producer configuration, topic creation, and waiting for a
//! broker that is not there yet.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;

use crate::config::KafkaArgs;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// What can go wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The configuration is wrong (bad property, bad address).
    #[error("Kafka client configuration: {0}")]
    Config(String),
    /// The broker did not answer.
    #[error("cannot reach Kafka at {brokers}: {reason}")]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// The client's error.
        reason: String,
    },
    /// Creating a topic failed.
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// Shutdown was requested while waiting.
    #[error("shut down while waiting for Kafka")]
    ShutDown,
}

/// Base client configuration from the shared arguments.
pub fn client_config(args: &KafkaArgs) -> Result<ClientConfig, KafkaError> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &args.brokers);
    // Keep librdkafka's own chatter at warnings: connection refusals are reported by us once, clearly.
    cfg.set("log_level", "4");
    for (k, v) in args.extra_properties().map_err(KafkaError::Config)? {
        cfg.set(k, v);
    }
    Ok(cfg)
}

/// Producer configuration: idempotent, all replicas acknowledge, bounded delivery time.
pub fn producer(args: &KafkaArgs) -> Result<FutureProducer, KafkaError> {
    let mut cfg = client_config(args)?;
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("compression.type", "lz4");
    cfg.create().map_err(|e| KafkaError::Config(e.to_string()))
}

/// A consumer context that turns librdkafka statistics into the consumer-lag gauge.
#[derive(Clone)]
pub struct LagContext {
    /// The stage whose lag is reported.
    pub stage: String,
    /// Where the gauge lives.
    pub metrics: Arc<Metrics>,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                self.metrics
                    .lag
                    .with_label_values(&[self.stage.as_str(), topic.as_str(), partition.to_string().as_str()])
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// Consumer configuration for the at-least-once runner: offsets are stored by the runner
/// only after every output is delivered, and committed in the background.
pub fn consumer_config(args: &KafkaArgs, group_id: &str) -> Result<ClientConfig, KafkaError> {
    let mut cfg = client_config(args)?;
    cfg.set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        // One record may take minutes: three sandbox runs of a test suite, or several calls to
        // a language model on modest hardware. librdkafka's default (5 min) would expel the
        // stage from its group mid-record and the record would be processed twice.
        .set("max.poll.interval.ms", "900000")
        .set("enable.partition.eof", "false");
    // The operator's properties (SELFHEAL_KAFKA_PROPERTIES) win over these defaults too.
    for (k, v) in args.extra_properties().map_err(KafkaError::Config)? {
        cfg.set(k, v);
    }
    Ok(cfg)
}

/// Asks the cluster for metadata; a cheap "is there a broker" check.
pub async fn probe(args: &KafkaArgs) -> Result<(), KafkaError> {
    let cfg = client_config(args)?;
    let brokers = args.brokers.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = cfg.create().map_err(|e| KafkaError::Config(e.to_string()))?;
        consumer
            .fetch_metadata(None, Duration::from_secs(3))
            .map(|_| ())
            .map_err(|e| KafkaError::Unreachable {
                brokers,
                reason: e.to_string(),
            })
    })
    .await
    .map_err(|e| KafkaError::Config(e.to_string()))?
}

/// Waits until the broker answers, logging one clear line per failed attempt and backing off.
pub async fn wait_for_broker(
    args: &KafkaArgs,
    shutdown: &Shutdown,
    backoff: &mut crate::backoff::Backoff,
) -> Result<(), KafkaError> {
    loop {
        match probe(args).await {
            Ok(()) => return Ok(()),
            Err(KafkaError::Config(e)) => return Err(KafkaError::Config(e)),
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!("{e}; retrying in {:.1}s", delay.as_secs_f64());
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait() => return Err(KafkaError::ShutDown),
                }
            }
        }
    }
}

/// Creates the topics that do not exist yet (an existing topic is fine).
pub async fn ensure_topics(args: &KafkaArgs, topics: &[String]) -> Result<(), KafkaError> {
    if !args.create_topics {
        return Ok(());
    }
    let cfg = client_config(args)?;
    let admin: AdminClient<DefaultClientContext> = cfg.create().map_err(|e| KafkaError::Config(e.to_string()))?;
    // A stage may read and write the same topic (the learner): name each topic once,
    // brokers refuse a CreateTopics request that repeats one.
    let mut unique: Vec<&String> = Vec::new();
    for t in topics {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    let new: Vec<NewTopic> = unique
        .into_iter()
        .map(|t| NewTopic::new(t, args.partitions, TopicReplication::Fixed(args.replication)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(|e| KafkaError::Unreachable {
            brokers: args.brokers.clone(),
            reason: e.to_string(),
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
