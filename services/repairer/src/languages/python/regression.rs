//! The regression test: the failing input seen in telemetry, replayed against the function.
//!
//! The test file is `tests/test_selfheal_<first 8 chars of the incident id>.py` (the whole id,
//! `-` and `.` as `_`, when that file already exists at the base commit). It puts the
//! repository root and the service's source root on `sys.path`, imports the culprit
//! function from the culprit file's module, and asserts
//! 1. the failing call no longer raises, and, when the line was `return <param> / <param>`,
//!    that it returns the numerator (the fixed behaviour, `calc(49.99, 0.0) == 49.99`);
//! 2. for `return` lines, that a non-zero divisor keeps the old result, computed by Python
//!    itself in the test (`calc(49.99, 0.5) == 49.99 / 0.5`).
//!
//! Mapping telemetry inputs to parameters (a heuristic, documented because it can be wrong):
//! - the divisor parameter gets a zero seen in the inputs (`0`, `0.0`, …), or `0.0`;
//! - every other parameter gets a non-zero number from the inputs, chosen by name: an input
//!   whose key's last segment equals the parameter name (`pricing.price` → `price`), then
//!   one whose last segment starts with it or that it starts with (`pricing.price` → `p`),
//!   then the next unused numeric input in key order, and finally `1.0`;
//! - parameters with defaults are left out unless an input matched them by name (or they
//!   are the divisor or the numerator); keyword-only ones are passed by keyword.
//!
//! Untrusted text never reaches the code: values are re-printed from parsed finite numbers,
//! attribute keys only steer the mapping, and names (module, function, parameters) must be
//! plain identifiers or the test is refused.

use std::collections::HashMap;

use selfheal_events::{Diagnosis, RegressionTest, RootCause};

use super::syntax::{Param, indent_of, is_dotted_name, is_identifier, number_literal, parse_def, parse_params};
use super::templates::{LineShape, ZERO_DIVISION_GUARD, analyze_line};
use crate::languages::{
    Expectation, Project, RegressionError, RegressionRequest, Site, TemplateFix, id_token, refuse, safe_chars,
};

/// The module path of `file` (repository-relative) and the directory to put on `sys.path`
/// for it, relative to the repository root.
fn module_of(file: &str, source_root: &str) -> Result<(String, String), RegressionError> {
    let root = source_root.trim_start_matches("./").trim_end_matches('/');
    let root = if root.is_empty() { "." } else { root };
    if !root
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        || root.split('/').any(|s| s == "..")
    {
        return Err(refuse(format!("source root `{root}` is not a plain relative path")));
    }
    let stem = file
        .strip_suffix(".py")
        .ok_or_else(|| refuse(format!("`{file}` is not a Python file")))?;
    let (base, relative) = match stem.strip_prefix(&format!("{root}/")) {
        Some(rest) if root != "." => (root.to_string(), rest),
        _ => (".".to_string(), stem.trim_start_matches("./")),
    };
    let mut parts: Vec<&str> = relative.split('/').collect();
    if parts.last() == Some(&"__init__") {
        parts.pop();
    }
    if parts.is_empty() || !parts.iter().all(|p| is_identifier(p)) {
        return Err(refuse(format!("`{file}` does not map to an importable module path")));
    }
    Ok((parts.join("."), base))
}

/// The function that holds the culprit line: its def line index and parameters.
pub(crate) fn enclosing_function(lines: &[&str], index: usize, function: &str) -> Result<Vec<Param>, RegressionError> {
    let culprit_indent = indent_of(lines[index]).len();
    let mut def_at = None;
    for i in (0..=index).rev() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if i != index && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        let is_def = trimmed.starts_with("def ") || trimmed.starts_with("async def ");
        if i == index {
            if is_def {
                def_at = Some(i);
                break;
            }
            continue;
        }
        if indent_of(line).len() < culprit_indent {
            if is_def {
                def_at = Some(i);
            }
            break;
        }
    }
    let def_at = def_at.ok_or_else(|| refuse("the culprit line is not inside a function"))?;
    if !indent_of(lines[def_at]).is_empty() {
        return Err(refuse(format!(
            "`{function}` is not a module-level function (a method or nested function cannot be imported and called alone)"
        )));
    }
    let header_text: String = lines[def_at..lines.len().min(def_at + 40)].concat();
    let header = parse_def(&header_text).ok_or_else(|| refuse("cannot read the function's def line"))?;
    if !function.is_empty() && header.name != function {
        return Err(refuse(format!(
            "the culprit line is in `{}`, the diagnosis names `{function}`",
            header.name
        )));
    }
    parse_params(&header.params).ok_or_else(|| refuse("cannot read the function's parameters"))
}

