//! The Go fix templates, in the order they are tried, and what they share: finding the
//! culprit statement in its top-level function, choosing what the fixed code does (the
//! function's own convention), and inserting a guard before the statement.
//!
//! What a guard does is never invented:
//! 1. a function whose last result is `error` returns the zero values and an error built the
//!    way the function (else the file) already builds its errors: `fmt.Errorf("%w: …", S)`
//!    when it wraps a sentinel `S` (so callers that check `errors.Is(err, S)` — an HTTP layer
//!    answering 400 — handle it), else `fmt.Errorf("…")` / `errors.New("…")`;
//! 2. a net/http handler (`w http.ResponseWriter, r *http.Request`) answers 400 with
//!    `http.Error` and returns;
//! 3. a nil map written to is initialised where the map is a field or a local (never a
//!    parameter: the caller would not see the writes);
//! 4. otherwise the template declines, and says why.

use std::collections::BTreeMap;

use selfheal_events::Diagnosis;

use super::syntax::{
    GoFunc, chain_before, enclosing_func, find_word, imports, indent_of, is_identifier, is_numeric, is_selector_chain,
    mask, matching, with_import, zero_value,
};
use crate::languages::{Expectation, Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, culprit_line, not_applicable, split_ending};

/// Id of the ignored-error template.
pub const IGNORED_ERROR: &str = "go.ignored-error";
/// Id of the nil-map template.
pub const NIL_MAP: &str = "go.nil-map-init";
/// Id of the index-guard template.
pub const INDEX_GUARD: &str = "go.index-guard";
/// Id of the nil-pointer template.
pub const NIL_GUARD: &str = "go.nil-guard";
/// Id of the divide-by-zero template.
pub const ZERO_DIVISION: &str = "go.zero-division-guard";

/// Every Go template, in the order they are tried.
pub fn all() -> Vec<Box<dyn FixTemplate>> {
    vec![
        Box::new(GoIgnoredError),
        Box::new(GoNilMapInit),
        Box::new(GoIndexGuard),
        Box::new(GoNilGuard),
        Box::new(GoZeroDivisionGuard),
    ]
}

/// Whether the diagnosis is about Go code.
pub fn is_go(diag: &Diagnosis) -> bool {
    let file_is_go = diag.root_cause.as_ref().is_some_and(|rc| rc.file.ends_with(".go"));
    file_is_go
        || (diag.root_cause.as_ref().is_none_or(|rc| rc.file.is_empty()) && diag.runtime.as_deref() == Some("go"))
}

/// The panic message of the diagnosis (root cause, else exception record).
pub fn panic_message(diag: &Diagnosis) -> String {
    match &diag.root_cause {
        Some(rc) if !rc.message.is_empty() => rc.message.clone(),
        _ => diag.exception.as_ref().map(|e| e.message.clone()).unwrap_or_default(),
    }
}

fn panicked_with(diag: &Diagnosis, phrase: &str) -> bool {
    is_go(diag) && panic_message(diag).contains(phrase)
}

/// The culprit statement in its function.
pub struct Culprit<'s> {
    /// The file's lines with their endings.
    pub lines: Vec<&'s str>,
    /// The same lines, masked (comments and literals blanked).
    pub masked: Vec<String>,
    /// Index of the culprit line.
    pub index: usize,
    /// The enclosing top-level function.
    pub func: GoFunc,
    /// The whole file.
    pub source: &'s str,
}

