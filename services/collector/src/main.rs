//! `selfheal-collector`: OTLP/HTTP, Alertmanager and Loki receivers writing to telemetry.raw.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use selfheal_collector::{CollectorConfig, prepare, start};
use selfheal_core::http::{self, Health, ops_router};
use selfheal_core::metrics::Metrics;
use selfheal_core::{KafkaArgs, Publisher, RegistryArgs, RuntimeArgs, Shutdown, TelemetryArgs, kafka, telemetry};
use selfheal_events::Codec;

#[derive(Debug, Parser)]
#[command(
    name = "selfheal-collector",
    about = "Receives OTLP/HTTP, Alertmanager and Loki telemetry and writes it to telemetry.raw"
)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = telemetry::init(&args.telemetry, "selfheal-collector");
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::shared();
    let health = Health::new();
    let auth_token = match &args.auth_token_env {
        Some(name) => Some(
            std::env::var(name)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .with_context(|| format!("--auth-token-env names {name}, which is unset or empty"))?,
        ),
        None => None,
    };
    http::serve(
        args.runtime.http_addr,
        ops_router(health.clone(), metrics.clone()),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("cannot serve operations endpoints on {}", args.runtime.http_addr))?;

    let codec = Arc::new(Codec::new(&args.registry.url).context("schema registry client")?);
    let topic = args.kafka.topic(selfheal_events::TELEMETRY_RAW);
    prepare(&args.kafka, &args.runtime, &codec, &topic, &shutdown)
        .await
        .context("preparing telemetry.raw")?;
    let publisher = Publisher::new(kafka::producer(&args.kafka)?, codec, "collector");

    let mut config = CollectorConfig::new(args.otlp_http_addr, topic);
    config.max_body_bytes = args.max_body_bytes;
    config.max_in_flight = args.max_in_flight;
    config.publish_timeout = std::time::Duration::from_secs(args.publish_timeout_secs);
    config.auth_token = auth_token;
    start(config, publisher.clone(), metrics, health, shutdown.clone()).await?;

    shutdown.wait().await;
    publisher.flush(args.runtime.grace_period());
    Ok(())
}
