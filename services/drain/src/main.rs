//! `selfheal-drain`: the miner as a standalone command, for benchmarks and
//! for use without the rest of the workspace.
//!
//! ```text
//! selfheal-drain templates FILE [--format '<Date> <Time> <Level> <Component>: <Content>']
//!     [--regex PATTERN]... [--regex-token TOKEN] [--no-builtin-masks]
//!     [--st 0.6] [--depth 4] [--max-children 100] [--max-clusters 10000]
//!     [--max-line-len 4096] [--max-tokens 256] [--drain-similarity] [--out FILE] [--stats]
//! ```
//!
//! `--stats` prints one `lines=… templates=… secs=… lines_per_sec=…` line
//! to stderr, timing reading and mining (not writing the report).

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::process::ExitCode;
use std::time::Instant;

use selfheal_drain::{LogFormat, Mask, MinerConfig, mine_reader, write_report};

const USAGE: &str = "usage: selfheal-drain templates FILE [--format FMT] [--regex RE]... [--regex-token TOK] \
[--no-builtin-masks] [--st F] [--depth N] [--max-children N] [--max-clusters N] [--max-line-len N] \
[--max-tokens N] [--drain-similarity] [--out FILE] [--stats]";

struct Args {
    file: String,
    format: Option<String>,
    config: MinerConfig,
    out: Option<String>,
    stats: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    if args.next().as_deref() != Some("templates") {
        return Err(USAGE.into());
    }
    let mut file = None;
    let mut format = None;
    let mut regexes = Vec::new();
    let mut regex_token = "<*>".to_owned();
    let mut builtin = true;
    let mut config = MinerConfig::default();
    let mut out = None;
    let mut stats = false;
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match a.as_str() {
            "--format" => format = Some(val("--format")?),
            "--regex" => regexes.push(val("--regex")?),
            "--regex-token" => regex_token = val("--regex-token")?,
            "--no-builtin-masks" => builtin = false,
            "--st" => config.similarity_threshold = num("--st", val("--st")?)?,
            "--depth" => config.depth = num("--depth", val("--depth")?)?,
            "--max-children" => config.max_children = num("--max-children", val("--max-children")?)?,
            "--max-clusters" => config.max_clusters = num("--max-clusters", val("--max-clusters")?)?,
            "--max-line-len" => config.max_line_len = num("--max-line-len", val("--max-line-len")?)?,
            "--max-tokens" => config.max_tokens = num("--max-tokens", val("--max-tokens")?)?,
            "--out" => out = Some(val("--out")?),
            "--stats" => stats = true,
            "--drain-similarity" => config.drain_similarity = true,
            "-h" | "--help" => return Err(USAGE.into()),
            _ if file.is_none() && !a.starts_with("--") => file = Some(a),
            _ => return Err(format!("unexpected argument {a}\n{USAGE}")),
        }
    }
    let mut masks = Vec::new();
    for r in &regexes {
        masks.push(Mask::regex(r, &regex_token).map_err(|e| format!("--regex {r}: {e}"))?);
    }
    if builtin {
        masks.extend(Mask::defaults());
    }
    config.masks = masks;
    Ok(Args {
        file: file.ok_or(USAGE)?,
        format,
        config,
        out,
        stats,
    })
}

fn main() -> ExitCode {
    // `--help` and `--version` answer on stdout and succeed, as every selfheal binary does.
    match std::env::args().nth(1).as_deref() {
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("selfheal-drain {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let format = match args.format.as_deref().map(LogFormat::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("selfheal-drain: bad --format: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let mined = File::open(&args.file)
        .and_then(|f| mine_reader(BufReader::with_capacity(1 << 16, f), format.as_ref(), args.config));
    let report = match mined {
        Ok(r) => r,
        Err(e) => {
            eprintln!("selfheal-drain: {}: {e}", args.file);
            return ExitCode::FAILURE;
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let written = match &args.out {
        Some(path) => File::create(path).and_then(|f| write_report(&report, f)),
        None => write_report(&report, io::stdout().lock()),
    };
    if let Err(e) = written {
        eprintln!("selfheal-drain: writing report: {e}");
        return ExitCode::FAILURE;
    }
    if args.stats {
        let lines = report.lines();
        let _ = writeln!(
            io::stderr(),
            "lines={lines} templates={} format_mismatches={} secs={secs:.4} lines_per_sec={:.0}",
            report.templates.len(),
            report.format_mismatches,
            lines as f64 / secs.max(1e-9)
        );
    }
    ExitCode::SUCCESS
}