/// Which telemetry input feeds which parameter (see the module docs).
fn map_inputs(
    params: &[Param],
    divisor: &str,
    numerator: &str,
    sample: &HashMap<String, String>,
) -> Vec<Option<String>> {
    let mut keys: Vec<&String> = sample.keys().collect();
    keys.sort();
    let numbers: Vec<(String, String, f64)> = keys
        .iter()
        .filter_map(|k| {
            let (literal, value) = number_literal(&sample[*k])?;
            let segment = k.rsplit('.').next().unwrap_or(k).to_ascii_lowercase();
            // An empty segment (key ending in `.`) would "start" every name.
            let segment = if segment.is_empty() {
                k.to_ascii_lowercase()
            } else {
                segment
            };
            Some((segment, literal, value))
        })
        .collect();
    let mut used = vec![false; numbers.len()];
    let mut out = Vec::with_capacity(params.len());
    for param in params {
        let name = param.name.to_ascii_lowercase();
        let is_divisor = param.name == divisor;
        let wanted = |(_, _, v): &(String, String, f64)| (*v == 0.0) == is_divisor;
        let by = |rule: &dyn Fn(&str) -> bool| {
            numbers
                .iter()
                .enumerate()
                .position(|(i, n)| !used[i] && wanted(n) && rule(&n.0))
        };
        let named = by(&|seg| seg == name).or_else(|| by(&|seg| seg.starts_with(&name) || name.starts_with(seg)));
        let chosen = named.or_else(|| {
            if param.has_default && !is_divisor && param.name != numerator {
                None
            } else {
                by(&|_| true)
            }
        });
        match chosen {
            Some(i) => {
                used[i] = true;
                out.push(Some(numbers[i].1.clone()));
            }
            None if is_divisor => out.push(Some("0.0".to_string())),
            None if param.has_default && param.name != numerator => out.push(None),
            None => out.push(Some("1.0".to_string())),
        }
    }
    out
}

/// Renders a call: positional arguments until the first omitted one, keywords after.
fn render_call(function: &str, args: &[(Param, Option<String>)]) -> Result<String, RegressionError> {
    let mut rendered = Vec::new();
    let mut by_keyword = false;
    for (param, literal) in args {
        match literal {
            None => by_keyword = true,
            Some(lit) if param.keyword_only || by_keyword => {
                if param.positional_only {
                    return Err(refuse(format!(
                        "positional-only parameter `{}` follows an omitted one",
                        param.name
                    )));
                }
                rendered.push(format!("{}={lit}", param.name));
            }
            Some(lit) => rendered.push(lit.clone()),
        }
    }
    Ok(format!("{function}({})", rendered.join(", ")))
}

