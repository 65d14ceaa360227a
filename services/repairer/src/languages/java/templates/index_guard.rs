//! `java.index-guard`: an ArrayIndexOutOfBoundsException or IndexOutOfBoundsException at a
//! line with one index access (`parts[1]`, `items.get(i)`) gets a bounds check before the
//! statement.
//!
//! With a constant index (`parts[1]`, `items.get(0)`) the check is on the size
//! (`parts.length <= 1`, `items.isEmpty()`), and "too short" may be answered with the value the
//! method already returns early for missing data; otherwise (and for computed indexes, whose
//! check is `i < 0 || i >= items.size()`) the guard throws the code's input exception.
//! Several accesses on the line are told apart by the index in the message
//! (`Index 1 out of bounds for length 1`); when that does not single one out, or an index or
//! container is more than a name, a field chain or a `+`/`-` of those, the template declines.

use selfheal_events::Diagnosis;

use super::{Culprit, Outcome, choose_outcome, fix, is_java, message, noun, raised};
use crate::languages::java::syntax::{is_simple_expression, is_word_byte, string_literal};
use crate::languages::{Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, not_applicable};

/// The template's id.
pub const ID: &str = "java.index-guard";

/// The bounds guard.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaIndexGuard;

/// One index access found on the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The array or list, as written.
    pub container: String,
    /// The index expression, as written.
    pub index: String,
    /// `arr[i]` rather than `list.get(i)`.
    pub array: bool,
}

/// The index in an out-of-bounds message: `Index 5 out of bounds for length 3`, `Index: 5, Size: 3`.
pub fn message_index(message: &str) -> Option<i64> {
    let rest = message
        .split_once("Index ")
        .or_else(|| message.split_once("Index: "))
        .or_else(|| message.split_once("index "))
        .map(|(_, r)| r)
        .unwrap_or(message.trim());
    let number: String = rest
        .chars()
        .enumerate()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
        .map(|(_, c)| c)
        .collect();
    number.parse().ok()
}

/// Every `name[index]` and `name.get(index)` of a masked statement (offsets are the text's).
pub fn accesses(masked: &str, text: &str, lists: bool) -> Vec<Access> {
    let bytes = masked.as_bytes();
    let mut out = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        let (open, array) = match b {
            b'[' => (i, true),
            b'(' if lists && i >= 4 && &bytes[i - 4..i] == b".get" => (i, false),
            _ => continue,
        };
        // The container: the dotted name right before `[` or `.get`.
        let end = if array { open } else { open - 4 };
        let mut start = end;
        while start > 0 && (is_word_byte(bytes[start - 1]) || bytes[start - 1] == b'.') {
            start -= 1;
        }
        let container = text[start..end].trim();
        if container.is_empty() || bytes[start..end].first().is_some_and(u8::is_ascii_digit) {
            continue;
        }
        // `new int[n]` creates an array; `int[]` is a type.
        if masked[..start].trim_end().ends_with("new") {
            continue;
        }
        let mut depth = 0i32;
        let mut close = None;
        for (j, &c) in bytes.iter().enumerate().skip(open) {
            match c {
                b'[' | b'(' => depth += 1,
                b']' | b')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        let index = text[open + 1..close].trim();
        if index.is_empty() {
            continue;
        }
        out.push(Access {
            container: container.to_string(),
            index: index.to_string(),
            array,
        });
    }
    out
}

impl FixTemplate for JavaIndexGuard {
    fn id(&self) -> &'static str {
        ID
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_java(diag) && (raised(diag, "ArrayIndexOutOfBoundsException") || raised(diag, "IndexOutOfBoundsException"))
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let array_only = raised(site.diag, "ArrayIndexOutOfBoundsException");
        let crash = if array_only {
            "ArrayIndexOutOfBoundsException"
        } else {
            "IndexOutOfBoundsException"
        };
        let found: Vec<Access> = accesses(c.masked(), c.text(), !array_only)
            .into_iter()
            .filter(|a| !array_only || a.array)
            .collect();
        let wanted = message_index(&message(site));
        let access = match found.as_slice() {
            [] => return Err(not_applicable(format!("line {} has no index access", c.first_line + 1))),
            [one] => one.clone(),
            many => {
                let same: Vec<&Access> = many
                    .iter()
                    .filter(|a| wanted.is_some_and(|w| a.index.parse::<i64>().ok() == Some(w)))
                    .collect();
                match same.as_slice() {
                    [one] => (*one).clone(),
                    _ => {
                        return Err(not_applicable(format!(
                            "line {} has {} index accesses and the message does not say which failed",
                            c.first_line + 1,
                            many.len()
                        )));
                    }
                }
            }
        };
        if !is_simple_expression(&access.container) || !is_simple_expression(&access.index) {
            return Err(not_applicable(format!(
                "`{}[{}]` is not a plain container and index: a guard would evaluate them twice",
                access.container, access.index
            )));
        }
        c.in_scope(&access.container)?;
        c.in_scope(&access.index)?;
        let constant = access.index.parse::<u64>().ok();
        let outcome = choose_outcome(&c, crash, constant.is_some())?;
        let (size, empty) = if access.array {
            (
                format!("{}.length", access.container),
                format!("{}.length == 0", access.container),
            )
        } else {
            (
                format!("{}.size()", access.container),
                format!("{}.isEmpty()", access.container),
            )
        };
        let name = noun(&access.container);
        let (condition, message) = match constant {
            Some(0) => (empty, string_literal(&format!("{name} is empty"))),
            Some(k) => (
                format!("{size} <= {k}"),
                string_literal(&format!("{name} needs at least {} elements", k + 1)),
            ),
            None => (
                format!("{idx} < 0 || {idx} >= {size}", idx = access.index),
                format!(
                    "{} + {} + {}",
                    string_literal("index "),
                    access.index,
                    string_literal(&format!(" is outside {name}"))
                ),
            ),
        };
        let content = c.insert_guard(&condition, &outcome.statement(&message));
        let what = if matches!(outcome, Outcome::Return { .. }) {
            "too short"
        } else {
            "out of range"
        };
        let summary = format!(
            "check the index `{}` of `{}` before line {} ({what}): {}",
            access.index,
            access.container,
            c.first_line + 1,
            outcome.describe()
        );
        Ok(fix(
            content,
            summary,
            "index",
            &access.index,
            &outcome,
            &[
                ("container", access.container.clone()),
                ("index", wanted.map(|w| w.to_string()).unwrap_or_default()),
            ],
        ))
    }
}
