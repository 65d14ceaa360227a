//! Python tracebacks: the first pipeline case (an OTel `record_exception` stacktrace)
//! and every other Python form.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::repo::{RepoLocation, map_to_repo};
use selfheal_stacktrace::{ParseOptions, Runtime, cli_parse, parse};

/// What the OTel Python SDK's `record_exception` stores in `exception.stacktrace`
/// (`traceback.format_exception`) for the pricing service's division by zero.
const OTEL_ZERO_DIVISION: &str = "Traceback (most recent call last):
  File \"/usr/local/lib/python3.11/site-packages/opentelemetry/trace/__init__.py\", line 589, in use_span
    yield span
  File \"/usr/local/lib/python3.11/site-packages/opentelemetry/sdk/trace/__init__.py\", line 1104, in start_as_current_span
    yield span
  File \"/some/abs/path/app.py\", line 42, in do_GET
    total = calc(price, quantity)
            ^^^^^^^^^^^^^^^^^^^^^
  File \"/some/abs/path/pricing_logic.py\", line 14, in calc
    return price / quantity
           ~~~~~~^~~~~~~~~~
ZeroDivisionError: float division by zero
";

const PRICING_LOGIC: &str = "\"\"\"Pricing rules.\"\"\"


def discount(price: float) -> float:
    return price * 0.9


def calc(price: float, quantity: float) -> float:
    \"\"\"Unit price for a quantity.\"\"\"
    if price < 0:
        raise ValueError(\"negative price\")
    # quantity comes straight from the query string
    price = discount(price)
    return price / quantity
";

#[test]
fn otel_zero_division_culprit_and_mapping() {
    let t = parse(OTEL_ZERO_DIVISION, &ParseOptions::default()).expect("trace");
    assert_eq!(t.runtime, Runtime::Python);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.exception.message, "float division by zero");
    assert!(t.causes.is_empty());
    assert_eq!(t.frames.len(), 4);
    // Innermost first.
    assert_eq!(t.frames[0].function, "calc");
    assert_eq!(
        t.frames[0].file.as_deref(),
        Some("/some/abs/path/pricing_logic.py")
    );
    assert_eq!(t.frames[0].line, Some(14));
    assert!(t.frames[0].in_app);
    assert!(t.frames[1].in_app);
    assert!(!t.frames[2].in_app);
    assert!(!t.frames[3].in_app);
    let culprit = t.culprit.clone().expect("culprit");
    assert_eq!(culprit.function, "calc");
    assert_eq!(
        culprit.file.as_deref(),
        Some("/some/abs/path/pricing_logic.py")
    );
    assert_eq!(culprit.line, Some(14));
    assert_eq!(t.fingerprint.len(), 16);

    let repo = tempfile::tempdir().expect("tempdir");
    std::fs::write(repo.path().join("pricing_logic.py"), PRICING_LOGIC).expect("write");
    std::fs::write(
        repo.path().join("app.py"),
        "from pricing_logic import calc\n",
    )
    .expect("write");
    match map_to_repo(&culprit, repo.path(), None) {
        RepoLocation::Found {
            path,
            line,
            function,
            snippet,
            exact,
            ..
        } => {
            assert_eq!(path, "pricing_logic.py");
            assert_eq!(line, Some(14));
            assert_eq!(function, "calc");
            assert!(exact);
            let l14 = snippet.iter().find(|s| s.line == 14).expect("line 14");
            assert_eq!(l14.text, "    return price / quantity");
            assert_eq!(snippet.first().map(|s| s.line), Some(9));
            assert_eq!(snippet.last().map(|s| s.line), Some(14));
        }
        other => panic!("not found: {other:?}"),
    }

    let out = cli_parse(OTEL_ZERO_DIVISION, Some(repo.path()), None);
    assert_eq!(out["found"], true);
    assert_eq!(out["runtime"], "python");
    assert_eq!(out["exception"], "ZeroDivisionError");
    assert_eq!(out["message"], "float division by zero");
    assert_eq!(out["culprit"]["function"], "calc");
    assert_eq!(out["culprit"]["line"], 14);
    assert_eq!(out["repo"]["status"], "found");
    assert_eq!(out["repo"]["path"], "pricing_logic.py");
    assert_eq!(out["repo"]["line"], 14);
    assert_eq!(out["fingerprint"], t.fingerprint.as_str());
}

#[test]
fn otel_case_with_source_root_and_catalog() {
    let opts = ParseOptions {
        source_roots: vec!["/some/abs/path".into()],
        app_packages: vec![],
    };
    let t = parse(OTEL_ZERO_DIVISION, &opts).expect("trace");
    assert_eq!(t.culprit.as_ref().map(|f| f.line), Some(Some(14)));
    let repo = tempfile::tempdir().expect("tempdir");
    std::fs::write(repo.path().join("pricing_logic.py"), PRICING_LOGIC).expect("write");
    let loc = map_to_repo(
        t.culprit.as_ref().expect("culprit"),
        repo.path(),
        Some("/some/abs/path"),
    );
    assert!(
        matches!(loc, RepoLocation::Found { ref strategy, exact: true, .. } if strategy == "source root"),
        "{loc:?}"
    );
}

#[test]
fn fingerprint_stable_across_line_shift_and_deploy_path() {
    let moved = OTEL_ZERO_DIVISION
        .replace("line 14", "line 19")
        .replace("line 42", "line 40")
        .replace("/some/abs/path/", "/app/");
    let a = parse(OTEL_ZERO_DIVISION, &ParseOptions::default()).expect("a");
    let b = parse(&moved, &ParseOptions::default()).expect("b");
    assert_eq!(a.fingerprint, b.fingerprint);
    let other = OTEL_ZERO_DIVISION.replace(
        "ZeroDivisionError: float division by zero",
        "TypeError: unsupported operand",
    );
    let c = parse(&other, &ParseOptions::default()).expect("c");
    assert_ne!(a.fingerprint, c.fingerprint);
    let other_fn = OTEL_ZERO_DIVISION.replace("in calc", "in unit_price");
    let d = parse(&other_fn, &ParseOptions::default()).expect("d");
    assert_ne!(a.fingerprint, d.fingerprint);
}

#[test]
fn not_found_when_repo_lacks_file() {
    let t = parse(OTEL_ZERO_DIVISION, &ParseOptions::default()).expect("trace");
    let repo = tempfile::tempdir().expect("tempdir");
    std::fs::write(repo.path().join("other.py"), "x = 1\n").expect("write");
    let loc = map_to_repo(t.culprit.as_ref().expect("culprit"), repo.path(), None);
    match loc {
        RepoLocation::NotFound { tried, reason } => {
            assert!(!tried.is_empty());
            assert!(reason.contains("pricing_logic.py"), "{reason}");
        }
        other => panic!("guessed: {other:?}"),
    }
}
