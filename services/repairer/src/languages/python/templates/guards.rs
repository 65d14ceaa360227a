//! Guard templates for Python crash classes that bad input causes: a missing dict key, an
//! attribute of `None`, an empty sequence, a non-numeric string given to `int()`/`float()`,
//! a body that is not JSON.
//!
//! Each one turns the crash into an error the callers already handle, never into a made-up
//! value: the "error convention" is an exception class that some caller of the culprit
//! function in the repository catches (`except BadRequest`, `except (ValueError, …)`), that
//! the culprit module can name (defined or imported there, or a builtin), and that is not
//! the crash's own class. No such class → the template declines and says why.
//!
//! The change is one guard before the culprit statement (`if key not in d: raise E(...)`,
//! `if x is None: raise E(...)`, `if not seq: raise E(...)`) or, for parsing, the statement
//! wrapped in `try:`/`except ValueError: raise E(...) from None` (`json.JSONDecodeError` is
//! a `ValueError`). Only a complete simple statement inside a module-level function is
//! rewritten (no `elif`/`else`, one-line defs, continuation lines, string literals that could
//! hide brackets). The regression test calls the function with an input that makes the
//! guarded value bad (the key from the KeyError message, `None`, `[]`, the unparsable
//! string) and expects `E`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use selfheal_events::Diagnosis;

use super::{is_python, raised};
use crate::languages::python::regression::enclosing_function;
use crate::languages::python::syntax::{Param, indent_of, is_dotted_name, is_identifier, split_top_level};
use crate::languages::{Expectation, Site, TemplateFix};
use crate::templates::{FixTemplate, TemplateError, culprit_line, not_applicable, replace_line, split_ending};

/// `python.key-guard`.
pub const KEY_GUARD: &str = "python.key-guard";
/// `python.none-guard`.
pub const NONE_GUARD: &str = "python.none-guard";
/// `python.empty-sequence-guard`.
pub const EMPTY_GUARD: &str = "python.empty-sequence-guard";
/// `python.parse-number-guard`.
pub const PARSE_GUARD: &str = "python.parse-number-guard";
/// `python.json-guard`.
pub const JSON_GUARD: &str = "python.json-guard";

/// Most files read when looking for callers; a service's own code is small.
const MAX_FILES: usize = 400;
/// Largest file read when looking for callers.
const MAX_FILE_BYTES: u64 = 512 * 1024;
/// Builtin exceptions a guard may raise when a caller catches them.
const BUILTIN_ERRORS: &[&str] = &["ValueError", "TypeError", "RuntimeError"];

/// Builtin superclasses of a crash class: raising one of them would be caught as the crash
/// itself, so the regression test could not tell the fix from the bug.
fn superclasses(crash: &str) -> &'static [&'static str] {
    match crash {
        "KeyError" | "IndexError" => &["LookupError", "Exception", "BaseException"],
        "JSONDecodeError" => &["ValueError", "Exception", "BaseException"],
        _ => &["Exception", "BaseException"],
    }
}

/// What every guard template shares: the culprit statement, its function's parameters and
/// the error convention.
struct Culprit<'a> {
    lines: Vec<&'a str>,
    index: usize,
    /// The statement without indentation, comment kept.
    stmt: &'a str,
    indent: &'a str,
    unit: &'static str,
    ending: &'a str,
    newline: &'static str,
    params: Vec<Param>,
    /// The exception class to raise.
    error: String,
}

impl<'a> Culprit<'a> {
    fn read(site: &Site<'a>) -> Result<Self, TemplateError> {
        let (lines, index) = culprit_line(site)?;
        let (content, ending) = split_ending(lines[index]);
        let indent = indent_of(content);
        let stmt = content[indent.len()..].trim_end();
        if indent.is_empty() {
            return Err(not_applicable("the culprit line is not inside a function"));
        }
        let first = stmt
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@'))
            .next()
            .unwrap_or_default();
        if stmt.starts_with('@')
            || [
                "elif", "else", "except", "finally", "case", "def", "async", "lambda", "class", "try", "with",
            ]
            .contains(&first)
        {
            return Err(not_applicable(format!("the culprit line starts with `{first}`")));
        }
        if stmt.ends_with([',', '(', '[', '{', '\\']) || stmt.contains(';') {
            return Err(not_applicable("the culprit line is not one complete statement"));
        }
        if !balanced(stmt) {
            return Err(not_applicable("the culprit statement spans several lines"));
        }
        if index > 0 {
            let (previous, _) = split_ending(lines[index - 1]);
            if previous.trim_end().ends_with(['\\', ',', '(', '[', '{']) {
                return Err(not_applicable("the culprit line continues the previous one"));
            }
        }
        let function = site.root_cause.function.as_str();
        let params = enclosing_function(&lines, index, function).map_err(|e| not_applicable(e.0))?;
        let error = convention(site, function)?;
        Ok(Culprit {
            lines,
            index,
            stmt,
            indent,
            unit: if indent.contains('\t') { "\t" } else { "    " },
            ending,
            newline: if ending == "\r\n" || site.source.contains("\r\n") {
                "\r\n"
            } else {
                "\n"
            },
            params,
            error,
        })
    }

