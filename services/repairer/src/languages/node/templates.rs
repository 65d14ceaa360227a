//! The Node.js fix templates, in the order they are tried, and what they share: finding the
//! culprit statement in its function, choosing what the fixed code does (the code's own
//! convention), and inserting a guard before the statement.
//!
//! What a guard does is never invented:
//! 1. throw the error class the enclosing function (else the file) already throws for bad
//!    input (`throw new BadRequestError(…)`), never a built-in one (`Error`, `TypeError`, …:
//!    those mean a bug, and callers do not handle them as bad input);
//! 2. in an Express-style handler (`(req, res)` with `res.status(` in the file) answer
//!    `res.status(400).json({ error })`; in a node:http handler (`res.writeHead(` in the file)
//!    write a 400 and end the response; then return;
//! 3. otherwise the template declines, and says why.

use std::collections::BTreeMap;

use selfheal_events::Diagnosis;

use super::syntax::{
    BUILTIN_ERRORS, JsFunc, chain_before, enclosing_function, find_word, indent_of, indent_unit, is_identifier,
    is_member_chain, mask, matching, thrown_classes,
};
use crate::languages::{Expectation, Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, culprit_line, not_applicable, split_ending};

/// Id of the property-of-undefined template.
pub const PROPERTY_GUARD: &str = "node.property-guard";
/// Id of the JSON.parse template.
pub const JSON_PARSE: &str = "node.json-parse-guard";
/// Id of the not-a-function template.
pub const CALLABLE_GUARD: &str = "node.callable-guard";
/// Id of the RangeError template.
pub const RANGE_GUARD: &str = "node.range-guard";

/// Every Node.js template, in the order they are tried.
pub fn all() -> Vec<Box<dyn FixTemplate>> {
    vec![
        Box::new(NodePropertyGuard),
        Box::new(NodeJsonParseGuard),
        Box::new(NodeCallableGuard),
        Box::new(NodeRangeGuard),
    ]
}

/// JavaScript file extensions.
pub const EXTENSIONS: &[&str] = &["js", "cjs", "mjs", "jsx", "ts", "tsx", "mts", "cts"];

/// Whether the diagnosis is about JavaScript/TypeScript code.
pub fn is_node(diag: &Diagnosis) -> bool {
    let file_is_js = diag.root_cause.as_ref().is_some_and(|rc| {
        rc.file
            .rsplit_once('.')
            .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext))
    });
    file_is_js
        || (diag.root_cause.as_ref().is_none_or(|rc| rc.file.is_empty())
            && matches!(diag.runtime.as_deref(), Some("node" | "javascript" | "typescript")))
}

/// The exception's class name (root cause, else exception record).
pub fn error_class(diag: &Diagnosis) -> String {
    let t = match &diag.root_cause {
        Some(rc) if !rc.exception_type.is_empty() => rc.exception_type.clone(),
        _ => diag.exception.as_ref().map(|e| e.r#type.clone()).unwrap_or_default(),
    };
    t.rsplit(['.', ':']).next().unwrap_or(&t).trim().to_string()
}

/// The exception's message (root cause, else exception record), without a `Type: ` prefix.
pub fn error_message(diag: &Diagnosis) -> String {
    let m = match &diag.root_cause {
        Some(rc) if !rc.message.is_empty() => rc.message.clone(),
        _ => diag.exception.as_ref().map(|e| e.message.clone()).unwrap_or_default(),
    };
    let class = error_class(diag);
    m.strip_prefix(&format!("{class}: ")).map(str::to_string).unwrap_or(m)
}

/// The culprit statement in its function.
pub struct Culprit<'s> {
    /// The file's lines with their endings.
    pub lines: Vec<&'s str>,
    /// The masked lines.
    pub masked: Vec<String>,
    /// The whole masked file.
    pub masked_all: String,
    /// Index of the culprit line.
    pub index: usize,
    /// The enclosing function.
    pub func: JsFunc,
    /// The whole file.
    pub source: &'s str,
}

