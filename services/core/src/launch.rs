//! What every service binary does around its stage, in one place, so that each `main.rs`
//! reads config → stage → run.
//!
//! A binary flattens [`ServiceArgs`] (Kafka, registry, telemetry, runtime: the same flags and
//! `SELFHEAL_*` variables in every service) into its own clap command and calls
//! [`run_stage`] with a closure that builds its stage, or [`run`] when it needs more than one
//! stage or work after the stage stops. Either one:
//!
//! 1. starts logging and the service's own traces (named after the binary);
//! 2. installs the SIGTERM/SIGINT shutdown, the metrics registry, readiness and the schema
//!    registry client (one per process);
//! 3. hands a [`Service`] to the closure, which serves `/healthz`, `/readyz` and `/metrics`
//!    on `--http-addr` when the stage starts (or earlier, on request), and runs the stage with
//!    the delivery rules of [`crate::runner`];
//! 4. logs how the service ended, so an error reaches the JSON logs of a container too.
//!
//! `selfheal up` and the demo, which run every stage in one process, use
//! [`crate::service`] directly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use selfheal_events::Codec;
use tokio::sync::Mutex;

use crate::config::{KafkaArgs, RegistryArgs, RuntimeArgs, TelemetryArgs};
use crate::http::{self, Health, ops_router};
use crate::metrics::Metrics;
use crate::runner::RunSummary;
use crate::service::{self as stage_service, Shared};
use crate::shutdown::Shutdown;
use crate::stage::Stage;
use crate::telemetry;

/// The flags and environment variables every service binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Kafka brokers, topic naming and extra client properties.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Logs and the service's own traces.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Operations endpoint, consumer group, dead letters, grace period, retries.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// A running service's shared parts, handed to the closure that builds and runs its stage.
#[derive(Clone)]
pub struct Service {
    name: &'static str,
    shared: Shared,
    /// Whether something already listens on `--http-addr` (the ops server or an API that
    /// carries the ops routes); guards against binding it twice.
    ops_served: Arc<Mutex<bool>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("name", &self.name).finish()
    }
}

impl Service {
    /// Signals, metrics, readiness and the registry client of a process named `name`.
    fn new(name: &'static str, args: ServiceArgs) -> anyhow::Result<Service> {
        let codec = Codec::new(&args.registry.url)
            .with_context(|| format!("schema registry client for {}", args.registry.url))?;
        Ok(Service {
            name,
            shared: Shared {
                kafka: args.kafka,
                runtime: args.runtime,
                codec: Arc::new(codec),
                metrics: Metrics::shared(),
                health: Health::new(),
                shutdown: Shutdown::on_signals(),
            },
            ops_served: Arc::new(Mutex::new(false)),
        })
    }

    /// The binary's name (`selfheal-<stage>`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Everything the stages of this process share (for [`crate::service`]'s functions).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Kafka settings.
    pub fn kafka(&self) -> &KafkaArgs {
        &self.shared.kafka
    }

    /// Runtime settings.
    pub fn runtime(&self) -> &RuntimeArgs {
        &self.shared.runtime
    }

    /// The registry codec of the process.
    pub fn codec(&self) -> &Arc<Codec> {
        &self.shared.codec
    }

    /// The metrics of the process.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Readiness of the process.
    pub fn health(&self) -> &Health {
        &self.shared.health
    }

    /// The shutdown signal (SIGTERM, SIGINT).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shared.shutdown
    }

    /// Serves `routes` plus `/healthz`, `/readyz` and `/metrics` on `addr` until shutdown
    /// (every port a service opens answers the probes); returns the bound address. When
    /// `addr` is `--http-addr`, this server is the ops endpoint too.
    pub async fn serve(&self, what: &str, addr: SocketAddr, routes: Router) -> anyhow::Result<SocketAddr> {
        let mut ops_served = self.ops_served.lock().await;
        let is_ops_addr = addr == self.shared.runtime.http_addr;
        if is_ops_addr && *ops_served {
            anyhow::bail!("cannot serve the {what} on {addr}: the operations endpoint already listens there");
        }
        let router = routes.merge(ops_router(self.shared.health.clone(), self.shared.metrics.clone()));
        let bound = http::serve(addr, router, self.shared.shutdown.clone())
            .await
            .with_context(|| format!("serving the {what} on {addr}"))?;
        *ops_served |= is_ops_addr;
        tracing::info!(service = self.name, %bound, "{what} listening");
        Ok(bound)
    }

    /// Serves `/healthz`, `/readyz` and `/metrics` on `--http-addr`, unless already served
    /// there; [`Service::run_stage`] calls it, a service whose start is slow calls it first.
    pub async fn serve_ops(&self) -> anyhow::Result<()> {
        let mut ops_served = self.ops_served.lock().await;
        if *ops_served {
            return Ok(());
        }
        let addr = self.shared.runtime.http_addr;
        let router = ops_router(self.shared.health.clone(), self.shared.metrics.clone());
        let bound = http::serve(addr, router, self.shared.shutdown.clone())
            .await
            .with_context(|| format!("serving /healthz, /readyz and /metrics on {addr}"))?;
        *ops_served = true;
        tracing::info!(service = self.name, %bound, "operations endpoint listening");
        Ok(())
    }

    /// Serves the ops endpoint, then prepares the stage's topics and schemas and runs it
    /// until shutdown (see [`crate::runner`] for the delivery rules).
    pub async fn run_stage<S: Stage>(&self, stage: Arc<S>) -> anyhow::Result<RunSummary> {
        self.serve_ops().await?;
        let stage_name = stage.name();
        let summary = stage_service::run_stage(stage, self.shared.clone())
            .await
            .with_context(|| format!("the {stage_name} stage"))?;
        tracing::info!(service = self.name, stage = stage_name, ?summary, "stage stopped");
        Ok(summary)
    }
}