    fn is_param(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }

    /// `if <condition>:` + `raise E(message)` before the statement.
    fn guard(&self, condition: &str, message: &str) -> String {
        let Culprit {
            indent, unit, newline, ..
        } = self;
        format!(
            "{indent}if {condition}:{newline}{indent}{unit}raise {error}({message}){newline}{indent}{stmt}",
            error = self.error,
            stmt = self.stmt
        )
    }

    /// The statement wrapped in `try:` / `except ValueError: raise E(message) from None`.
    fn wrap(&self, message: &str) -> String {
        let Culprit {
            indent, unit, newline, ..
        } = self;
        format!(
            "{indent}try:{newline}{indent}{unit}{stmt}{newline}{indent}except ValueError:{newline}{indent}{unit}raise {error}({message}) from None",
            stmt = self.stmt,
            error = self.error
        )
    }

    fn fix(&self, replacement: String, summary: String, params: BTreeMap<String, String>) -> TemplateFix {
        let mut params = params;
        params.insert("error".into(), self.error.clone());
        TemplateFix {
            content: replace_line(&self.lines, self.index, &replacement, self.ending),
            summary,
            params,
            expect: Expectation::Raises(self.error.clone()),
        }
    }
}

/// Brackets balance and no string literal hides them.
fn balanced(stmt: &str) -> bool {
    let code = stmt.split('#').next().unwrap_or(stmt);
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for c in code.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && quote.is_none()
}

