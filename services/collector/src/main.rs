//! `selfheal-collector`: OTLP/HTTP, Alertmanager and Loki receivers writing to telemetry.raw.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use selfheal_collector::{CollectorConfig, prepare, start};
use selfheal_core::{Publisher, ServiceArgs, kafka, launch};

#[derive(Debug, Parser)]
#[command(
    name = "selfheal-collector",
    version,
    about = "Receives OTLP/HTTP, Alertmanager and Loki telemetry and writes it to telemetry.raw"
)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Address of the OTLP/HTTP receiver (also serves /v1/alertmanager and /loki/api/v1/push).
    #[arg(long, env = "SELFHEAL_OTLP_HTTP_ADDR", default_value = selfheal_collector::DEFAULT_OTLP_HTTP_ADDR)]
    otlp_http_addr: SocketAddr,
    /// Largest request body accepted, compressed or decompressed, in bytes.
    #[arg(long, env = "SELFHEAL_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Requests handled at once; more are answered 429 with Retry-After.
    #[arg(long, env = "SELFHEAL_MAX_IN_FLIGHT", default_value_t = 64)]
    max_in_flight: usize,
    /// Seconds a request waits for Kafka's acknowledgements before it is answered 503.
    #[arg(long, env = "SELFHEAL_PUBLISH_TIMEOUT_SECS", default_value_t = 10)]
    publish_timeout_secs: u64,
    /// Name of an environment variable holding a bearer token required on ingest requests.
    #[arg(long, env = "SELFHEAL_AUTH_TOKEN_ENV")]
    auth_token_env: Option<String>,
}

impl Args {
    /// The receiver's settings; the token is read from the variable `--auth-token-env` names.
    fn config(&self, topic: String) -> anyhow::Result<CollectorConfig> {
        let mut config = CollectorConfig::new(self.otlp_http_addr, topic);
        config.max_body_bytes = self.max_body_bytes;
        config.max_in_flight = self.max_in_flight;
        config.publish_timeout = Duration::from_secs(self.publish_timeout_secs);
        config.auth_token = match &self.auth_token_env {
            Some(name) => Some(
                std::env::var(name)
                    .ok()
                    .filter(|t| !t.trim().is_empty())
                    .with_context(|| format!("--auth-token-env names {name}, which is unset or empty"))?,
            ),
            None => None,
        };
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Not a stage: the collector's input is HTTP, its output one topic.
    launch::run("selfheal-collector", args.service.clone(), |svc| async move {
        let topic = svc.kafka().topic(selfheal_events::TELEMETRY_RAW);
        let config = args.config(topic.clone())?;
        svc.serve_ops().await?;
        prepare(svc.kafka(), svc.runtime(), svc.codec(), &topic, svc.shutdown())
            .await
            .context("preparing telemetry.raw")?;
        let publisher = Publisher::new(kafka::producer(svc.kafka())?, svc.codec().clone(), "collector");
        let (metrics, health, shutdown) = (svc.metrics().clone(), svc.health().clone(), svc.shutdown().clone());
        start(config, publisher.clone(), metrics, health, shutdown.clone()).await?;
        shutdown.wait().await;
        publisher.flush(svc.runtime().grace_period());
        Ok(())
    })
    .await
}
