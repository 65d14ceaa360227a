//! `java.number-format-guard`: a NumberFormatException from the one `Integer.parseInt`,
//! `Long.parseLong`, `Double.parseDouble`, `…valueOf`, `new BigDecimal(…)` of the culprit
//! statement becomes either the default the code already had for that input, or the code's
//! input exception.
//!
//! The default must be in the code: the parsed text comes from
//! `params.getOrDefault("limit", "20")` (or `.orElse("20")`, `Objects.requireNonNullElse(x, "20")`),
//! so a text that is not a number is treated like a missing one: `limit = Integer.parseInt("20")`.
//! Otherwise the statement is wrapped in `try { … } catch (NumberFormatException …)` that
//! throws the input exception (never `IllegalArgumentException`: NumberFormatException
//! already is one, so a caller handling it would not have crashed).
//!
//! Shapes: `T x = <expr>;` (split into a declaration and an assignment in the `try`),
//! `x = <expr>;`, `return <expr>;`, and any other expression statement (exception only).

use selfheal_events::Diagnosis;

use super::{Culprit, Outcome, choose_outcome, fix, is_java, message_with, raised};
use crate::languages::java::syntax::{find_word, is_identifier, is_word_byte, string_literal};
use crate::languages::{Expectation, Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, not_applicable};

/// The template's id.
pub const ID: &str = "java.number-format-guard";

/// Calls that throw NumberFormatException on text that is not a number.
const PARSERS: &[&str] = &[
    "Integer.parseInt(",
    "Integer.valueOf(",
    "Long.parseLong(",
    "Long.valueOf(",
    "Short.parseShort(",
    "Byte.parseByte(",
    "Double.parseDouble(",
    "Double.valueOf(",
    "Float.parseFloat(",
    "Float.valueOf(",
    "new BigDecimal(",
    "new BigInteger(",
];

/// The parse guard.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaNumberFormatGuard;

/// The statement's shape around its parse call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `[final] T name = expr;`
    Declare { ty: String, name: String, expr: String },
    /// `name = expr;`
    Assign { name: String, expr: String },
    /// `return expr;`
    Return { expr: String },
    /// Anything else ending in `;`.
    Other,
}