/// The exception class a guard raises at this site: one that a caller of `function`
/// catches, that the culprit module can name, and that is not the crash's own class.
fn convention(site: &Site<'_>, function: &str) -> Result<String, TemplateError> {
    let crash = site
        .root_cause
        .exception_type
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let nameable = nameable_errors(site.source);
    let caught = caught_by_callers(site, function);
    let usable =
        |name: &String| *name != crash && !superclasses(&crash).contains(&name.as_str()) && caught.contains(name);
    // The service's own error classes first, then builtins.
    if let Some(own) = nameable.iter().find(|n| usable(n)) {
        return Ok(own.clone());
    }
    if let Some(builtin) = BUILTIN_ERRORS.iter().map(|b| b.to_string()).find(|b| usable(b)) {
        return Ok(builtin);
    }
    Err(not_applicable(format!(
        "no error convention: no caller of `{function}` in the repository catches an exception the module can raise \
         (caught: {})",
        if caught.is_empty() {
            "nothing".to_string()
        } else {
            caught.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    )))
}

/// Exception classes defined or imported by name in the module.
fn nameable_errors(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        if let Some(rest) = line.strip_prefix("class ") {
            let name = rest.split(['(', ':']).next().unwrap_or_default().trim();
            let bases = rest.split_once('(').map(|(_, b)| b).unwrap_or_default();
            if is_identifier(name) && (bases.contains("Error") || bases.contains("Exception")) {
                out.push(name.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("from ")
            && let Some((_, names)) = rest.split_once(" import ")
        {
            for part in names.trim_matches(['(', ')', ' ']).split(',') {
                let name = part.split(" as ").last().unwrap_or_default().trim();
                if is_identifier(name) && (name.ends_with("Error") || name.ends_with("Exception")) {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

/// Exception class names (last dotted segment) in `except` clauses of the repository's
/// Python files that call `function` (test files excluded: a test catching an error is not
/// a caller handling it).
fn caught_by_callers(site: &Site<'_>, function: &str) -> BTreeSet<String> {
    let mut caught = BTreeSet::new();
    let Some(repo) = site.diag.repository.as_deref().map(Path::new) else {
        return caught;
    };
    let call = format!("{function}(");
    let attr_call = format!(".{function}(");
    let mut files = Vec::new();
    python_files(repo, &mut files, 0);
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let calls = text.lines().any(|l| {
            let l = l.trim_start();
            !l.starts_with("def ") && !l.starts_with("async def ") && (l.contains(&call) || l.contains(&attr_call))
        });
        if !calls {
            continue;
        }
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix("except") else {
                continue;
            };
            let clause = rest.split(':').next().unwrap_or_default();
            let clause = clause.split(" as ").next().unwrap_or_default();
            for name in split_top_level(clause.trim().trim_matches(['(', ')']), ',') {
                let name = name.trim().rsplit('.').next().unwrap_or_default();
                if is_identifier(name) {
                    caught.insert(name.to_string());
                }
            }
        }
    }
    caught
}

fn python_files(dir: &Path, out: &mut Vec<std::path::PathBuf>, depth: usize) {
    if depth > 8 || out.len() >= MAX_FILES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if name.starts_with('.')
                || matches!(
                    name.as_str(),
                    "tests" | "test" | "node_modules" | "venv" | "site-packages" | "__pycache__" | "build" | "dist"
                )
            {
                continue;
            }
            python_files(&path, out, depth + 1);
        } else if name.ends_with(".py")
            && !name.starts_with("test_")
            && entry.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES)
        {
            out.push(path);
        }
    }
}

/// `container[key]` subscripts at the top of an expression text: (container, key text).
fn subscripts(stmt: &str) -> Vec<(String, String)> {
    let code = stmt.split('#').next().unwrap_or(stmt);
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (open, c) in code.char_indices() {
        if c != '[' {
            continue;
        }
        // The container: the dotted name just before `[`.
        let start = code[..open]
            .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let container = &code[start..open];
        if !is_dotted_name(container) || (start > 0 && bytes[start - 1] == b']') {
            continue;
        }
        let Some(close) = code[open..].find(']').map(|i| open + i) else {
            continue;
        };
        let key = code[open + 1..close].trim();
        if key.contains(['[', '(', ':']) {
            continue;
        }
        out.push((container.to_string(), key.to_string()));
    }
    out
}

/// A Python string literal for an untrusted text: plain characters only, else `None`.
fn safe_str_literal(text: &str) -> Option<String> {
    (!text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | ':' | '/' | '@' | '+')))
    .then(|| format!("\"{text}\""))
}

/// The key a KeyError message names (`'XXX'` → `"XXX"`, `42` → `42`), when it is plain.
fn key_from_message(message: &str) -> Option<String> {
    let m = message.trim();
    if let Some(inner) = m
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| m.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
    {
        return safe_str_literal(inner);
    }
    m.parse::<i64>().ok().map(|n| n.to_string())
}

fn message_of(site: &Site<'_>) -> String {
    site.diag
        .exception
        .as_ref()
        .map(|e| e.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| site.root_cause.message.clone())
}

fn input_param(param: &str, literal: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("input.param".to_string(), param.to_string()),
        ("input.value".to_string(), literal.to_string()),
    ])
}

/// `python.key-guard`: `d[key]` with a missing key → `if key not in d: raise E(...)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyGuard;

impl FixTemplate for KeyGuard {
    fn id(&self) -> &'static str {
        KEY_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_python(diag) && raised(diag, "KeyError")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let culprit = Culprit::read(site)?;
        let missing = key_from_message(&message_of(site));
        let subs = subscripts(culprit.stmt);
        // The subscript whose key the message names, else the only one on the line.
        let chosen = subs
            .iter()
            .find(|(_, key)| missing.as_deref().is_some_and(|m| key_literal_matches(key, m)))
            .or_else(|| {
                subs.iter()
                    .find(|(_, key)| culprit.is_param(key))
                    .filter(|_| subs.len() == 1)
            })
            .or_else(|| (subs.len() == 1).then(|| &subs[0]))
            .ok_or_else(|| not_applicable("cannot tell which subscript of the line raised KeyError"))?;
        let (container, key) = chosen;
        if !(is_dotted_name(key) || key_literal(key)) {
            return Err(not_applicable(format!(
                "key `{key}` is neither a name nor a plain literal"
            )));
        }
        // The failing input: the key parameter gets the missing key, or the container
        // parameter an empty dict.
        let (param, value) = if culprit.is_param(key) {
            (
                key.clone(),
                missing.clone().unwrap_or_else(|| "\"selfheal-missing-key\"".into()),
            )
        } else if culprit.is_param(container) {
            (container.clone(), "{}".into())
        } else {
            return Err(not_applicable(format!(
                "neither `{container}` nor `{key}` is a parameter of `{}`: a call cannot make the key missing",
                site.root_cause.function
            )));
        };
        let message = if is_dotted_name(key) {
            format!("f\"unknown {}: {{{key}!r}}\"", key.rsplit('.').next().unwrap_or(key))
        } else {
            format!("\"missing field {}\"", key.trim_matches(['"', '\'']))
        };
        let replacement = culprit.guard(&format!("{key} not in {container}"), &message);
        let mut params = input_param(&param, &value);
        params.insert("container".into(), container.clone());
        params.insert("key".into(), key.clone());
        Ok(culprit.fix(
            replacement,
            format!("reject a missing key of `{container}` with {}", culprit.error),
            params,
        ))
    }
}

