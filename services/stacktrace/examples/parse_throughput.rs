//! `cargo run --release -p selfheal-stacktrace --example parse_throughput -- FILE...`:
//! parses every file repeatedly and reports parses per second (a benchmark, not a test).

use std::time::Instant;

use selfheal_stacktrace::{ParseOptions, parse};

fn main() {
    let texts: Vec<String> = std::env::args()
        .skip(1)
        .filter_map(|f| std::fs::read(f).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    if texts.is_empty() {
        eprintln!("usage: parse_throughput FILE...");
        std::process::exit(2);
    }
    let opts = ParseOptions::default();
    let bytes: usize = texts.iter().map(String::len).sum();
    // Warm up: the first parse compiles every regex.
    for t in &texts {
        let _ = parse(t, &opts);
    }
    let rounds = 200;
    let start = Instant::now();
    let mut found = 0usize;
    for _ in 0..rounds {
        for t in &texts {
            found += usize::from(parse(t, &opts).is_some());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (rounds * texts.len()) as f64;
    println!(
        "{} inputs, {} bytes: {:.0} parses/s, {:.1} MB/s, {} traces found",
        texts.len(),
        bytes,
        n / secs,
        (rounds * bytes) as f64 / secs / 1e6,
        found / rounds
    );
}
