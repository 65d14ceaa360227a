//! Node.js templates and regression tests on real code: the `fixtures/shop` package (one
//! function per crash class, with its own passing node:test suite) and the
//! `examples/orders-node` service (with its OpenTelemetry dependencies). Each case applies the
//! template, writes the regression test, prepares a copy as the repair flow does and runs the
//! real `node --test` in the repairer's sandbox: the test fails on the buggy code with the
//! incident's error, passes on the fixed code, and the whole suite passes. Unit tests beside
//! them check the rewrites, the declines and the writer's other frameworks.
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
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/languages/node/fixtures/shop")
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders-node")
}

fn line_of(source: &str, needle: &str) -> i32 {
    let index = source
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}"));
    i32::try_from(index + 1).unwrap()
}

fn diagnosis(file: &str, line: i32, function: &str, class: &str, message: &str, inputs: &[(&str, &str)]) -> Diagnosis {
    let sample: HashMap<String, String> = inputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Diagnosis {
        incident_id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
        service: "shop".into(),
        fingerprint: "fp-node-1".into(),
        runtime: Some("node".into()),
        root_cause: Some(RootCause {
            file: file.into(),
            line,
            function: function.into(),
            exception_type: class.into(),
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

fn shipping_diagnosis() -> Diagnosis {
    let src = read(&example(), "shipping.js");
    diagnosis(
        "shipping.js",
        line_of(&src, "zone.baseCents + Math.ceil"),
        "shippingQuote",
        "TypeError",
        "Cannot read properties of undefined (reading 'baseCents')",
        &[("order.sku", "lamp"), ("order.country", "XX"), ("order.weightKg", "2")],
    )
}

// ---- rewrites and declines ------------------------------------------------------------------

#[test]
fn the_property_guard_throws_the_modules_own_error() {
    let diag = shipping_diagnosis();
    let fix = apply(&NodePropertyGuard, &diag, &read(&example(), "shipping.js")).unwrap();
    assert!(
        fix.content.contains(
            "  const zone = SHIPPING_ZONES[order.country];\n  if (zone == null) {\n    throw new BadRequestError('zone is missing');\n  }\n  const cents = zone.baseCents"
        ),
        "{}",
        fix.content
    );
    assert_eq!(fix.expect, Expectation::Raises("BadRequestError".into()));
    // Without an error class of its own and outside a handler: declined.
    let bare = "function f(o) {\n  return o.a.b;\n}\nmodule.exports = { f };\n";
    let diag = diagnosis(
        "f.js",
        2,
        "f",
        "TypeError",
        "Cannot read properties of undefined (reading 'b')",
        &[],
    );
    assert!(declined(apply(&NodePropertyGuard, &diag, bare)).contains("no convention"));
}

#[test]
fn a_handler_answers_400_and_json_parse_is_caught() {
    let src = read(&fixtures(), "src/pricing.js");
    let diag = diagnosis(
        "src/pricing.js",
        line_of(&src, "res.status(200).json({ name: user.name })"),
        "getUser",
        "TypeError",
        "Cannot read properties of undefined (reading 'name')",
        &[],
    );
    let fix = apply(&NodePropertyGuard, &diag, &src).unwrap();
    assert!(
        fix.content
            .contains("  if (user == null) {\n    return res.status(400).json({ error: 'user is missing' });\n  }\n"),
        "{}",
        fix.content
    );
    assert_eq!(fix.expect, Expectation::HttpStatus(400));
    let diag = diagnosis(
        "src/pricing.js",
        line_of(&src, "JSON.parse(text)"),
        "parseSettings",
        "SyntaxError",
        "Unexpected token } in JSON at position 1",
        &[],
    );
    let fix = apply(&NodeJsonParseGuard, &diag, &src).unwrap();
    assert!(
        fix.content.contains(
            "  let settings;\n  try {\n    settings = JSON.parse(text);\n  } catch (err) {\n    throw new ValidationError('invalid JSON');\n  }\n"
        ),
        "{}",
        fix.content
    );
}

#[test]
fn detection_commands_and_summaries() {
    let project = Node.detect(&fixtures()).unwrap();
    assert_eq!(project.framework, "node-test");
    assert_eq!(project.suite.command, ["npm", "test"]);
    assert_eq!(project.test_root, "test");
    assert!(project.suite.prepare.is_none(), "no dependencies, nothing to install");
    let installed = std::fs::canonicalize(example().join("node_modules")).unwrap();
    let example = Node.detect(&example()).unwrap();
    let prepare = example.suite.prepare.clone().unwrap();
    // Linked where the sandbox can see them; copied when even the real directory is under the
    // /tmp the sandbox replaces (a checkout under /tmp).
    let verb = if installed.starts_with("/tmp") { "cp" } else { "ln" };
    assert_eq!(prepare[0], verb, "{prepare:?}");
    assert_eq!(prepare[2], installed.display().to_string(), "{prepare:?}");
    let jest = serde_json::json!({"devDependencies": {"jest": "29"}, "scripts": {"test": "jest"}});
    assert_eq!(framework(&jest), "jest");
    assert_eq!(
        framework(&serde_json::json!({"devDependencies": {"vitest": "1"}})),
        "vitest"
    );
    let tap = "# tests 7\n# suites 0\n# pass 6\n# fail 1\n# cancelled 0\n# skipped 0\n";
    let s = summary(tap).unwrap();
    assert_eq!((s.passed, s.failed), (6, 1));
    let s = summary("Tests:       1 failed, 5 passed, 6 total\n").unwrap();
    assert_eq!((s.passed, s.failed), (5, 1));
    let s = summary(" Tests  2 failed | 9 passed (11)\n").unwrap();
    assert_eq!((s.passed, s.failed), (9, 2));
    assert!(summary("nothing").is_none());
}

#[test]
fn jest_and_esm_tests_import_the_way_the_module_exports() {
    let esm = "export class BadInput extends Error {}\n\nexport function area(shape) {\n  if (!shape) throw new BadInput('no shape');\n  return shape.size.w * shape.size.h;\n}\n";
    let diag = diagnosis(
        "lib/area.mjs",
        5,
        "area",
        "TypeError",
        "Cannot read properties of undefined (reading 'w')",
        &[],
    );
    let fix = apply(&NodePropertyGuard, &diag, esm).unwrap();
    let mut project = Node.detect(&fixtures()).unwrap();
    project.framework = "jest".into();
    project.test_root = "__tests__".into();
    let site = Site {
        diag: &diag,
        root_cause: diag.root_cause.as_ref().unwrap(),
        source: esm,
    };
    let test = Node
        .regression_test(&RegressionRequest {
            site,
            project: &project,
            fix: Some(&fix),
            template: Some(PROPERTY_GUARD),
            long_name: false,
        })
        .unwrap();
    assert_eq!(test.file, "__tests__/selfheal-0193a1b2.test.mjs");
    assert!(
        test.code.contains("import { area } from \"../lib/area.mjs\";"),
        "{}",
        test.code
    );
    assert!(
        !test.code.contains("node:test"),
        "jest has a global test: {}",
        test.code
    );
    assert!(test.code.contains("const shape = {};"), "{}", test.code);
}

// ---- on real code, with the real node --test in the sandbox ----------------------------------

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
        timeout: Duration::from_secs(300),
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

async fn heal(repo: &Path, template: &dyn FixTemplate, diag: &Diagnosis) -> (TemplateFix, RegressionTest, RunResult) {
    let project = Node.detect(repo).unwrap();
    let rc = diag.root_cause.as_ref().unwrap();
    let source = read(repo, &rc.file);
    let fix = apply(template, diag, &source).unwrap_or_else(|e| panic!("{}: {e}", template.id()));
    let site = Site {
        diag,
        root_cause: rc,
        source: &source,
    };
    let test = Node
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
    if let Some(prepare) = &project.suite.prepare {
        let prepared = run(&boxed, prepare, &env, false).await;
        assert!(prepared.succeeded(), "prepare: {}", prepared.output_tail);
    }
    let only = Node.single_test_command(&project, &test);
    let before = run(&boxed, &only, &env, true).await;
    assert!(
        !before.succeeded() && Node.reproduces(&before.output_tail, rc),
        "{}: the test must fail with {} before the fix:\n{}\n{}",
        template.id(),
        rc.exception_type,
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
    (fix, test, suite)
}

/// One incident per template on the shop's `src/pricing.js` (the same file in every shop fixture).
fn shop_cases(shop: &Path) -> Vec<(Box<dyn FixTemplate>, Diagnosis)> {
    let src = read(shop, "src/pricing.js");
    let at = |needle: &str| line_of(&src, needle);
    vec![
        (
            Box::new(NodePropertyGuard) as Box<dyn FixTemplate>,
            diagnosis(
                "src/pricing.js",
                at("user.address.city"),
                "cityOf",
                "TypeError",
                "Cannot read properties of undefined (reading 'city')",
                &[("user.name", "Ada")],
            ),
        ),
        (
            Box::new(NodePropertyGuard) as Box<dyn FixTemplate>,
            diagnosis(
                "src/pricing.js",
                at("json({ name: user.name })"),
                "getUser",
                "TypeError",
                "Cannot read properties of undefined (reading 'name')",
                &[],
            ),
        ),
        (
            Box::new(NodeJsonParseGuard) as Box<dyn FixTemplate>,
            diagnosis(
                "src/pricing.js",
                at("JSON.parse(text)"),
                "parseSettings",
                "SyntaxError",
                "Expected property name or '}' in JSON at position 1",
                &[],
            ),
        ),
        (
            Box::new(NodeCallableGuard) as Box<dyn FixTemplate>,
            diagnosis(
                "src/pricing.js",
                at("return rule(checkTotal"),
                "applyDiscount",
                "TypeError",
                "rule is not a function",
                &[("order.kind", "vip"), ("order.total", "120")],
            ),
        ),
        (
            Box::new(NodeRangeGuard) as Box<dyn FixTemplate>,
            diagnosis(
                "src/pricing.js",
                at("'*'.repeat(rating)"),
                "formatStars",
                "RangeError",
                "Invalid count value: -1",
                &[],
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_template_heals_real_code_with_the_real_node_test() {
    let shop = fixtures();
    for (template, diag) in &shop_cases(&shop) {
        let (fix, test, _) = heal(&shop, template.as_ref(), diag).await;
        eprintln!("{}: {}\n{}", template.id(), fix.summary, test.code);
    }
}

/// A copy of `fixtures/<name>` in a new directory, with the `node_modules` that
/// scripts/prepare-examples.sh installed for it from its lock file under
/// `$SELFHEAL_CACHE/node-fixtures/<name>` linked in, as in a checkout with its dependencies
/// installed.
fn installed_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let cache = std::env::var_os("SELFHEAL_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/selfheal"));
    let modules = cache.join("node-fixtures").join(name).join("node_modules");
    assert!(
        modules.join(".selfheal-lock-sha256").is_file(),
        "{} is missing: run scripts/prepare-examples.sh (scripts/test.sh does)",
        modules.display()
    );
    let holder = tempfile::tempdir().unwrap();
    let repo = holder.path().join(name);
    copy_dir(&fixtures().with_file_name(name), &repo);
    std::os::unix::fs::symlink(&modules, repo.join("node_modules")).unwrap();
    (holder, repo)
}

/// Every template on a shop whose suite is `framework`'s: the project is detected as such, the
/// regression test is written for it, fails before the fix and passes after with the real tool
/// in the sandbox, and the whole suite (the shop's five tests and the new one) passes and is
/// counted.
async fn heal_the_shop_with(name: &str, framework: &str) {
    let (_holder, repo) = installed_fixture(name);
    let project = Node.detect(&repo).unwrap();
    assert_eq!(project.framework, framework);
    assert_eq!(project.suite.command, ["npm", "test"]);
    for (template, diag) in &shop_cases(&repo) {
        let (fix, test, suite) = heal(&repo, template.as_ref(), diag).await;
        let counted = Node.summary(&suite.output_tail).unwrap_or_else(|| {
            panic!(
                "{}: no test counts in the {framework} output:\n{}",
                template.id(),
                suite.output_tail
            )
        });
        assert_eq!(
            (counted.passed, counted.failed),
            (6, 0),
            "{}: the shop's five tests and the regression test:\n{}",
            template.id(),
            suite.output_tail
        );
        eprintln!("{framework} {}: {}\n{}", template.id(), fix.summary, test.code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_template_heals_a_jest_project_with_the_real_jest() {
    heal_the_shop_with("shop-jest", "jest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_template_heals_a_vitest_project_with_the_real_vitest() {
    heal_the_shop_with("shop-vitest", "vitest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_example_is_healed_with_its_opentelemetry_suite() {
    let repo = example();
    assert!(
        repo.join("node_modules").is_dir(),
        "examples/orders-node/node_modules is missing: run scripts/prepare-examples.sh (scripts/test.sh does)"
    );
    let (fix, test, _) = heal(&repo, &NodePropertyGuard, &shipping_diagnosis()).await;
    assert_eq!(test.file, "test/selfheal-0193a1b2.test.js");
    assert!(
        test.code
            .contains("const { shippingQuote } = require(\"../shipping.js\");"),
        "{}",
        test.code
    );
    assert!(test.code.contains("\"country\":\"XX\""), "{}", test.code);
    assert!(fix.content.contains("if (zone == null) {"));
}
