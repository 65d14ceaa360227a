//! Python tracebacks: the first pipeline case (an OTel `record_exception` stacktrace)
//! and every other Python form.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::repo::{RepoLocation, map_to_repo};
use selfheal_stacktrace::{ParseOptions, Relation, Runtime, cli_parse, parse, parse_lines};

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
    assert_eq!(t.frames[0].file.as_deref(), Some("/some/abs/path/pricing_logic.py"));
    assert_eq!(t.frames[0].line, Some(14));
    assert!(t.frames[0].in_app);
    assert!(t.frames[1].in_app);
    assert!(!t.frames[2].in_app);
    assert!(!t.frames[3].in_app);
    let culprit = t.culprit.clone().expect("culprit");
    assert_eq!(culprit.function, "calc");
    assert_eq!(culprit.file.as_deref(), Some("/some/abs/path/pricing_logic.py"));
    assert_eq!(culprit.line, Some(14));
    assert_eq!(t.fingerprint.len(), 16);

    let repo = tempfile::tempdir().expect("tempdir");
    std::fs::write(repo.path().join("pricing_logic.py"), PRICING_LOGIC).expect("write");
    std::fs::write(repo.path().join("app.py"), "from pricing_logic import calc\n").expect("write");
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

fn p(text: &str) -> selfheal_stacktrace::ParsedTrace {
    parse(text, &ParseOptions::default()).expect("a trace")
}

#[test]
fn direct_cause_chain() {
    let text = r#"Traceback (most recent call last):
  File "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/base.py", line 1967, in _exec_single_context
    self.dialect.do_execute(
  File "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/default.py", line 924, in do_execute
    cursor.execute(statement, parameters)
psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "orders_pkey"
DETAIL:  Key (id)=(4711) already exists.

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/orders/service.py", line 88, in create_order
    session.commit()
  File "/usr/local/lib/python3.12/site-packages/sqlalchemy/orm/session.py", line 1969, in commit
    trans.commit(_to_root=True)
sqlalchemy.exc.IntegrityError: (psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "orders_pkey"
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "sqlalchemy.exc.IntegrityError");
    assert_eq!(t.frames[0].function, "commit");
    assert_eq!(t.causes.len(), 1);
    let c = &t.causes[0];
    assert_eq!(c.ty, "psycopg2.errors.UniqueViolation");
    assert_eq!(c.relation, Relation::Cause);
    assert!(c.primary);
    assert!(
        c.message.contains("DETAIL:  Key (id)=(4711) already exists."),
        "{}",
        c.message
    );
    assert_eq!(t.root_cause().ty, "psycopg2.errors.UniqueViolation");
    // The root cause has no in-app frame: the culprit is the next one out.
    let culprit = t.culprit.expect("culprit");
    assert_eq!((culprit.function.as_str(), culprit.line), ("create_order", Some(88)));
}

#[test]
fn during_handling_chain() {
    let text = r#"Traceback (most recent call last):
  File "/app/pricing/cache.py", line 12, in lookup
    return self._data[key]
           ~~~~~~~~~~^^^^^
KeyError: 'sku-123'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/pricing/api.py", line 30, in get_price
    price = cache.lookup(sku)
  File "/app/pricing/cache.py", line 14, in lookup
    raise LookupFailed(key)
pricing.errors.LookupFailed: sku-123
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "pricing.errors.LookupFailed");
    assert_eq!(t.causes.len(), 1);
    assert_eq!(t.causes[0].ty, "KeyError");
    assert_eq!(t.causes[0].relation, Relation::Context);
    assert_eq!(t.causes[0].message, "'sku-123'");
    let c = t.culprit.expect("culprit");
    assert_eq!((c.function.as_str(), c.line), ("lookup", Some(12)));
}

#[test]
fn three_level_chain_is_ordered_outermost_first() {
    let text = r#"Traceback (most recent call last):
  File "/app/a.py", line 1, in a
ValueError: first

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/b.py", line 2, in b
TypeError: second

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/c.py", line 3, in c
RuntimeError: third
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "RuntimeError");
    let tys: Vec<&str> = t.causes.iter().map(|c| c.ty.as_str()).collect();
    assert_eq!(tys, ["TypeError", "ValueError"]);
    assert_eq!(t.causes[0].relation, Relation::Cause);
    assert_eq!(t.causes[1].relation, Relation::Context);
    assert_eq!(t.root_cause().ty, "ValueError");
    assert_eq!(t.culprit.map(|f| f.function), Some("a".to_string()));
}

