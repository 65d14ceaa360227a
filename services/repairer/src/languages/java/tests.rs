//! Unit tests of the Java language: the syntax reader, every template on real Java sources
//! (the example service and the `fixtures/shop` project) with their declines, the JUnit 5
//! writer, detection and commands. `maven_tests.rs` runs the results with the real Maven.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use selfheal_events::{Diagnosis, RootCause};

use super::syntax::JavaSource;
use super::templates::{
    index_guard::JavaIndexGuard, no_such_element::JavaNoSuchElementGuard, null_guard::JavaNullGuard,
    number_format::JavaNumberFormatGuard, zero_division::JavaZeroDivisionGuard,
};
use super::*;
use crate::languages::{Expectation, Project, RegressionRequest, Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError};

pub(super) const INVENTORY: &str =
    include_str!("../../../../../examples/inventory-java/src/main/java/com/example/inventory/Inventory.java");
pub(super) const PRICES: &str = include_str!("fixtures/shop/src/main/java/com/example/shop/Prices.java");
pub(super) const CSV: &str = include_str!("fixtures/shop/src/main/java/com/example/shop/Csv.java");
pub(super) const PAGING: &str = include_str!("fixtures/shop/src/main/java/com/example/shop/Paging.java");
pub(super) const STATS: &str = include_str!("fixtures/shop/src/main/java/com/example/shop/Stats.java");
pub(super) const CATALOG: &str = include_str!("fixtures/shop/src/main/java/com/example/shop/Catalog.java");

/// The one-based line of the first line containing `needle`.
pub(super) fn line_of(source: &str, needle: &str) -> i32 {
    let index = source
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}"));
    i32::try_from(index + 1).unwrap()
}

