//! `java.zero-division-guard`: an `ArithmeticException: / by zero` (integer `/` or `%`) or a
//! BigDecimal/BigInteger division by zero at a statement with exactly one division gets a
//! check of the divisor before the statement.
//!
//! The divisor must be a name, a field chain, `x.length`, or a call without arguments
//! (`items.size()`, `order.quantity()`), possibly in parentheses: it is read once more by the
//! guard. The guard returns the value the method already returns early for missing data
//! (`if (orders.isEmpty()) { return 0; }` before an average) — the method's own answer for
//! "nothing to divide" — or else throws the code's input exception. A division with any other
//! divisor, or several divisions on the statement, is declined.

use selfheal_events::Diagnosis;

use super::{Culprit, choose_outcome, fix, is_java, message, noun, raised, single_call};
use crate::languages::java::syntax::{is_identifier, is_word_byte, string_literal};
use crate::languages::{Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, not_applicable};

/// The template's id.
pub const ID: &str = "java.zero-division-guard";

/// The divisor guard.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaZeroDivisionGuard;

/// The divisor of the one `/` or `%` of a masked statement (as written in `text`).
pub fn divisor(masked: &str, text: &str) -> Result<String, TemplateError> {
    let bytes = masked.as_bytes();
    let ops: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/' || **b == b'%')
        .map(|(i, _)| i)
        .collect();
    let op = match ops.as_slice() {
        [one] => *one,
        [] => return Err(not_applicable("the statement has no `/` or `%`")),
        _ => {
            return Err(not_applicable(
                "the statement has several divisions; which one failed is not known",
            ));
        }
    };
    let mut i = op + 1;
    if bytes.get(i) == Some(&b'=') {
        i += 1; // `x /= d`
    }
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    let operand_end = if bytes.get(i) == Some(&b'(') {
        let mut depth = 0i32;
        let mut end = None;
        for (j, &b) in bytes.iter().enumerate().skip(i) {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        end.ok_or_else(|| not_applicable("unbalanced parentheses after the division"))?
    } else {
        let mut j = i;
        loop {
            while j < bytes.len() && (is_word_byte(bytes[j]) || bytes[j] == b'.') {
                j += 1;
            }
            if bytes.get(j) == Some(&b'(') && bytes.get(j + 1) == Some(&b')') {
                j += 2;
                if bytes.get(j) == Some(&b'.') {
                    continue;
                }
            }
            break;
        }
        j
    };
    let operand = text[start..operand_end].trim();
    let inner = operand
        .strip_prefix('(')
        .and_then(|o| o.strip_suffix(')'))
        .map(str::trim)
        .unwrap_or(operand);
    if !is_plain_divisor(inner) {
        return Err(not_applicable(format!(
            "the divisor `{operand}` is not a name, a field chain or a call without arguments: a guard would evaluate it twice"
        )));
    }
    Ok(inner.to_string())
}

/// A name, a dotted chain, with `()` calls without arguments: `count`, `items.size()`, `a.b().c`.
fn is_plain_divisor(expr: &str) -> bool {
    !expr.is_empty()
        && !expr.bytes().next().is_some_and(|c| c.is_ascii_digit())
        && expr.split('.').all(|part| {
            let name = part.strip_suffix("()").unwrap_or(part);
            is_identifier(name) || name == "this" || name == "length"
        })
}

impl FixTemplate for JavaZeroDivisionGuard {
    fn id(&self) -> &'static str {
        ID
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_java(diag) && raised(diag, "ArithmeticException")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let text_of_message = message(site).to_ascii_lowercase();
        if !(text_of_message.contains("by zero") || text_of_message.contains("division undefined")) {
            return Err(not_applicable(format!(
                "the ArithmeticException is not a division by zero (`{}`)",
                message(site)
            )));
        }
        let c = Culprit::locate(site)?;
        let masked = c.masked();
        let text = c.text();
        // BigDecimal / BigInteger: `a.divide(b)`, `a.remainder(b)`.
        let big = match single_call(masked, "divide")? {
            Some(call) => Some(call),
            None => single_call(masked, "remainder")?,
        };
        let (divisor, condition) = if let Some((_, _, args_start, args_end)) = big {
            let arg = text[args_start..args_end]
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if !is_plain_divisor(&arg) {
                return Err(not_applicable(format!("the divisor `{arg}` is not a plain name")));
            }
            let condition = format!("{arg}.signum() == 0");
            (arg, condition)
        } else {
            let d = divisor(masked, text)?;
            let condition = if let Some(list) = d.strip_suffix(".size()") {
                format!("{list}.isEmpty()")
            } else {
                format!("{d} == 0")
            };
            (d, condition)
        };
        c.in_scope(&divisor)?;
        let outcome = choose_outcome(&c, "ArithmeticException", true)?;
        let collection = divisor.ends_with(".size()") || divisor.ends_with(".length") || divisor.ends_with(".length()");
        let message = if collection {
            string_literal(&format!("{} must not be empty", noun(&divisor)))
        } else {
            string_literal(&format!("{} must not be zero", noun(&divisor)))
        };
        let content = c.insert_guard(&condition, &outcome.statement(&message));
        let summary = format!(
            "check the divisor `{divisor}` before line {}: {}",
            c.first_line + 1,
            outcome.describe()
        );
        let kind = if collection { "empty" } else { "divisor" };
        let subject = if collection { noun(&divisor) } else { divisor.clone() };
        Ok(fix(
            content,
            summary,
            kind,
            &subject,
            &outcome,
            &[("divisor", divisor.clone())],
        ))
    }
}