/// The test module for a localised zero-division incident.
fn zero_division_test(
    diag: &Diagnosis,
    root_cause: &RootCause,
    source: &str,
    source_root: &str,
) -> Result<TestModule, RegressionError> {
    let function = root_cause.function.as_str();
    if !is_identifier(function) {
        return Err(refuse(format!("`{function}` is not a plain function name")));
    }
    let (module, base) = module_of(&root_cause.file, source_root)?;
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let index = usize::try_from(root_cause.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|i| *i < lines.len())
        .ok_or_else(|| refuse(format!("line {} is not in the file", root_cause.line)))?;
    let params = enclosing_function(&lines, index, function)?;
    let culprit = lines[index].trim_end_matches(['\r', '\n']);
    let fix = analyze_line(culprit, "\n").map_err(|e| refuse(e.to_string()))?;
    let division = &fix.division;
    if !params.iter().any(|p| p.name == division.divisor) {
        return Err(refuse(format!(
            "divisor `{}` is not a parameter of `{function}`, so a call cannot make it zero",
            division.divisor
        )));
    }
    let sample = diag
        .sample_inputs
        .iter()
        .find(|s| s.values().any(|v| number_literal(v).is_some_and(|(_, x)| x == 0.0)))
        .or_else(|| diag.sample_inputs.first())
        .cloned()
        .unwrap_or_default();
    let literals = map_inputs(&params, &division.divisor, &division.numerator, &sample);
    let args: Vec<(Param, Option<String>)> = params.iter().cloned().zip(literals).collect();
    let failing_call = render_call(function, &args)?;

    let returns = matches!(fix.shape, LineShape::OneLineDef | LineShape::Return);
    let numerator_literal = args
        .iter()
        .find(|(p, _)| p.name == division.numerator)
        .and_then(|(_, lit)| lit.clone())
        .or_else(|| number_literal(&division.numerator).map(|(lit, _)| lit));
    let divisor_literal = args
        .iter()
        .find(|(p, _)| p.name == division.divisor)
        .and_then(|(_, lit)| lit.clone())
        .unwrap_or_default();
    // An integer zero keeps integer semantics for the normal call (`//` on ints).
    let nonzero = if divisor_literal.contains(['.', 'e', 'E']) {
        "0.5"
    } else {
        "2"
    };
    let normal_args: Vec<(Param, Option<String>)> = args
        .iter()
        .map(|(p, lit)| {
            if p.name == division.divisor {
                (p.clone(), Some(nonzero.to_string()))
            } else {
                (p.clone(), lit.clone())
            }
        })
        .collect();
    let normal_call = render_call(function, &normal_args)?;

    let exception = exception_name(root_cause);
    let divisor_name = division.divisor.as_str();
    let mut tests = Vec::new();
    match (&numerator_literal, returns) {
        (Some(expected), true) => tests.push(TestCase::new(
            format!("test_{function}_zero_{divisor_name}"),
            format!(
                "# With a zero divisor the fixed function returns the numerator.\nassert {failing_call} == {expected}\n"
            ),
        )),
        _ => tests.push(TestCase::new(
            format!("test_{function}_zero_{divisor_name}"),
            format!("# The failing call must complete without {exception}.\n{failing_call}\n"),
        )),
    }
    if let (Some(numerator), true) = (&numerator_literal, returns) {
        tests.push(TestCase::new(
            format!("test_{function}_nonzero_{divisor_name}_keeps_result"),
            format!(
                "assert {normal_call} == {numerator} {op} {nonzero}\n",
                op = division.op.as_str()
            ),
        ));
    }
    Ok(TestModule {
        about: format!(
            "`{function}` raised {exception} at {file}:{line} with the inputs seen in telemetry;\n\
             the fix must handle them and keep the result for every other input.",
            file = root_cause.file,
            line = root_cause.line,
        ),
        base,
        imports: vec![format!("from {module} import {function}")],
        tests,
    })
}

/// The exception's name for comments: the dotted name, or `an exception` when it is not one.
fn exception_name(root_cause: &RootCause) -> &str {
    if is_dotted_name(&root_cause.exception_type) {
        root_cause.exception_type.as_str()
    } else {
        "an exception"
    }
}

/// One test function: its name and its body (unindented, one statement a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestCase {
    name: String,
    body: String,
}

impl TestCase {
    pub(crate) fn new(name: String, body: String) -> Self {
        TestCase { name, body }
    }
}

/// A regression test module before it is rendered for a framework.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestModule {
    /// What the test checks, for the docstring (after the incident line).
    about: String,
    /// The source root put on `sys.path`, repository-relative.
    base: String,
    /// Import lines of the code under test (plain identifiers only).
    imports: Vec<String>,
    tests: Vec<TestCase>,
}

