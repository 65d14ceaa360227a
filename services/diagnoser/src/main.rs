//! selfheal-diagnoser: consumes `anomalies`, localises each failure in the service's
//! repository and publishes one `Diagnosis` per incident to `diagnoses`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use selfheal_core::{ServiceArgs, launch};
use selfheal_diagnoser::{DEFAULT_LEARNER_URL, Diagnoser, DiagnoserLlmSettings};

/// The diagnoser service.
#[derive(Debug, Parser)]
#[command(name = "selfheal-diagnoser", version, about)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// The service catalog (TOML): service → repository, language, source root, …
    #[arg(long = "catalog", env = "SELFHEAL_CATALOG")]
    catalog: PathBuf,
    /// Base URL of the learner's query API, asked for fixes that worked before.
    #[arg(long = "learner-url", env = "SELFHEAL_LEARNER_URL", default_value = DEFAULT_LEARNER_URL)]
    learner_url: String,
    #[command(flatten)]
    llm: selfheal_llm::LlmConfig,
    /// Ask the model (when one is configured) only when the best rule-based confidence is below this.
    #[arg(
        long = "llm-min-rule-confidence",
        env = "SELFHEAL_LLM_MIN_RULE_CONFIDENCE",
        default_value_t = DiagnoserLlmSettings::default().min_rule_confidence
    )]
    llm_min_rule_confidence: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    launch::run_stage("selfheal-diagnoser", args.service, |_| {
        // A wrong LLM configuration fails the start; the error names variables, never the key.
        let llm = args.llm.client().context("LLM configuration")?;
        let settings = DiagnoserLlmSettings {
            min_rule_confidence: args.llm_min_rule_confidence,
            ..DiagnoserLlmSettings::default()
        };
        Ok(Diagnoser::from_config(&args.catalog, &args.learner_url)
            .with_context(|| format!("loading the catalog {}", args.catalog.display()))?
            .with_llm(llm, settings))
    })
    .await?;
    Ok(())
}
