//! The Java fix templates, in the order they are tried, and what they share: finding the
//! culprit statement, choosing what the fixed code does (the code's own convention), and
//! inserting a guard before the statement.
//!
//! What a guard does is never invented. In order of preference:
//! 1. for crash classes that mean "there is nothing there" (division by zero, an empty
//!    Optional or iterator, an index past an empty list), a value the enclosing method
//!    already returns early for missing data (`if (orders.isEmpty()) { return 0; }`);
//! 2. an exception the code already uses for bad input: one the enclosing method throws with
//!    a message (`throw new IllegalArgumentException("quantity must be positive")`), then one
//!    thrown elsewhere in the same file, then `IllegalArgumentException` when the file catches
//!    it. Never the crash's own class or a superclass of it (that would change nothing), never
//!    a JDK exception that means a bug (`IllegalStateException`, `NullPointerException`, …);
//! 3. otherwise the template declines, and says why.

pub mod index_guard;
pub mod no_such_element;
pub mod null_guard;
pub mod number_format;
pub mod zero_division;

use std::collections::BTreeMap;

use selfheal_events::Diagnosis;

use super::syntax::{JavaSource, Method, Statement, find_word, is_identifier, is_subclass, roots, unchecked_parent};
use crate::languages::{Expectation, Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, not_applicable};

/// Every Java template, in the order they are tried.
pub fn all() -> Vec<Box<dyn FixTemplate>> {
    vec![
        Box::new(null_guard::JavaNullGuard),
        Box::new(index_guard::JavaIndexGuard),
        Box::new(number_format::JavaNumberFormatGuard),
        Box::new(zero_division::JavaZeroDivisionGuard),
        Box::new(no_such_element::JavaNoSuchElementGuard),
    ]
}

/// Whether the diagnosis is about Java code (a JVM trace whose culprit is a `.java` file).
pub fn is_java(diag: &Diagnosis) -> bool {
    let file_is_java = diag.root_cause.as_ref().is_some_and(|rc| rc.file.ends_with(".java"));
    file_is_java
        || (diag.root_cause.as_ref().is_none_or(|rc| rc.file.is_empty())
            && matches!(diag.runtime.as_deref(), Some("jvm" | "java")))
}

