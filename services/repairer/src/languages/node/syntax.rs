//! Reading JavaScript well enough for the templates and the test writer: comments and
//! string/template literals masked out, the function around a line (declarations, methods,
//! arrow functions bound to a name), its parameters, what a module exports, and the error
//! classes a file already throws.
//!
//! This is not a parser. Every reading either finds the exact shape it expects or returns
//! `None`, and the callers decline; whatever they rewrite is run in the sandbox afterwards.

/// Words that look like a call or a method header but are not functions.
const CONTROL_WORDS: &[&str] = &[
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "return",
    "typeof",
    "new",
    "throw",
    "await",
    "function",
    "else",
    "do",
    "try",
    "case",
    "delete",
    "void",
    "yield",
    "in",
    "of",
    "instanceof",
    "super",
    "import",
];

/// The JavaScript error classes that mean a bug, never a handled outcome.
pub const BUILTIN_ERRORS: &[&str] = &[
    "Error",
    "TypeError",
    "RangeError",
    "SyntaxError",
    "ReferenceError",
    "EvalError",
    "URIError",
    "AggregateError",
];

/// Whether `c` can be part of an identifier (ASCII subset).
pub fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// Whether `text` is a plain identifier and not a control word.
pub fn is_identifier(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && !bytes[0].is_ascii_digit()
        && bytes.iter().all(|c| is_word_byte(*c))
        && !CONTROL_WORDS.contains(&text)
        && !matches!(
            text,
            "const" | "let" | "var" | "true" | "false" | "null" | "undefined" | "class"
        )
}

/// `a`, `a.b.c`, `this.x`: identifiers joined by dots.
pub fn is_member_chain(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .enumerate()
            .all(|(i, p)| is_identifier(p) || (i == 0 && p == "this"))
}

/// `source` with comments and the contents of string and template literals replaced by
/// spaces (quotes stay), so offsets and line breaks are the original's.
pub fn mask(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let start = i;
            i += 2;
            while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            let end = (i + 2).min(bytes.len());
            for (k, b) in out.iter_mut().enumerate().take(end).skip(start) {
                if bytes[k] != b'\n' {
                    *b = b' ';
                }
            }
            i = end;
        } else if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < bytes.len() && bytes[i] != c && (c == b'`' || bytes[i] != b'\n') {
                if bytes[i] == b'\\' {
                    out[i] = b' ';
                    i += 1;
                    if i >= bytes.len() {
                        break;
                    }
                }
                if bytes[i] != b'\n' {
                    out[i] = b' ';
                }
                i += 1;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| " ".repeat(source.len()))
}

/// The index of the bracket closing the one at `open`.
pub fn matching(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (o, c) = match bytes.get(open)? {
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        b'{' => (b'{', b'}'),
        _ => return None,
    };
    let mut depth = 0usize;
    for (i, b) in bytes.iter().enumerate().skip(open) {
        if *b == o {
            depth += 1;
        } else if *b == c {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// A function: its name, parameters (identifiers only, else `None`), whether it is async,
/// and the lines of its header and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsFunc {
    /// Its name (the binding of an arrow function, the method's name).
    pub name: String,
    /// Its parameters, when every one is a plain identifier (defaults allowed).
    pub params: Option<Vec<String>>,
    /// `async`.
    pub is_async: bool,
    /// Index of the header line.
    pub header: usize,
    /// Index of the line with the body's closing `}`.
    pub body_end: usize,
}

/// Line start offsets.
pub fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            starts.push(i + 1);
        }
    }
    starts
}

/// The innermost named function whose body holds line `index`, from the masked source.
pub fn enclosing_function(masked: &str, index: usize) -> Option<JsFunc> {
    let starts = line_starts(masked);
    for h in (0..=index).rev() {
        let start = starts.get(h).copied()?;
        let end = starts.get(h + 1).copied().unwrap_or(masked.len());
        let line = masked.get(start..end)?;
        let Some((name, params_open, is_async)) = header(line) else {
            continue;
        };
        let open_abs = start + params_open;
        let close = matching(masked, open_abs)?;
        let after = masked.get(close + 1..)?;
        let arrow_or_brace = after.trim_start();
        let brace_rel = if let Some(rest) = arrow_or_brace.strip_prefix("=>") {
            let lead = after.len() - arrow_or_brace.len() + 2;
            let ws = rest.len() - rest.trim_start().len();
            if !rest.trim_start().starts_with('{') {
                continue; // an expression-bodied arrow: no statements to guard
            }
            lead + ws
        } else if arrow_or_brace.starts_with('{') {
            after.len() - arrow_or_brace.len()
        } else {
            continue;
        };
        let brace = close + 1 + brace_rel;
        let body_close = matching(masked, brace)?;
        let body_end = starts.iter().rposition(|s| *s <= body_close)?;
        if body_end < index || h == index && body_end == index {
            continue;
        }
        let params = masked.get(open_abs + 1..close).and_then(parse_params);
        return Some(JsFunc {
            name,
            params,
            is_async,
            header: h,
            body_end,
        });
    }
    None
}