impl<'s> Culprit<'s> {
    /// The culprit line in its function, checked to start a statement a guard can precede.
    pub fn locate(site: &Site<'s>) -> Result<Culprit<'s>, TemplateError> {
        let (lines, index) = culprit_line(site)?;
        let masked_all = mask(site.source);
        let masked: Vec<String> = masked_all.split_inclusive('\n').map(str::to_string).collect();
        let func = enclosing_function(&masked_all, index)
            .ok_or_else(|| not_applicable("the culprit line is not inside a function with a block body"))?;
        if index == func.header {
            return Err(not_applicable("the culprit line is the function's header"));
        }
        let c = Culprit {
            lines,
            masked,
            masked_all,
            index,
            func,
            source: site.source,
        };
        c.check_statement_start()?;
        Ok(c)
    }

    /// The masked culprit line without its ending.
    pub fn masked_line(&self) -> &str {
        split_ending(self.masked.get(self.index).map(String::as_str).unwrap_or("")).0
    }

    /// The original culprit line without its ending.
    pub fn line(&self) -> &str {
        split_ending(self.lines[self.index]).0
    }

    fn check_statement_start(&self) -> Result<(), TemplateError> {
        let line = self.masked_line().trim();
        for bad in [
            ".", "?", ":", ")", "]", "}", "+", "-", "*", "/", "&&", "||", "case ", "default:", "else", "catch",
            "finally", "for ", "for(", "while",
        ] {
            if line.starts_with(bad) {
                return Err(not_applicable(format!(
                    "the culprit line starts with `{}`: no statement boundary to guard before",
                    bad.trim()
                )));
            }
        }
        let prev = (0..self.index)
            .rev()
            .map(|i| self.masked[i].trim())
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let continues = [
            ",", "(", "[", "+", "-", "*", "/", "%", "=", "&", "|", "?", ":", ".", "<", ">", "!",
        ]
        .iter()
        .any(|end| prev.ends_with(end))
            && !prev.ends_with("++")
            && !prev.ends_with("--");
        let braceless = prev.ends_with(')')
            && ["if ", "if(", "for ", "for(", "while ", "while(", "} else if", "else if"]
                .iter()
                .any(|w| prev.starts_with(w))
            || prev == "else";
        if continues || braceless {
            return Err(not_applicable(
                "the culprit line continues the statement above it (or is the body of a brace-less if/for)",
            ));
        }
        Ok(())
    }

    /// Whether `name`'s root is declared on the culprit line itself.
    pub fn declared_on_line(&self, name: &str) -> bool {
        let line = self.masked_line();
        let root = name.split(['.', '[']).next().unwrap_or(name);
        ["const ", "let ", "var "].iter().any(|kw| {
            line.find(kw).is_some_and(|at| {
                line[at..]
                    .find('=')
                    .is_some_and(|eq| !find_word(&line[at..at + eq], root).is_empty())
            })
        })
    }

    /// The file with `if (condition) { body }` inserted before the culprit line.
    pub fn insert_guard(&self, condition: &str, body: &[String]) -> String {
        let indent = indent_of(self.lines[self.index]);
        let unit = indent_unit(self.source);
        let ending = match split_ending(self.lines[self.index]).1 {
            "" => "\n",
            e => e,
        };
        let mut out = String::with_capacity(self.source.len() + 160);
        for l in &self.lines[..self.index] {
            out.push_str(l);
        }
        out.push_str(&format!("{indent}if ({condition}) {{{ending}"));
        for b in body {
            out.push_str(&format!("{indent}{unit}{b}{ending}"));
        }
        out.push_str(&format!("{indent}}}{ending}"));
        for l in &self.lines[self.index..] {
            out.push_str(l);
        }
        out
    }

    /// The masked text of the function's body.
    fn body_masked(&self) -> String {
        self.masked[self.func.header..=self.func.body_end].concat()
    }

    /// What the fixed code does instead of crashing (see the module docs).
    pub fn outcome(&self, crash: &str, message: &str) -> Result<Outcome, TemplateError> {
        let usable = |name: &String| !BUILTIN_ERRORS.contains(&name.as_str()) && name != crash;
        let own = thrown_classes(&self.body_masked()).into_iter().find(usable);
        let in_file = thrown_classes(&self.masked_all).into_iter().find(usable);
        let text = js_message(message);
        let throw = |class: String| Outcome {
            body: vec![format!("throw new {class}('{text}');")],
            expect: Expectation::Raises(class.clone()),
            label: format!("throw:{class}"),
        };
        // The function's own error class first; a handler's 400 before a class thrown
        // elsewhere in the file (a handler that throws answers 500).
        if let Some(class) = own {
            return Ok(throw(class));
        }
        if let Some(handler) = self.http_outcome(&text) {
            return Ok(handler);
        }
        if let Some(class) = in_file {
            return Ok(throw(class));
        }
        Err(not_applicable(format!(
            "`{}` throws no error class of its own and is not an HTTP handler: no convention to follow",
            self.func.name
        )))
    }

    /// A 400 answer when the function is an HTTP handler `(req, res)`.
    fn http_outcome(&self, text: &str) -> Option<Outcome> {
        let params = self.func.params.clone().unwrap_or_default();
        let res = params
            .get(1)
            .filter(|p| matches!(p.as_str(), "res" | "response" | "reply"))?;
        if self.masked_all.contains(&format!("{res}.status(")) {
            return Some(Outcome {
                body: vec![format!("return {res}.status(400).json({{ error: '{text}' }});")],
                expect: Expectation::HttpStatus(400),
                label: "http-400".into(),
            });
        }
        if self.masked_all.contains(&format!("{res}.writeHead("))
            || self.masked_all.contains(&format!("{res}.statusCode"))
        {
            return Some(Outcome {
                body: vec![
                    format!("{res}.writeHead(400, {{ 'Content-Type': 'application/json' }});"),
                    format!("{res}.end(JSON.stringify({{ error: '{text}' }}));"),
                    "return;".into(),
                ],
                expect: Expectation::HttpStatus(400),
                label: "http-400".into(),
            });
        }
        None
    }
}

/// What a guard does.
pub struct Outcome {
    /// The guard's statements.
    pub body: Vec<String>,
    /// What the fixed code does with the failing input.
    pub expect: Expectation,
    /// `throw:<Class>` / `http-400`, for the params.
    pub label: String,
}

/// Text for a single-quoted JavaScript string: plain characters only.
fn js_message(what: &str) -> String {
    what.chars()
        .filter(|c| c.is_ascii_alphanumeric() || " _.,:()[]<>=!-+*/$".contains(*c))
        .take(120)
        .collect()
}

fn fix(content: String, outcome: Outcome, summary: String, mut params: BTreeMap<String, String>) -> TemplateFix {
    params.insert("outcome".into(), outcome.label);
    TemplateFix {
        content,
        summary,
        params,
        expect: outcome.expect,
    }
}

// --------------------------------------------------------------------------------------------
// node.property-guard
// --------------------------------------------------------------------------------------------

/// `TypeError: Cannot read properties of undefined (reading 'x')` (and `null`, the older
/// `Cannot read property 'x' of undefined`, `Cannot set properties of …`, `Cannot destructure
/// property 'x' of 'y' as it is undefined.`): a null check on the object before the statement.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePropertyGuard;

/// What the message says: the property read, and the object when the message names it.
pub fn property_of_message(message: &str) -> Option<(String, Option<String>)> {
    let quoted = |s: &str| -> Option<String> {
        let open = s.find('\'')?;
        let close = s[open + 1..].find('\'')? + open + 1;
        Some(s[open + 1..close].to_string())
    };
    for marker in ["(reading '", "(setting '"] {
        if let Some(at) = message.find(marker) {
            return Some((quoted(&message[at + 1..])?, None));
        }
    }
    if let Some(rest) = message.strip_prefix("Cannot read property ") {
        return Some((quoted(rest)?, None));
    }
    if let Some(rest) = message.strip_prefix("Cannot destructure property ") {
        let property = quoted(rest)?;
        let of = rest.find(" of '")?;
        let object = quoted(&rest[of + 4..])?;
        return Some((property, Some(object)));
    }
    None
}

impl FixTemplate for NodePropertyGuard {
    fn id(&self) -> &'static str {
        PROPERTY_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_node(diag) && error_class(diag) == "TypeError" && property_of_message(&error_message(diag)).is_some()
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let (property, object) = property_of_message(&error_message(site.diag))
            .ok_or_else(|| not_applicable("the message names no property"))?;
        let line = c.masked_line();
        let original = c.line();
        let mut chains: Vec<String> = Vec::new();
        if let Some(object) = object.filter(|o| is_member_chain(o)) {
            chains.push(object);
        } else {
            for (at, b) in line.bytes().enumerate() {
                let hit = if b == b'.' {
                    line[at + 1..].starts_with(property.as_str())
                        && !line[at + 1 + property.len()..]
                            .bytes()
                            .next()
                            .is_some_and(super::syntax::is_word_byte)
                } else if b == b'[' {
                    // `obj['x']`: the masked line blanks the string; read the original.
                    let close = matching(line, at);
                    close.is_some_and(|close| {
                        let inner = original.get(at + 1..close).unwrap_or("").trim();
                        inner == format!("'{property}'") || inner == format!("\"{property}\"")
                    })
                } else {
                    false
                };
                if !hit {
                    continue;
                }
                if let Some((_, chain)) = chain_before(line, at)
                    && !chains.iter().any(|c| c == chain)
                {
                    chains.push(chain.to_string());
                }
            }
        }
        let [object] = chains.as_slice() else {
            return Err(not_applicable(format!(
                "expected one plain object whose `{property}` is read on the culprit line, found {}",
                chains.len()
            )));
        };
        if c.declared_on_line(object) {
            return Err(not_applicable(format!(
                "`{object}` is declared on the culprit line itself"
            )));
        }
        let outcome = c.outcome("TypeError", &format!("{object} is missing"))?;
        let content = c.insert_guard(&format!("{object} == null"), &outcome.body);
        let params = BTreeMap::from([
            ("object".to_string(), object.clone()),
            ("property".to_string(), js_message(&property)),
        ]);
        Ok(fix(
            content,
            outcome,
            format!("check {object} before reading {property}"),
            params,
        ))
    }
}