impl FixTemplate for JavaNumberFormatGuard {
    fn id(&self) -> &'static str {
        ID
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_java(diag) && raised(diag, "NumberFormatException")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let masked = c.masked();
        let text = c.text();
        if !masked.trim_end().ends_with(';') {
            return Err(not_applicable(
                "the culprit is a block statement's header, not a simple statement",
            ));
        }
        let calls: Vec<(usize, &str)> = PARSERS
            .iter()
            .flat_map(|p| {
                masked
                    .match_indices(p)
                    .filter(|(at, _)| *at == 0 || !is_word_byte(masked.as_bytes()[at - 1]) || p.starts_with("new"))
                    .map(move |(at, _)| (at, *p))
            })
            .collect();
        let (at, parser) = match calls.as_slice() {
            [one] => *one,
            [] => return Err(not_applicable(format!("line {} parses no number", c.first_line + 1))),
            _ => {
                return Err(not_applicable(format!(
                    "line {} parses {} numbers; which one failed is not known",
                    c.first_line + 1,
                    calls.len()
                )));
            }
        };
        let open = at + parser.len() - 1;
        let close =
            matching_paren(masked, open).ok_or_else(|| not_applicable("unbalanced parentheses in the parse call"))?;
        let argument = text[open + 1..close].split(',').next().unwrap_or("").trim().to_string();
        let shape = shape_of(masked, text);
        let what = match &shape {
            Shape::Declare { name, .. } | Shape::Assign { name, .. } => name.clone(),
            _ if is_identifier(&argument) => argument.clone(),
            _ => "the input".to_string(),
        };
        // The code's own default for this text, when it has one.
        let default_text = is_identifier(&argument)
            .then(|| c.src.declaration(&c.method, &argument, c.statement.start))
            .flatten()
            .and_then(|d| d.init)
            .and_then(|init| default_of(&init));
        let substituted = |expr: &str, literal: &str| -> Option<String> {
            // Replace the argument inside the parse call only.
            let start = expr.find(parser)?;
            let open = start + parser.len() - 1;
            let close = matching_paren(expr, open)?;
            let inner = &expr[open + 1..close];
            let rest = inner.split_once(',').map(|(_, r)| format!(",{r}")).unwrap_or_default();
            Some(format!("{}({literal}{rest}){}", &expr[..open], &expr[close + 1..]))
        };
        let nl = c.src.newline();
        let (indent, unit) = (c.indent.as_str(), c.unit);
        let catch_var = "notANumber";
        if let (Some(literal), false) = (&default_text, matches!(shape, Shape::Other)) {
            let (head, body, fallback, expect) = match &shape {
                Shape::Declare { ty, name, expr } => {
                    let fallback =
                        substituted(expr, literal).ok_or_else(|| not_applicable("cannot rewrite the call"))?;
                    (
                        format!("{ty} {name};{nl}{indent}"),
                        format!("{name} = {};", expr.trim()),
                        format!("{name} = {fallback};"),
                        Expectation::Completes,
                    )
                }
                Shape::Assign { name, expr } => {
                    let fallback =
                        substituted(expr, literal).ok_or_else(|| not_applicable("cannot rewrite the call"))?;
                    (
                        String::new(),
                        format!("{name} = {};", expr.trim()),
                        format!("{name} = {fallback};"),
                        Expectation::Completes,
                    )
                }
                Shape::Return { expr } => {
                    let fallback =
                        substituted(expr, literal).ok_or_else(|| not_applicable("cannot rewrite the call"))?;
                    let exact = expr.trim() == format!("{}{})", parser, argument)
                        || expr.trim().ends_with(&format!("({argument})")) && expr.trim().starts_with(parser);
                    let expect = match (exact, number_literal(parser, literal)) {
                        (true, Some(value)) => Expectation::Returns(value),
                        _ => Expectation::Completes,
                    };
                    (
                        String::new(),
                        format!("return {};", expr.trim()),
                        format!("return {fallback};"),
                        expect,
                    )
                }
                Shape::Other => unreachable_shape()?,
            };
            let replacement = format!(
                "{head}try {{{nl}{indent}{unit}{body}{nl}{indent}}} catch (NumberFormatException {catch_var}) {{{nl}{indent}{unit}{fallback}{nl}{indent}}}"
            );
            let content = c.replace_statement(&replacement);
            let summary = format!(
                "when `{argument}` is not a number, use its default {literal} as the code does when it is missing (line {})",
                c.first_line + 1
            );
            let outcome = Outcome::Return { value: literal.clone() };
            let mut made = fix(
                content,
                summary,
                "parse",
                &argument,
                &outcome,
                &[("default_text", literal.clone())],
            );
            made.params.insert("outcome".into(), "default".into());
            made.expect = expect;
            return Ok(made);
        }
        let outcome = choose_outcome(&c, "NumberFormatException", false).map_err(|e| match e {
            TemplateError::NotApplicable(why) => not_applicable(format!(
                "{why}; and `{argument}` has no default in the code (getOrDefault/orElse) to fall back to"
            )),
            other => other,
        })?;
        let message = message_with(&format!("{what} must be a number"), &argument);
        let throw = outcome.statement(&message);
        let replacement = match &shape {
            Shape::Declare { ty, name, expr } => format!(
                "{ty} {name};{nl}{indent}try {{{nl}{indent}{unit}{name} = {};{nl}{indent}}} catch (NumberFormatException {catch_var}) {{{nl}{indent}{unit}{throw}{nl}{indent}}}",
                expr.trim()
            ),
            _ => format!(
                "try {{{nl}{indent}{unit}{}{nl}{indent}}} catch (NumberFormatException {catch_var}) {{{nl}{indent}{unit}{throw}{nl}{indent}}}",
                reindent(text.trim(), unit, nl)
            ),
        };
        let content = c.replace_statement(&replacement);
        let summary = format!(
            "when `{argument}` is not a number (line {}): {}",
            c.first_line + 1,
            outcome.describe()
        );
        Ok(fix(content, summary, "parse", &argument, &outcome, &[]))
    }
}

