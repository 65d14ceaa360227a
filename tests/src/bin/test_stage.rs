//! A stage process for the runner's fault tests: killed mid-stream, sent SIGTERM, restarted.
//!
//! `selfheal-test-stage --input T --output T --dlq T --group G` runs [`selfheal_e2e::EchoStage`]
//! against the real broker and registry until SIGTERM.

use std::sync::Arc;

use clap::Parser;
use selfheal_core::http::Health;
use selfheal_core::metrics::Metrics;
use selfheal_core::runner::{Runner, Topics};
use selfheal_core::{KafkaArgs, Publisher, RegistryArgs, RuntimeArgs, Shutdown, TelemetryArgs};
use selfheal_events::{Anomaly, Codec, TelemetryEvent};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Input topic.
    #[arg(long)]
    input: String,
    /// Output topic.
    #[arg(long)]
    output: String,
    /// Dead-letter topic.
    #[arg(long)]
    dlq: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = selfheal_core::telemetry::init(&args.telemetry, "selfheal-test-stage");
    let shutdown = Shutdown::on_signals();
    let codec = Arc::new(Codec::new(&args.registry.url)?);
    selfheal_core::service::register_schema::<TelemetryEvent>(&codec, &args.input, &shutdown, &args.runtime).await?;
    selfheal_core::service::register_schema::<Anomaly>(&codec, &args.output, &shutdown, &args.runtime).await?;
    let publisher = Publisher::new(selfheal_core::kafka::producer(&args.kafka)?, codec, "echo");
    let group = args.runtime.group_id.clone().unwrap_or_else(|| "selfheal-echo".into());
    let topics = Topics {
        input: args.input,
        output: args.output,
        dead_letter: args.dlq,
    };
    let runner = Runner::new(
        Arc::new(selfheal_e2e::EchoStage::default()),
        &args.kafka,
        &group,
        topics,
        publisher,
        args.runtime,
        Metrics::shared(),
        Health::new(),
    )?;
    let summary = runner.run(shutdown).await?;
    println!(
        "{}",
        serde_json::json!({"records": summary.records, "outputs": summary.outputs, "dead_letters": summary.dead_letters})
    );
    Ok(())
}
