//! `java.null-guard`: a NullPointerException whose helpful message (JDK 14+, on by default
//! since 15) names the null expression gets a null check before the culprit statement,
//! throwing the exception the code already uses for bad input.
//!
//! Shapes: `because "<name>" is null` for a parameter or a local declared before the
//! statement (also `<name>.<field>`), and `because the return value of "java.util.…Map.get(Object)"
//! is null` for a lookup written once on the statement (`items.get(sku).price()`), which the
//! guard repeats (a map lookup has no side effects). A local that holds a lookup
//! (`Item item = items.get(sku);`) makes the message name the missing key.
//!
//! Declined: `<localN>` (compiled without `-g`, the name is unknown), fields of `this` and
//! static fields (a null field is the object's wiring, not the request: a guard would hide the
//! bug), array elements, other methods' return values, and code with no input exception to
//! follow (see the module docs of `templates`). Never a default value: a null where a value
//! was expected is bad input or a bug, not "nothing".

use selfheal_events::Diagnosis;

use super::{Culprit, choose_outcome, fix, is_java, message, message_with, noun, raised, single_call};
use crate::languages::java::syntax::{find_word, is_identifier, is_simple_expression, string_literal};
use crate::languages::{Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, not_applicable};

/// The template's id.
pub const ID: &str = "java.null-guard";

/// Maps whose `get` returns null for a missing key.
const MAP_TYPES: &[&str] = &[
    "java.util.Map",
    "java.util.HashMap",
    "java.util.LinkedHashMap",
    "java.util.TreeMap",
    "java.util.SortedMap",
    "java.util.NavigableMap",
    "java.util.concurrent.ConcurrentHashMap",
    "java.util.concurrent.ConcurrentMap",
    "java.util.concurrent.ConcurrentSkipListMap",
    "java.util.Hashtable",
    "java.util.EnumMap",
];

/// The null guard.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaNullGuard;

/// What a helpful NPE message says was null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NullSubject {
    /// A variable, field or field chain as the JVM names it (`item`, `this.repo`, `order.customer`).
    Expression(String),
    /// The value a method returned: its class and method (`java.util.Map`, `get`).
    ReturnValue {
        /// Declaring class of the method.
        class: String,
        /// Method name.
        method: String,
    },
}

/// The null subject of a helpful NPE message, when it has one.
pub fn parse_message(message: &str) -> Option<NullSubject> {
    let at = message.find("because ")?;
    let rest = &message[at + "because ".len()..];
    if let Some(call) = rest.strip_prefix("the return value of \"") {
        let end = call.find('"')?;
        let call = &call[..end];
        let name = call.split('(').next()?;
        let (class, method) = name.rsplit_once('.')?;
        return Some(NullSubject::ReturnValue {
            class: class.to_string(),
            method: method.to_string(),
        });
    }
    let expr = rest.strip_prefix('"')?;
    let end = expr.find('"')?;
    if !expr[end..].starts_with("\" is null") {
        return None;
    }
    Some(NullSubject::Expression(expr[..end].to_string()))
}

impl FixTemplate for JavaNullGuard {
    fn id(&self) -> &'static str {
        ID
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_java(diag) && raised(diag, "NullPointerException")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let text = message(site);
        let subject = parse_message(&text).ok_or_else(|| {
            not_applicable(
                "the NullPointerException's message does not name the null expression (helpful NPE messages need \
                 JDK 14+ and are on by default from JDK 15)",
            )
        })?;
        let c = Culprit::locate(site)?;
        match subject {
            NullSubject::Expression(expr) => guard_expression(&c, &expr),
            NullSubject::ReturnValue { class, method } => guard_lookup(&c, &class, &method),
        }
    }
}