// --------------------------------------------------------------------------------------------
// node.json-parse-guard
// --------------------------------------------------------------------------------------------

/// `SyntaxError` from `JSON.parse`: the parse is wrapped, and bad JSON becomes the code's
/// bad-input outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeJsonParseGuard;

impl FixTemplate for NodeJsonParseGuard {
    fn id(&self) -> &'static str {
        JSON_PARSE
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_node(diag) && error_class(diag) == "SyntaxError"
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let line = c.masked_line();
        let original = c.line();
        let calls = line.matches("JSON.parse(").count();
        if calls != 1 {
            return Err(not_applicable(format!(
                "expected one JSON.parse call on the culprit line, found {calls}"
            )));
        }
        let t = line.trim();
        if !t.ends_with(';') && !t.ends_with(')') {
            return Err(not_applicable(
                "the JSON.parse statement does not end on the culprit line",
            ));
        }
        let outcome = c.outcome("SyntaxError", "invalid JSON")?;
        let indent = indent_of(original);
        let unit = indent_unit(site.source);
        let statement = original.trim();
        // `const x = JSON.parse(…);` → `let x;` before the try, assigned inside it.
        let (before, inside) = match ["const ", "let ", "var "]
            .iter()
            .find_map(|kw| statement.strip_prefix(kw))
        {
            Some(rest) => {
                let (name, _) = rest
                    .split_once('=')
                    .ok_or_else(|| not_applicable("a declaration without a value"))?;
                let name = name.trim();
                if !is_identifier(name) {
                    return Err(not_applicable(
                        "a destructuring declaration: cannot split it from the parse",
                    ));
                }
                (Some(format!("let {name};")), rest.trim().to_string())
            }
            None => (None, statement.to_string()),
        };
        let ending = match split_ending(c.lines[c.index]).1 {
            "" => "\n",
            e => e,
        };
        let mut block = String::new();
        if let Some(b) = before {
            block.push_str(&format!("{indent}{b}{ending}"));
        }
        block.push_str(&format!(
            "{indent}try {{{ending}{indent}{unit}{inside}{ending}{indent}}} catch (err) {{{ending}"
        ));
        for b in &outcome.body {
            block.push_str(&format!("{indent}{unit}{b}{ending}"));
        }
        block.push_str(&format!("{indent}}}{ending}"));
        let mut content = String::with_capacity(site.source.len() + block.len());
        for l in &c.lines[..c.index] {
            content.push_str(l);
        }
        content.push_str(&block);
        for l in &c.lines[c.index + 1..] {
            content.push_str(l);
        }
        let params = BTreeMap::from([("call".to_string(), "JSON.parse".to_string())]);
        Ok(fix(content, outcome, "catch the JSON.parse SyntaxError".into(), params))
    }
}