/// Runs a service binary named `name`: logging and traces, shutdown on signals, metrics,
/// readiness and the registry client, then `body` with the [`Service`]; the result of `body`
/// is the binary's.
pub async fn run<T, F, Fut>(name: &'static str, args: ServiceArgs, body: F) -> anyhow::Result<T>
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let _telemetry = telemetry::init(&args.telemetry, name);
    let result = match Service::new(name, args) {
        Ok(service) => body(service).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(_) => tracing::info!(service = name, "stopped"),
        // The error is returned too (the exit status and stderr); this line is for log pipelines.
        Err(e) => tracing::error!(service = name, error = %format!("{e:#}"), "stopped with an error"),
    }
    result
}

/// Runs a service binary whose work is one stage: [`run`] with `build` making the stage
/// (a configuration error stops the start before anything listens), then
/// [`Service::run_stage`].
pub async fn run_stage<S, F>(name: &'static str, args: ServiceArgs, build: F) -> anyhow::Result<RunSummary>
where
    S: Stage,
    F: FnOnce(&Service) -> anyhow::Result<S>,
{
    run(name, args, |service| async move {
        let stage = build(&service)?;
        service.run_stage(Arc::new(stage)).await
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    #[command(name = "selfheal-test", version)]
    struct Args {
        #[command(flatten)]
        service: ServiceArgs,
    }

    fn service(http_addr: &str) -> Service {
        let args = Args::try_parse_from(["selfheal-test", "--http-addr", http_addr]).unwrap();
        Service::new("selfheal-test", args.service).unwrap()
    }

    #[test]
    fn every_shared_flag_keeps_its_name_and_variable() {
        let cmd = <Args as clap::CommandFactory>::command();
        cmd.clone().debug_assert();
        let envs: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        for var in [
            "SELFHEAL_KAFKA_BROKERS",
            "SELFHEAL_TOPIC_PREFIX",
            "SELFHEAL_KAFKA_PROPERTIES",
            "SELFHEAL_SCHEMA_REGISTRY_URL",
            "SELFHEAL_OTLP_ENDPOINT",
            "SELFHEAL_LOG",
            "SELFHEAL_LOG_JSON",
            "SELFHEAL_HTTP_ADDR",
            "SELFHEAL_GROUP_ID",
            "SELFHEAL_GRACE_PERIOD_SECS",
        ] {
            assert!(envs.iter().any(|e| e == var), "{var} is not read: {envs:?}");
        }
        let args = Args::try_parse_from(["selfheal-test", "--kafka-brokers", "k:1", "--group-id", "g"]).unwrap();
        assert_eq!(args.service.kafka.brokers, "k:1");
        assert_eq!(args.service.runtime.group_id.as_deref(), Some("g"));
    }

    #[tokio::test]
    async fn the_ops_endpoint_is_served_once_and_an_api_on_its_address_carries_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let svc = service(&addr);
        let api = Router::new().route("/v1/hello", axum::routing::get(|| async { "hello" }));
        let bound = svc.serve("test API", addr.parse().unwrap(), api).await.unwrap();
        assert_eq!(bound.port(), port);
        // The API took the ops address: the ops endpoint is not bound a second time...
        svc.serve_ops().await.unwrap();
        // ...and the API answers the probes itself.
        for path in ["/v1/hello", "/healthz", "/metrics"] {
            let status = reqwest::get(format!("http://{addr}{path}")).await.unwrap().status();
            assert!(status.is_success(), "{path}: {status}");
        }
        let again = svc.serve("second API", addr.parse().unwrap(), Router::new()).await;
        assert!(again.is_err(), "a second server on the ops address is refused");
        svc.shutdown().trigger();
    }

    #[tokio::test]
    async fn serve_ops_is_idempotent() {
        let svc = service("127.0.0.1:0");
        svc.serve_ops().await.unwrap();
        svc.serve_ops().await.unwrap();
        assert!(*svc.ops_served.lock().await);
        svc.shutdown().trigger();
    }
}
