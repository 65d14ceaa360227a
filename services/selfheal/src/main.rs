//! The `selfheal` command: demo, up, tail, approve/reject/pending, knowledge, record/replay,
//! trace and log tools. Each subcommand lives in its own module of the library.

use anyhow::Result;
use clap::Parser;
use selfheal::cmd::{Cli, Command, approve, explain, fix, knowledge, logs, record, tail, trace, up};
use selfheal::demo;
use selfheal_core::{Shutdown, TelemetryArgs};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // Errors are printed with their causes, one line, without a backtrace: this is a CLI.
    if let Err(e) = run(cli).await {
        eprintln!("selfheal: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let mut stdout = std::io::stdout();
    match cli.command {
        // The demo owns the terminal and sends service logs to its run directory.
        Command::Demo(args) => {
            let code = demo::main(args, &cli.telemetry).await?;
            std::process::exit(code);
        }
        Command::Trace(cmd) => trace::run(&cmd, &mut stdout.lock()),
        Command::Logs(cmd) => logs::run(&cmd, stdout.lock()),
        other => {
            // `up` is a service and logs like one; the tools print results and stay quiet.
            let telemetry = if matches!(other, Command::Up(_)) {
                service_logs(&cli.telemetry)
            } else {
                quiet(&cli.telemetry)
            };
            let _guard = selfheal_core::telemetry::init(&telemetry, "selfheal");
            let shutdown = Shutdown::on_signals();
            match other {
                Command::Up(args) => up::run(*args, &cli.telemetry, shutdown).await,
                Command::Tail(args) => tail::run(&args, &shutdown, &mut stdout).await.map(|_| ()),
                Command::Approve(args) => {
                    let a = approve::decide(&args, true, &shutdown).await?;
                    println!("approved incident {} as {}", a.incident_id, a.decision.by);
                    Ok(())
                }
                Command::Reject(args) => {
                    let a = approve::decide(&args, false, &shutdown).await?;
                    println!("rejected incident {} as {}", a.incident_id, a.decision.by);
                    Ok(())
                }
                Command::Pending(args) => approve::pending(&args, &mut stdout).await.map(|_| ()),
                Command::Knowledge(args) => knowledge::run(&args, &mut stdout).await,
                Command::Record(args) => {
                    let n = record::record(&args).await?;
                    eprintln!("recorded {n} records to {}", args.out.display());
                    Ok(())
                }
                Command::Replay(args) => {
                    let n = record::replay(&args).await?;
                    eprintln!("replayed {n} records from {}", args.file.display());
                    Ok(())
                }
                Command::Explain(args) => explain::run(&args, &mut stdout).await,
                Command::Fix(args) => fix::run(&args, &mut stdout).await,
                Command::Demo(_) | Command::Trace(_) | Command::Logs(_) => Ok(()),
            }
        }
    }
}

/// The CLI tools print results on stdout; their own logs stay at warnings unless asked.
fn quiet(t: &TelemetryArgs) -> TelemetryArgs {
    let mut t = t.clone();
    if std::env::var_os("SELFHEAL_LOG").is_none() && t.log_filter == "info" {
        t.log_filter = "warn".into();
    }
    t
}

/// `selfheal up` logs like a service, without librdkafka's periodic statistics lines.
fn service_logs(t: &TelemetryArgs) -> TelemetryArgs {
    let mut t = t.clone();
    if std::env::var_os("SELFHEAL_LOG").is_none() && t.log_filter == "info" {
        t.log_filter = "info,rdkafka=warn".into();
    }
    t
}