/// A function header on a masked line: name, offset of the `(` of its parameters, async.
fn header(line: &str) -> Option<(String, usize, bool)> {
    let t = line.trim_start();
    let lead = line.len() - t.len();
    let is_async = t.starts_with("async ") || t.contains("= async ") || t.contains(": async ");
    // function NAME(  /  async function NAME(  /  export [default] [async] function NAME(
    let keyword = find_word(t, "function").into_iter().next();
    if let Some(at) = keyword {
        let before = t[..at].trim();
        let ok_before = before.is_empty()
            || before
                .split_whitespace()
                .all(|w| matches!(w, "export" | "default" | "async"))
            || before.ends_with('=')
            || before.ends_with(':');
        let rest = t[at + "function".len()..].trim_start_matches('*').trim_start();
        let name_len = rest.bytes().take_while(|b| is_word_byte(*b)).count();
        let name = &rest[..name_len];
        let paren = rest[name_len..].trim_start();
        if ok_before && paren.starts_with('(') {
            let binding = if name.is_empty() {
                bound_name(before)?
            } else {
                name.to_string()
            };
            let offset = lead + (t.len() - paren.len());
            return Some((binding, offset, is_async));
        }
    }
    // const NAME = (…) =>  /  const NAME = async (…) =>  /  NAME: (…) =>
    if let Some(eq) = t.find(" = ").or_else(|| t.find(": ")) {
        let rest = t[eq + 2..].trim_start();
        let rest = rest.strip_prefix("async").map_or(rest, str::trim_start);
        if rest.starts_with('(') && t.contains("=>") {
            let name = bound_name(&t[..=eq + 1])?;
            return Some((name, lead + (t.len() - rest.len()), is_async));
        }
    }
    // Method shorthand:  NAME(…) {   /   async NAME(…) {   /   static NAME(…) {
    let words = t
        .trim_start_matches("static ")
        .trim_start_matches("async ")
        .trim_start();
    let name_len = words.bytes().take_while(|b| is_word_byte(*b)).count();
    let name = &words[..name_len];
    if is_identifier(name) && words[name_len..].starts_with('(') && t.trim_end().ends_with('{') {
        return Some((name.to_string(), lead + (t.len() - words.len()) + name_len, is_async));
    }
    None
}

/// `const NAME =` / `NAME:` / `exports.NAME =` → `NAME`.
fn bound_name(before: &str) -> Option<String> {
    let b = before.trim().trim_end_matches([':', '=']).trim();
    let last = b.rsplit([' ', '.']).next()?;
    is_identifier(last).then(|| last.to_string())
}

/// Parameter names, when each is an identifier with an optional default.
pub fn parse_params(inside: &str) -> Option<Vec<String>> {
    if inside.trim().is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, b) in inside.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                parts.push(&inside[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inside[start..]);
    for p in parts {
        let name = p.split('=').next()?.trim();
        if name.is_empty() {
            continue; // trailing comma
        }
        if !is_identifier(name) {
            return None;
        }
        out.push(name.to_string());
    }
    Some(out)
}

/// Every occurrence of `word` as a whole identifier (not after a `.`).
pub fn find_word(text: &str, word: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text.get(from..).and_then(|t| t.find(word)) {
        let at = from + at;
        let end = at + word.len();
        let before_ok = at == 0 || !is_word_byte(bytes[at - 1]) && bytes[at - 1] != b'.';
        let after_ok = end >= bytes.len() || !is_word_byte(bytes[end]);
        if before_ok && after_ok {
            out.push(at);
        }
        from = end;
    }
    out
}

/// The member chain ending right before byte `end` (`order.address` in `order.address.city`).
pub fn chain_before(text: &str, end: usize) -> Option<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut start = end;
    while start > 0 && (is_word_byte(bytes[start - 1]) || bytes[start - 1] == b'.') {
        start -= 1;
    }
    let chain = text.get(start..end)?;
    // `a?.b.c`: an optional chain before is not a plain chain.
    if start > 0 && bytes[start - 1] == b'?' {
        return None;
    }
    is_member_chain(chain).then_some((start, chain))
}