#[test]
fn exception_group_from_task_group() {
    let text = r#"  + Exception Group Traceback (most recent call last):
  |   File "/app/main.py", line 20, in <module>
  |     asyncio.run(main())
  |   File "/usr/lib/python3.12/asyncio/runners.py", line 194, in run
  |     return runner.run(main)
  |   File "/app/main.py", line 15, in main
  |     async with asyncio.TaskGroup() as tg:
  |   File "/usr/lib/python3.12/asyncio/taskgroups.py", line 145, in __aexit__
  |     raise me from None
  | ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/app/main.py", line 8, in fetch_price
    |     return total / count
    |            ~~~~~~^~~~~~~
    | ZeroDivisionError: division by zero
    +---------------- 2 ----------------
    | Traceback (most recent call last):
    |   File "/app/main.py", line 11, in fetch_stock
    |     raise ValueError(f"bad sku {sku}")
    | ValueError: bad sku 42
    +------------------------------------
"#;
    let t = p(text);
    assert_eq!(t.runtime, Runtime::Python);
    assert_eq!(t.exception.ty, "ExceptionGroup");
    assert_eq!(
        t.exception.message,
        "unhandled errors in a TaskGroup (2 sub-exceptions)"
    );
    assert_eq!(t.frames.len(), 4);
    assert_eq!(t.frames[0].function, "__aexit__");
    assert_eq!(t.causes.len(), 2);
    assert_eq!(t.causes[0].ty, "ZeroDivisionError");
    assert_eq!(t.causes[0].relation, Relation::GroupMember);
    assert!(t.causes[0].primary);
    assert_eq!(t.causes[1].ty, "ValueError");
    assert!(!t.causes[1].primary);
    assert_eq!(t.root_cause().ty, "ZeroDivisionError");
    let c = t.culprit.expect("culprit");
    assert_eq!((c.function.as_str(), c.line), ("fetch_price", Some(8)));
}

#[test]
fn nested_exception_group_without_tracebacks() {
    let text = r#"  + Exception Group Traceback (most recent call last):
  |   File "/app/batch.py", line 30, in run
  |     raise ExceptionGroup("batch failed", errors)
  | ExceptionGroup: batch failed (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Exception Group Traceback (most recent call last):
    |   File "/app/batch.py", line 22, in shard
    |     raise ExceptionGroup("shard 1", errs)
    | ExceptionGroup: shard 1 (1 sub-exception)
    +-+---------------- 1 ----------------
      | Traceback (most recent call last):
      |   File "/app/batch.py", line 12, in item
      |     int(value)
      | ValueError: invalid literal for int() with base 10: 'x'
      +------------------------------------
    +---------------- 2 ----------------
    | KeyError: 'sku'
    +------------------------------------
"#;
    let t = p(text);
    assert_eq!(t.exception.message, "batch failed (2 sub-exceptions)");
    let tys: Vec<(&str, bool)> = t.causes.iter().map(|c| (c.ty.as_str(), c.primary)).collect();
    assert_eq!(
        tys,
        [("ExceptionGroup", true), ("ValueError", true), ("KeyError", false)]
    );
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(12)));
}

#[test]
fn syntax_error_on_import() {
    let text = r#"Traceback (most recent call last):
  File "/app/main.py", line 3, in <module>
    import pricing_rules
  File "/app/pricing_rules.py", line 7
    def discount(price:
                ^
SyntaxError: '(' was never closed
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "SyntaxError");
    assert_eq!(t.exception.message, "'(' was never closed");
    assert_eq!(t.frames[0].function, "");
    assert_eq!(t.frames[0].file.as_deref(), Some("/app/pricing_rules.py"));
    assert_eq!(t.frames[0].line, Some(7));
    assert_eq!(t.culprit.and_then(|f| f.line), Some(7));
}

#[test]
fn syntax_error_without_traceback_header() {
    let text = r#"  File "/app/settings.py", line 12
    DEBUG = True if os.environ.get("DEBUG") else False else None
                                                        ^^^^
SyntaxError: invalid syntax
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "SyntaxError");
    assert_eq!(t.frames.len(), 1);
    assert_eq!(t.frames[0].line, Some(12));
}

#[test]
fn indentation_error() {
    let text = "Sorry: IndentationError: unexpected indent (worker.py, line 4)\n  File \"/srv/worker.py\", line 4\n    return x\nIndentationError: unexpected indent\n";
    let t = p(text);
    assert_eq!(t.exception.ty, "IndentationError");
}

#[test]
fn truncated_traceback_without_exception_line() {
    let text = r#"Traceback (most recent call last):
  File "/app/jobs/nightly.py", line 40, in run
    rows = fetch(day)
  File "/app/jobs/nightly.py", line 22, in fetch
    return db.query(sql, day)
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "");
    assert_eq!(t.frames.len(), 2);
    assert_eq!(t.culprit.map(|f| f.function), Some("fetch".to_string()));
    assert_eq!(t.fingerprint.len(), 16);
}

#[test]
fn traceback_with_cut_head() {
    let text = r#"    rows = fetch(day)
  File "/app/jobs/nightly.py", line 22, in fetch
    return db.query(sql, day)
TimeoutError: query took longer than 30s
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "TimeoutError");
    assert_eq!(t.frames.len(), 1);
}