/// Whether the diagnosis's exception is `simple` (by its last segment: `java.lang.X` → `X`).
pub fn raised(diag: &Diagnosis, simple: &str) -> bool {
    let matches = |t: &str| t.rsplit(['.', '$']).next() == Some(simple);
    diag.root_cause.as_ref().is_some_and(|rc| matches(&rc.exception_type))
        || diag.exception.as_ref().is_some_and(|e| matches(&e.r#type))
}

/// The exception message of the culprit, from the root cause or the exception record.
pub fn message(site: &Site<'_>) -> String {
    if !site.root_cause.message.is_empty() {
        return site.root_cause.message.clone();
    }
    site.diag
        .exception
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// The culprit line understood: its method, its statement and their layout.
pub struct Culprit<'s> {
    /// The file.
    pub src: JavaSource<'s>,
    /// The enclosing method or constructor.
    pub method: Method,
    /// The statement holding the culprit line.
    pub statement: Statement,
    /// Zero-based line where the statement starts.
    pub first_line: usize,
    /// The statement line's indentation.
    pub indent: String,
    /// One level of indentation in this file.
    pub unit: &'static str,
}

impl<'s> Culprit<'s> {
    /// Finds the statement at the root cause's line, or says why there is none to guard.
    pub fn locate(site: &Site<'s>) -> Result<Culprit<'s>, TemplateError> {
        let src = JavaSource::new(site.source);
        let rc = site.root_cause;
        let index = usize::try_from(rc.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .filter(|i| *i < src.line_count())
            .ok_or_else(|| TemplateError::LineOutOfRange {
                file: rc.file.clone(),
                line: rc.line,
                lines: src.line_count(),
            })?;
        let offset = src
            .first_code_on_line(index)
            .ok_or_else(|| not_applicable(format!("line {} holds no code", rc.line)))?;
        let method = src
            .method_at(offset)
            .ok_or_else(|| not_applicable(format!("line {} is not inside a method body", rc.line)))?;
        let statement = src
            .statement_at(&method, offset)
            .ok_or_else(|| not_applicable(format!("cannot find the statement of line {}", rc.line)))?;
        let first_line = src.line_of(statement.start);
        if src.first_code_on_line(first_line) != Some(statement.start) {
            return Err(not_applicable(
                "the culprit statement shares its line with other code; a guard cannot go before it",
            ));
        }
        let head = src.masked_of(statement).trim_start();
        for word in ["else", "case", "default", "catch", "finally", "super", "this"] {
            if head.starts_with(word) && head[word.len()..].bytes().next().is_none_or(|c| !is_word(c)) {
                return Err(not_applicable(format!(
                    "the culprit statement starts with `{word}`: no statement can go before it"
                )));
            }
        }
        let indent = src.indent_of_line(first_line).to_string();
        let unit = if indent.contains('\t') { "\t" } else { "    " };
        Ok(Culprit {
            src,
            method,
            statement,
            first_line,
            indent,
            unit,
        })
    }

    /// The statement's masked text (comments blank, literals `#`).
    pub fn masked(&self) -> &str {
        self.src.masked_of(self.statement)
    }

    /// The statement's original text.
    pub fn text(&self) -> &'s str {
        self.src.text_of(self.statement)
    }

    /// Whether every name `expr` reads is a parameter, a local declared before the statement or
    /// a field, so a guard before the statement can read it.
    pub fn in_scope(&self, expr: &str) -> Result<(), TemplateError> {
        for root in roots(expr) {
            let known = self
                .src
                .declaration(&self.method, &root, self.statement.start)
                .is_some()
                || self.src.is_field(self.statement.start, &root)
                || root.starts_with(|c: char| c.is_ascii_uppercase());
            if !known {
                return Err(not_applicable(format!(
                    "`{root}` is not declared before the culprit statement (a lambda parameter or a \
                     variable of the statement itself cannot be guarded before it)"
                )));
            }
        }
        Ok(())
    }

    /// The file with `guard` (an `if` with this condition and this statement) inserted before
    /// the culprit statement.
    pub fn insert_guard(&self, condition: &str, then: &str) -> String {
        let text = self.src.text();
        let nl = self.src.newline();
        let at = self
            .src
            .line_range(self.first_line)
            .map(|r| r.0)
            .unwrap_or(self.statement.start);
        let (indent, unit) = (&self.indent, self.unit);
        let guard = format!("{indent}if ({condition}) {{{nl}{indent}{unit}{then}{nl}{indent}}}{nl}");
        let mut out = String::with_capacity(text.len() + guard.len());
        out.push_str(&text[..at]);
        out.push_str(&guard);
        out.push_str(&text[at..]);
        out
    }

    /// The file with the statement replaced by `replacement` (already indented after its first line).
    pub fn replace_statement(&self, replacement: &str) -> String {
        let text = self.src.text();
        format!(
            "{}{}{}",
            &text[..self.statement.start],
            replacement,
            &text[self.statement.end..]
        )
    }

    /// A value the enclosing method already returns early (`if (…) { return 0; }`) before the
    /// culprit statement: the method's own answer for missing data.
    pub fn early_return_default(&self) -> Option<String> {
        if self.method.return_type == "void" || self.method.constructor {
            return None;
        }
        let masked = self.src.masked();
        let text = self.src.text();
        let mut from = self.method.body_open + 1;
        let mut found = None;
        while let Some(at) = find_word(&masked[..self.statement.start], "return", from) {
            from = at + 1;
            let before = masked[self.method.body_open + 1..at].trim_end();
            let guarded =
                before.ends_with(')') || before.ends_with('{') && before[..before.len() - 1].trim_end().ends_with(')');
            let end = at + masked[at..].find(';')?;
            let value = text[at + "return".len()..end].trim();
            if guarded && is_default_literal(value) {
                found = Some(value.to_string());
                break;
            }
        }
        found
    }

    /// An exception the code already uses for bad input (see the module docs), and the evidence.
    pub fn input_exception(&self, crash: &str) -> Option<(String, String)> {
        let fits = |name: &str| {
            let simple = name.rsplit('.').next().unwrap_or(name);
            if matches!(simple, "Exception" | "RuntimeException" | "Throwable" | "Error") {
                return false;
            }
            if is_subclass(crash, simple) {
                return false; // the crash already is one: nothing would change
            }
            match unchecked_parent(simple) {
                // JDK exceptions: only the one that means "bad argument".
                Some(_) => simple == "IllegalArgumentException",
                None => simple.ends_with("Exception"),
            }
        };
        let in_method = self
            .src
            .thrown_with_message(self.method.body_open, self.method.body_close);
        if let Some(name) = in_method.iter().find(|n| fits(n)) {
            return Some((
                name.clone(),
                format!("`{}` already throws {name} for bad input", self.method.name),
            ));
        }
        let in_file = self.src.thrown_with_message(0, self.src.text().len());
        if let Some(name) = in_file.iter().find(|n| fits(n)) {
            return Some((name.clone(), format!("this class already throws {name} for bad input")));
        }
        let caught = self.src.caught();
        if caught
            .iter()
            .any(|n| n.rsplit('.').next() == Some("IllegalArgumentException"))
            && fits("IllegalArgumentException")
        {
            return Some((
                "IllegalArgumentException".to_string(),
                "this file catches IllegalArgumentException".to_string(),
            ));
        }
        None
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// Literals a method may return as "nothing there".
fn is_default_literal(value: &str) -> bool {
    let numeric = value.strip_prefix('-').unwrap_or(value);
    let numeric = numeric.trim_end_matches(['L', 'l', 'd', 'D', 'f', 'F']);
    (!numeric.is_empty()
        && numeric.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && numeric.bytes().filter(|c| *c == b'.').count() <= 1
        && numeric.bytes().next().is_some_and(|c| c.is_ascii_digit()))
        || matches!(
            value,
            "true"
                | "false"
                | "\"\""
                | "BigDecimal.ZERO"
                | "BigInteger.ZERO"
                | "List.of()"
                | "Map.of()"
                | "Set.of()"
                | "Optional.empty()"
                | "Collections.emptyList()"
                | "Collections.emptyMap()"
                | "Collections.emptySet()"
        )
}

/// What a guard does: throw the code's input exception, or return the method's own default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `throw new X(message)`.
    Throw {
        /// The exception type as the code writes it.
        exception: String,
        /// Why this exception (for the summary).
        evidence: String,
    },
    /// `return value;`
    Return {
        /// The value as the code writes it.
        value: String,
    },
}

impl Outcome {
    /// The statement the guard runs, with `message` (a Java expression) for an exception.
    pub fn statement(&self, message: &str) -> String {
        match self {
            Outcome::Throw { exception, .. } => format!("throw new {exception}({message});"),
            Outcome::Return { value } => format!("return {value};"),
        }
    }

    /// What the regression test asserts.
    pub fn expectation(&self) -> Expectation {
        match self {
            Outcome::Throw { exception, .. } => Expectation::Raises(exception.clone()),
            Outcome::Return { value } => Expectation::Returns(value.clone()),
        }
    }

    /// A few words for the summary.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Throw { exception, evidence } => format!("throw {exception} ({evidence})"),
            Outcome::Return { value } => format!("return {value}, as the method already does for missing data"),
        }
    }

    /// Recorded in the fix's parameters.
    fn record(&self, params: &mut BTreeMap<String, String>) {
        match self {
            Outcome::Throw { exception, .. } => {
                params.insert("outcome".into(), "throw".into());
                params.insert("exception".into(), exception.clone());
            }
            Outcome::Return { value } => {
                params.insert("outcome".into(), "return".into());
                params.insert("default".into(), value.clone());
            }
        }
    }
}

/// The outcome for a crash class: the method's early-return default when `default_allowed`,
/// else the input exception; or why there is none.
pub fn choose_outcome(c: &Culprit<'_>, crash: &str, default_allowed: bool) -> Result<Outcome, TemplateError> {
    if default_allowed && let Some(value) = c.early_return_default() {
        return Ok(Outcome::Return { value });
    }
    if let Some((exception, evidence)) = c.input_exception(crash) {
        return Ok(Outcome::Throw { exception, evidence });
    }
    Err(not_applicable(format!(
        "no convention to follow: `{}` throws no input exception with a message, this file neither throws \
         one nor catches IllegalArgumentException{}; what `{}` should do here is a decision for a person",
        c.method.name,
        if default_allowed {
            ", and the method returns no default early"
        } else {
            ""
        },
        c.method.name
    )))
}

/// A finished fix.
pub fn fix(
    content: String,
    summary: String,
    kind: &str,
    subject: &str,
    outcome: &Outcome,
    extra: &[(&str, String)],
) -> TemplateFix {
    let mut params = BTreeMap::new();
    params.insert("kind".to_string(), kind.to_string());
    params.insert("subject".to_string(), subject.to_string());
    outcome.record(&mut params);
    for (k, v) in extra {
        params.insert((*k).to_string(), v.clone());
    }
    TemplateFix {
        content,
        summary,
        params,
        expect: outcome.expectation(),
    }
}

/// The name a message uses for an expression: `items.size()` → `items`, `this.count` → `count`.
pub fn noun(expr: &str) -> String {
    let expr = expr.trim().trim_start_matches("this.");
    let expr = expr
        .strip_suffix(".size()")
        .or_else(|| expr.strip_suffix(".length"))
        .or_else(|| expr.strip_suffix(".length()"))
        .unwrap_or(expr);
    expr.to_string()
}

/// `"text"` + ` + name` when `name` is a plain identifier (the input in the message).
pub fn message_with(text: &str, name: &str) -> String {
    let literal = super::syntax::string_literal(text);
    if is_identifier(name) {
        format!("{} + {name}", super::syntax::string_literal(&format!("{text}: ")))
    } else {
        literal
    }
}

/// The receiver and the single argument of the only `.name(arg)` call in `masked`, as
/// offsets into it: `(receiver start, call start, args start, args end)`.
pub fn single_call(masked: &str, name: &str) -> Result<Option<(usize, usize, usize, usize)>, TemplateError> {
    let needle = format!(".{name}(");
    let count = masked.matches(&needle).count();
    if count == 0 {
        return Ok(None);
    }
    if count > 1 {
        return Err(not_applicable(format!(
            "the statement calls `{name}` {count} times; which one failed is not known"
        )));
    }
    let Some(dot) = masked.find(&needle) else {
        return Ok(None);
    };
    let open = dot + needle.len() - 1;
    let bytes = masked.as_bytes();
    let mut depth = 0i32;
    let mut close = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| not_applicable(format!("unbalanced call to `{name}`")))?;
    let mut start = dot;
    while start > 0 {
        let b = bytes[start - 1];
        if is_word(b) || b == b'.' {
            start -= 1;
        } else if b == b')' {
            // `a.b().c` → include the empty call `()` only.
            if start >= 2 && bytes[start - 2] == b'(' {
                start -= 2;
            } else {
                break;
            }
        } else {
            break;
        }
    }
    Ok(Some((start, dot, open + 1, close)))
}
