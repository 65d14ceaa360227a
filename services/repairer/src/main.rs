//! selfheal-repairer: consumes `diagnoses`, produces `patches` (see the library docs).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use selfheal_core::{ServiceArgs, launch};
use selfheal_repairer::{AgentSettings, RepairerConfig};

/// The repairer service: fix templates, regression tests, sandbox validation, policy gate, branches.
#[derive(Debug, Parser)]
#[command(name = "selfheal-repairer", version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// The service catalog (TOML): repositories, test commands, limits, protected globs.
    #[arg(long, env = "SELFHEAL_CATALOG", default_value = "examples/catalog.toml")]
    catalog: PathBuf,
    /// A directory of Rego policies replacing the embedded ones.
    #[arg(long, env = "SELFHEAL_POLICIES_DIR")]
    policies_dir: Option<PathBuf>,
    /// Python interpreter replacing a leading `python3`/`python` in the catalog's test command (e.g. a venv with pytest).
    #[arg(long, env = "SELFHEAL_PYTHON")]
    python: Option<String>,
    /// Run tests WITHOUT network isolation when neither bwrap nor `unshare --net` works.
    #[arg(long, env = "SELFHEAL_ALLOW_UNSANDBOXED")]
    allow_unsandboxed: bool,
    /// Where sandbox copies and temporary worktrees are made.
    #[arg(long, env = "SELFHEAL_REPAIRER_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// The model that writes a fix when no template or learned fix was proven (none configured: no model).
    #[command(flatten)]
    llm: selfheal_llm::LlmConfig,
    /// Candidate/self-critique rounds of a model-written fix: the first candidate plus this many minus one revisions.
    #[arg(long = "llm-max-rounds", env = "SELFHEAL_LLM_MAX_ROUNDS", default_value_t = 2)]
    llm_max_rounds: u32,
    /// Lines of code around the culprit line shown to the model, on each side.
    #[arg(long = "llm-context-lines", env = "SELFHEAL_LLM_CONTEXT_LINES", default_value_t = 25)]
    llm_context_lines: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    launch::run_stage("selfheal-repairer", args.service, |_| {
        let mut config = RepairerConfig {
            python: args.python.clone(),
            allow_unsandboxed: args.allow_unsandboxed,
            ..RepairerConfig::default()
        };
        if let Some(dir) = args.work_dir.clone() {
            config.work_dir = dir;
        }
        // Configuration errors fail the start; the key itself is never part of an error or log.
        let client = args.llm.client().context("configuring the LLM")?;
        let settings = AgentSettings {
            max_rounds: args.llm_max_rounds.max(1),
            context_lines: args.llm_context_lines,
            ..AgentSettings::default()
        };
        Ok(
            selfheal_repairer::build(&args.catalog, args.policies_dir.as_deref(), config)
                .context("building the repairer")?
                .with_llm(client, settings),
        )
    })
    .await?;
    Ok(())
}