#[test]
fn multi_line_message() {
    let text = r#"Traceback (most recent call last):
  File "/app/api/models.py", line 51, in parse_order
    return Order.model_validate(payload)
  File "/usr/local/lib/python3.12/site-packages/pydantic/main.py", line 596, in model_validate
    return cls.__pydantic_validator__.validate_python(
pydantic_core._pydantic_core.ValidationError: 1 validation error for Order
quantity
  Input should be greater than 0 [type=greater_than, input_value=0, input_type=int]

2024-05-01 12:00:01,002 INFO next request
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "pydantic_core._pydantic_core.ValidationError");
    assert_eq!(
        t.exception.message,
        "1 validation error for Order\nquantity\n  Input should be greater than 0 [type=greater_than, input_value=0, input_type=int]"
    );
    assert_eq!(t.culprit.map(|f| f.function), Some("parse_order".into()));
}

#[test]
fn recursion_error_with_repeated_lines() {
    let text = r#"Traceback (most recent call last):
  File "/app/tree.py", line 9, in <module>
    depth(root)
  File "/app/tree.py", line 5, in depth
    return 1 + depth(node.child)
               ^^^^^^^^^^^^^^^^^
  File "/app/tree.py", line 5, in depth
    return 1 + depth(node.child)
               ^^^^^^^^^^^^^^^^^
  [Previous line repeated 996 more times]
  File "/app/tree.py", line 4, in depth
    if node is None:
RecursionError: maximum recursion depth exceeded in comparison
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "RecursionError");
    assert_eq!(t.frames.len(), 4);
    assert_eq!(t.frames[0].line, Some(4));
}

#[test]
fn logged_with_prefix_and_interleaved_lines() {
    let text = r#"2024-05-01 12:00:00,120 INFO [werkzeug] 10.0.0.7 - - "GET /price?sku=1 HTTP/1.1" 200 -
2024-05-01 12:00:00,123 ERROR [app] Exception on /price [GET]
Traceback (most recent call last):
  File "/usr/local/lib/python3.11/site-packages/flask/app.py", line 1463, in wsgi_app
    response = self.full_dispatch_request()
2024-05-01 12:00:00,124 INFO [werkzeug] 10.0.0.9 - - "GET /health HTTP/1.1" 200 -
  File "/app/app.py", line 31, in price
    return jsonify(calc(p, q))
  File "/app/pricing_logic.py", line 14, in calc
    return price / quantity
ZeroDivisionError: float division by zero
2024-05-01 12:00:00,125 INFO [werkzeug] 10.0.0.7 - - "GET /price?sku=1 HTTP/1.1" 500 -
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.exception.message, "float division by zero");
    assert_eq!(t.frames.len(), 3);
    assert_eq!(t.culprit.map(|f| (f.function, f.line)), Some(("calc".into(), Some(14))));
}

#[test]
fn docker_compose_prefixed() {
    let text = "pricing-api-1  | Traceback (most recent call last):\npricing-api-1  |   File \"/app/pricing_logic.py\", line 14, in calc\npricing-api-1  |     return price / quantity\npricing-api-1  | ZeroDivisionError: float division by zero\n";
    let t = p(text);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
}

#[test]
fn two_separate_tracebacks_take_the_first() {
    let text = r#"Traceback (most recent call last):
  File "/app/a.py", line 1, in a
ValueError: one
Traceback (most recent call last):
  File "/app/b.py", line 2, in b
KeyError: 'two'
"#;
    let t = p(text);
    assert_eq!(t.exception.ty, "ValueError");
    assert!(t.causes.is_empty());
}

#[test]
fn catalog_source_roots_decide_in_app() {
    let text = r#"Traceback (most recent call last):
  File "/app/server.py", line 10, in handle
    return lib.run()
  File "/opt/shared/lib.py", line 3, in run
    raise RuntimeError("boom")
RuntimeError: boom
"#;
    let opts = ParseOptions {
        source_roots: vec!["/app".into()],
        app_packages: vec![],
    };
    let t = parse(text, &opts).expect("trace");
    assert!(!t.frames[0].in_app);
    assert!(t.frames[1].in_app);
    assert_eq!(t.culprit.map(|f| f.function), Some("handle".into()));
    // A stale catalog that matches nothing falls back to the heuristics.
    let stale = ParseOptions {
        source_roots: vec!["/nowhere".into()],
        app_packages: vec![],
    };
    let t = parse(text, &stale).expect("trace");
    assert_eq!(t.culprit.map(|f| f.function), Some("run".into()));
}

#[test]
fn lone_exception_line_is_not_a_trace() {
    assert!(parse("ValueError: bad input", &ParseOptions::default()).is_none());
    assert!(parse("INFO: all good\nDEBUG: fine", &ParseOptions::default()).is_none());
}

#[test]
fn split_across_log_records() {
    let records = [
        "Traceback (most recent call last):",
        "  File \"/app/pricing_logic.py\", line 14, in calc",
        "    return price / quantity",
        "ZeroDivisionError: float division by zero",
    ];
    let t = parse_lines(&records, &ParseOptions::default()).expect("trace");
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
}