// --------------------------------------------------------------------------------------------
// node.callable-guard
// --------------------------------------------------------------------------------------------

/// `TypeError: x is not a function`: a typeof check on the callee before the statement.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCallableGuard;

/// The callee a message names (`handlers[kind]`, `order.total`, `fn`), when plain.
pub fn callee_of_message(message: &str) -> Option<String> {
    let callee = message.strip_suffix(" is not a function")?.trim();
    let plain = match callee.find('[') {
        Some(open) => {
            let close = matching(callee, open)?;
            close + 1 == callee.len()
                && is_member_chain(&callee[..open])
                && is_member_chain(callee[open + 1..close].trim())
        }
        None => is_member_chain(callee),
    };
    plain.then(|| callee.to_string())
}

impl FixTemplate for NodeCallableGuard {
    fn id(&self) -> &'static str {
        CALLABLE_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_node(diag) && error_class(diag) == "TypeError" && error_message(diag).ends_with(" is not a function")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let callee = callee_of_message(&error_message(site.diag))
            .ok_or_else(|| not_applicable("the message names no plain callee"))?;
        let line = c.masked_line();
        let calls: Vec<usize> = line
            .match_indices(callee.as_str())
            .map(|(at, _)| at)
            .filter(|at| {
                let before_ok = *at == 0 || {
                    let b = line.as_bytes()[at - 1];
                    !super::syntax::is_word_byte(b) && b != b'.'
                };
                before_ok && line[at + callee.len()..].trim_start().starts_with('(')
            })
            .collect();
        if calls.len() != 1 {
            return Err(not_applicable(format!(
                "expected one call of `{callee}` on the culprit line, found {}",
                calls.len()
            )));
        }
        if c.declared_on_line(&callee) {
            return Err(not_applicable(format!(
                "`{callee}` is declared on the culprit line itself"
            )));
        }
        let outcome = c.outcome("TypeError", &format!("{callee} is not a function"))?;
        let content = c.insert_guard(&format!("typeof {callee} !== 'function'"), &outcome.body);
        let params = BTreeMap::from([("callee".to_string(), callee.clone())]);
        Ok(fix(
            content,
            outcome,
            format!("check that {callee} is a function"),
            params,
        ))
    }
}

