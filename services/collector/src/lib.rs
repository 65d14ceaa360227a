//! The collector: receives telemetry over HTTP and writes one Avro `TelemetryEvent` per
//! span, log record, metric data point and alert to `telemetry.raw`, keyed by service.
//!
//! Unlike the other services it consumes no topic: it is an HTTP server ([`server`]) whose
//! handlers convert what arrives ([`otlp`], [`alertmanager`], [`loki`]) and store it through
//! an [`sink::EventSink`] — Kafka via `selfheal_core::Publisher` in production. A request is
//! answered 200 only once the broker acknowledged all its events; while Kafka or the
//! registry is down it is answered 503 with `Retry-After`, which OTLP exporters retry.
//!
//! ```no_run
//! # async fn demo(publisher: selfheal_core::Publisher, kafka: selfheal_core::KafkaArgs,
//! #   runtime: selfheal_core::RuntimeArgs, shutdown: selfheal_core::Shutdown) -> Result<(), selfheal_collector::CollectorError> {
//! use selfheal_collector::{CollectorConfig, prepare, start};
//! let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
//! let config = CollectorConfig::new(addr, kafka.topic(selfheal_events::TELEMETRY_RAW));
//! prepare(&kafka, &runtime, publisher.codec(), &config.topic, &shutdown).await?;
//! let metrics = selfheal_core::metrics::Metrics::shared();
//! let health = selfheal_core::http::Health::new();
//! let addr = start(config, publisher, metrics, health, shutdown).await?;
//! # let _ = addr; Ok(()) }
//! ```

pub mod alertmanager;
pub mod attributes;
pub mod loki;
pub mod otlp;
pub mod server;
pub mod sink;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use selfheal_core::http::Health;
use selfheal_core::kafka::{self, KafkaError};
use selfheal_core::metrics::Metrics;
use selfheal_core::service::{ServiceError, register_schema};
use selfheal_core::{KafkaArgs, Publisher, RuntimeArgs, Shutdown};
use selfheal_events::{Codec, TelemetryEvent};

pub use server::{ServerConfig, router};
pub use sink::{EventSink, MemorySink, PublisherSink, SinkError};

/// Default OTLP/HTTP address (the port OTel SDKs export to by default).
pub const DEFAULT_OTLP_HTTP_ADDR: &str = "127.0.0.1:4318";

/// Why the collector did not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Kafka was unreachable or the topic could not be created.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The schema could not be registered (registry refused it, or shutdown came first).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Everything the collector needs besides its sink, as plain values (not clap).
#[derive(Clone)]
pub struct CollectorConfig {
    /// Where OTLP/HTTP, Alertmanager and Loki requests arrive (port 0: any free port).
    pub otlp_http_addr: SocketAddr,
    /// The topic events are written to (normally `telemetry.raw`, with the deployment's prefix).
    pub topic: String,
    /// Largest body accepted, compressed or decompressed.
    pub max_body_bytes: usize,
    /// Requests handled at once; more are answered 429.
    pub max_in_flight: usize,
    /// How long a request waits for the broker's acknowledgements before it is answered 503.
    pub publish_timeout: Duration,
    /// Bearer token required on ingest requests, when set (never logged).
    pub auth_token: Option<String>,
}

impl std::fmt::Debug for CollectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorConfig")
            .field("otlp_http_addr", &self.otlp_http_addr)
            .field("topic", &self.topic)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("publish_timeout", &self.publish_timeout)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl CollectorConfig {
    /// Defaults (8 MiB bodies, 64 requests in flight, 10 s publish timeout, no auth) for `addr` and `topic`.
    pub fn new(otlp_http_addr: SocketAddr, topic: impl Into<String>) -> Self {
        let server = ServerConfig::default();
        CollectorConfig {
            otlp_http_addr,
            topic: topic.into(),
            max_body_bytes: server.max_body_bytes,
            max_in_flight: server.max_in_flight,
            publish_timeout: Duration::from_secs(10),
            auth_token: None,
        }
    }

    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            max_body_bytes: self.max_body_bytes,
            max_in_flight: self.max_in_flight,
            auth_token: self.auth_token.clone().filter(|t| !t.is_empty()),
            ..ServerConfig::default()
        }
    }
}

/// Waits for Kafka, creates `topic` if missing and registers the `TelemetryEvent` schema
/// on it (refusing an incompatible change). Call once before [`start`]; `selfheal up` may
/// skip it when it prepared the topics itself.
pub async fn prepare(
    kafka: &KafkaArgs,
    runtime: &RuntimeArgs,
    codec: &Codec,
    topic: &str,
    shutdown: &Shutdown,
) -> Result<(), CollectorError> {
    let mut backoff = runtime.backoff();
    kafka::wait_for_broker(kafka, shutdown, &mut backoff).await?;
    kafka::ensure_topics(kafka, &[topic.to_string()]).await?;
    register_schema::<TelemetryEvent>(codec, topic, shutdown, runtime).await?;
    Ok(())
}

/// Serves the receiver with events published through `publisher`; returns the bound address.
/// Runs until `shutdown`. The operations routes (`/healthz`, `/readyz`, `/metrics`) are
/// served on the same listener.
pub async fn start(
    config: CollectorConfig,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: Shutdown,
) -> Result<SocketAddr, CollectorError> {
    let sink = Arc::new(PublisherSink::new(
        publisher,
        config.topic.clone(),
        config.publish_timeout,
    ));
    start_with_sink(config, sink, metrics, health, shutdown).await
}

/// [`start`] with any sink (tests and dry runs use a [`MemorySink`]).
pub async fn start_with_sink(
    config: CollectorConfig,
    sink: Arc<dyn EventSink>,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: Shutdown,
) -> Result<SocketAddr, CollectorError> {
    let app = router(sink, metrics, health.clone(), config.server_config());
    let addr = config.otlp_http_addr;
    let bound = selfheal_core::http::serve(addr, app, shutdown)
        .await
        .map_err(|source| CollectorError::Bind { addr, source })?;
    health.set_ready(true);
    tracing::info!(%bound, topic = %config.topic, auth = config.auth_token.is_some(), "collector receiving OTLP/HTTP, Alertmanager and Loki");
    Ok(bound)
}
