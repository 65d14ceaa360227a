//! `python.zero-division-guard`: guard the divisor of the line that raised ZeroDivisionError.
//!
//! The fix returns the numerator when the divisor is zero and keeps every other input's
//! behaviour: `p / d` becomes `p / d if d != 0 else p`. This is the article's fix for
//! `calc(price, discount)` (a zero discount factor leaves the price unchanged) and the
//! general choice for `a / b`, `a // b` and `a % b`: "dividing by nothing" changes nothing.
//! A reviewer sees the choice in the pull request; a service that needs another value is
//! exactly the case a human should decide.
//!
//! Shapes rewritten (indentation, a trailing comment and the line ending are kept):
//! - `def f(p, d): return p / d` → a two-line def whose body is the guarded return;
//! - `return a / b` → `return a / b if b != 0 else a`;
//! - `x = a / b` (also `x: float = a / b`) → `x = a / b if b != 0 else a`;
//! - `x /= b` (`//=`, `%=`) → `if b != 0:` + the original statement, so `x` stays as it was.
//!
//! Refused (NotApplicable), because a guard would need to evaluate something twice or
//! could change precedence: a divisor that is not a name or dotted name (`a / (b - c)`,
//! `a / f(x)`), more than one division, divisions inside calls or brackets, `+`, `-`,
//! comparisons or boolean operators beside the division, string literals on the line
//! (`"%s" % x` is formatting, and `#` could be inside a string), and any other statement.
//! Only `*` may precede the division (`a * b / c` is `(a * b) / c`), and a leading unary minus.
//! The guard is `!= 0`, which is false for `0`, `0.0`, `-0.0`, `Decimal(0)` and `Fraction(0)`
//! and true for NaN, so NaN divisors still give NaN as before. A dotted divisor
//! (`self.count`) is read twice; attribute reads with side effects are not supported.

use std::collections::BTreeMap;

use selfheal_events::Diagnosis;

use crate::languages::python::syntax::{indent_of, is_dotted_name, is_identifier, parse_def, split_comment};
use crate::languages::{Expectation, Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, culprit_line, not_applicable, replace_line, split_ending};

/// The template's id and strategy name.
pub const ID: &str = "python.zero-division-guard";

/// Words that make an expression more than a product and a division.
const REFUSED_WORDS: &[&str] = &[
    "lambda", "if", "else", "for", "and", "or", "not", "in", "is", "yield", "await",
];

/// A division operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DivOp {
    /// `/`
    TrueDiv,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
}

impl DivOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            DivOp::TrueDiv => "/",
            DivOp::FloorDiv => "//",
            DivOp::Mod => "%",
        }
    }
}

/// The one division of an expression: `numerator op divisor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    /// Everything left of the operator, trimmed.
    pub numerator: String,
    /// The operator.
    pub op: DivOp,
    /// The divisor: a name or dotted name.
    pub divisor: String,
}

impl Division {
    /// `numerator op divisor if divisor != 0 else numerator`.
    pub fn guarded(&self) -> String {
        format!(
            "{n} {op} {d} if {d} != 0 else {n}",
            n = self.numerator,
            op = self.op.as_str(),
            d = self.divisor
        )
    }
}

/// The shape of the culprit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineShape {
    /// `def f(...): return a / b`.
    OneLineDef,
    /// `return a / b`.
    Return,
    /// `x = a / b`.
    Assign,
    /// `x /= b`.
    AugAssign,
}

/// What the template understood of the culprit line, and the code that replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFix {
    /// The line's shape.
    pub shape: LineShape,
    /// The division being guarded.
    pub division: Division,
    /// The replacement text (may span lines; no trailing line ending).
    pub replacement: String,
}

/// The zero-division guard template.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonZeroDivisionGuard;

impl FixTemplate for PythonZeroDivisionGuard {
    fn id(&self) -> &'static str {
        ID
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        let zero_division = super::raised(diag, "ZeroDivisionError")
            || diag
                .hypotheses
                .first()
                .is_some_and(|h| h.category == "division-by-zero");
        super::is_python(diag) && zero_division
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let (lines, index) = culprit_line(site)?;
        let (content, ending) = split_ending(lines[index]);
        let newline = if ending == "\r\n" || (ending.is_empty() && site.source.contains("\r\n")) {
            "\r\n"
        } else {
            "\n"
        };
        let fix = analyze_line(content, newline)?;
        let shape = match fix.shape {
            LineShape::OneLineDef => "one-line-def",
            LineShape::Return => "return",
            LineShape::Assign => "assign",
            LineShape::AugAssign => "aug-assign",
        };
        Ok(TemplateFix {
            content: replace_line(&lines, index, &fix.replacement, ending),
            summary: "guard the divisor".into(),
            params: BTreeMap::from([
                ("divisor".to_string(), fix.division.divisor.clone()),
                ("numerator".to_string(), fix.division.numerator.clone()),
                ("op".to_string(), fix.division.op.as_str().to_string()),
                ("shape".to_string(), shape.to_string()),
            ]),
            // The regression writer reads the line again: with a returned division it
            // asserts the numerator comes back, otherwise that the call completes.
            expect: Expectation::Completes,
        })
    }
}