/// A diagnosis of a JVM crash at `file:line` in `function`.
pub(super) fn diagnosis(
    file: &str,
    line: i32,
    function: &str,
    exception: &str,
    message: &str,
    inputs: &[(&str, &str)],
) -> Diagnosis {
    let sample: HashMap<String, String> = inputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Diagnosis {
        incident_id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
        service: "shop".into(),
        fingerprint: "fp-java-1".into(),
        runtime: Some("jvm".into()),
        root_cause: Some(RootCause {
            file: file.into(),
            line,
            function: function.into(),
            exception_type: exception.into(),
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
    let site = Site {
        diag,
        root_cause: diag.root_cause.as_ref().unwrap(),
        source,
    };
    template.apply(&site)
}

fn declined(result: Result<TemplateFix, TemplateError>) -> String {
    match result {
        Err(TemplateError::NotApplicable(why)) => why,
        other => panic!("expected a decline, got {other:?}"),
    }
}

pub(super) fn project() -> Project {
    Project {
        language: "java",
        source_root: "src/main/java".into(),
        framework: "junit5-maven".into(),
        test_root: "src/test/java".into(),
        suite: Default::default(),
    }
}

pub(super) fn inventory_diagnosis() -> Diagnosis {
    diagnosis(
        "src/main/java/com/example/inventory/Inventory.java",
        line_of(INVENTORY, "return item.priceCents() * quantity;"),
        "quote",
        "java.lang.NullPointerException",
        "Cannot invoke \"com.example.inventory.Item.priceCents()\" because \"item\" is null",
        &[("inventory.sku", "gizmo"), ("inventory.quantity", "2")],
    )
}

// ---- syntax -------------------------------------------------------------------------------

#[test]
fn the_reader_finds_methods_statements_and_declarations() {
    let src = JavaSource::new(INVENTORY);
    let methods = src.methods();
    let names: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Inventory", "Inventory", "quote", "reserve", "onHand"]);
    let quote = &methods[2];
    assert_eq!(quote.return_type, "long");
    assert_eq!(
        quote
            .params
            .iter()
            .map(|p| (p.ty.as_str(), p.name.as_str()))
            .collect::<Vec<_>>(),
        [("String", "sku"), ("int", "quantity")]
    );
    assert!(!quote.is_static && !quote.is_private && !quote.constructor);
    assert!(methods[0].constructor && methods[0].params.is_empty());
    assert_eq!(methods[1].params[0].ty, "List<Item>");
    let line = usize::try_from(line_of(INVENTORY, "return item.priceCents()")).unwrap() - 1;
    let offset = src.first_code_on_line(line).unwrap();
    let statement = src.statement_at(quote, offset).unwrap();
    assert_eq!(src.text_of(statement), "return item.priceCents() * quantity;");
    let item = src.declaration(quote, "item", statement.start).unwrap();
    assert_eq!(
        (item.ty.as_str(), item.init.as_deref(), item.param),
        ("Item", Some("items.get(sku)"), false)
    );
    assert!(src.declaration(quote, "sku", statement.start).unwrap().param);
    assert!(src.declaration(quote, "left", statement.start).is_none());
    assert!(src.is_field(statement.start, "items"));
    assert_eq!(src.package().unwrap(), "com.example.inventory");
    assert_eq!(
        src.thrown_with_message(quote.body_open, quote.body_close),
        ["IllegalArgumentException"]
    );
    // The lambda in `reserve` is not a method; its statements belong to `reserve`.
    let lambda_line = usize::try_from(line_of(INVENTORY, "return item.take(quantity);")).unwrap() - 1;
    let at = src.first_code_on_line(lambda_line).unwrap();
    assert_eq!(src.method_at(at).unwrap().name, "reserve");
}

#[test]
fn comments_and_literals_are_masked_byte_for_byte() {
    let text = "int a = b / c; // x / y\nString s = \"a/b;{\"; /* { */ char q = '}';\n";
    let src = JavaSource::new(text);
    assert_eq!(src.masked().len(), text.len());
    assert_eq!(src.masked().matches('/').count(), 1);
    assert!(!src.masked().contains('{') && !src.masked().contains('}'));
}

// ---- java.null-guard --------------------------------------------------------------------

#[test]
fn null_guard_fixes_the_inventory_example_with_the_methods_own_exception() {
    let diag = inventory_diagnosis();
    let fix = apply(&JavaNullGuard, &diag, INVENTORY).unwrap();
    let expected = INVENTORY.replace(
        "        return item.priceCents() * quantity;\n",
        "        if (item == null) {\n            throw new IllegalArgumentException(\"unknown sku: \" + sku);\n        }\n        return item.priceCents() * quantity;\n",
    );
    assert_eq!(fix.content, expected);
    assert_eq!(fix.expect, Expectation::Raises("IllegalArgumentException".into()));
    assert_eq!(fix.params["kind"], "missing-key");
    assert_eq!(fix.params["key"], "sku");
    assert!(
        fix.summary.contains("already throws IllegalArgumentException"),
        "{}",
        fix.summary
    );
}

#[test]
fn null_guard_repeats_a_map_lookup_that_returned_null() {
    let diag = diagnosis(
        "src/main/java/com/example/shop/Prices.java",
        line_of(PRICES, "return cents.get(sku) * quantity;"),
        "total",
        "java.lang.NullPointerException",
        "Cannot invoke \"java.lang.Long.longValue()\" because the return value of \"java.util.Map.get(Object)\" is null",
        &[],
    );
    let fix = apply(&JavaNullGuard, &diag, PRICES).unwrap();
    assert!(
        fix.content.contains(
            "        if (cents.get(sku) == null) {\n            throw new IllegalArgumentException(\"unknown sku: \" + sku);\n        }\n        return cents.get(sku) * quantity;"
        ),
        "{}",
        fix.content
    );
    assert_eq!(fix.params["key"], "sku");
}

#[test]
fn null_guard_declines_fields_unnamed_locals_other_calls_and_code_without_a_convention() {
    let source = "package p;\nclass A {\n    private Repo repo;\n    long f(String s) {\n        if (s.isEmpty()) {\n            throw new IllegalArgumentException(\"empty\");\n        }\n        return repo.count(s);\n    }\n}\n";
    let npe = |message: &str| diagnosis("A.java", 8, "f", "java.lang.NullPointerException", message, &[]);
    let why = declined(apply(
        &JavaNullGuard,
        &npe("Cannot invoke \"p.Repo.count(String)\" because \"this.repo\" is null"),
        source,
    ));
    assert!(why.contains("object's own state"), "{why}");
    let why = declined(apply(
        &JavaNullGuard,
        &npe("Cannot invoke \"p.Repo.count(String)\" because \"<local1>\" is null"),
        source,
    ));
    assert!(why.contains("-g"), "{why}");
    let why = declined(apply(
        &JavaNullGuard,
        &npe("Cannot invoke \"p.Repo.count(String)\" because the return value of \"p.A.lookup()\" is null"),
        source,
    ));
    assert!(why.contains("map lookup"), "{why}");
    let why = declined(apply(&JavaNullGuard, &npe("null"), source));
    assert!(why.contains("does not name the null expression"), "{why}");
    // A parameter, but no exception the code uses for bad input: decline rather than invent one.
    let bare = "class B {\n    int f(String s) {\n        return s.length();\n    }\n}\n";
    let diag = diagnosis(
        "B.java",
        3,
        "f",
        "java.lang.NullPointerException",
        "Cannot invoke \"String.length()\" because \"s\" is null",
        &[],
    );
    let why = declined(apply(&JavaNullGuard, &diag, bare));
    assert!(why.contains("no convention to follow"), "{why}");
    // With one, a parameter gets `… is required`.
    let with = bare.replace("        return s.length();", "        if (s.isBlank()) {\n            throw new IllegalArgumentException(\"blank\");\n        }\n        return s.length();");
    let diag = diagnosis(
        "B.java",
        6,
        "f",
        "java.lang.NullPointerException",
        "Cannot invoke \"String.length()\" because \"s\" is null",
        &[],
    );
    let fix = apply(&JavaNullGuard, &diag, &with).unwrap();
    assert!(
        fix.content
            .contains("if (s == null) {\n            throw new IllegalArgumentException(\"s is required\");"),
        "{}",
        fix.content
    );
    assert_eq!(fix.params["kind"], "null-param");
}

// ---- java.index-guard -------------------------------------------------------------------

#[test]
fn index_guard_checks_the_length_of_split_parts() {
    let diag = diagnosis(
        "src/main/java/com/example/shop/Csv.java",
        line_of(CSV, "return parts[1].trim();"),
        "name",
        "java.lang.ArrayIndexOutOfBoundsException",
        "Index 1 out of bounds for length 1",
        &[("csv.line", "7")],
    );
    let fix = apply(&JavaIndexGuard, &diag, CSV).unwrap();
    assert!(
        fix.content.contains(
            "        if (parts.length <= 1) {\n            throw new IllegalArgumentException(\"parts needs at least 2 elements\");\n        }\n        return parts[1].trim();"
        ),
        "{}",
        fix.content
    );
    assert_eq!(fix.params["index"], "1");
}

#[test]
fn index_guard_tells_accesses_apart_by_the_messages_index_or_declines() {
    let source = "class C {\n    static int f(int[] a, int i, int j) {\n        if (i < -5) {\n            throw new IllegalArgumentException(\"i\");\n        }\n        return a[i] + a[j + 1];\n    }\n}\n";
    let diag = diagnosis(
        "C.java",
        6,
        "f",
        "java.lang.ArrayIndexOutOfBoundsException",
        "Index 9 out of bounds for length 2",
        &[],
    );
    let why = declined(apply(&JavaIndexGuard, &diag, source));
    assert!(why.contains("2 index accesses"), "{why}");
    let single = source.replace("a[i] + a[j + 1]", "a[i] * 2");
    let fix = apply(&JavaIndexGuard, &diag, &single).unwrap();
    assert!(fix.content.contains("if (i < 0 || i >= a.length) {"), "{}", fix.content);
    assert!(
        fix.content
            .contains("throw new IllegalArgumentException(\"index \" + i + \" is outside a\");"),
        "{}",
        fix.content
    );
}

// ---- java.number-format-guard -----------------------------------------------------------

#[test]
fn number_format_guard_falls_back_to_the_codes_own_default() {
    let diag = diagnosis(
        "src/main/java/com/example/shop/Paging.java",
        line_of(PAGING, "int limit = Integer.parseInt(raw);"),
        "limit",
        "java.lang.NumberFormatException",
        "For input string: \"abc\"",
        &[("paging.limit", "abc")],
    );
    let fix = apply(&JavaNumberFormatGuard, &diag, PAGING).unwrap();
    assert!(
        fix.content.contains(
            "        int limit;\n        try {\n            limit = Integer.parseInt(raw);\n        } catch (NumberFormatException notANumber) {\n            limit = Integer.parseInt(\"20\");\n        }\n        return Math.min(limit, MAX);"
        ),
        "{}",
        fix.content
    );
    assert_eq!(fix.expect, Expectation::Completes);
    assert_eq!(fix.params["subject"], "raw");
}

#[test]
fn number_format_guard_throws_a_project_exception_never_illegal_argument() {
    let source = "class D {\n    int f(String q) {\n        if (q == null) {\n            throw new BadRequestException(\"q\");\n        }\n        return Integer.parseInt(q) * 2;\n    }\n}\n";
    let diag = diagnosis(
        "D.java",
        6,
        "f",
        "java.lang.NumberFormatException",
        "For input string: \"x\"",
        &[],
    );
    let fix = apply(&JavaNumberFormatGuard, &diag, source).unwrap();
    assert!(
        fix.content.contains(
            "        try {\n            return Integer.parseInt(q) * 2;\n        } catch (NumberFormatException notANumber) {\n            throw new BadRequestException(\"q must be a number: \" + q);\n        }"
        ),
        "{}",
        fix.content
    );
    // IllegalArgumentException is NumberFormatException's superclass: wrapping changes nothing.
    let iae = source.replace("BadRequestException", "IllegalArgumentException");
    let why = declined(apply(&JavaNumberFormatGuard, &diag, &iae));
    assert!(why.contains("no default in the code"), "{why}");
}

// ---- java.zero-division-guard -----------------------------------------------------------

#[test]
fn zero_division_guard_returns_the_methods_early_default() {
    let diag = diagnosis(
        "src/main/java/com/example/shop/Stats.java",
        line_of(STATS, "return total / orders.size();"),
        "average",
        "java.lang.ArithmeticException",
        "/ by zero",
        &[],
    );
    let fix = apply(&JavaZeroDivisionGuard, &diag, STATS).unwrap();
    assert!(
        fix.content.contains(
            "        if (orders.isEmpty()) {\n            return 0;\n        }\n        return total / orders.size();"
        ),
        "{}",
        fix.content
    );
    assert_eq!(fix.expect, Expectation::Returns("0".into()));
    assert_eq!(
        (fix.params["kind"].as_str(), fix.params["subject"].as_str()),
        ("empty", "orders")
    );
}

#[test]
fn zero_division_guard_throws_or_declines() {
    let source = "class E {\n    static int per(int total, int count) {\n        if (total < 0) {\n            throw new IllegalArgumentException(\"negative\");\n        }\n        int share = total / count;\n        return share;\n    }\n}\n";
    let diag = diagnosis("E.java", 6, "per", "java.lang.ArithmeticException", "/ by zero", &[]);
    let fix = apply(&JavaZeroDivisionGuard, &diag, source).unwrap();
    assert!(fix.content.contains("        if (count == 0) {\n            throw new IllegalArgumentException(\"count must not be zero\");\n        }\n        int share = total / count;"), "{}", fix.content);
    assert_eq!(fix.params["kind"], "divisor");
    let complex = source.replace("total / count", "total / (count - 1)");
    assert!(declined(apply(&JavaZeroDivisionGuard, &diag, &complex)).contains("twice"));
    let two = source.replace("total / count", "total / count / 2");
    assert!(declined(apply(&JavaZeroDivisionGuard, &diag, &two)).contains("several divisions"));
    let overflow = diagnosis(
        "E.java",
        6,
        "per",
        "java.lang.ArithmeticException",
        "integer overflow",
        &[],
    );
    assert!(declined(apply(&JavaZeroDivisionGuard, &overflow, source)).contains("not a division by zero"));
}

// ---- java.no-such-element-guard ---------------------------------------------------------

#[test]
fn no_such_element_guard_reads_the_optional_with_the_classes_exception() {
    let diag = diagnosis(
        "src/main/java/com/example/shop/Catalog.java",
        line_of(CATALOG, "findFirst().get()"),
        "find",
        "java.util.NoSuchElementException",
        "No value present",
        &[("catalog.name", "cup")],
    );
    let fix = apply(&JavaNoSuchElementGuard, &diag, CATALOG).unwrap();
    assert!(
        fix.content.contains(
            "return items.stream().filter(i -> i.equalsIgnoreCase(name)).findFirst().orElseThrow(() -> new UnknownItemException(\"nothing found: \" + name));"
        ),
        "{}",
        fix.content
    );
    assert_eq!(fix.expect, Expectation::Raises("UnknownItemException".into()));
}

#[test]
fn no_such_element_guard_checks_iterators() {
    let source = "import java.util.Iterator;\nclass F {\n    static String first(Iterator<String> it) {\n        if (it == null) {\n            return \"\";\n        }\n        String head = it.next();\n        return head;\n    }\n}\n";
    let diag = diagnosis("F.java", 7, "first", "java.util.NoSuchElementException", "", &[]);
    let fix = apply(&JavaNoSuchElementGuard, &diag, source).unwrap();
    assert!(
        fix.content.contains(
            "        if (!it.hasNext()) {\n            return \"\";\n        }\n        String head = it.next();"
        ),
        "{}",
        fix.content
    );
}

// ---- regression tests -------------------------------------------------------------------

fn regression(
    diag: &Diagnosis,
    source: &str,
    fix: Option<&TemplateFix>,
) -> Result<selfheal_events::RegressionTest, RegressionError> {
    let project = project();
    let request = RegressionRequest {
        site: Site {
            diag,
            root_cause: diag.root_cause.as_ref().unwrap(),
            source,
        },
        project: &project,
        fix,
        template: None,
        long_name: false,
    };
    regression::write(&request)
}

#[test]
fn the_regression_test_calls_the_culprit_with_the_incidents_input() {
    let diag = inventory_diagnosis();
    let fix = apply(&JavaNullGuard, &diag, INVENTORY).unwrap();
    let test = regression(&diag, INVENTORY, Some(&fix)).unwrap();
    assert_eq!(
        test.file,
        "src/test/java/com/example/inventory/Selfheal0193a1b2Test.java"
    );
    assert_eq!(test.name, "quoteNoLongerThrowsNullPointerException");
    let expected = "package com.example.inventory;

import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/**
 * Written by selfheal for incident 0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b (fingerprint fp-java-1): `Inventory.quote` threw
 * NullPointerException at line 33 with this input; the fix answers it with IllegalArgumentException.
 */
class Selfheal0193a1b2Test {

    @Test
    void quoteNoLongerThrowsNullPointerException() {
        Inventory subject = new Inventory();
        assertThrows(IllegalArgumentException.class, () -> subject.quote(\"gizmo\", 2));
    }
}
";
    assert_eq!(test.code, expected);
    // Without evidence, the key is one no map holds.
    let mut bare = diag.clone();
    bare.sample_inputs.clear();
    let test = regression(&bare, INVENTORY, Some(&fix)).unwrap();
    assert!(
        test.code.contains("subject.quote(\"selfheal-missing-0193a1b2\", 1)"),
        "{}",
        test.code
    );
}

#[test]
fn the_regression_test_derives_inputs_from_the_crash_class() {
    // Empty list for the divisor's collection, asserting the method's default.
    let diag = diagnosis(
        "src/main/java/com/example/shop/Stats.java",
        line_of(STATS, "return total / orders.size();"),
        "average",
        "java.lang.ArithmeticException",
        "/ by zero",
        &[],
    );
    let fix = apply(&JavaZeroDivisionGuard, &diag, STATS).unwrap();
    let test = regression(&diag, STATS, Some(&fix)).unwrap();
    assert!(
        test.code
            .contains("        assertEquals(0, Stats.average(List.of()));\n"),
        "{}",
        test.code
    );
    assert!(test.code.contains("import java.util.List;"), "{}", test.code);
    // The text that is not a number reaches the parse through the map it is read from.
    let diag = diagnosis(
        "src/main/java/com/example/shop/Paging.java",
        line_of(PAGING, "Integer.parseInt(raw)"),
        "limit",
        "java.lang.NumberFormatException",
        "For input string: \"abc\"",
        &[("paging.limit", "abc")],
    );
    let fix = apply(&JavaNumberFormatGuard, &diag, PAGING).unwrap();
    let test = regression(&diag, PAGING, Some(&fix)).unwrap();
    assert!(
        test.code
            .contains("assertDoesNotThrow(() -> Paging.limit(Map.of(\"limit\", \"abc\")));"),
        "{}",
        test.code
    );
    // A split line without the second part, from the evidence.
    let diag = diagnosis(
        "src/main/java/com/example/shop/Csv.java",
        line_of(CSV, "parts[1]"),
        "name",
        "java.lang.ArrayIndexOutOfBoundsException",
        "Index 1 out of bounds for length 1",
        &[("csv.line", "7")],
    );
    let fix = apply(&JavaIndexGuard, &diag, CSV).unwrap();
    let test = regression(&diag, CSV, Some(&fix)).unwrap();
    assert!(
        test.code
            .contains("assertThrows(IllegalArgumentException.class, () -> Csv.name(\"7\"));"),
        "{}",
        test.code
    );
    // Untrusted input stays inside an escaped literal.
    let hostile = diagnosis(
        "src/main/java/com/example/inventory/Inventory.java",
        line_of(INVENTORY, "return item.priceCents()"),
        "quote",
        "java.lang.NullPointerException",
        "Cannot invoke \"x\" because \"item\" is null",
        &[("inventory.sku", "\"); System.exit(1); //\n")],
    );
    let fix = apply(&JavaNullGuard, &hostile, INVENTORY).unwrap();
    let test = regression(&hostile, INVENTORY, Some(&fix)).unwrap();
    assert!(
        test.code.contains("subject.quote(\"\\\"); System.exit(1); //\\n\", 1)"),
        "{}",
        test.code
    );
}

#[test]
fn the_regression_writer_refuses_what_it_cannot_call() {
    let source = "package p;\nclass G {\n    private int f(int a, int b) {\n        return a / b;\n    }\n}\n";
    let diag = diagnosis(
        "src/main/java/p/G.java",
        4,
        "f",
        "java.lang.ArithmeticException",
        "/ by zero",
        &[],
    );
    assert!(regression(&diag, source, None).unwrap_err().0.contains("private"));
    let wrong = diagnosis(
        "src/main/java/p/G.java",
        4,
        "g",
        "java.lang.ArithmeticException",
        "/ by zero",
        &[],
    );
    assert!(
        regression(&wrong, &source.replace("private ", ""), None)
            .unwrap_err()
            .0
            .contains("diagnosis names")
    );
    let needs =
        "package p;\nclass H {\n    H(Conn c) {\n    }\n    int f(int a, int b) {\n        return a / b;\n    }\n}\n";
    let diag = diagnosis(
        "src/main/java/p/H.java",
        6,
        "f",
        "java.lang.ArithmeticException",
        "/ by zero",
        &[],
    );
    assert!(
        regression(&diag, needs, None)
            .unwrap_err()
            .0
            .contains("cannot make a `H`")
    );
    let mut junit4 = project();
    junit4.framework = "junit4-maven".into();
    let request = RegressionRequest {
        site: Site {
            diag: &diag,
            root_cause: diag.root_cause.as_ref().unwrap(),
            source: needs,
        },
        project: &junit4,
        fix: None,
        template: None,
        long_name: false,
    };
    assert!(regression::write(&request).unwrap_err().0.contains("JUnit 5"));
}

// ---- project, commands, summaries -------------------------------------------------------

#[test]
fn detects_maven_and_gradle_projects_with_offline_commands() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/inventory-java");
    let java = Java::with_maven_repo("/cache/m2");
    let p = java.detect(&example).unwrap();
    assert_eq!(
        (p.framework.as_str(), p.source_root.as_str(), p.test_root.as_str()),
        ("junit5-maven", "src/main/java", "src/test/java")
    );
    assert_eq!(
        p.suite.command,
        ["mvn", "-B", "-ntp", "-Dstyle.color=never", "-o", "test"]
    );
    assert_eq!(p.suite.env["MAVEN_OPTS"], "-Dmaven.repo.local=/cache/m2");
    assert!(
        p.suite.prepare.as_ref().unwrap().iter().all(|a| a != "-o"),
        "prepare runs online"
    );
    assert!(p.suite.env["JAVA_TOOL_OPTIONS"].contains("-Xmx"));
    let test = selfheal_events::RegressionTest {
        file: "src/test/java/com/example/inventory/Selfheal0193a1b2Test.java".into(),
        name: "t".into(),
        code: String::new(),
    };
    let single = java.single_test_command(&p, &test);
    assert_eq!(
        &single[single.len() - 2..],
        ["-Dtest=Selfheal0193a1b2Test", "-Dsurefire.failIfNoSpecifiedTests=false"]
    );

    let dir = tempfile::tempdir().unwrap();
    assert!(java.detect(dir.path()).is_none());
    std::fs::write(
        dir.path().join("build.gradle.kts"),
        "tasks.test { useJUnitPlatform() }\n",
    )
    .unwrap();
    let g = java.detect(dir.path()).unwrap();
    assert_eq!(g.framework, "junit5-gradle");
    assert_eq!(g.suite.command, ["gradle", "--offline", "--console=plain", "test"]);
    let single = java.single_test_command(&g, &test);
    assert_eq!(
        &single[single.len() - 2..],
        ["--tests", "com.example.inventory.Selfheal0193a1b2Test"]
    );
}

#[test]
fn surefire_summaries_are_the_builds_totals() {
    let output = "[INFO] Tests run: 5, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.9 s -- in a.BTest\n[ERROR] Tests run: 1, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.1 s <<< FAILURE! -- in a.CTest\n[INFO] Results:\n[ERROR] Tests run: 12, Failures: 1, Errors: 2, Skipped: 1\n[INFO] BUILD FAILURE\n";
    let s = parse_surefire_summary(output).unwrap();
    assert_eq!((s.passed, s.failed, s.errors, s.skipped), (8, 1, 2, 1));
    assert!(parse_surefire_summary("[INFO] BUILD SUCCESS\n").is_none());
}
