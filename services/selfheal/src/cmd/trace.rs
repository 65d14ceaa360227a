//! `selfheal trace parse`: parse a stack trace (any of the seven runtimes) and print what
//! the diagnoser would see, as JSON.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// Largest input read; a trace is never megabytes, and the parser bounds its own work too.
const MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024;

/// `selfheal trace …`
#[derive(Debug, clap::Subcommand)]
pub enum TraceCommand {
    /// Parse a stack trace and print runtime, exception, frames, culprit and fingerprint as JSON.
    Parse(ParseArgs),
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
}

/// Reads the input (lossy UTF-8: a trace with stray bytes still parses) and prints the JSON.
pub fn run(cmd: &TraceCommand, out: &mut impl std::io::Write) -> Result<()> {
    match cmd {
        TraceCommand::Parse(args) => {
            let text = read_input(args.file.as_deref())?;
            let value = selfheal_stacktrace::cli_parse(&text, args.repo.as_deref(), args.source_root.as_deref());
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            Ok(())
        }
    }
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
            }),
            &mut out,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["found"], false);
    }
}