/// Renders a test module for pytest (plain functions) or unittest (a `TestCase` class;
/// `assert` statements count as failures there too).
fn render(module: &TestModule, framework: &str, diag: &Diagnosis, test_root: &str) -> String {
    let unittest = framework == "unittest";
    let ups = test_root.split('/').filter(|s| !s.is_empty() && *s != ".").count();
    let up = vec!["\"..\""; ups.max(1)].join(", ");
    let mut code = format!(
        r#""""Regression test written by selfheal for incident {incident} (fingerprint {fingerprint}).

{about}
"""

import os
import sys
{unittest_import}
_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), {up}))
for _path in (os.path.normpath(os.path.join(_ROOT, "{base}")), _ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

"#,
        incident = safe_chars(&diag.incident_id),
        fingerprint = safe_chars(&diag.fingerprint),
        about = module.about,
        base = module.base,
        unittest_import = if unittest { "import unittest\n" } else { "" },
    );
    for import in &module.imports {
        code.push_str(&format!("{import}  # noqa: E402\n"));
    }
    if unittest {
        code.push_str("\n\nclass SelfhealRegressionTest(unittest.TestCase):\n");
    }
    for (i, test) in module.tests.iter().enumerate() {
        let indent = if unittest { "        " } else { "    " };
        if unittest {
            if i > 0 {
                code.push('\n');
            }
            code.push_str(&format!("    def {}(self):\n", test.name));
        } else {
            code.push_str(&format!("\n\ndef {}():\n", test.name));
        }
        for line in test.body.lines() {
            if line.is_empty() {
                code.push('\n');
            } else {
                code.push_str(&format!("{indent}{line}\n"));
            }
        }
    }
    if unittest {
        code.push_str("\n\nif __name__ == \"__main__\":\n    unittest.main()\n");
    }
    code
}

/// The repository-relative path of a regression test: `<test_root>/test_selfheal_<id>.py`
/// (the first 8 characters of the incident id, or the whole id when `long`).
pub fn test_file(test_root: &str, incident_id: &str, long: bool) -> String {
    let root = test_root.trim_start_matches("./").trim_end_matches('/');
    let root = if root.is_empty() || root == "." { "tests" } else { root };
    format!("{root}/test_selfheal_{}.py", id_token(incident_id, long))
}

/// Writes the regression test the request asks for, in the project's framework.
pub fn write(request: &RegressionRequest<'_>) -> Result<RegressionTest, RegressionError> {
    let site = request.site;
    let project = request.project;
    let template = request.template.unwrap_or_default();
    let zero_division = template == ZERO_DIVISION_GUARD
        || (template.is_empty() && site.root_cause.exception_type.rsplit('.').next() == Some("ZeroDivisionError"));
    let raises = request.fix.and_then(|fix| match &fix.expect {
        Expectation::Raises(error) => Some((fix, error.as_str())),
        _ => None,
    });
    let module = if zero_division {
        zero_division_test(site.diag, site.root_cause, site.source, &project.source_root)?
    } else if let Some((fix, error)) = raises {
        raises_test(&site, &project.source_root, fix, error)?
    } else {
        return Err(refuse(format!(
            "no Python regression-test writer for {} (template `{template}`)",
            exception_name(site.root_cause)
        )));
    };
    let first = module
        .tests
        .first()
        .map(|t| t.name.clone())
        .ok_or_else(|| refuse("no test case"))?;
    let name = if project.framework == "unittest" {
        format!("SelfhealRegressionTest.{first}")
    } else {
        first
    };
    Ok(RegressionTest {
        file: test_file(&project.test_root, &site.diag.incident_id, request.long_name),
        name,
        code: render(&module, &project.framework, site.diag, &project.test_root),
    })
}

/// The test module for a guard that now raises `error` (the callers' error) instead of
/// crashing: the failing input is the template's (`input.param` = `input.value`), every
/// other parameter comes from the evidence by name, else is left at its default, else `1`.
fn raises_test(
    site: &Site<'_>,
    source_root: &str,
    fix: &TemplateFix,
    error: &str,
) -> Result<TestModule, RegressionError> {
    let root_cause = site.root_cause;
    let function = root_cause.function.as_str();
    if !is_identifier(function) || !is_identifier(error) {
        return Err(refuse(format!("`{function}` / `{error}` are not plain names")));
    }
    let (module, base) = module_of(&root_cause.file, source_root)?;
    let lines: Vec<&str> = site.source.split_inclusive('\n').collect();
    let index = usize::try_from(root_cause.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|i| *i < lines.len())
        .ok_or_else(|| refuse(format!("line {} is not in the file", root_cause.line)))?;
    let params = enclosing_function(&lines, index, function)?;
    let (Some(bad_param), Some(bad_value)) = (fix.params.get("input.param"), fix.params.get("input.value")) else {
        return Err(refuse("the template named no failing input"));
    };
    let sample = site.diag.sample_inputs.first().cloned().unwrap_or_default();
    let by_name = |name: &str| {
        let mut keys: Vec<&String> = sample.keys().collect();
        keys.sort();
        keys.into_iter()
            .find(|k| k.rsplit('.').next() == Some(name))
            .and_then(|k| number_literal(&sample[k]).map(|(lit, _)| lit))
    };
    let args: Vec<(Param, Option<String>)> = params
        .iter()
        .map(|p| {
            let value = if &p.name == bad_param {
                Some(bad_value.clone())
            } else {
                by_name(&p.name).or_else(|| (!p.has_default).then(|| "1".to_string()))
            };
            (p.clone(), value)
        })
        .collect();
    let call = render_call(function, &args)?;
    let crash = exception_name(root_cause);
    let builtin = matches!(error, "ValueError" | "TypeError" | "RuntimeError" | "LookupError");
    let imports = if builtin || error == function {
        vec![format!("from {module} import {function}")]
    } else {
        vec![format!("from {module} import {error}, {function}")]
    };
    Ok(TestModule {
        about: format!(
            "`{function}` raised {crash} at {file}:{line}; its callers handle {error}, so the\n\
             failing input must now raise {error}.",
            file = root_cause.file,
            line = root_cause.line,
        ),
        base,
        imports,
        tests: vec![TestCase::new(
            format!("test_{function}_rejects_bad_{bad_param}"),
            format!(
                "# The failing input must raise {error} (handled by the callers), not {crash}.\n\
                 try:\n    {call}\nexcept {error}:\n    pass\nelse:\n    raise AssertionError(\"expected {error}\")\n"
            ),
        )],
    })
}

/// The pytest regression test for a zero-division incident, at `tests/` (kept for callers
/// that have no project at hand).
pub fn build(
    diag: &Diagnosis,
    root_cause: &RootCause,
    source: &str,
    source_root: &str,
) -> Result<RegressionTest, RegressionError> {
    let project = Project {
        language: "python",
        source_root: source_root.to_string(),
        framework: "pytest".into(),
        test_root: "tests".into(),
        suite: Default::default(),
    };
    write(&RegressionRequest {
        site: Site {
            diag,
            root_cause,
            source,
        },
        project: &project,
        fix: None,
        template: Some(ZERO_DIVISION_GUARD),
        long_name: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn diag() -> Diagnosis {
        selfheal_events::examples::diagnosis()
    }

    #[test]
    fn pricing_api_test_calls_calc_with_the_failing_input() {
        let d = diag();
        let src = include_str!("../../../../../examples/pricing-api/pricing_logic.py");
        let t = build(&d, d.root_cause.as_ref().unwrap(), src, ".").unwrap();
        assert_eq!(t.file, "tests/test_selfheal_0193a8f2.py");
        assert_eq!(t.name, "test_calc_zero_d");
        assert!(t.code.contains("from pricing_logic import calc"));
        assert!(t.code.contains("assert calc(49.99, 0.0) == 49.99\n"), "{}", t.code);
        assert!(
            t.code.contains("assert calc(49.99, 0.5) == 49.99 / 0.5\n"),
            "{}",
            t.code
        );
        assert_parses(&t.code);
    }

    #[test]
    fn hostile_inputs_never_reach_the_code() {
        let mut d = diag();
        d.incident_id = "x\"\"\"; import os #".into();
        d.fingerprint = "\"\"\"\nos.system('x')".into();
        d.sample_inputs = vec![HashMap::from([
            (
                "pricing.price\"); os.system(\"x".to_string(),
                "1); os.system('x'); (".to_string(),
            ),
            ("pricing.discount".to_string(), "nan".to_string()),
            ("evil".to_string(), "0.0\nimport os".to_string()),
        ])];
        let src = include_str!("../../../../../examples/pricing-api/pricing_logic.py");
        let t = build(&d, d.root_cause.as_ref().unwrap(), src, ".").unwrap();
        // Ids are reduced to [A-Za-z0-9_.-] in the docstring, values re-printed from numbers.
        assert!(!t.code.contains("os.system("), "{}", t.code);
        assert!(!t.code.contains("import os #"), "{}", t.code);
        assert!(
            t.code.contains("incident ximportos (fingerprint os.systemx)"),
            "{}",
            t.code
        );
        assert_parses(&t.code);
        // Nothing numeric and non-zero: the fallbacks are used.
        assert!(t.code.contains("assert calc(1.0, 0.0) == 1.0\n"), "{}", t.code);
    }

    /// The generated test must be valid Python: checked with the real interpreter.
    fn assert_parses(code: &str) {
        use std::io::Write;
        let mut child = std::process::Command::new(crate::tests_support::python())
            .args(["-c", "import ast, sys; ast.parse(sys.stdin.read())"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(code.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "not valid Python:\n{code}");
    }

    #[test]
    fn names_steer_the_mapping_and_defaults_are_left_out() {
        let src = "def share(total, count, rounding=2):\n    x = total / count\n    return round(x, rounding)\n";
        let mut d = diag();
        d.sample_inputs = vec![HashMap::from([
            ("order.count".to_string(), "0".to_string()),
            ("order.amount".to_string(), "7".to_string()),
            ("order.total".to_string(), "12.5".to_string()),
        ])];
        let rc = RootCause {
            file: "src/shop/split.py".into(),
            line: 2,
            function: "share".into(),
            exception_type: "ZeroDivisionError".into(),
            ..RootCause::default()
        };
        let t = build(&d, &rc, src, "src").unwrap();
        assert!(t.code.contains("from shop.split import share"), "{}", t.code);
        assert!(t.code.contains("\"src\""), "{}", t.code);
        assert!(t.code.contains("    share(12.5, 0)\n"), "{}", t.code);
        assert_parses(&t.code);
        // An assignment's value is not known: no "keeps result" assertion.
        assert!(!t.code.contains("keeps_result"));
    }

    #[test]
    fn refuses_methods_local_divisors_and_odd_paths() {
        let d = diag();
        let rc = |file: &str, line, function: &str| RootCause {
            file: file.into(),
            line,
            function: function.into(),
            ..RootCause::default()
        };
        let method = "class A:\n    def f(self, a, b):\n        return a / b\n";
        assert!(
            build(&d, &rc("m.py", 3, "f"), method, ".")
                .unwrap_err()
                .0
                .contains("module-level")
        );
        let local = "def f(a):\n    n = len(a)\n    return a / n\n";
        assert!(
            build(&d, &rc("m.py", 3, "f"), local, ".")
                .unwrap_err()
                .0
                .contains("not a parameter")
        );
        let ok = "def f(a, b):\n    return a / b\n";
        assert!(build(&d, &rc("my-module.py", 2, "f"), ok, ".").is_err());
        assert!(
            build(&d, &rc("m.py", 2, "g"), ok, ".")
                .unwrap_err()
                .0
                .contains("names `g`")
        );
        assert!(build(&d, &rc("m.py", 2, "f"), ok, "\"; x").is_err());
        assert!(build(&d, &rc("m.py", 2, "f"), ok, ".").is_ok());
    }
}