/// The error classes thrown with `throw new X(` in `masked`, in order of appearance.
pub fn thrown_classes(masked: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(at) = masked.get(from..).and_then(|t| t.find("throw new ")) {
        let rest = &masked[from + at + "throw new ".len()..];
        let len = rest.bytes().take_while(|b| is_word_byte(*b)).count();
        let name = &rest[..len];
        if is_identifier(name) && rest[len..].starts_with('(') && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        from += at + "throw new ".len();
    }
    out
}

/// How a module exports a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// `module.exports = { name }`, `exports.name =`, `export function name`, `export { name }`.
    Named,
    /// `module.exports = name`, `export default function name`.
    Default,
}

/// How `name` is exported from a module, when it is.
pub fn export_of(masked: &str, name: &str) -> Option<Export> {
    for line in masked.lines() {
        let t = line.trim();
        if (t.starts_with("export function ")
            || t.starts_with("export async function ")
            || t.starts_with("export const ")
            || t.starts_with("export let "))
            && !find_word(t, name).is_empty()
        {
            return Some(Export::Named);
        }
        if t.starts_with("export default") && !find_word(t, name).is_empty() {
            return Some(Export::Default);
        }
        if t.starts_with(&format!("exports.{name} ")) || t.starts_with(&format!("module.exports.{name} ")) {
            return Some(Export::Named);
        }
        if let Some(rest) = t.strip_prefix("module.exports =") {
            let rest = rest.trim().trim_end_matches(';');
            if rest == name {
                return Some(Export::Default);
            }
        }
    }
    // `module.exports = { a, b }` / `export { a, b }`, possibly over several lines.
    for opener in ["module.exports = {", "export {"] {
        let mut from = 0;
        while let Some(at) = masked.get(from..).and_then(|t| t.find(opener)) {
            let open = from + at + opener.len() - 1;
            let close = matching(masked, open)?;
            let inside = &masked[open + 1..close];
            for item in inside.split(',') {
                let item = item.trim();
                let exported = item.split(':').next().unwrap_or(item).trim();
                let local = item.rsplit(':').next().unwrap_or(item).trim();
                let local = local.split(" as ").next().unwrap_or(local).trim();
                if exported == name || local == name {
                    return Some(Export::Named);
                }
            }
            from = close;
        }
    }
    None
}

/// A JavaScript string literal (double quotes) of `text`, with every character a JS parser
/// could misread escaped.
pub fn string_literal(text: &str) -> String {
    let json = serde_json::Value::String(text.to_string()).to_string();
    json.replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029")
}

/// The leading whitespace of a line.
pub fn indent_of(line: &str) -> &str {
    let n = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..n]
}

/// The indentation step of a file: a tab, else the smallest non-zero run of spaces (2 by default).
pub fn indent_unit(source: &str) -> String {
    if source.lines().any(|l| l.starts_with('\t')) {
        return "\t".into();
    }
    let smallest = source
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .filter(|n| *n > 0)
        .min()
        .unwrap_or(2);
    " ".repeat(smallest.min(8))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SRC: &str = "'use strict';\nclass BadRequestError extends Error {}\n\nfunction shippingQuote(order, rate = 1) {\n  const zone = ZONES[order.country]; // 'x'\n  return zone.baseCents;\n}\n\nconst area = async (w, h) => {\n  return w * h;\n};\n\nmodule.exports = {\n  BadRequestError,\n  shippingQuote,\n};\n";

    #[test]
    fn functions_exports_and_classes() {
        let masked = mask(SRC);
        let f = enclosing_function(&masked, 5).unwrap();
        assert_eq!(f.name, "shippingQuote");
        assert_eq!(
            f.params.as_deref(),
            Some(&["order".to_string(), "rate".to_string()][..])
        );
        assert_eq!((f.header, f.body_end), (3, 6));
        let g = enclosing_function(&masked, 9).unwrap();
        assert_eq!((g.name.as_str(), g.is_async), ("area", true));
        assert!(enclosing_function(&masked, 1).is_none());
        assert_eq!(export_of(&masked, "shippingQuote"), Some(Export::Named));
        assert_eq!(export_of(&masked, "area"), None);
        assert_eq!(export_of("module.exports = area;\n", "area"), Some(Export::Default));
        assert_eq!(
            export_of("export async function run(x) {}\n", "run"),
            Some(Export::Named)
        );
        assert_eq!(
            thrown_classes("if (x) throw new BadRequestError('a');\nthrow new Error('b');"),
            ["BadRequestError", "Error"]
        );
        assert!(masked.contains("// '  '") || !masked.contains("'x'"));
        assert_eq!(chain_before("  return zone.baseCents", 13), Some((9, "zone")));
        assert_eq!(string_literal("a\"\u{2028}"), "\"a\\\"\\u2028\"");
        assert_eq!(indent_unit(SRC), "  ");
    }
}