/// Understands one line (without its ending) and builds its guarded replacement.
pub fn analyze_line(content: &str, newline: &str) -> Result<LineFix, TemplateError> {
    let indent = indent_of(content);
    let unit = if indent.contains('\t') { "\t" } else { "    " };
    let (code, comment) = split_comment(content).ok_or_else(|| {
        not_applicable("the line holds a string literal (`%` may be formatting, `#` may be inside a string)")
    })?;
    let code = code.trim_end();
    let comment = comment.map(|c| format!("  {}", c.trim())).unwrap_or_default();
    let stmt = code.trim_start();
    if code.contains(';') {
        return Err(not_applicable("the line holds several statements"));
    }

    if let Some(header) = parse_def(code) {
        let body = code[header.body_start..].trim();
        let expr = strip_keyword(body, "return")
            .ok_or_else(|| not_applicable("a one-line def whose body is not `return <expr>`"))?;
        let division = analyze_expression(expr).map_err(not_applicable)?;
        let replacement = format!(
            "{}{newline}{indent}{unit}return {}{comment}",
            code[..header.body_start].trim_end(),
            division.guarded()
        );
        return Ok(LineFix {
            shape: LineShape::OneLineDef,
            division,
            replacement,
        });
    }
    if let Some(expr) = strip_keyword(stmt, "return") {
        let division = analyze_expression(expr).map_err(not_applicable)?;
        let replacement = format!("{indent}return {}{comment}", division.guarded());
        return Ok(LineFix {
            shape: LineShape::Return,
            division,
            replacement,
        });
    }
    for op in [DivOp::FloorDiv, DivOp::TrueDiv, DivOp::Mod] {
        let token = format!("{}=", op.as_str());
        if let Some((target, divisor)) = stmt.split_once(&token) {
            let (target, divisor) = (target.trim(), divisor.trim());
            // `a //= b` also contains `/=`; the longer operator is tried first, and a target
            // ending in `/` means we matched inside `//=`.
            if target.ends_with('/') {
                continue;
            }
            if !is_dotted_name(target) {
                return Err(not_applicable(format!(
                    "augmented assignment to `{target}`, not a name"
                )));
            }
            if !is_dotted_name(divisor) {
                return Err(not_applicable(format!(
                    "divisor `{divisor}` is not a name or dotted name"
                )));
            }
            let replacement =
                format!("{indent}if {divisor} != 0:{newline}{indent}{unit}{target} {token} {divisor}{comment}");
            return Ok(LineFix {
                shape: LineShape::AugAssign,
                division: Division {
                    numerator: target.to_string(),
                    op,
                    divisor: divisor.to_string(),
                },
                replacement,
            });
        }
    }
    if let Some((target, expr)) = split_assignment(stmt) {
        let division = analyze_expression(expr).map_err(not_applicable)?;
        let replacement = format!("{indent}{target} = {}{comment}", division.guarded());
        return Ok(LineFix {
            shape: LineShape::Assign,
            division,
            replacement,
        });
    }
    Err(not_applicable(
        "the line is not a return, an assignment or a one-line def",
    ))
}

/// `keyword <rest>` → `rest` when the statement starts with that keyword.
fn strip_keyword<'a>(stmt: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = stmt.strip_prefix(keyword)?;
    if rest.starts_with([' ', '\t', '(']) {
        Some(rest.trim())
    } else {
        None
    }
}

/// `target = expr` or `target: annotation = expr`, with a name or dotted-name target.
fn split_assignment(stmt: &str) -> Option<(&str, &str)> {
    let bytes = stmt.as_bytes();
    let at = stmt.char_indices().find_map(|(i, c)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 1).copied();
        (c == '=' && !matches!(before, Some(b'<' | b'>' | b'!' | b'=' | b':')) && after != Some(b'=')).then_some(i)
    })?;
    let target = stmt[..at].trim();
    let expr = stmt[at + 1..].trim();
    let name = match target.split_once(':') {
        Some((name, annotation)) if !annotation.trim().is_empty() => name.trim(),
        Some(_) => return None,
        None => target,
    };
    is_dotted_name(name).then_some((target, expr))
}

