//! The culprit evaluation on real traces with known culprits (`eval/`, see its SOURCES.md):
//! every trace is read as its runtime, and the exact culprit file:line per runtime stays
//! above a floor a little below the measured figure, so a regression fails here. The
//! figures are printed (`cargo test -p selfheal-stacktrace --test eval -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use selfheal_stacktrace::eval::{EvalSet, Method, Report, format_figures};

/// Exact culprit percentage each runtime must reach with the repository (measured: 100% on
/// every runtime; the small sets tolerate one miss).
const FLOORS: &[(&str, f64)] = &[
    ("jvm", 98.0),
    ("rust", 97.0),
    ("go", 94.0),
    ("node", 93.0),
    ("python", 90.0),
];

#[test]
fn every_trace_is_read_and_culprits_stay_above_the_floors() {
    let set = EvalSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("eval")).expect("the evaluation set loads");
    let report = set.evaluate(Method::Repository);
    println!("with the repository:\n{}", format_figures(&report));
    let unread: Vec<&str> = report
        .results
        .iter()
        .filter(|r| !r.parsed)
        .map(|r| r.id.as_str())
        .collect();
    assert!(unread.is_empty(), "traces not read as their runtime: {unread:?}");
    for (runtime, floor) in FLOORS {
        let fig = report
            .by_runtime
            .get(*runtime)
            .unwrap_or_else(|| panic!("the set has no {runtime} case"));
        let misses: Vec<String> = report
            .results
            .iter()
            .filter(|r| r.runtime == *runtime && !r.exact)
            .map(|r| format!("{}: expected {} got {:?}", r.id, r.expected, r.actual))
            .collect();
        assert!(
            fig.exact_percent() >= *floor,
            "{runtime}: {:.1}% exact is below the floor {floor}%; misses: {misses:#?}",
            fig.exact_percent()
        );
    }
    // The point of reading the repository: on the same traces the heuristics alone (what
    // `trace parse` does without `--repo`) find far fewer exact culprits.
    let without = set.evaluate(Method::Heuristic);
    println!("heuristics only:\n{}", format_figures(&without));
    let exact = |r: &Report| r.results.iter().filter(|c| c.exact).count();
    assert!(
        exact(&report) > exact(&without) + 100,
        "{} vs {}",
        exact(&report),
        exact(&without)
    );
}
