//! Deterministic root-cause rules: exception type and message, the code on the culprit
//! line and the inputs of failing requests → a failure category the repairer understands.
//!
//! The table is [`RULES`]; each rule is a matcher and an explainer. To support a new
//! failure class, add a row (and a test). Rules are tried in order and every match
//! becomes a hypothesis; [`UNKNOWN`] applies when none does.

use std::collections::{BTreeMap, HashMap};

use selfheal_events::Evidence;

/// Longest piece of untrusted text (messages, input values, code) quoted in a summary.
const MAX_QUOTE_CHARS: usize = 80;

/// What the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    /// Runtime of the trace (`python`, `jvm`, …), when a trace was parsed.
    pub runtime: Option<&'a str>,
    /// The root-cause exception type, e.g. `ZeroDivisionError`, `java.lang.NullPointerException`.
    pub exception_type: &'a str,
    /// Its message (untrusted text).
    pub message: &'a str,
    /// The source line the culprit frame points at, when it was read from the repository.
    pub code_line: Option<&'a str>,
    /// Attributes of failing requests (untrusted text).
    pub sample_inputs: &'a [HashMap<String, String>],
}

/// What one rule concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The rule's name.
    pub rule: &'static str,
    /// The failure category, e.g. `division-by-zero`.
    pub category: &'static str,
    /// A short phrase for the diagnosis summary, e.g. "division by zero on `d`".
    pub headline: String,
    /// One line for a person, e.g. "divisor `d` is zero for some inputs".
    pub summary: String,
    /// How specific the match is on its own, 0..1 (before location and evidence).
    pub strength: f64,
    /// The code on the failing line supports the rule (e.g. a divisor was found).
    pub code_support: bool,
    /// The failing inputs support the rule (e.g. a zero value).
    pub input_support: bool,
    /// The facts used.
    pub evidence: Vec<Evidence>,
}