// --------------------------------------------------------------------------------------------
// node.range-guard
// --------------------------------------------------------------------------------------------

/// `RangeError`: the argument of the call that rejects it is checked first. Shapes:
/// `s.repeat(n)` (`Invalid count value`), `new Array(n)` (`Invalid array length`),
/// `x.toFixed(d)` / `x.toPrecision(d)` (`… argument must be between …`), `d.toISOString()`
/// (`Invalid time value`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeRangeGuard;

/// The guard condition for the RangeError on a masked line, and the guarded expression.
pub fn range_condition(message: &str, line: &str) -> Result<(String, String), TemplateError> {
    // The one call of `marker` whose argument is a plain variable (a computed argument such
    // as `5 - n` is left alone: guarding `n` covers it or it cannot be told apart).
    let argument_of = |marker: &str| -> Result<String, TemplateError> {
        let mut args: Vec<String> = Vec::new();
        for (at, _) in line.match_indices(marker) {
            let open = at + marker.len() - 1;
            let close = matching(line, open).ok_or_else(|| not_applicable("an unclosed call"))?;
            let arg = line[open + 1..close].trim();
            if is_member_chain(arg) && !args.iter().any(|a| a == arg) {
                args.push(arg.to_string());
            }
        }
        match args.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(not_applicable(format!(
                "expected one `{}` with a plain variable on the culprit line, found {}",
                marker.trim_end_matches('('),
                args.len()
            ))),
        }
    };
    if message.starts_with("Invalid count value") {
        let n = argument_of(".repeat(")?;
        return Ok((format!("!Number.isFinite({n}) || {n} < 0"), n));
    }
    if message.starts_with("Invalid array length") {
        let n = argument_of("Array(")?;
        return Ok((format!("!Number.isInteger({n}) || {n} < 0"), n));
    }
    if message.starts_with("toFixed()") {
        let d = argument_of(".toFixed(")?;
        return Ok((format!("!(Number.isInteger({d}) && {d} >= 0 && {d} <= 100)"), d));
    }
    if message.starts_with("toPrecision()") {
        let d = argument_of(".toPrecision(")?;
        return Ok((format!("!(Number.isInteger({d}) && {d} >= 1 && {d} <= 100)"), d));
    }
    if message.starts_with("Invalid time value") {
        let hits: Vec<usize> = line.match_indices(".toISOString(").map(|(at, _)| at).collect();
        let [at] = hits.as_slice() else {
            return Err(not_applicable("expected one toISOString() call on the culprit line"));
        };
        let (_, date) = chain_before(line, *at).ok_or_else(|| not_applicable("the date is not a plain variable"))?;
        return Ok((format!("Number.isNaN(new Date({date}).getTime())"), date.to_string()));
    }
    Err(not_applicable(format!(
        "no guard for the RangeError `{}`",
        js_message(message)
    )))
}

