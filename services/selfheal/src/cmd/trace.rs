//! `selfheal trace parse`: parse a stack trace (any of the seven runtimes) and print what
//! the diagnoser would see, as JSON; with `--repo`, the repository decides which frames are
//! the service's own. `selfheal trace eval`: exact culprit file:line per runtime on an
//! evaluation set of real traces (the stacktrace crate's `eval/`).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Largest input read; a trace is never megabytes, and the parser bounds its own work too.
const MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024;

/// `selfheal trace …`
#[derive(Debug, clap::Subcommand)]
pub enum TraceCommand {
    /// Parse a stack trace and print runtime, exception, frames, culprit and fingerprint as JSON.
    Parse(ParseArgs),
    /// Measure exact culprit file:line per runtime on an evaluation set of real traces.
    Eval(EvalArgs),
}

/// Arguments of `selfheal trace eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The evaluation set (`cases/*.jsonl`, `repos/*.json`); the one in the source tree by default.
    pub dir: Option<PathBuf>,
    /// Print every case whose culprit is not exactly the known one.
    #[arg(long)]
    pub misses: bool,
    /// Print the report (every case) as one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Where the evaluation set lives in a source checkout.
fn default_eval_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacktrace/eval")
}

/// Arguments of `selfheal trace parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// File holding the trace (a log excerpt is fine); standard input when absent or `-`.
    pub file: Option<PathBuf>,
    /// Git repository to map the culprit frame to a file and line in.
    #[arg(long, env = "SELFHEAL_TRACE_REPO")]
    pub repo: Option<PathBuf>,
    /// Directory of in-app code inside the repository (e.g. `src`), as in the service catalog.
    #[arg(long, env = "SELFHEAL_TRACE_SOURCE_ROOT")]
    pub source_root: Option<String>,
    /// The deployed service version (tag, sha, `git describe` name): the repository is read
    /// at that commit when it names one, else its working tree.
    #[arg(long, env = "SELFHEAL_TRACE_SERVICE_VERSION")]
    pub service_version: Option<String>,
}

/// Reads the input (lossy UTF-8: a trace with stray bytes still parses) and prints the JSON.
pub fn run(cmd: &TraceCommand, out: &mut impl std::io::Write) -> Result<()> {
    match cmd {
        TraceCommand::Parse(args) => {
            let text = read_input(args.file.as_deref())?;
            let value = selfheal_stacktrace::cli_parse_with(
                &text,
                &selfheal_stacktrace::CliOptions {
                    repo: args.repo.as_deref(),
                    source_root: args.source_root.as_deref(),
                    version: args.service_version.as_deref(),
                    ..Default::default()
                },
            );
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            Ok(())
        }
        TraceCommand::Eval(args) => eval(args, out),
    }
}

/// Runs the evaluation with and without the repository and prints the figures.
fn eval(args: &EvalArgs, out: &mut impl std::io::Write) -> Result<()> {
    use selfheal_stacktrace::eval::{EvalSet, Method, format_figures};
    let dir = args.dir.clone().unwrap_or_else(default_eval_dir);
    let set = EvalSet::load(&dir).with_context(|| format!("reading the evaluation set in {}", dir.display()))?;
    let heuristic = set.evaluate(Method::Heuristic);
    let repository = set.evaluate(Method::Repository);
    if args.json {
        let v = serde_json::json!({"heuristic": heuristic, "repository": repository});
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
        return Ok(());
    }
    for report in [&heuristic, &repository] {
        let title = match report.method {
            Method::Heuristic => "heuristics only (no repository)",
            Method::Repository => "with the repository",
        };
        writeln!(out, "exact culprit file:line, {title}:")?;
        write!(out, "{}", format_figures(report))?;
        if args.misses {
            for r in report.results.iter().filter(|r| !r.exact) {
                writeln!(
                    out,
                    "  miss {}: expected {}, got {}",
                    r.id,
                    r.expected,
                    r.actual.as_deref().unwrap_or("no culprit")
                )?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

fn read_input(file: Option<&std::path::Path>) -> Result<String> {
    let mut bytes = Vec::new();
    match file {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::File::open(p)
                .with_context(|| format!("opening {}", p.display()))?
                .take(MAX_INPUT_BYTES)
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", p.display()))?;
        }
        _ => {
            std::io::stdin()
                .take(MAX_INPUT_BYTES)
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_python_trace_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.txt");
        std::fs::write(
            &f,
            "Traceback (most recent call last):\n  File \"/app/pricing_logic.py\", line 14, in calc\n    return p / d\nZeroDivisionError: float division by zero\n",
        )
        .unwrap();
        let mut out = Vec::new();
        run(
            &TraceCommand::Parse(ParseArgs {
                file: Some(f),
                repo: None,
                source_root: None,
                service_version: None,
            }),
            &mut out,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["found"], true);
        assert_eq!(v["exception"], "ZeroDivisionError");
    }

    #[test]
    fn garbage_and_invalid_utf8_do_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.bin");
        std::fs::write(&f, [0xff, 0xfe, b'x', 0, 0x80]).unwrap();
        let mut out = Vec::new();
        run(
            &TraceCommand::Parse(ParseArgs {
                file: Some(f),
                repo: None,
                source_root: None,
                service_version: None,
            }),
            &mut out,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["found"], false);
    }

    #[test]
    fn eval_prints_figures_per_runtime_for_both_methods() {
        let mut out = Vec::new();
        run(
            &TraceCommand::Eval(EvalArgs {
                dir: None,
                misses: false,
                json: false,
            }),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("heuristics only") && text.contains("with the repository"),
            "{text}"
        );
        for rt in ["jvm", "rust", "go", "node", "python"] {
            assert!(text.lines().any(|l| l.starts_with(rt)), "{rt} missing: {text}");
        }
        let missing = run(
            &TraceCommand::Eval(EvalArgs {
                dir: Some(PathBuf::from("/nonexistent/eval")),
                misses: false,
                json: false,
            }),
            &mut Vec::new(),
        );
        assert!(missing.is_err());
    }
}
