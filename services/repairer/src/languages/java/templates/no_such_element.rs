//! `java.no-such-element-guard`: a NoSuchElementException from an empty Optional or an
//! exhausted iterator at the culprit statement.
//!
//! - `….get()` / `….orElseThrow()` on an Optional (message `No value present`): replaced by
//!   `.orElseThrow(() -> new X("…"))` with the code's input exception, or by `.orElse(v)` when
//!   the statement is `return ….get();` and the method already returns `v` early for missing
//!   data (the Optional's type is then the method's return type, so `v` fits);
//! - `it.next()` on an iterator: `if (!it.hasNext())` before the statement
//!   (`items.iterator().next()`: `if (items.isEmpty())`);
//! - `deque.getFirst()`, `getLast()`, `element()`, `firstKey()`, `lastKey()`, `first()`,
//!   `last()`, `Collections.max(c)` / `min(c)`: `if (c.isEmpty())` before the statement.
//!
//! The guards throw the input exception or return the method's early default; several such
//! calls on the statement, or receivers that are more than a name or field chain, are declined.

use selfheal_events::Diagnosis;

use super::{Culprit, Outcome, choose_outcome, fix, is_java, raised, single_call};
use crate::languages::java::syntax::{is_simple_expression, string_literal};
use crate::languages::{Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, not_applicable};

/// The template's id.
pub const ID: &str = "java.no-such-element-guard";

/// Calls on a collection that throw NoSuchElementException when it is empty.
const EMPTY_CALLS: &[&str] = &[
    "getFirst",
    "getLast",
    "element",
    "firstKey",
    "lastKey",
    "first",
    "last",
    "firstElement",
    "lastElement",
];

/// The empty-Optional / exhausted-iterator guard.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaNoSuchElementGuard;

impl FixTemplate for JavaNoSuchElementGuard {
    fn id(&self) -> &'static str {
        ID
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_java(diag) && raised(diag, "NoSuchElementException")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let masked = c.masked();
        let text = c.text();
        let optional_calls = masked.matches(".get()").count() + masked.matches(".orElseThrow()").count();
        if optional_calls > 1 {
            return Err(not_applicable(
                "the statement reads several Optionals; which one was empty is not known",
            ));
        }
        if optional_calls == 1 {
            return optional(&c, masked, text);
        }
        // Iterators.
        if let Some((start, dot, args_start, args_end)) = single_call(masked, "next")? {
            if args_start != args_end {
                return Err(not_applicable("`next(…)` with arguments is not an iterator's"));
            }
            let receiver = text[start..dot].trim();
            let (condition, subject) = match receiver.strip_suffix(".iterator()") {
                Some(collection) => (format!("{collection}.isEmpty()"), collection.to_string()),
                None => (format!("!{receiver}.hasNext()"), receiver.to_string()),
            };
            return guard(&c, &condition, &subject, "iterator");
        }
        for name in EMPTY_CALLS {
            if let Some((start, dot, args_start, args_end)) = single_call(masked, name)?
                && args_start == args_end
            {
                let receiver = text[start..dot].trim().to_string();
                return guard(&c, &format!("{receiver}.isEmpty()"), &receiver, "collection");
            }
        }
        for name in ["max", "min"] {
            if let Some((start, dot, args_start, args_end)) = single_call(masked, name)?
                && text[start..dot].trim() == "Collections"
            {
                let collection = text[args_start..args_end]
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                return guard(&c, &format!("{collection}.isEmpty()"), &collection, "collection");
            }
        }
        Err(not_applicable(format!(
            "line {} has no Optional.get, iterator next or first/last call",
            c.first_line + 1
        )))
    }
}

/// `if (condition) throw/return` before the statement, for an empty `subject`.
fn guard(c: &Culprit<'_>, condition: &str, subject: &str, what: &str) -> Result<TemplateFix, TemplateError> {
    if !is_simple_expression(subject) {
        return Err(not_applicable(format!(
            "the {what} `{subject}` is not a name or field chain: a guard would evaluate it twice"
        )));
    }
    c.in_scope(subject)?;
    let outcome = choose_outcome(c, "NoSuchElementException", true)?;
    let message = string_literal(&format!("{} is empty", super::noun(subject)));
    let content = c.insert_guard(condition, &outcome.statement(&message));
    let summary = format!(
        "check that `{subject}` is not empty before line {}: {}",
        c.first_line + 1,
        outcome.describe()
    );
    Ok(fix(
        content,
        summary,
        "empty",
        subject,
        &outcome,
        &[("shape", what.to_string())],
    ))
}

/// `.get()` → `.orElseThrow(() -> new X(…))`, or `.orElse(v)` in `return ….get();`.
fn optional(c: &Culprit<'_>, masked: &str, text: &str) -> Result<TemplateFix, TemplateError> {
    let (call, call_at) = match masked.find(".get()") {
        Some(at) => (".get()", at),
        None => (
            ".orElseThrow()",
            masked
                .find(".orElseThrow()")
                .ok_or_else(|| not_applicable("no Optional read"))?,
        ),
    };
    let body = masked.trim_end().trim_end_matches(';').trim_end();
    let is_return_of_call = masked.trim_start().starts_with("return") && body.ends_with(call);
    let default = if is_return_of_call {
        c.early_return_default()
    } else {
        None
    };
    // A String parameter the statement uses names what was looked for.
    let looked_for = c
        .method
        .params
        .iter()
        .find(|p| p.ty == "String" && super::super::syntax::count_word(masked, &p.name) > 0)
        .map(|p| p.name.clone());
    let (replacement, outcome) = match default {
        Some(value) => (format!(".orElse({value})"), Outcome::Return { value }),
        None => {
            let outcome = choose_outcome(c, "NoSuchElementException", false)?;
            let message = match &looked_for {
                Some(name) => super::message_with("nothing found", name),
                None => string_literal("nothing found"),
            };
            let Outcome::Throw { exception, .. } = &outcome else {
                return Err(not_applicable("no exception to throw"));
            };
            (format!(".orElseThrow(() -> new {exception}({message}))"), outcome)
        }
    };
    let statement_text = format!("{}{}{}", &text[..call_at], replacement, &text[call_at + call.len()..]);
    let content = c.replace_statement(&statement_text);
    let summary = format!(
        "read the Optional of line {} without `{}`: {}",
        c.first_line + 1,
        call.trim_start_matches('.'),
        outcome.describe()
    );
    let subject = text[..call_at]
        .trim()
        .rsplit(['=', ' ', '('])
        .next()
        .unwrap_or("")
        .to_string();
    Ok(fix(
        content,
        summary,
        "empty-optional",
        &subject,
        &outcome,
        &[("key", looked_for.unwrap_or_default())],
    ))
}