fn key_literal(key: &str) -> bool {
    key.parse::<i64>().is_ok()
        || ((key.starts_with('"') && key.ends_with('"')) || (key.starts_with('\'') && key.ends_with('\'')))
            && key.len() >= 2
            && safe_str_literal(&key[1..key.len() - 1]).is_some()
}

fn key_literal_matches(key: &str, missing: &str) -> bool {
    key_literal(key) && key.trim_matches(['"', '\'']) == missing.trim_matches('"')
}

/// `python.none-guard`: `x.attr` / `x[...]` on `None` → `if x is None: raise E(...)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoneGuard;

impl FixTemplate for NoneGuard {
    fn id(&self) -> &'static str {
        NONE_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        let none = |m: &str| m.contains("'NoneType'");
        is_python(diag)
            && (raised(diag, "AttributeError") || raised(diag, "TypeError"))
            && (diag.exception.as_ref().is_some_and(|e| none(&e.message))
                || diag.root_cause.as_ref().is_some_and(|rc| none(&rc.message)))
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let culprit = Culprit::read(site)?;
        let message = message_of(site);
        // `'NoneType' object has no attribute 'total'` names the attribute.
        let attr = message
            .split("attribute '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .filter(|a| is_identifier(a));
        let code = culprit.stmt.split('#').next().unwrap_or(culprit.stmt);
        let candidates: Vec<&Param> = culprit
            .params
            .iter()
            .filter(|p| match attr {
                Some(a) => code.contains(&format!("{}.{a}", p.name)),
                None => code.contains(&format!("{}[", p.name)) || code.contains(&format!("{}.", p.name)),
            })
            .collect();
        let param = match candidates.as_slice() {
            [one] => one.name.clone(),
            [] => {
                return Err(not_applicable(
                    "the value that is None is not a parameter of the function (or not on the line)",
                ));
            }
            _ => return Err(not_applicable("several parameters could be the None value")),
        };
        let replacement = culprit.guard(&format!("{param} is None"), &format!("\"{param} is required\""));
        let mut params = input_param(&param, "None");
        params.insert("value".into(), param.clone());
        Ok(culprit.fix(
            replacement,
            format!("reject a missing `{param}` with {}", culprit.error),
            params,
        ))
    }
}

/// `python.empty-sequence-guard`: `seq[0]` / `seq[-1]` on an empty sequence →
/// `if not seq: raise E(...)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptySequenceGuard;

impl FixTemplate for EmptySequenceGuard {
    fn id(&self) -> &'static str {
        EMPTY_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_python(diag) && raised(diag, "IndexError")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let culprit = Culprit::read(site)?;
        let subs: Vec<(String, String)> = subscripts(culprit.stmt)
            .into_iter()
            .filter(|(c, k)| (k == "0" || k == "-1") && culprit.is_param(c))
            .collect();
        let seq = match subs.as_slice() {
            [(seq, _)] => seq.clone(),
            [] => {
                return Err(not_applicable(
                    "no `param[0]` or `param[-1]` on the line: only a first/last element of a parameter is guarded",
                ));
            }
            _ => return Err(not_applicable("several sequences are indexed on the line")),
        };
        let replacement = culprit.guard(&format!("not {seq}"), &format!("\"{seq} must not be empty\""));
        let mut params = input_param(&seq, "[]");
        params.insert("sequence".into(), seq.clone());
        Ok(culprit.fix(
            replacement,
            format!("reject an empty `{seq}` with {}", culprit.error),
            params,
        ))
    }
}

