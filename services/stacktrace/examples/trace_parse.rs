//! `cargo run -p selfheal-stacktrace --example trace_parse -- [FILE] [--repo DIR]
//! [--source-root ROOT]`: what `selfheal trace parse` prints, for trying traces by hand.

use std::io::Read;
use std::path::PathBuf;

fn main() {
    let mut file = None;
    let mut repo: Option<PathBuf> = None;
    let mut source_root = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repo" => repo = args.next().map(PathBuf::from),
            "--source-root" => source_root = args.next(),
            _ => file = Some(a),
        }
    }
    let mut text = String::new();
    let read = match &file {
        Some(f) => std::fs::read(f).map(|b| text = String::from_utf8_lossy(&b).into_owned()),
        None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
    };
    if let Err(e) = read {
        eprintln!("cannot read input: {e}");
        std::process::exit(2);
    }
    let out = selfheal_stacktrace::cli_parse(&text, repo.as_deref(), source_root.as_deref());
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}
