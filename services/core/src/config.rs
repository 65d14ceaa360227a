//! Configuration groups shared by every service: Kafka, schema registry, telemetry, runtime.
//!
//! Every flag has an environment variable, so the same binary runs from a shell, a compose
//! file or a Kubernetes manifest. Secrets are never printed: `Debug` of these groups is
//! derived only for fields that carry no credentials.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Where the Kafka cluster is and how topics are named.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(
        long = "kafka-brokers",
        env = "SELFHEAL_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Prefix for every topic name (e.g. `prod.` gives `prod.anomalies`); empty by default.
    #[arg(long = "topic-prefix", env = "SELFHEAL_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions for topics the service creates when they do not exist.
    #[arg(long = "topic-partitions", env = "SELFHEAL_TOPIC_PARTITIONS", default_value_t = 3)]
    pub partitions: i32,
    /// Replication factor for topics the service creates.
    #[arg(long = "topic-replication", env = "SELFHEAL_TOPIC_REPLICATION", default_value_t = 1)]
    pub replication: i32,
    /// Extra librdkafka properties as `key=value`, repeatable (e.g. `security.protocol=SASL_SSL`).
    #[arg(long = "kafka-property", env = "SELFHEAL_KAFKA_PROPERTIES", value_delimiter = ',')]
    pub properties: Vec<String>,
    /// Create missing topics at start (turn off where topics are managed elsewhere, or on the
    /// embedded mock cluster, whose admin API does not answer CreateTopics).
    #[arg(long = "create-topics", env = "SELFHEAL_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub create_topics: bool,
}

impl KafkaArgs {
    /// Arguments for a broker at `brokers` with defaults elsewhere (tests, embedded mode).
    pub fn for_brokers(brokers: &str) -> Self {
        KafkaArgs {
            brokers: brokers.to_string(),
            topic_prefix: String::new(),
            partitions: 3,
            replication: 1,
            properties: Vec::new(),
            create_topics: true,
        }
    }

    /// The full name of a pipeline topic.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{}", self.topic_prefix, name)
    }

    /// Extra properties as pairs; malformed entries are reported, not ignored.
    pub fn extra_properties(&self) -> Result<Vec<(String, String)>, String> {
        self.properties
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => Err(format!("Kafka property `{p}` is not key=value")),
            })
            .collect()
    }
}

/// The schema registry (any registry speaking the Confluent REST API).
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:8085/apis/ccompat/v7`.
    #[arg(
        long = "schema-registry-url",
        env = "SELFHEAL_SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8085/apis/ccompat/v7"
    )]
    pub url: String,
}

/// Logs and OpenTelemetry traces of the service itself.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// OTLP/HTTP endpoint for the service's own traces (e.g. `http://127.0.0.1:4318`); unset disables export.
    #[arg(long = "otlp-endpoint", env = "SELFHEAL_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Log filter in `RUST_LOG` syntax.
    #[arg(long = "log", env = "SELFHEAL_LOG", default_value = "info")]
    pub log_filter: String,
    /// Log as JSON lines instead of text.
    #[arg(long = "log-json", env = "SELFHEAL_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

impl Default for TelemetryArgs {
    fn default() -> Self {
        TelemetryArgs {
            otlp_endpoint: None,
            log_filter: "info".into(),
            log_json: false,
        }
    }
}

/// How the runner behaves.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long = "http-addr", env = "SELFHEAL_HTTP_ADDR", default_value = "127.0.0.1:9464")]
    pub http_addr: SocketAddr,
    /// Consumer group id; defaults to `selfheal-<stage>`.
    #[arg(long = "group-id", env = "SELFHEAL_GROUP_ID")]
    pub group_id: Option<String>,
    /// Dead letters in a row after which the stage stops (something is systematically wrong).
    #[arg(
        long = "max-consecutive-dead-letters",
        env = "SELFHEAL_MAX_CONSECUTIVE_DEAD_LETTERS",
        default_value_t = 100
    )]
    pub max_consecutive_dead_letters: u32,
    /// Seconds to finish the record in hand after SIGTERM.
    #[arg(long = "grace-period-secs", env = "SELFHEAL_GRACE_PERIOD_SECS", default_value_t = 20)]
    pub grace_period_secs: u64,
    /// First retry delay for a dependency that is down, milliseconds.
    #[arg(long = "retry-initial-ms", env = "SELFHEAL_RETRY_INITIAL_MS", default_value_t = 200)]
    pub retry_initial_ms: u64,
    /// Largest retry delay, milliseconds.
    #[arg(long = "retry-max-ms", env = "SELFHEAL_RETRY_MAX_MS", default_value_t = 30_000)]
    pub retry_max_ms: u64,
}

impl Default for RuntimeArgs {
    fn default() -> Self {
        RuntimeArgs {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            group_id: None,
            max_consecutive_dead_letters: 100,
            grace_period_secs: 20,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
        }
    }
}

impl RuntimeArgs {
    /// The grace period as a duration.
    pub fn grace_period(&self) -> Duration {
        Duration::from_secs(self.grace_period_secs)
    }

    /// A fresh backoff for retries.
    pub fn backoff(&self) -> crate::backoff::Backoff {
        crate::backoff::Backoff::new(
            Duration::from_millis(self.retry_initial_ms),
            Duration::from_millis(self.retry_max_ms),
        )
    }
}
