//! The embedded stack: an in-process Kafka cluster (librdkafka's mock cluster) and the
//! in-process registry, so the same client code runs with no Java and no network.
//!
//! The mock cluster trims partitions beyond a few tens of thousands of records: fine for
//! the demo, not for load tests.

use std::net::SocketAddr;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::registry::EmbeddedRegistry;
use crate::shutdown::Shutdown;

/// A running embedded broker and registry; dropping it stops the broker.
pub struct EmbeddedStack {
    cluster: MockCluster<'static, DefaultProducerContext>,
    /// The registry.
    pub registry: EmbeddedRegistry,
}

impl std::fmt::Debug for EmbeddedStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStack")
            .field("brokers", &self.brokers())
            .field("registry", &self.registry.url())
            .finish()
    }
}

/// Why the embedded stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The mock cluster failed.
    #[error("embedded Kafka: {0}")]
    Kafka(String),
    /// The registry could not bind.
    #[error("embedded registry: {0}")]
    Registry(#[from] std::io::Error),
}

impl EmbeddedStack {
    /// Starts a one-broker mock cluster and a registry on a free loopback port.
    pub async fn start(shutdown: Shutdown) -> Result<Self, EmbeddedError> {
        let cluster = MockCluster::new(1).map_err(|e| EmbeddedError::Kafka(e.to_string()))?;
        let registry = EmbeddedRegistry::start(SocketAddr::from(([127, 0, 0, 1], 0)), shutdown).await?;
        Ok(EmbeddedStack { cluster, registry })
    }

    /// Bootstrap servers of the mock cluster.
    pub fn brokers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Kafka arguments for clients of this cluster: topics are created here, up front,
    /// because the mock cluster's admin API does not answer CreateTopics.
    pub fn kafka_args(&self, topic_prefix: &str) -> crate::KafkaArgs {
        let mut args = crate::KafkaArgs::for_brokers(&self.brokers());
        args.topic_prefix = topic_prefix.to_string();
        args.create_topics = false;
        args
    }

    /// Creates every pipeline topic and every stage's dead-letter topic under `prefix`.
    pub fn create_pipeline_topics(&self, prefix: &str, partitions: i32) -> Result<Vec<String>, EmbeddedError> {
        let mut names: Vec<String> = selfheal_events::topics::ALL
            .iter()
            .map(|t| format!("{prefix}{t}"))
            .collect();
        for stage in crate::STAGE_NAMES {
            names.push(format!("{prefix}{}", selfheal_events::dead_letter_topic(stage)));
        }
        for name in &names {
            self.create_topic(name, partitions)?;
        }
        Ok(names)
    }

    /// Creates a topic on the mock cluster.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| EmbeddedError::Kafka(e.to_string()))
    }
}