/// One row of the rule table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Name, shown in evidence.
    pub name: &'static str,
    /// The category it assigns.
    pub category: &'static str,
    /// Whether the rule applies.
    pub matches: fn(&RuleInput<'_>) -> bool,
    /// The finding, when it applies.
    pub explain: fn(&RuleInput<'_>, &Rule) -> Finding,
}

/// Strength of a rule that matched on the exception type or a runtime's fixed message.
const SPECIFIC: f64 = 0.55;
/// Strength of the fallback.
const FALLBACK: f64 = 0.1;

/// The rule table, most specific first.
pub const RULES: &[Rule] = &[
    Rule {
        name: "division-by-zero",
        category: "division-by-zero",
        matches: is_division_by_zero,
        explain: explain_division,
    },
    Rule {
        name: "missing-key",
        category: "missing-key",
        matches: is_missing_key,
        explain: explain_missing_key,
    },
    Rule {
        name: "null-dereference",
        category: "null-dereference",
        matches: is_null_dereference,
        explain: explain_null,
    },
    Rule {
        name: "index-out-of-range",
        category: "index-out-of-range",
        matches: is_index_out_of_range,
        explain: explain_index,
    },
    Rule {
        name: "parse-error",
        category: "parse-error",
        matches: is_parse_error,
        explain: explain_parse,
    },
];

/// The fallback when no rule matches.
pub const UNKNOWN: Rule = Rule {
    name: "unknown",
    category: "unknown",
    matches: |_| true,
    explain: explain_unknown,
};

/// Every matching rule's finding (the fallback when none matches), strongest first.
pub fn evaluate(input: &RuleInput<'_>) -> Vec<Finding> {
    let mut out: Vec<Finding> = RULES
        .iter()
        .filter(|r| (r.matches)(input))
        .map(|r| (r.explain)(input, r))
        .collect();
    if out.is_empty() {
        out.push((UNKNOWN.explain)(input, &UNKNOWN));
    }
    out.sort_by(|a, b| b.strength.total_cmp(&a.strength));
    out
}

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

/// The last segment of a qualified type name: `java.lang.ArithmeticException` → `ArithmeticException`.
fn short_type(ty: &str) -> &str {
    ty.rsplit(['.', ':', '\\', '/']).next().unwrap_or(ty).trim()
}

/// Untrusted text made safe to quote on one line: control characters dropped, bounded.
pub fn quote(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let clean = clean.trim();
    if clean.chars().count() > MAX_QUOTE_CHARS {
        let cut: String = clean.chars().take(MAX_QUOTE_CHARS).collect();
        format!("{cut}…")
    } else {
        clean.to_string()
    }
}

fn lower_message(input: &RuleInput<'_>) -> String {
    input.message.to_ascii_lowercase()
}

fn rule_evidence(input: &RuleInput<'_>, rule: &Rule) -> Evidence {
    Evidence {
        kind: "rule".into(),
        detail: format!(
            "{} → {} (rule {})",
            quote(input.exception_type),
            rule.category,
            rule.name
        ),
    }
}

/// Keys whose sample values satisfy `pred`, with the value and how many samples had it:
/// `[(key, value, count)]`, most frequent first.
fn inputs_where(samples: &[HashMap<String, String>], pred: impl Fn(&str) -> bool) -> Vec<(String, String, usize)> {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for sample in samples {
        for (k, v) in sample {
            if pred(v) {
                *counts.entry((k.clone(), v.clone())).or_default() += 1;
            }
        }
    }
    let mut out: Vec<(String, String, usize)> = counts.into_iter().map(|((k, v), n)| (k, v, n)).collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    out
}

fn input_evidence(found: &[(String, String, usize)], total: usize) -> Vec<Evidence> {
    found
        .iter()
        .take(3)
        .map(|(k, v, n)| Evidence {
            kind: "input".into(),
            detail: format!("{}={} in {n} of {total} sampled failing requests", quote(k), quote(v)),
        })
        .collect()
}

fn is_zero(value: &str) -> bool {
    value.trim().parse::<f64>().is_ok_and(|x| x == 0.0)
}

/// The code part of a line: comments cut and string literals blanked (byte for byte, so
/// offsets still point into the original line) so operators inside them are not taken for code.
fn code_only(line: &str, runtime: Option<&str>) -> String {
    let blank = |out: &mut String, c: char| out.extend(std::iter::repeat_n(' ', c.len_utf8()));
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut quote_char: Option<char> = None;
    let python_like = matches!(runtime, Some("python") | Some("ruby"));
    while let Some(c) = chars.next() {
        if let Some(q) = quote_char {
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    blank(&mut out, escaped);
                }
            } else if c == q {
                quote_char = None;
            }
            blank(&mut out, c);
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                quote_char = Some(c);
                blank(&mut out, c);
            }
            '#' if python_like => break,
            '/' if !python_like && matches!(chars.peek(), Some('/') | Some('*')) => break,
            _ => out.push(c),
        }
    }
    out
}

/// The operand that starts at `rest`: an identifier path with calls and subscripts
/// (`self.rate`, `cfg["d"]`, `f(x)`), a number, or a parenthesised expression.
fn operand(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let mut depth = 0i32;
    let mut end = 0usize;
    for (i, c) in rest.char_indices() {
        let ok = match c {
            '(' | '[' => {
                depth += 1;
                true
            }
            ')' | ']' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
                true
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '$' => true,
            _ => depth > 0,
        };
        if !ok {
            break;
        }
        end = i + c.len_utf8();
    }
    let op = rest.get(..end)?.trim();
    (!op.is_empty() && depth == 0).then(|| op.to_string())
}