/// The argument of the single `int(...)` / `float(...)` / `json.loads(...)` call on the line
/// that is a parameter.
fn call_argument(culprit: &Culprit<'_>, callees: &[&str]) -> Result<(String, String), TemplateError> {
    let code = culprit.stmt.split('#').next().unwrap_or(culprit.stmt);
    let mut found = Vec::new();
    for callee in callees {
        let needle = format!("{callee}(");
        let mut from = 0;
        while let Some(at) = code[from..].find(&needle).map(|i| from + i) {
            from = at + needle.len();
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || (c == '.' && !callee.contains('.'))) {
                continue;
            }
            let Some(close) = code[from..].find(')').map(|i| from + i) else {
                continue;
            };
            let arg = code[from..close].trim();
            if culprit.is_param(arg) {
                found.push((callee.to_string(), arg.to_string()));
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(not_applicable(format!(
            "no `{}(<parameter>)` call on the line",
            callees.join("/")
        ))),
        _ => Err(not_applicable("several parsing calls on the line")),
    }
}

/// `python.parse-number-guard`: `int(s)` / `float(s)` of a non-numeric string → the
/// statement in `try:` / `except ValueError: raise E(...) from None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseNumberGuard;

impl FixTemplate for ParseNumberGuard {
    fn id(&self) -> &'static str {
        PARSE_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        let parse =
            |m: &str| m.contains("invalid literal for int()") || m.contains("could not convert string to float");
        is_python(diag)
            && raised(diag, "ValueError")
            && (diag.exception.as_ref().is_some_and(|e| parse(&e.message))
                || diag.root_cause.as_ref().is_some_and(|rc| parse(&rc.message)))
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let culprit = Culprit::read(site)?;
        let (callee, arg) = call_argument(&culprit, &["int", "float"])?;
        // The unparsable text from the message (`...: 'abc'`), when plain.
        let message = message_of(site);
        let value = message
            .rsplit(": ")
            .next()
            .and_then(|v| v.trim().strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .and_then(safe_str_literal)
            .unwrap_or_else(|| "\"not a number\"".into());
        let replacement = culprit.wrap(&format!("f\"{arg} must be a number, not {{{arg}!r}}\""));
        let mut params = input_param(&arg, &value);
        params.insert("call".into(), callee.clone());
        Ok(culprit.fix(
            replacement,
            format!("reject a non-numeric `{arg}` with {}", culprit.error),
            params,
        ))
    }
}

/// `python.json-guard`: `json.loads(s)` of a body that is not JSON → the statement in
/// `try:` / `except ValueError: raise E(...) from None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonGuard;

impl FixTemplate for JsonGuard {
    fn id(&self) -> &'static str {
        JSON_GUARD
    }

    fn applies(&self, diag: &Diagnosis) -> bool {
        is_python(diag) && raised(diag, "JSONDecodeError")
    }

    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError> {
        let culprit = Culprit::read(site)?;
        let (_, arg) = call_argument(&culprit, &["json.loads", "loads"])?;
        let replacement = culprit.wrap(&format!("\"{arg} is not valid JSON\""));
        let mut params = input_param(&arg, "\"not json\"");
        params.insert("call".into(), "json.loads".into());
        Ok(culprit.fix(
            replacement,
            format!("reject a `{arg}` that is not JSON with {}", culprit.error),
            params,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn subscripts_keys_and_messages() {
        assert_eq!(
            subscripts("return order[\"qty\"] * PRICES[item]  # total"),
            [
                ("order".to_string(), "\"qty\"".to_string()),
                ("PRICES".to_string(), "item".to_string())
            ]
        );
        assert!(subscripts("x = f(a)[0]").is_empty());
        assert_eq!(key_from_message("'mango'").as_deref(), Some("\"mango\""));
        assert_eq!(key_from_message("42").as_deref(), Some("42"));
        assert_eq!(key_from_message("'a\"); import os; (\"'"), None);
        assert!(key_literal_matches("\"quantity\"", "\"quantity\""));
        assert!(!key_literal_matches("item", "\"item\""));
        assert!(balanced("x = f(a, [1, 2])"));
        assert!(!balanced("x = f(a,"));
        // Brackets inside strings do not count; an unterminated string is not complete.
        assert!(balanced("x = \"(\" + y"));
        assert!(!balanced("x = \"abc"));
    }

    #[test]
    fn only_errors_the_module_can_name_and_callers_catch_are_raised() {
        let source =
            "from .errors import BadInputError, helper\nclass Oops(ValueError):\n    pass\nclass Plain:\n    pass\n";
        assert_eq!(nameable_errors(source), ["BadInputError", "Oops"]);
        assert!(superclasses("JSONDecodeError").contains(&"ValueError"));
        assert!(superclasses("KeyError").contains(&"LookupError"));
    }
}