impl<'s> Culprit<'s> {
    /// The culprit line in its function, checked to be the start of a statement a guard can
    /// precede.
    pub fn locate(site: &Site<'s>) -> Result<Culprit<'s>, TemplateError> {
        let (lines, index) = culprit_line(site)?;
        let masked_all = mask(site.source);
        let masked: Vec<String> = masked_all.split_inclusive('\n').map(str::to_string).collect();
        let func = enclosing_func(&masked_all, index)
            .ok_or_else(|| not_applicable("the culprit line is not inside a top-level function"))?;
        if index <= func.body_start || index >= func.body_end {
            return Err(not_applicable(
                "the culprit line is the function's signature or closing brace",
            ));
        }
        let c = Culprit {
            lines,
            masked,
            index,
            func,
            source: site.source,
        };
        c.check_statement_start()?;
        c.check_not_in_closure()?;
        Ok(c)
    }

    /// The masked culprit line without its ending.
    pub fn masked_line(&self) -> &str {
        split_ending(self.masked.get(self.index).map(String::as_str).unwrap_or("")).0
    }

    fn check_statement_start(&self) -> Result<(), TemplateError> {
        let line = self.masked_line().trim();
        for bad in [
            "}", ")", ".", "case ", "default:", "else", "for ", "func ", "select ", "switch ", "go ", "defer ",
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
        if [
            "(", ",", "+", "-", "*", "/", "%", "&", "|", "^", "=", ".", "<", ">", "!",
        ]
        .iter()
        .any(|end| prev.ends_with(end))
        {
            return Err(not_applicable("the culprit line continues the statement above it"));
        }
        Ok(())
    }

    fn check_not_in_closure(&self) -> Result<(), TemplateError> {
        let mut depth_at_closure: Vec<i32> = Vec::new();
        let mut depth = 0i32;
        for line in &self.masked[self.func.body_start + 1..self.index] {
            let opens = line.matches('{').count() as i32;
            let closes = line.matches('}').count() as i32;
            if line.contains("func(") && line.trim_end().ends_with('{') {
                depth_at_closure.push(depth);
            }
            depth += opens - closes;
            while depth_at_closure.last().is_some_and(|d| depth <= *d) {
                depth_at_closure.pop();
            }
        }
        if depth_at_closure.is_empty() {
            Ok(())
        } else {
            Err(not_applicable(
                "the culprit line is inside a function literal: its return convention is unknown",
            ))
        }
    }

    /// The file with `guard` lines (without indentation) inserted before the culprit line at
    /// its indentation, `body` indented one level more inside `if condition { … }`.
    pub fn insert_guard(&self, condition: &str, body: &[String]) -> String {
        self.insert_at(self.index, condition, body)
    }

    /// Like [`Culprit::insert_guard`], before line `at` (indented like the culprit line).
    pub fn insert_at(&self, at: usize, condition: &str, body: &[String]) -> String {
        let indent = indent_of(self.lines[self.index]);
        let ending = match split_ending(self.lines[self.index]).1 {
            "" => "\n",
            e => e,
        };
        let mut out = String::with_capacity(self.source.len() + 128);
        for l in &self.lines[..at] {
            out.push_str(l);
        }
        out.push_str(&format!("{indent}if {condition} {{{ending}"));
        for b in body {
            out.push_str(&format!("{indent}\t{b}{ending}"));
        }
        out.push_str(&format!("{indent}}}{ending}"));
        for l in &self.lines[at..] {
            out.push_str(l);
        }
        out
    }

    /// The sentinel error the function (else the file) wraps with `%w` or returns as is.
    fn sentinel(&self) -> Option<String> {
        let body: Vec<&str> = self.lines[self.func.body_start + 1..self.func.body_end].to_vec();
        sentinel_in(&body).or_else(|| sentinel_in(&self.lines))
    }

    /// What the fixed code does instead of crashing: the statements, the expectation, and
    /// the source with the imports they need (the culprit line's index is unchanged only
    /// when no import line was added, so imports are added last by [`finish`]).
    pub fn outcome(&self, what: &str) -> Result<Outcome, TemplateError> {
        if self.func.returns_error() {
            let mut zeros = Vec::new();
            for r in &self.func.results[..self.func.results.len() - 1] {
                zeros
                    .push(zero_value(&r.ty).ok_or_else(|| {
                        not_applicable(format!("no plain zero value for the result type `{}`", r.ty))
                    })?);
            }
            let message = go_message(what);
            let (err, import, expect) = match self.sentinel() {
                Some(s) => (
                    format!("fmt.Errorf(\"%w: {message}\", {s})"),
                    "fmt",
                    Expectation::Raises(s),
                ),
                None if imports(self.source).iter().any(|p| p == "fmt") => (
                    format!("fmt.Errorf(\"{}: {message}\")", self.func.name),
                    "fmt",
                    Expectation::Raises("error".into()),
                ),
                None => (
                    format!("errors.New(\"{}: {message}\")", self.func.name),
                    "errors",
                    Expectation::Raises("error".into()),
                ),
            };
            zeros.push(err);
            return Ok(Outcome {
                body: vec![format!("return {}", zeros.join(", "))],
                import: Some(import),
                expect,
                label: "error".into(),
            });
        }
        if let Some((w, _)) = self.func.http_handler() {
            return Ok(Outcome {
                body: vec![
                    format!("http.Error({w}, \"{}\", http.StatusBadRequest)", go_message(what)),
                    "return".into(),
                ],
                import: None,
                expect: Expectation::HttpStatus(400),
                label: "http-400".into(),
            });
        }
        Err(not_applicable(format!(
            "`{}` returns no error and is not an HTTP handler: no convention to follow",
            self.func.name
        )))
    }

    /// Whether `name` is assigned (`:=`) on the culprit line itself (a guard before the line
    /// could not see it).
    pub fn defined_on_line(&self, name: &str) -> bool {
        let line = self.masked_line();
        let root = name.split('.').next().unwrap_or(name);
        line.find(":=")
            .is_some_and(|at| !find_word(&line[..at], root).is_empty())
    }
}

/// What a guard does.
pub struct Outcome {
    /// The guard's statements.
    pub body: Vec<String>,
    /// The import they need.
    pub import: Option<&'static str>,
    /// What the fixed code does with the failing input.
    pub expect: Expectation,
    /// `error` / `http-400`, for the params.
    pub label: String,
}

fn sentinel_in(lines: &[&str]) -> Option<String> {
    for line in lines {
        let t = line.trim();
        if !t.starts_with("return ") {
            continue;
        }
        if let Some(at) = t.find("fmt.Errorf(\"%w") {
            let rest = &t[at + "fmt.Errorf(\"".len()..];
            let close = rest.find('"')?;
            let after = rest[close + 1..].trim_start().strip_prefix(',')?.trim_start();
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            if is_selector_chain(&name) {
                return Some(name);
            }
        }
        let last = t.trim_end_matches(';').rsplit(',').next().unwrap_or("").trim();
        let tail = last.rsplit('.').next().unwrap_or(last);
        if is_selector_chain(last) && tail.starts_with("Err") && tail.len() > 3 {
            return Some(last.to_string());
        }
    }
    None
}

/// Text for a message inside a Go string literal: plain characters only, no `%`.
fn go_message(what: &str) -> String {
    what.chars()
        .filter(|c| c.is_ascii_alphanumeric() || " _.,:()[]<>=!-+*/".contains(*c))
        .take(120)
        .collect()
}

/// Builds the fix: the new content with the import added.
fn finish(
    content: String,
    outcome: Outcome,
    summary: String,
    mut params: BTreeMap<String, String>,
) -> Result<TemplateFix, TemplateError> {
    let content = match outcome.import {
        Some(path) => {
            with_import(&content, path).ok_or_else(|| not_applicable(format!("cannot add the import of `{path}`")))?
        }
        None => content,
    };
    params.insert("outcome".into(), outcome.label);
    Ok(TemplateFix {
        content,
        summary,
        params,
        expect: outcome.expect,
    })
}

// --------------------------------------------------------------------------------------------
// go.index-guard
// --------------------------------------------------------------------------------------------

/// `index out of range [i] with length n`: a bounds check before the statement.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoIndexGuard;

/// The index of a Go bounds panic message (`index out of range [5] with length 3`).
pub fn panic_index(message: &str) -> Option<i64> {
    let rest = &message[message.find("index out of range [")? + "index out of range [".len()..];
    rest[..rest.find(']')?].parse().ok()
}

/// An index expression `collection[index]` on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexExpr {
    /// The indexed expression (a selector chain).
    pub collection: String,
    /// The index as written.
    pub index: String,
}

/// The index expressions on a masked line (slices, types and composite literals excluded).
pub fn index_exprs(line: &str) -> Vec<IndexExpr> {
    let mut out = Vec::new();
    for (at, b) in line.bytes().enumerate() {
        if b != b'[' {
            continue;
        }
        let Some((_, chain)) = chain_before(line, at) else {
            continue;
        };
        let Some(close) = matching(line, at) else {
            continue;
        };
        let inner = line[at + 1..close].trim();
        if inner.is_empty() || inner.contains(':') {
            continue;
        }
        let e = IndexExpr {
            collection: chain.to_string(),
            index: inner.to_string(),
        };
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

fn simple_index(index: &str) -> bool {
    let t = index.replace(' ', "");
    let parts: Vec<&str> = t.split(['+', '-']).collect();
    !t.is_empty()
        && parts.len() <= 2
        && parts
            .iter()
            .all(|p| is_selector_chain(p) || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

fn declared_as_map(source: &str, collection: &str) -> bool {
    let name = collection.rsplit('.').next().unwrap_or(collection);
    let masked = mask(source);
    find_word(&masked, name).iter().any(|at| {
        let rest = masked[at + name.len()..].trim_start();
        rest.starts_with("map[")
            || rest.starts_with(":= map[")
            || rest.starts_with("= map[")
            || rest.starts_with(":= make(map[")
            || rest.starts_with("= make(map[")
    })
}

impl FixTemplate for GoIndexGuard {
    fn id(&self) -> &'static str {
        INDEX_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        panicked_with(diag, "index out of range")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let wanted = panic_index(&panic_message(site.diag));
        let all: Vec<IndexExpr> = index_exprs(c.masked_line())
            .into_iter()
            .filter(|e| !declared_as_map(site.source, &e.collection))
            .collect();
        let literal = |e: &IndexExpr| e.index.parse::<i64>().ok();
        let by_literal: Vec<&IndexExpr> = all
            .iter()
            .filter(|e| wanted.is_some() && literal(e) == wanted)
            .collect();
        let by_variable: Vec<&IndexExpr> = all.iter().filter(|e| literal(e).is_none()).collect();
        let target = match (by_literal.as_slice(), by_variable.as_slice()) {
            ([one], _) => *one,
            ([], [one]) => *one,
            ([], []) => {
                return Err(not_applicable(
                    "no index expression on the culprit line matches the panic",
                ));
            }
            _ => {
                return Err(not_applicable(
                    "several index expressions on the culprit line could have panicked",
                ));
            }
        };
        if !simple_index(&target.index) {
            return Err(not_applicable(format!(
                "the index `{}` is not a plain expression",
                target.index
            )));
        }
        for name in [&target.collection, &target.index] {
            if c.defined_on_line(name) {
                return Err(not_applicable(format!(
                    "`{name}` is defined on the culprit line itself"
                )));
            }
        }
        let (x, i) = (&target.collection, &target.index);
        let condition = match literal(target) {
            Some(k) if k >= 0 => format!("len({x}) <= {k}"),
            Some(_) => return Err(not_applicable("a negative constant index does not compile")),
            None => format!("{i} < 0 || {i} >= len({x})"),
        };
        let outcome = c.outcome(&format!("{x}[{i}] out of range"))?;
        let content = c.insert_guard(&condition, &outcome.body);
        let params = BTreeMap::from([
            ("collection".to_string(), x.clone()),
            ("index".to_string(), i.clone()),
            ("guard".to_string(), condition.clone()),
        ]);
        finish(content, outcome, format!("check the bounds of {x}[{i}]"), params)
    }
}

// --------------------------------------------------------------------------------------------
// go.nil-map-init
// --------------------------------------------------------------------------------------------

/// `assignment to entry in nil map`: the map is made before the write.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoNilMapInit;

/// The maps written to on a masked line (`m[k] = v`, `m[k] += v`, `m[k]++`).
pub fn map_writes(line: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (at, b) in line.bytes().enumerate() {
        if b != b'[' {
            continue;
        }
        let (Some((_, chain)), Some(close)) = (chain_before(line, at), matching(line, at)) else {
            continue;
        };
        let rest = line[close + 1..].trim_start();
        let assigns = (rest.starts_with('=') && !rest.starts_with("=="))
            || ["+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "<<=", ">>=", "++", "--"]
                .iter()
                .any(|op| rest.starts_with(op));
        if assigns && !out.iter().any(|c| c == chain) {
            out.push(chain.to_string());
        }
    }
    out
}

/// The map type a field or variable `name` is declared with in the file (`map[string]int`).
fn map_type(source: &str, name: &str) -> Option<String> {
    let masked = mask(source);
    for at in find_word(&masked, name) {
        let line_end = masked[at..].find('\n').map_or(masked.len(), |e| at + e);
        let rest = masked[at + name.len()..line_end].trim_start();
        let rest = rest.strip_prefix("= ").unwrap_or(rest);
        let Some(ty) = rest.strip_prefix("map[").map(|_| rest) else {
            continue;
        };
        // The type runs to the end of the line (field) or to ` =` / `;`.
        let ty = ty.split(" =").next().unwrap_or(ty).trim().trim_end_matches(';').trim();
        let open = ty.find('[')?;
        let close = matching(ty, open)?;
        let value = ty[close + 1..].trim();
        if !value.is_empty() && value.split_whitespace().count() == 1
            || value.starts_with("map[")
            || value.starts_with("[]")
        {
            return Some(ty.to_string());
        }
    }
    None
}

impl FixTemplate for GoNilMapInit {
    fn id(&self) -> &'static str {
        NIL_MAP
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        panicked_with(diag, "assignment to entry in nil map")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let writes = map_writes(c.masked_line());
        let [map] = writes.as_slice() else {
            return Err(not_applicable(format!(
                "expected one map written on the culprit line, found {}",
                writes.len()
            )));
        };
        let root = map.split('.').next().unwrap_or(map);
        if c.func.params.iter().any(|p| p.name == root) {
            return Err(not_applicable(format!(
                "`{map}` is a parameter: making it here would hide the writes from the caller"
            )));
        }
        if let Some(r) = &c.func.receiver
            && r.name == root
            && !r.ty.starts_with('*')
        {
            return Err(not_applicable(
                "a value receiver's field: the initialised map would be lost",
            ));
        }
        if c.defined_on_line(map) {
            return Err(not_applicable(format!("`{map}` is defined on the culprit line itself")));
        }
        let last = map.rsplit('.').next().unwrap_or(map);
        let ty = map_type(site.source, last)
            .ok_or_else(|| not_applicable(format!("cannot find the declared map type of `{map}`")))?;
        let content = c.insert_guard(&format!("{map} == nil"), &[format!("{map} = make({ty})")]);
        let params = BTreeMap::from([
            ("map".to_string(), map.clone()),
            ("type".to_string(), ty.clone()),
            ("outcome".to_string(), "initialise".to_string()),
        ]);
        Ok(TemplateFix {
            content,
            summary: format!("make {map} before writing to it"),
            params,
            expect: Expectation::Completes,
        })
    }
}

// --------------------------------------------------------------------------------------------
// go.nil-guard
// --------------------------------------------------------------------------------------------

/// `invalid memory address or nil pointer dereference`: a nil check on the pointer the
/// statement dereferences, when exactly one pointer-typed parameter or `var p *T` is.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoNilGuard;

/// Pointer-typed variables visible at the culprit: parameters, the receiver, `var p *T`.
fn pointers(c: &Culprit<'_>) -> Vec<String> {
    let mut out: Vec<String> = c
        .func
        .params
        .iter()
        .chain(c.func.receiver.iter())
        .filter(|p| p.ty.starts_with('*') && is_identifier(&p.name))
        .map(|p| p.name.clone())
        .collect();
    for line in &c.masked[c.func.body_start + 1..c.index] {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("var ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(ty)) = (parts.next(), parts.next())
                && ty.starts_with('*')
                && is_identifier(name)
            {
                out.push(name.to_string());
            }
        }
    }
    out
}

impl FixTemplate for GoNilGuard {
    fn id(&self) -> &'static str {
        NIL_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        panicked_with(diag, "nil pointer dereference")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let line = c.masked_line();
        let used: Vec<String> = pointers(&c)
            .into_iter()
            .filter(|p| {
                find_word(line, p).iter().any(|at| {
                    let after = line.as_bytes().get(at + p.len()).copied();
                    let before = line[..*at].trim_end().as_bytes().last().copied();
                    after == Some(b'.') || before == Some(b'*')
                })
            })
            .collect();
        let [pointer] = used.as_slice() else {
            return Err(not_applicable(format!(
                "expected one pointer parameter or variable dereferenced on the culprit line, found {}",
                used.len()
            )));
        };
        let outcome = c.outcome(&format!("{pointer} is nil"))?;
        let content = c.insert_guard(&format!("{pointer} == nil"), &outcome.body);
        let params = BTreeMap::from([("pointer".to_string(), pointer.clone())]);
        finish(content, outcome, format!("check {pointer} for nil"), params)
    }
}

// --------------------------------------------------------------------------------------------
// go.zero-division-guard
// --------------------------------------------------------------------------------------------

/// `integer divide by zero`: a check of the divisor before the statement.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoZeroDivisionGuard;

/// The divisors of `/` and `%` on a masked line (`x`, `s.n`, `int64(n)`, `len(xs)`), literals left out.
pub fn divisors(line: &str) -> Vec<String> {
    let bytes = line.as_bytes();
    let mut out: Vec<String> = Vec::new();
    for (at, b) in bytes.iter().enumerate() {
        if *b != b'/' && *b != b'%' {
            continue;
        }
        let rest = line[at + 1..].strip_prefix('=').unwrap_or(&line[at + 1..]).trim_start();
        let word_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
            .count();
        let word = &rest[..word_len];
        let operand = if rest[word_len..].starts_with('(') {
            let Some(close) = matching(rest, word_len) else {
                continue;
            };
            let inner = rest[word_len + 1..close].trim();
            if (is_numeric(word) || word == "len") && is_selector_chain(inner) {
                rest[..=close].to_string()
            } else {
                continue;
            }
        } else if is_selector_chain(word) {
            word.to_string()
        } else {
            continue;
        };
        if !out.contains(&operand) {
            out.push(operand);
        }
    }
    out
}

impl FixTemplate for GoZeroDivisionGuard {
    fn id(&self) -> &'static str {
        ZERO_DIVISION
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        panicked_with(diag, "integer divide by zero")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let found = divisors(c.masked_line());
        let [divisor] = found.as_slice() else {
            return Err(not_applicable(format!(
                "expected one variable divisor on the culprit line, found {}",
                found.len()
            )));
        };
        let inner = divisor
            .find('(')
            .map_or(divisor.as_str(), |at| divisor[at + 1..].trim_end_matches(')'));
        if c.defined_on_line(inner) {
            return Err(not_applicable(format!(
                "`{inner}` is defined on the culprit line itself"
            )));
        }
        let outcome = c.outcome(&format!("{inner} is zero"))?;
        let content = c.insert_guard(&format!("{divisor} == 0"), &outcome.body);
        let params = BTreeMap::from([("divisor".to_string(), divisor.clone())]);
        finish(content, outcome, format!("check the divisor {divisor}"), params)
    }
}

// --------------------------------------------------------------------------------------------
// go.ignored-error
// --------------------------------------------------------------------------------------------

/// A runtime error on a value whose error was discarded (`n, _ := strconv.Atoi(s)` then
/// `xs[n]`, `u, _ := url.Parse(raw)` then `u.Host`): the error is checked where it is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoIgnoredError;

/// An assignment that discards its last result: its line, the variables kept, the callee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Index of the line.
    pub line: usize,
    /// The variables it assigns (without the `_`).
    pub vars: Vec<String>,
    /// `:=` or `=`.
    pub op: String,
    /// The called function as written (`strconv.Atoi`).
    pub callee: String,
}

/// Reads `a, _ := f(x)` / `a, b, _ = pkg.F(x)` from a masked line.
pub fn ignored_assignment(line: &str) -> Option<(Vec<String>, String, String)> {
    let t = line.trim();
    let (lhs, op, rhs) = if let Some(at) = t.find(":=") {
        (&t[..at], ":=", &t[at + 2..])
    } else {
        let at = t.find(" = ")?;
        (&t[..at], "=", &t[at + 3..])
    };
    let names: Vec<&str> = lhs.split(',').map(str::trim).collect();
    if names.len() < 2 || names.last() != Some(&"_") {
        return None;
    }
    let vars: Vec<String> = names[..names.len() - 1].iter().map(|s| s.to_string()).collect();
    if !vars.iter().all(|v| is_identifier(v)) {
        return None;
    }
    let rhs = rhs.trim();
    let open = rhs.find('(')?;
    let callee = &rhs[..open];
    if !is_selector_chain(callee) || matching(rhs, open)? + 1 != rhs.len() {
        return None;
    }
    Some((vars, op.to_string(), callee.to_string()))
}

impl FixTemplate for GoIgnoredError {
    fn id(&self) -> &'static str {
        IGNORED_ERROR
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_go(diag) && panic_message(diag).starts_with("runtime error:")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let c = Culprit::locate(site)?;
        let line = c.masked_line();
        let found = (c.func.body_start + 1..c.index).rev().find_map(|i| {
            let (vars, op, callee) = ignored_assignment(&c.masked[i])?;
            vars.iter().any(|v| !find_word(line, v).is_empty()).then_some(Ignored {
                line: i,
                vars,
                op,
                callee,
            })
        });
        let ignored = found.ok_or_else(|| {
            not_applicable("no value on the culprit line comes from a call whose error was discarded with `_`")
        })?;
        let err_declared = c.func.results.iter().any(|r| r.name == "err")
            || c.masked[c.func.body_start + 1..ignored.line].iter().any(|l| {
                let t = l.trim();
                t.starts_with("var err ")
                    || !find_word(t.split(":=").next().unwrap_or(""), "err").is_empty() && t.contains(":=")
            });
        if ignored.op == "=" && !err_declared {
            return Err(not_applicable(
                "`err` is not declared where the error is discarded with `=`",
            ));
        }
        // The assignment's own indentation, not the culprit's.
        let assign = c.lines[ignored.line];
        let (text, ending) = split_ending(assign);
        let masked_assign = split_ending(&c.masked[ignored.line]).0;
        let op_at = if ignored.op == ":=" {
            masked_assign.find(":=")
        } else {
            masked_assign.find(" = ")
        };
        let underscore = op_at
            .and_then(|op| masked_assign[..op].rfind('_'))
            .filter(|at| masked_assign[..*at].trim_end().ends_with(','))
            .ok_or_else(|| not_applicable("cannot find the discarded result"))?;
        let fixed_line = format!("{}err{}{ending}", &text[..underscore], &text[underscore + 1..]);
        let mut outcome = c.outcome(&format!("{} failed", ignored.callee))?;
        // Wrap the call's own error into what the convention returns.
        if let Some(last) = outcome.body.first_mut()
            && last.starts_with("return ")
        {
            *last = match &outcome.expect {
                Expectation::Raises(s) if s != "error" => {
                    let zeros = last.rsplit_once(", fmt.Errorf(").map(|(z, _)| z.to_string());
                    let msg = go_message(&format!("{} failed", ignored.callee));
                    match zeros {
                        Some(z) => format!("{z}, fmt.Errorf(\"%w: {msg}: %v\", {s}, err)"),
                        None => format!("return fmt.Errorf(\"%w: {msg}: %v\", {s}, err)"),
                    }
                }
                _ => {
                    outcome.import = Some("fmt");
                    let zeros: Vec<&str> = last.trim_start_matches("return ").rsplitn(2, ", ").collect();
                    let msg = go_message(&format!("{} failed", ignored.callee));
                    match zeros.as_slice() {
                        [_, z] => format!("return {z}, fmt.Errorf(\"{msg}: %w\", err)"),
                        _ => format!("return fmt.Errorf(\"{msg}: %w\", err)"),
                    }
                }
            };
        }
        let indent = indent_of(text);
        let nl = if ending.is_empty() { "\n" } else { ending };
        let mut content = String::with_capacity(site.source.len() + 128);
        for l in &c.lines[..ignored.line] {
            content.push_str(l);
        }
        content.push_str(&fixed_line);
        if ending.is_empty() {
            content.push('\n');
        }
        content.push_str(&format!("{indent}if err != nil {{{nl}"));
        for b in &outcome.body {
            content.push_str(&format!("{indent}\t{b}{nl}"));
        }
        content.push_str(&format!("{indent}}}{nl}"));
        for l in &c.lines[ignored.line + 1..] {
            content.push_str(l);
        }
        let params = BTreeMap::from([
            ("call".to_string(), ignored.callee.clone()),
            ("vars".to_string(), ignored.vars.join(",")),
        ]);
        finish(
            content,
            outcome,
            format!("check the error of {}", ignored.callee),
            params,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_shapes() {
        assert_eq!(
            panic_index("runtime error: index out of range [1] with length 1"),
            Some(1)
        );
        assert_eq!(panic_index("runtime error: index out of range [-1]"), Some(-1));
        let e = index_exprs("\tshelf, err := strconv.Atoi(parts[1]) + xs[i] + m[:3]");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].collection.as_str(), e[0].index.as_str()), ("parts", "1"));
        assert!(index_exprs("\tx := []int{1}").is_empty());
        assert_eq!(map_writes("\tc.items[sku] += n"), ["c.items"]);
        assert!(map_writes("\tif c.items[sku] == 0 {").is_empty());
        assert_eq!(divisors("\treturn total / int64(parts) % 7"), ["int64(parts)"]);
        assert_eq!(divisors("\tavg := sum / len(xs)"), ["len(xs)"]);
        assert_eq!(
            ignored_assignment("\tn, _ := strconv.Atoi(raw)"),
            Some((vec!["n".into()], ":=".into(), "strconv.Atoi".into()))
        );
        assert!(ignored_assignment("\tn := f(x)").is_none());
        assert_eq!(
            map_type("type C struct {\n\titems map[string]int // by sku\n}\n", "items").as_deref(),
            Some("map[string]int")
        );
        assert_eq!(
            sentinel_in(&["\treturn Location{}, fmt.Errorf(\"%w: shelf %q\", ErrInvalid, p)"]).as_deref(),
            Some("ErrInvalid")
        );
        assert_eq!(
            sentinel_in(&["\treturn nil, stock.ErrGone"]).as_deref(),
            Some("stock.ErrGone")
        );
    }
}