impl FixTemplate for NodeRangeGuard {
    fn id(&self) -> &'static str {
        RANGE_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_node(diag) && error_class(diag) == "RangeError"
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let message = error_message(site.diag);
        let (condition, subject) = range_condition(&message, c.masked_line())?;
        if c.declared_on_line(&subject) {
            return Err(not_applicable(format!(
                "`{subject}` is declared on the culprit line itself"
            )));
        }
        let outcome = c.outcome("RangeError", &format!("{subject} is out of range"))?;
        let content = c.insert_guard(&condition, &outcome.body);
        let params = BTreeMap::from([
            ("argument".to_string(), subject.clone()),
            ("guard".to_string(), condition),
        ]);
        Ok(fix(content, outcome, format!("check the range of {subject}"), params))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_messages() {
        assert_eq!(
            property_of_message("Cannot read properties of undefined (reading 'baseCents')"),
            Some(("baseCents".into(), None))
        );
        assert_eq!(
            property_of_message("Cannot read property 'x' of null"),
            Some(("x".into(), None))
        );
        assert_eq!(
            property_of_message("Cannot destructure property 'a' of 'opts' as it is undefined."),
            Some(("a".into(), Some("opts".into())))
        );
        assert_eq!(
            callee_of_message("handlers[kind] is not a function").as_deref(),
            Some("handlers[kind]")
        );
        assert_eq!(
            callee_of_message("order.total is not a function").as_deref(),
            Some("order.total")
        );
        assert_eq!(callee_of_message("(intermediate value).map is not a function"), None);
        assert_eq!(
            range_condition("Invalid count value: -1", "  return '*'.repeat(stars);")
                .unwrap()
                .1,
            "stars"
        );
        assert!(range_condition("Maximum call stack size exceeded", "f()").is_err());
    }
}