/// Divisors on a line of code: right operands of `/`, `//`, `%` and their `=` forms.
pub fn divisors(line: &str, runtime: Option<&str>) -> Vec<String> {
    let code = code_only(line, runtime);
    let bytes = code.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'/' || b == b'%' {
            let mut j = i + 1;
            if b == b'/' && bytes.get(j) == Some(&b'/') {
                j += 1;
            }
            if bytes.get(j) == Some(&b'=') {
                j += 1;
            }
            if let Some(op) = line.get(j..).and_then(operand)
                && !out.contains(&op)
            {
                out.push(op);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The divisor most likely to be zero: one whose name an input key with a zero value ends
/// with or starts with (`d` ~ `discount`), else the first.
fn likely_divisor<'a>(divs: &'a [String], zero_inputs: &[(String, String, usize)]) -> Option<&'a String> {
    let last_segment = |k: &str| k.rsplit(['.', '/', '_']).next().unwrap_or(k).to_ascii_lowercase();
    divs.iter()
        .find(|d| {
            let name = d.rsplit('.').next().unwrap_or(d).to_ascii_lowercase();
            zero_inputs.iter().any(|(k, _, _)| {
                let seg = last_segment(k);
                seg == name || (!name.is_empty() && seg.starts_with(&name))
            })
        })
        .or_else(|| divs.first())
}

// ---------------------------------------------------------------------------------------
// the rules
// ---------------------------------------------------------------------------------------

fn is_division_by_zero(input: &RuleInput<'_>) -> bool {
    let ty = short_type(input.exception_type);
    let msg = lower_message(input);
    ty == "ZeroDivisionError"
        || ty == "DivideByZeroException"
        || (ty == "ArithmeticException" && msg.contains("by zero"))
        || msg.contains("divide by zero")
        || msg.contains("division by zero")
        || msg.contains("divisor of zero")
}

fn explain_division(input: &RuleInput<'_>, rule: &Rule) -> Finding {
    let divs = input.code_line.map(|l| divisors(l, input.runtime)).unwrap_or_default();
    let zeros = inputs_where(input.sample_inputs, is_zero);
    let divisor = likely_divisor(&divs, &zeros);
    let mut evidence = vec![rule_evidence(input, rule)];
    if let (Some(d), Some(line)) = (divisor, input.code_line) {
        evidence.push(Evidence {
            kind: "code".into(),
            detail: format!("divisor `{}` in `{}`", quote(d), quote(line.trim())),
        });
    }
    evidence.extend(input_evidence(&zeros, input.sample_inputs.len()));
    let (headline, mut summary) = match divisor {
        Some(d) => (
            format!("division by zero on `{}`", quote(d)),
            format!("divisor `{}` is zero for some inputs", quote(d)),
        ),
        None => (
            "division by zero".to_string(),
            "a divisor is zero for some inputs".to_string(),
        ),
    };
    if let Some((k, v, _)) = zeros.first() {
        summary.push_str(&format!(" (failing requests had {}={})", quote(k), quote(v)));
    }
    Finding {
        rule: rule.name,
        category: rule.category,
        headline,
        summary,
        strength: SPECIFIC,
        code_support: divisor.is_some(),
        input_support: !zeros.is_empty(),
        evidence,
    }
}

fn is_missing_key(input: &RuleInput<'_>) -> bool {
    matches!(
        short_type(input.exception_type),
        "KeyError" | "KeyNotFoundException" | "NoSuchElementException"
    )
}

/// Subscripts on a line: `x["k"]`, `x[k]` → `x`.
fn subscripted(line: &str) -> Option<String> {
    let idx = line.find('[')?;
    let before = line.get(..idx)?;
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map(|i| i + 1)
        .unwrap_or(0);
    let name = before.get(start..)?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

fn explain_missing_key(input: &RuleInput<'_>, rule: &Rule) -> Finding {
    let key = quote(input.message.trim());
    let container = input.code_line.and_then(subscripted);
    let mut evidence = vec![rule_evidence(input, rule)];
    if let (Some(c), Some(line)) = (&container, input.code_line) {
        evidence.push(Evidence {
            kind: "code".into(),
            detail: format!("lookup in `{}` on `{}`", quote(c), quote(line.trim())),
        });
    }
    let headline = if key.is_empty() {
        "missing key".to_string()
    } else {
        format!("missing key {key}")
    };
    let summary = match &container {
        Some(c) => format!("key {key} is missing from `{}` for some inputs", quote(c)),
        None => format!("key {key} is missing from a mapping for some inputs"),
    };
    Finding {
        rule: rule.name,
        category: rule.category,
        headline,
        summary,
        strength: SPECIFIC,
        code_support: container.is_some(),
        input_support: false,
        evidence,
    }
}

fn is_null_dereference(input: &RuleInput<'_>) -> bool {
    let ty = short_type(input.exception_type);
    let msg = lower_message(input);
    (ty == "AttributeError" && msg.contains("'nonetype'"))
        || (ty == "TypeError"
            && (msg.contains("'nonetype'")
                || msg.contains("of undefined")
                || msg.contains("of null")
                || msg.contains("is undefined")
                || msg.contains("is null")))
        || ty == "NullPointerException"
        || ty == "NullReferenceException"
        || (ty == "NoMethodError" && msg.contains("nil"))
        || msg.contains("nil pointer dereference")
        || msg.contains("on a `none` value")
}

fn is_nullish(value: &str) -> bool {
    matches!(value.trim(), "" | "null" | "None" | "nil" | "undefined")
}

fn explain_null(input: &RuleInput<'_>, rule: &Rule) -> Finding {
    let nulls = inputs_where(input.sample_inputs, is_nullish);
    let mut evidence = vec![rule_evidence(input, rule)];
    evidence.extend(input_evidence(&nulls, input.sample_inputs.len()));
    let none = match input.runtime {
        Some("python") => "None",
        Some("ruby") | Some("go") => "nil",
        Some("node") => "undefined",
        _ => "null",
    };
    Finding {
        rule: rule.name,
        category: rule.category,
        headline: format!("{none} dereference"),
        summary: format!(
            "a value is {none} where an object is expected ({})",
            quote(input.message)
        ),
        strength: SPECIFIC,
        code_support: false,
        input_support: !nulls.is_empty(),
        evidence,
    }
}

fn is_index_out_of_range(input: &RuleInput<'_>) -> bool {
    let ty = short_type(input.exception_type);
    let msg = lower_message(input);
    matches!(
        ty,
        "IndexError"
            | "ArrayIndexOutOfBoundsException"
            | "IndexOutOfBoundsException"
            | "StringIndexOutOfBoundsException"
            | "IndexOutOfRangeException"
    ) || msg.contains("index out of range")
        || msg.contains("index out of bounds")
}

fn explain_index(input: &RuleInput<'_>, rule: &Rule) -> Finding {
    let container = input.code_line.and_then(subscripted);
    let mut evidence = vec![rule_evidence(input, rule)];
    if let (Some(c), Some(line)) = (&container, input.code_line) {
        evidence.push(Evidence {
            kind: "code".into(),
            detail: format!("index into `{}` on `{}`", quote(c), quote(line.trim())),
        });
    }
    Finding {
        rule: rule.name,
        category: rule.category,
        headline: "index out of range".into(),
        summary: match &container {
            Some(c) => format!("an index into `{}` is out of range for some inputs", quote(c)),
            None => "an index is out of range for some inputs".into(),
        },
        strength: SPECIFIC,
        code_support: container.is_some(),
        input_support: false,
        evidence,
    }
}

fn is_parse_error(input: &RuleInput<'_>) -> bool {
    let ty = short_type(input.exception_type);
    let msg = lower_message(input);
    (ty == "ValueError"
        && (msg.contains("invalid literal for int()") || msg.contains("could not convert string to float")))
        || ty == "NumberFormatException"
        || ty == "FormatException"
        || ty == "ParseIntError"
        || ty == "ParseFloatError"
        || (msg.contains("strconv.") && msg.contains("invalid syntax"))
        || msg.contains("invalid digit found in string")
}

fn explain_parse(input: &RuleInput<'_>, rule: &Rule) -> Finding {
    let bad = inputs_where(input.sample_inputs, |v| {
        let t = v.trim();
        !t.is_empty() && t.parse::<f64>().is_err() && input.message.contains(t)
    });
    let mut evidence = vec![rule_evidence(input, rule)];
    evidence.extend(input_evidence(&bad, input.sample_inputs.len()));
    Finding {
        rule: rule.name,
        category: rule.category,
        headline: "unparsable number".into(),
        summary: format!(
            "a number is parsed from text that is not one ({})",
            quote(input.message)
        ),
        strength: SPECIFIC,
        code_support: false,
        input_support: !bad.is_empty(),
        evidence,
    }
}

fn explain_unknown(input: &RuleInput<'_>, rule: &Rule) -> Finding {
    let ty = if input.exception_type.trim().is_empty() {
        "an exception".to_string()
    } else {
        quote(input.exception_type)
    };
    let what = if input.message.trim().is_empty() {
        ty.clone()
    } else {
        format!("{ty}: {}", quote(input.message))
    };
    Finding {
        rule: rule.name,
        category: rule.category,
        headline: what.clone(),
        summary: format!("{what}; no rule recognises this failure"),
        strength: FALLBACK,
        code_support: false,
        input_support: false,
        evidence: vec![Evidence {
            kind: "rule".into(),
            detail: format!("no rule matches {ty}"),
        }],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn input<'a>(
        ty: &'a str,
        msg: &'a str,
        line: Option<&'a str>,
        samples: &'a [HashMap<String, String>],
    ) -> RuleInput<'a> {
        RuleInput {
            runtime: Some("python"),
            exception_type: ty,
            message: msg,
            code_line: line,
            sample_inputs: samples,
        }
    }

    fn sample(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn finds_divisors() {
        assert_eq!(divisors("def calc(p, d): return p / d", Some("python")), ["d"]);
        assert_eq!(
            divisors("x = a // self.rate % (n - 1)  # / not this", Some("python")),
            ["self.rate", "(n - 1)"]
        );
        assert_eq!(divisors("total /= cfg['k']", Some("python")), ["cfg['k']"]);
        assert_eq!(divisors("int r = a / b; // c / d", Some("jvm")), ["b"]);
        assert_eq!(divisors("s = '/' + x", Some("python")), Vec::<String>::new());
    }

    #[test]
    fn zero_division_with_zero_input_names_divisor_and_input() {
        let samples = [sample(&[
            ("pricing.discount", "0.0"),
            ("pricing.price", "49.99"),
            ("pricing.item", "lamp"),
        ])];
        let f = evaluate(&input(
            "ZeroDivisionError",
            "float division by zero",
            Some("def calc(p, d): return p / d"),
            &samples,
        ));
        let top = &f[0];
        assert_eq!(top.category, "division-by-zero");
        assert_eq!(top.headline, "division by zero on `d`");
        assert!(top.summary.starts_with("divisor `d` is zero for some inputs"));
        assert!(top.summary.contains("pricing.discount=0.0"));
        assert!(top.code_support && top.input_support);
        assert!(
            top.evidence
                .iter()
                .any(|e| e.kind == "input" && e.detail == "pricing.discount=0.0 in 1 of 1 sampled failing requests")
        );
    }

    #[test]
    fn jvm_and_go_division_messages_match() {
        assert_eq!(
            evaluate(&input("java.lang.ArithmeticException", "/ by zero", None, &[]))[0].category,
            "division-by-zero"
        );
        assert_eq!(
            evaluate(&input(
                "runtime.Error",
                "runtime error: integer divide by zero",
                None,
                &[]
            ))[0]
                .category,
            "division-by-zero"
        );
        // An ArithmeticException about something else is not a division by zero.
        assert_eq!(
            evaluate(&input(
                "java.lang.ArithmeticException",
                "BigInteger overflow",
                None,
                &[]
            ))[0]
                .category,
            "unknown"
        );
    }

    #[test]
    fn other_categories() {
        let cat = |ty: &str, msg: &str| evaluate(&input(ty, msg, None, &[]))[0].category;
        assert_eq!(cat("KeyError", "'sku'"), "missing-key");
        assert_eq!(
            cat("AttributeError", "'NoneType' object has no attribute 'price'"),
            "null-dereference"
        );
        assert_eq!(
            cat("AttributeError", "'Item' object has no attribute 'price'"),
            "unknown"
        );
        assert_eq!(cat("java.lang.NullPointerException", ""), "null-dereference");
        assert_eq!(
            cat("TypeError", "Cannot read properties of undefined (reading 'x')"),
            "null-dereference"
        );
        assert_eq!(cat("IndexError", "list index out of range"), "index-out-of-range");
        assert_eq!(
            cat(
                "java.lang.ArrayIndexOutOfBoundsException",
                "Index 5 out of bounds for length 3"
            ),
            "index-out-of-range"
        );
        assert_eq!(
            cat("ValueError", "invalid literal for int() with base 10: 'abc'"),
            "parse-error"
        );
        assert_eq!(cat("ValueError", "math domain error"), "unknown");
        assert_eq!(
            cat("java.lang.NumberFormatException", "For input string: \"x\""),
            "parse-error"
        );
    }

    #[test]
    fn unknown_is_weak() {
        let f = evaluate(&input("RuntimeError", "boom", None, &[]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].category, "unknown");
        assert!(f[0].strength < 0.2);
    }

    #[test]
    fn quotes_are_bounded_and_single_line() {
        let q = quote(&format!("a\nb{}", "x".repeat(500)));
        assert!(!q.contains('\n'));
        assert!(q.chars().count() <= MAX_QUOTE_CHARS + 1);
    }
}
