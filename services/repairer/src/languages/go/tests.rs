//! Go templates and regression tests on real code: the `fixtures/shop` module (one package
//! per crash class, each with its own passing tests) and the `examples/inventory-go`
//! service. Each case applies the template, writes the regression test, prepares a copy as
//! the repair flow does and runs the real `go test` in the repairer's sandbox: the test fails
//! on the buggy code with the incident's panic, passes on the fixed code, and the whole suite
//! passes. Unit tests beside them check the rewrites and the declines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use selfheal_events::{Diagnosis, RootCause};

use super::templates::*;
use super::*;
use crate::languages::{Expectation, RegressionRequest, Site, TemplateFix};
use crate::sandbox::{Isolation, Limits, ProcessSandbox, RunResult, Sandbox};
use crate::templates::{FixTemplate, TemplateError};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/languages/go/fixtures/shop")
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/inventory-go")
}

fn line_of(source: &str, needle: &str) -> i32 {
    let index = source
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}"));
    i32::try_from(index + 1).unwrap()
}

fn diagnosis(file: &str, line: i32, function: &str, message: &str, inputs: &[(&str, &str)]) -> Diagnosis {
    let sample: HashMap<String, String> = inputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Diagnosis {
        incident_id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
        service: "shop".into(),
        fingerprint: "fp-go-1".into(),
        runtime: Some("go".into()),
        root_cause: Some(RootCause {
            file: file.into(),
            line,
            function: function.into(),
            exception_type: "runtime.Error".into(),
            message: message.into(),
            code_snippet: None,
            commit: None,
        }),
        sample_inputs: if sample.is_empty() { Vec::new() } else { vec![sample] },
        ..Diagnosis::default()
    }
}

fn apply(template: &dyn FixTemplate, diag: &Diagnosis, source: &str) -> Result<TemplateFix, TemplateError> {
    assert!(template.applies(diag), "{} applies", template.id());
    template.apply(&Site {
        diag,
        root_cause: diag.root_cause.as_ref().unwrap(),
        source,
    })
}

fn declined(result: Result<TemplateFix, TemplateError>) -> String {
    match result {
        Err(TemplateError::NotApplicable(why)) => why,
        other => panic!("expected a decline, got {other:?}"),
    }
}

fn read(root: &Path, file: &str) -> String {
    std::fs::read_to_string(root.join(file)).unwrap()
}

// ---- rewrites and declines ------------------------------------------------------------------

#[test]
fn the_index_guard_returns_the_functions_own_sentinel() {
    let src = read(&example(), "stock/location.go");
    let diag = diagnosis(
        "stock/location.go",
        line_of(&src, "strconv.Atoi(parts[1])"),
        "ParseLocation",
        "runtime error: index out of range [1] with length 1",
        &[],
    );
    let fix = apply(&GoIndexGuard, &diag, &src).unwrap();
    assert!(
        fix.content.contains(
            "\tparts := strings.Split(strings.TrimSpace(location), \"-\")\n\tif len(parts) <= 1 {\n\t\treturn Location{}, fmt.Errorf(\"%w: parts[1] out of range\", ErrInvalid)\n\t}\n\tshelf, err := strconv.Atoi(parts[1])\n"
        ),
        "{}",
        fix.content
    );
    assert_eq!(fix.expect, Expectation::Raises("ErrInvalid".into()));
    assert_eq!(fix.params["guard"], "len(parts) <= 1");
    // Two index expressions that could have panicked: declined.
    let two = "package a\n\nimport \"errors\"\n\nfunc F(xs, ys []int, i int) (int, error) {\n\tif i > 9 {\n\t\treturn 0, errors.New(\"big\")\n\t}\n\treturn xs[i] + ys[i], nil\n}\n";
    let diag = diagnosis(
        "a.go",
        9,
        "F",
        "runtime error: index out of range [3] with length 2",
        &[],
    );
    assert!(declined(apply(&GoIndexGuard, &diag, two)).contains("several index expressions"));
}

#[test]
fn a_function_without_an_error_result_is_declined() {
    let src = "package a\n\nfunc First(xs []string) string {\n\treturn xs[0]\n}\n";
    let diag = diagnosis(
        "a.go",
        4,
        "First",
        "runtime error: index out of range [0] with length 0",
        &[],
    );
    let why = declined(apply(&GoIndexGuard, &diag, src));
    assert!(why.contains("returns no error"), "{why}");
}

#[test]
fn the_nil_map_is_made_with_its_declared_type_but_never_for_a_parameter() {
    let src = read(&fixtures(), "cart/cart.go");
    let diag = diagnosis(
        "cart/cart.go",
        line_of(&src, "c.items[sku] += n"),
        "(*Cart).Add",
        "assignment to entry in nil map",
        &[],
    );
    let fix = apply(&GoNilMapInit, &diag, &src).unwrap();
    assert!(
        fix.content
            .contains("\tif c.items == nil {\n\t\tc.items = make(map[string]int)\n\t}\n\tc.items[sku] += n\n"),
        "{}",
        fix.content
    );
    assert_eq!(fix.expect, Expectation::Completes);
    let param = "package a\n\nfunc Put(m map[string]int, k string) {\n\tm[k] = 1\n}\n";
    let diag = diagnosis("a.go", 4, "Put", "assignment to entry in nil map", &[]);
    assert!(declined(apply(&GoNilMapInit, &diag, param)).contains("parameter"));
}