/// `if (expr == null) throw …` for a parameter or local (or a field chain of one).
fn guard_expression(c: &Culprit<'_>, expr: &str) -> Result<TemplateFix, TemplateError> {
    if expr.starts_with('<') {
        return Err(not_applicable(format!(
            "the message names `{expr}`: the class was compiled without local variable names (-g), so the null \
             variable is unknown"
        )));
    }
    if expr.starts_with("this.") || expr.contains('[') || expr.contains('(') {
        return Err(not_applicable(format!(
            "`{expr}` is null: a null field or array element is the object's own state, not the request's; a \
             guard would hide the bug that left it null"
        )));
    }
    let parts: Vec<&str> = expr.split('.').collect();
    if !parts.iter().all(|p| is_identifier(p)) {
        return Err(not_applicable(format!("`{expr}` is not a variable or a field chain")));
    }
    let root = parts[0];
    let decl = c.src.declaration(&c.method, root, c.statement.start);
    let Some(decl) = decl else {
        let what = if c.src.is_field(c.statement.start, root) || parts.len() > 1 && root.starts_with(char::is_uppercase)
        {
            "a field: the object's own state, not the request's; a guard would hide the bug that left it null"
        } else {
            "not a parameter or a local declared before the culprit statement"
        };
        return Err(not_applicable(format!("`{root}` is {what}")));
    };
    // The statement must dereference the expression the message names.
    let masked = c.masked();
    let mut from = 0;
    let mut dereferenced = false;
    while let Some(at) = find_word(masked, parts[parts.len() - 1], from) {
        from = at + 1;
        let after = masked[at + parts[parts.len() - 1].len()..].trim_start();
        if after.starts_with('.') || after.starts_with('[') || after.starts_with(':') || after.starts_with(')') {
            dereferenced = true;
        }
    }
    if !dereferenced {
        return Err(not_applicable(format!(
            "line {} does not use `{expr}` the way the message says",
            c.first_line + 1
        )));
    }
    let outcome = choose_outcome(c, "NullPointerException", false)?;
    // A local that holds a lookup: the missing thing is the key.
    let lookup = decl.init.as_deref().and_then(lookup_key);
    let (message, kind, mut extra) = match (&lookup, decl.param) {
        (Some(key), _) => (
            message_with(&format!("unknown {}", noun(key)), key),
            "missing-key",
            vec![("key", key.clone())],
        ),
        (None, true) if parts.len() == 1 => (string_literal(&format!("{expr} is required")), "null-param", Vec::new()),
        _ => (string_literal(&format!("{expr} is missing")), "null-local", Vec::new()),
    };
    extra.push(("variable", root.to_string()));
    let condition = format!("{expr} == null");
    let content = c.insert_guard(&condition, &outcome.statement(&message));
    let summary = format!(
        "check `{expr}` for null before line {}: {}",
        c.first_line + 1,
        outcome.describe()
    );
    Ok(fix(content, summary, kind, expr, &outcome, &extra))
}

/// The key of a `recv.get(key)` initializer, when the key is a plain name.
fn lookup_key(init: &str) -> Option<String> {
    let init = init.trim();
    let open = init.rfind(".get(")?;
    let args = init[open + ".get(".len()..].strip_suffix(')')?;
    let receiver = &init[..open];
    (is_simple_expression(receiver) && is_identifier(args.trim())).then(|| args.trim().to_string())
}

/// `if (recv.get(key) == null) throw …` for a null returned by a map lookup on the statement.
fn guard_lookup(c: &Culprit<'_>, class: &str, method: &str) -> Result<TemplateFix, TemplateError> {
    if method != "get" || !MAP_TYPES.contains(&class) {
        return Err(not_applicable(format!(
            "`{class}.{method}` returned null: only a map lookup is known to be free of side effects, so only \
             it can be checked before the statement"
        )));
    }
    let masked = c.masked();
    let (start, _dot, args_start, args_end) = single_call(masked, method)?
        .ok_or_else(|| not_applicable(format!("line {} has no `.{method}(…)` call", c.first_line + 1)))?;
    let text = c.text();
    let receiver = text[start..masked[start..].find(".get(").map(|p| start + p).unwrap_or(start)].trim();
    let key = text[args_start..args_end].trim();
    if !is_simple_expression(receiver) || !(is_simple_expression(key) || key.starts_with('"')) {
        return Err(not_applicable(format!(
            "the lookup `{receiver}.get({key})` is not a plain receiver and key: repeating it in a guard could \
             change what it does"
        )));
    }
    c.in_scope(receiver)?;
    c.in_scope(key)?;
    let outcome = choose_outcome(c, "NullPointerException", false)?;
    let message = if key.starts_with('"') {
        string_literal(&format!("no {} for {}", noun(receiver), key.trim_matches('"')))
    } else {
        message_with(&format!("unknown {}", noun(key)), key)
    };
    let condition = format!("{receiver}.get({key}) == null");
    let content = c.insert_guard(&condition, &outcome.statement(&message));
    let summary = format!(
        "check `{receiver}.get({key})` for null before line {}: {}",
        c.first_line + 1,
        outcome.describe()
    );
    Ok(fix(
        content,
        summary,
        "missing-key",
        &format!("{receiver}.get({key})"),
        &outcome,
        &[("key", key.to_string())],
    ))
}