/// Finds the single top-level division of `expr` and checks it can be guarded safely.
pub fn analyze_expression(expr: &str) -> Result<Division, String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err("empty expression".into());
    }
    if expr.contains(['"', '\'']) {
        return Err("the expression holds a string literal".into());
    }
    if !expr.contains(['/', '%']) {
        return Err("no division in the expression".into());
    }
    for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if REFUSED_WORDS.contains(&word) {
            return Err(format!("the expression uses `{word}`"));
        }
    }
    let mut depth = 0i32;
    let mut divisions: Vec<(usize, DivOp)> = Vec::new();
    let mut last_other_op: Option<usize> = None;
    let chars: Vec<(usize, char)> = expr.char_indices().collect();
    let mut k = 0;
    while k < chars.len() {
        let (i, c) = chars[k];
        let next = chars.get(k + 1).map(|(_, c)| *c);
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced brackets".into());
                }
            }
            _ if depth > 0 => {}
            '/' if next == Some('/') => {
                divisions.push((i, DivOp::FloorDiv));
                k += 1;
            }
            '/' => divisions.push((i, DivOp::TrueDiv)),
            '%' => divisions.push((i, DivOp::Mod)),
            '*' if next == Some('*') => return Err("the expression uses `**`".into()),
            '*' => last_other_op = Some(i),
            '-' | '+' if expr[..i].trim().is_empty() => {} // unary sign of the first operand
            '+' | '-' | '<' | '>' | '=' | '!' | '&' | '|' | '^' | '~' | '@' | ',' | ':' => {
                return Err(format!("`{c}` beside the division could change what is divided"));
            }
            _ => {}
        }
        k += 1;
    }
    if depth != 0 {
        return Err("unbalanced brackets".into());
    }
    let (at, op) = match divisions.as_slice() {
        [] => return Err("no division at the top level of the expression".into()),
        [one] => *one,
        _ => return Err("more than one division: which one failed is unknown".into()),
    };
    if last_other_op.is_some_and(|o| o > at) {
        return Err("`*` after the division".into());
    }
    let numerator = expr[..at].trim();
    let divisor = expr[at + op.as_str().len()..].trim();
    if numerator.is_empty() {
        return Err("no numerator".into());
    }
    if !is_dotted_name(divisor) {
        return Err(format!(
            "divisor `{divisor}` is not a name or dotted name, guarding it would evaluate it twice"
        ));
    }
    if !divisor.split('.').all(is_identifier) {
        return Err(format!("divisor `{divisor}` is not a plain name"));
    }
    Ok(Division {
        numerator: numerator.to_string(),
        op,
        divisor: divisor.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use selfheal_events::RootCause;

    fn rc(file: &str, line: i32) -> RootCause {
        RootCause {
            file: file.into(),
            line,
            function: "calc".into(),
            exception_type: "ZeroDivisionError".into(),
            ..RootCause::default()
        }
    }

    fn fix(source: &str, line: i32) -> Result<String, TemplateError> {
        let diag = selfheal_events::examples::diagnosis();
        let root_cause = rc("m.py", line);
        PythonZeroDivisionGuard
            .apply(&Site {
                diag: &diag,
                root_cause: &root_cause,
                source,
            })
            .map(|f| f.content)
    }

    #[test]
    fn one_line_def_becomes_the_articles_two_line_def() {
        let src = "\"\"\"doc\"\"\"\n\n\ndef calc(p, d): return p / d\n";
        assert_eq!(
            fix(src, 4).unwrap(),
            "\"\"\"doc\"\"\"\n\n\ndef calc(p, d):\n    return p / d if d != 0 else p\n"
        );
    }

    #[test]
    fn the_pricing_api_file_is_fixed_on_line_14() {
        let src = include_str!("../../../../../../examples/pricing-api/pricing_logic.py");
        let fixed = fix(src, 14).unwrap();
        assert!(fixed.contains("def calc(p, d):\n    return p / d if d != 0 else p\n"));
        assert!(!fixed.contains("def calc(p, d): return p / d"));
        // Everything else is untouched.
        assert_eq!(fixed.lines().count(), src.lines().count() + 1);
        assert!(fixed.starts_with(&src[..src.find("def calc").unwrap()]));
    }

    #[test]
    fn return_in_a_multi_line_def_keeps_indentation_and_comment() {
        let src = "class A:\n    def ratio(self, a, b):\n        return a * 2 / b  # per unit\n";
        assert_eq!(
            fix(src, 3).unwrap(),
            "class A:\n    def ratio(self, a, b):\n        return a * 2 / b if b != 0 else a * 2  # per unit\n"
        );
    }

    #[test]
    fn assignments_floor_division_modulo_and_dotted_divisors() {
        assert_eq!(
            fix("def f(a, b):\n    x = a // b\n    return x\n", 2).unwrap(),
            "def f(a, b):\n    x = a // b if b != 0 else a\n    return x\n"
        );
        assert_eq!(
            fix("def f(a, b):\n    x: int = a % b\n", 2).unwrap(),
            "def f(a, b):\n    x: int = a % b if b != 0 else a\n"
        );
        assert_eq!(
            fix("def f(self, a):\n    self.avg = -a / self.count\n", 2).unwrap(),
            "def f(self, a):\n    self.avg = -a / self.count if self.count != 0 else -a\n"
        );
        assert_eq!(
            fix("def f(a, b):\n\treturn f(a)[0] / b\n", 2).unwrap(),
            "def f(a, b):\n\treturn f(a)[0] / b if b != 0 else f(a)[0]\n"
        );
    }

    #[test]
    fn augmented_division_is_skipped_when_the_divisor_is_zero() {
        assert_eq!(
            fix("def f(t, n):\n    t //= n\n    return t\n", 2).unwrap(),
            "def f(t, n):\n    if n != 0:\n        t //= n\n    return t\n"
        );
        assert_eq!(
            fix("def f(t, n):\n    t /= n\n", 2).unwrap(),
            "def f(t, n):\n    if n != 0:\n        t /= n\n"
        );
    }

    #[test]
    fn crlf_files_and_one_line_async_defs_with_annotations() {
        assert_eq!(
            fix(
                "x = 1\r\nasync def calc(p: float, d: float) -> float: return p / d\r\n",
                2
            )
            .unwrap(),
            "x = 1\r\nasync def calc(p: float, d: float) -> float:\r\n    return p / d if d != 0 else p\r\n"
        );
        // No final newline stays without one.
        assert_eq!(
            fix("def calc(p, d): return p / d", 1).unwrap(),
            "def calc(p, d):\n    return p / d if d != 0 else p"
        );
    }

    #[test]
    fn refuses_what_it_cannot_guard_safely() {
        for (line, why) in [
            ("def f(a, b): return a + b", "no division"),
            ("def f(a, b): return a / (b - 1)", "not a name"),
            ("def f(a, b): return a / g(b)", "not a name"),
            ("def f(a, b): return a + a / b", "change what is divided"),
            ("def f(a, b): return a / b / 2", "more than one division"),
            ("def f(a, b): return round(a / b, 2)", "no division at the top level"),
            ("def f(a, b): return \"%d\" % b", "string literal"),
            ("def f(a, b): return a / b if b else 0", "uses `if`"),
            ("def f(a, b): return a ** 2 / b", "`**`"),
            ("def f(a, b): x = a / b; return x", "several statements"),
            ("def f(a, b): print(a / b)", "not `return"),
            ("print(a / b)", "not a return, an assignment"),
            ("x = y = a / b", "change what is divided"),
            ("def f(a, b): return a / 2", "not a name"),
            ("def f(a, b): return a / None", "not a name"),
            ("t /= n + 1", "not a name or dotted name"),
        ] {
            match fix(line, 1) {
                Err(TemplateError::NotApplicable(msg)) => {
                    assert!(msg.contains(why), "{line}: {msg} (wanted {why})")
                }
                other => panic!("{line}: expected NotApplicable, got {other:?}"),
            }
        }
        assert!(matches!(
            fix("def f(a, b): return a / b\n", 3),
            Err(TemplateError::LineOutOfRange { .. })
        ));
        assert!(matches!(
            fix("def f(a, b): return a / b\n", 0),
            Err(TemplateError::LineOutOfRange { .. })
        ));
    }

    #[test]
    fn applies_to_python_zero_division_only() {
        let diag = selfheal_events::examples::diagnosis();
        assert!(PythonZeroDivisionGuard.applies(&diag));
        let mut other = diag.clone();
        other.root_cause.as_mut().unwrap().exception_type = "KeyError".into();
        other.exception.as_mut().unwrap().r#type = "KeyError".into();
        other.hypotheses[0].category = "missing-key".into();
        assert!(!PythonZeroDivisionGuard.applies(&other));
        let mut java = diag;
        java.runtime = Some("jvm".into());
        java.root_cause.as_mut().unwrap().file = "Calc.java".into();
        assert!(!PythonZeroDivisionGuard.applies(&java));
    }
}
