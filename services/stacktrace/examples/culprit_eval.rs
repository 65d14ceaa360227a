//! `cargo run -p selfheal-stacktrace --example culprit_eval -- [DIR] [--method heuristic|repository]
//! [--misses]`: exact culprit file:line per runtime on the evaluation set (default: the
//! crate's `eval/`), the way `selfheal trace eval` prints it.

use std::path::PathBuf;

use selfheal_stacktrace::eval::{EvalSet, Method, format_figures};

fn main() {
    let mut dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/eval"));
    let mut methods = vec![Method::Heuristic, Method::Repository];
    let mut misses = false;
    let mut show: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--method" => {
                methods = match args.next().as_deref() {
                    Some("heuristic") => vec![Method::Heuristic],
                    Some("repository") => vec![Method::Repository],
                    other => {
                        eprintln!("--method heuristic|repository, not {other:?}");
                        std::process::exit(2);
                    }
                }
            }
            "--misses" => misses = true,
            "--case" => show = args.next(),
            _ => dir = PathBuf::from(a),
        }
    }
    let set = match EvalSet::load(&dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Some(id) = show {
        // One case's parse with the repository, as JSON, for finding out why it missed.
        for case in set.cases.iter().filter(|c| c.id == id) {
            let Some(repo) = set.repos.get(&case.repo) else {
                continue;
            };
            let tree = repo.tree();
            if let Ok(project) = selfheal_stacktrace::Project::from_files(&tree) {
                eprintln!("repository names: {:?}", project.own_names());
            }
            let parsed = selfheal_stacktrace::parse_in_repo(&case.trace, &Default::default(), &tree);
            println!("{}", serde_json::to_string_pretty(&parsed).unwrap_or_default());
        }
        return;
    }
    for m in methods {
        let report = set.evaluate(m);
        println!("method: {m:?}");
        print!("{}", format_figures(&report));
        if misses {
            for r in report.results.iter().filter(|r| !r.exact) {
                println!(
                    "  miss {} expected {} got {} (parsed as {}, {:?})",
                    r.id,
                    r.expected,
                    r.actual.as_deref().unwrap_or("none"),
                    r.found_runtime.as_deref().unwrap_or("nothing"),
                    r.basis
                );
            }
        }
    }
}