#[test]
fn the_nil_guard_and_the_divisor_guard_follow_the_convention() {
    let src = read(&fixtures(), "users/users.go");
    let diag = diagnosis(
        "users/users.go",
        line_of(&src, "strings.TrimSpace(u.First+u.Last)"),
        "DisplayName",
        "runtime error: invalid memory address or nil pointer dereference",
        &[],
    );
    let fix = apply(&GoNilGuard, &diag, &src).unwrap();
    assert!(
        fix.content
            .contains("\tif u == nil {\n\t\treturn \"\", fmt.Errorf(\"%w: u is nil\", ErrUnknown)\n\t}\n"),
        "{}",
        fix.content
    );
    let src = read(&fixtures(), "stats/stats.go");
    let diag = diagnosis(
        "stats/stats.go",
        line_of(&src, "totalCents / int64(orders)"),
        "AverageCents",
        "runtime error: integer divide by zero",
        &[],
    );
    let fix = apply(&GoZeroDivisionGuard, &diag, &src).unwrap();
    assert!(
        fix.content
            .contains("\tif int64(orders) == 0 {\n\t\treturn 0, errors.New(\"AverageCents: orders is zero\")\n\t}\n"),
        "{}",
        fix.content
    );
    assert_eq!(fix.params["divisor"], "int64(orders)");
}

#[test]
fn the_ignored_error_is_checked_where_it_is_made() {
    let src = read(&fixtures(), "qty/qty.go");
    let diag = diagnosis(
        "qty/qty.go",
        line_of(&src, "100 / size"),
        "PerPack",
        "runtime error: integer divide by zero",
        &[],
    );
    let fix = apply(&GoIgnoredError, &diag, &src).unwrap();
    assert!(
        fix.content.contains(
            "\tsize, err := strconv.Atoi(raw)\n\tif err != nil {\n\t\treturn 0, fmt.Errorf(\"strconv.Atoi failed: %w\", err)\n\t}\n"
        ),
        "{}",
        fix.content
    );
    // Nothing on the culprit line comes from a discarded error.
    let src = read(&fixtures(), "stats/stats.go");
    let diag = diagnosis(
        "stats/stats.go",
        line_of(&src, "totalCents / int64"),
        "AverageCents",
        "runtime error: integer divide by zero",
        &[],
    );
    assert!(declined(apply(&GoIgnoredError, &diag, &src)).contains("discarded"));
}

#[test]
fn detection_commands_and_summaries() {
    let go = Go::from_env();
    let project = go.detect(&fixtures()).unwrap();
    assert_eq!(
        (project.framework.as_str(), project.suite.command.join(" ")),
        ("go-test", "go test ./...".into())
    );
    assert_eq!(project.suite.env["GOPROXY"], "off");
    assert_eq!(project.suite.env["GOFLAGS"], "-mod=mod");
    assert!(project.suite.env["PATH"].starts_with(&go.shim_dir().display().to_string()));
    assert!(go.detect(Path::new("/nonexistent")).is_none());
    let test = RegressionTest {
        file: "stock/selfheal_x_test.go".into(),
        name: "TestSelfheal_x_F".into(),
        code: String::new(),
    };
    assert_eq!(
        go.single_test_command(&project, &test),
        ["go", "test", "-count=1", "-run", "^TestSelfheal_x_F$", "./stock"]
    );
    let out = "=== RUN   TestA\n--- PASS: TestA (0.00s)\n--- FAIL: TestB (0.00s)\nFAIL\n";
    let s = summary(out).unwrap();
    assert_eq!((s.passed, s.failed), (1, 1));
    assert!(summary("ok  \texample.com/a\t0.01s\n").is_none());
    let crash = "--- FAIL: TestX (0.00s)\npanic: runtime error: index out of range [1] with length 0 [recovered]\n";
    assert!(reproduces(crash, "runtime error: index out of range [1] with length 1"));
    assert!(!reproduces(
        "--- FAIL: TestX\n    x_test.go:3: want error\n",
        "runtime error: index out of range [1] with length 1"
    ));
}

// ---- on real code, with the real go test in the sandbox --------------------------------------

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&*name));
        } else {
            std::fs::copy(&path, to.join(&*name)).unwrap();
        }
    }
}

async fn run(
    dir: &Path,
    command: &[String],
    env: &std::collections::BTreeMap<String, String>,
    sandboxed: bool,
) -> RunResult {
    let limits = Limits {
        timeout: Duration::from_secs(600),
        memory_mb: 4096,
        env: env.clone(),
    };
    let sandbox = if sandboxed {
        ProcessSandbox::probe().expect("neither bwrap nor `unshare --net` works here: the sandbox is required")
    } else {
        ProcessSandbox::new(Isolation::Unsandboxed)
    };
    sandbox.run(dir, command, limits).await.unwrap()
}

