//! `selfheal logs templates`: mine a log file into templates offline, with the same miner
//! the monitor runs on live logs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use selfheal_drain::MinerConfig;

/// `selfheal logs …`
#[derive(Debug, clap::Subcommand)]
pub enum LogsCommand {
    /// Mine FILE into templates: prints each line's template id, then every template with its count.
    Templates(TemplatesArgs),
}

/// Arguments of `selfheal logs templates`.
#[derive(Debug, clap::Args)]
pub struct TemplatesArgs {
    /// The log file.
    pub file: PathBuf,
    /// Line header format; only the `<Content>` field is mined, e.g. `<Date> <Time> <Level> <Component>: <Content>`.
    #[arg(long, env = "SELFHEAL_LOG_FORMAT")]
    pub format: Option<String>,
    /// Similarity threshold (0..1) above which a line joins an existing template.
    #[arg(long, env = "SELFHEAL_DRAIN_SIMILARITY", default_value_t = 0.6)]
    pub similarity: f64,
}

/// Mines the file and writes the report.
pub fn run(cmd: &LogsCommand, out: impl std::io::Write) -> Result<()> {
    match cmd {
        LogsCommand::Templates(args) => {
            let config = MinerConfig {
                similarity_threshold: args.similarity,
                ..MinerConfig::default()
            };
            let report = selfheal_drain::mine_file(&args.file, args.format.as_deref(), config)
                .with_context(|| format!("mining {}", args.file.display()))?;
            selfheal_drain::write_report(&report, out).context("writing the report")?;
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn similar_lines_share_a_template() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.log");
        std::fs::write(
            &f,
            "2024-01-01 10:00:00 ERROR db: Connection to db1 timed out after 30 ms\n\
             2024-01-01 10:00:01 ERROR db: Connection to cache-2 timed out after 4500 ms\n",
        )
        .unwrap();
        let mut out = Vec::new();
        let cmd = LogsCommand::Templates(TemplatesArgs {
            file: f,
            format: Some("<Date> <Time> <Level> <Component>: <Content>".into()),
            similarity: 0.6,
        });
        run(&cmd, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("(1 templates)"), "{text}");
        assert!(text.contains("Connection to <*> timed out after <NUM> ms"), "{text}");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let cmd = LogsCommand::Templates(TemplatesArgs {
            file: "/nonexistent/x.log".into(),
            format: None,
            similarity: 0.6,
        });
        let err = run(&cmd, Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/x.log"));
    }
}