fn unreachable_shape() -> Result<(String, String, String, Expectation), TemplateError> {
    Err(not_applicable("no default for this statement's shape"))
}

/// Indents the continuation lines of a multi-line statement by one more unit.
fn reindent(text: &str, unit: &str, nl: &str) -> String {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
        .map(|(i, l)| if i == 0 { l.to_string() } else { format!("{unit}{l}") })
        .collect::<Vec<_>>()
        .join(nl)
}

fn matching_paren(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, b) in text.bytes().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The statement's shape (masked for structure, text for the pieces).
fn shape_of(masked: &str, text: &str) -> Shape {
    let body = masked.trim_end().trim_end_matches(';');
    let lead = masked.len() - masked.trim_start().len();
    if let Some(at) = find_word(body, "return", 0).filter(|at| *at == lead) {
        let expr = text[at + "return".len()..body.len()].trim().to_string();
        return Shape::Return { expr };
    }
    // The first `=` that is an assignment (not `==`, `<=`, `>=`, `!=`) at depth 0.
    let bytes = body.as_bytes();
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' | b'<' => depth += 1,
            b')' | b']' | b'>' => depth -= 1,
            b'=' if depth == 0
                && bytes.get(i + 1) != Some(&b'=')
                && i > 0
                && !matches!(
                    bytes[i - 1],
                    b'=' | b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^'
                ) =>
            {
                let left = text[lead..i].trim();
                let expr = text[i + 1..body.len()].trim().to_string();
                let words: Vec<&str> = left.split_whitespace().filter(|w| *w != "final").collect();
                let name = words.last().copied().unwrap_or("");
                let name_ok = is_identifier(name) || name.strip_prefix("this.").is_some_and(is_identifier);
                if !name_ok {
                    return Shape::Other;
                }
                if words.len() == 1 {
                    return Shape::Assign {
                        name: name.to_string(),
                        expr,
                    };
                }
                let ty = left[..left.rfind(name).unwrap_or(0)]
                    .trim()
                    .trim_start_matches("final")
                    .trim();
                if ty.is_empty() || ty == "var" {
                    return Shape::Other;
                }
                return Shape::Declare {
                    ty: ty.to_string(),
                    name: name.to_string(),
                    expr,
                };
            }
            _ => {}
        }
    }
    Shape::Other
}

/// The numeric string literal a text falls back to in its initializer:
/// `x.getOrDefault(k, "20")`, `….orElse("20")`, `Objects.requireNonNullElse(v, "20")`.
fn default_of(init: &str) -> Option<String> {
    let init = init.trim();
    let inner = init.strip_suffix(')').and_then(|s| {
        ["getOrDefault(", "orElse(", "requireNonNullElse(", "getProperty("]
            .iter()
            .find_map(|m| s.rfind(m).map(|at| &s[at + m.len()..]))
    })?;
    let literal = inner.rsplit_once(',').map(|(_, l)| l).unwrap_or(inner).trim();
    let value = literal.strip_prefix('"')?.strip_suffix('"')?;
    let number = value.strip_prefix('-').unwrap_or(value);
    let numeric = !number.is_empty()
        && number.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && number.bytes().filter(|c| *c == b'.').count() <= 1;
    numeric.then(|| string_literal(value))
}

/// The Java literal the parser makes of a numeric string literal (`"20"` → `20`, `20L`, `20.0`).
fn number_literal(parser: &str, literal: &str) -> Option<String> {
    let value = literal.trim_matches('"');
    Some(match parser {
        "Integer.parseInt(" | "Short.parseShort(" | "Byte.parseByte(" => {
            value.parse::<i64>().ok()?;
            value.to_string()
        }
        "Long.parseLong(" => {
            value.parse::<i64>().ok()?;
            format!("{value}L")
        }
        "Double.parseDouble(" => format!("{:?}", value.parse::<f64>().ok()?),
        "Float.parseFloat(" => format!("{:?}f", value.parse::<f32>().ok()?),
        _ => return None,
    })
}