/// Applies `template` at the culprit, writes the regression test, and proves both as the
/// repair flow does; returns the fix and the test.
async fn heal(repo: &Path, template: &dyn FixTemplate, diag: &Diagnosis) -> (TemplateFix, RegressionTest) {
    let go = Go::from_env();
    let project = go.detect(repo).unwrap();
    let rc = diag.root_cause.as_ref().unwrap();
    let source = read(repo, &rc.file);
    let fix = apply(template, diag, &source).unwrap_or_else(|e| panic!("{}: {e}", template.id()));
    let site = Site {
        diag,
        root_cause: rc,
        source: &source,
    };
    let test = go
        .regression_test(&RegressionRequest {
            site,
            project: &project,
            fix: Some(&fix),
            template: Some(template.id()),
            long_name: false,
        })
        .unwrap_or_else(|e| panic!("{}: {e}", template.id()));
    let holder = tempfile::tempdir().unwrap();
    let boxed = holder.path().join("box");
    copy_dir(repo, &boxed);
    std::fs::write(boxed.join(&test.file), &test.code).unwrap();
    let env = project.suite.env.clone();
    let prepare = project.suite.prepare.clone().unwrap();
    let prepared = run(&boxed, &prepare, &env, false).await;
    assert!(prepared.succeeded(), "prepare: {}", prepared.output_tail);
    let only = go.single_test_command(&project, &test);
    let before = run(&boxed, &only, &env, true).await;
    assert!(
        !before.succeeded() && go.reproduces(&before.output_tail, rc),
        "{}: the test must fail with the panic before the fix:\n{}\n{}",
        template.id(),
        test.code,
        before.output_tail
    );
    std::fs::write(boxed.join(&rc.file), &fix.content).unwrap();
    let after = run(&boxed, &only, &env, true).await;
    assert!(
        after.succeeded(),
        "{}: the test must pass after the fix:\n{}\n{}\n{}",
        template.id(),
        fix.content,
        test.code,
        after.output_tail
    );
    let suite = run(&boxed, &project.suite.command, &env, true).await;
    assert!(
        suite.succeeded(),
        "{}: the suite must pass:\n{}",
        template.id(),
        suite.output_tail
    );
    (fix, test)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_go_template_heals_real_code_with_the_real_go_test() {
    let shop = fixtures();
    let cases: Vec<(Box<dyn FixTemplate>, Diagnosis)> = {
        let cart = read(&shop, "cart/cart.go");
        let users = read(&shop, "users/users.go");
        let stats = read(&shop, "stats/stats.go");
        let qty = read(&shop, "qty/qty.go");
        vec![
            (
                Box::new(GoNilMapInit) as Box<dyn FixTemplate>,
                diagnosis(
                    "cart/cart.go",
                    line_of(&cart, "c.items[sku] += n"),
                    "(*Cart).Add",
                    "assignment to entry in nil map",
                    &[("cart.sku", "lamp"), ("cart.n", "2")],
                ),
            ),
            (
                Box::new(GoNilGuard) as Box<dyn FixTemplate>,
                diagnosis(
                    "users/users.go",
                    line_of(&users, "strings.TrimSpace(u.First+u.Last)"),
                    "DisplayName",
                    "runtime error: invalid memory address or nil pointer dereference",
                    &[],
                ),
            ),
            (
                Box::new(GoZeroDivisionGuard) as Box<dyn FixTemplate>,
                diagnosis(
                    "stats/stats.go",
                    line_of(&stats, "totalCents / int64(orders)"),
                    "AverageCents",
                    "runtime error: integer divide by zero",
                    &[("report.totalCents", "1999"), ("report.orders", "0")],
                ),
            ),
            (
                Box::new(GoIgnoredError) as Box<dyn FixTemplate>,
                diagnosis(
                    "qty/qty.go",
                    line_of(&qty, "100 / size"),
                    "PerPack",
                    "runtime error: integer divide by zero",
                    &[("pack.raw", "a dozen")],
                ),
            ),
        ]
    };
    for (template, diag) in &cases {
        let (fix, test) = heal(&shop, template.as_ref(), diag).await;
        eprintln!("{}: {}\n{}", template.id(), fix.summary, test.code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_example_is_healed_with_its_opentelemetry_suite() {
    let repo = example();
    let src = read(&repo, "stock/location.go");
    let diag = diagnosis(
        "stock/location.go",
        line_of(&src, "strconv.Atoi(parts[1])"),
        "ParseLocation",
        "runtime error: index out of range [1] with length 1",
        &[("pick.sku", "lamp"), ("pick.location", "A12"), ("pick.quantity", "1")],
    );
    let (fix, test) = heal(&repo, &GoIndexGuard, &diag).await;
    assert_eq!(test.file, "stock/selfheal_0193a1b2_test.go");
    assert!(test.code.contains("ParseLocation(\"A12\")"), "{}", test.code);
    assert!(test.code.contains("errors.Is(err, ErrInvalid)"), "{}", test.code);
    assert!(fix.content.contains("if len(parts) <= 1 {"));
}
