//! Just enough Python source reading for the templates and regression tests: identifiers,
//! top-level splitting of expressions, `def` headers and their parameters.
//!
//! This is deliberately not a parser: every helper answers "I can't tell" (`None`) for
//! anything unusual, and the callers then refuse rather than guess.

/// Python's reserved words; none of them may name a module, function or parameter we emit.
const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// Whether `text` is a plain ASCII identifier that is not a keyword.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_ascii_alphanumeric()) && !KEYWORDS.contains(&text)
}

/// Whether `text` is `name` or `name.attr.attr` (each part an identifier).
pub fn is_dotted_name(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_identifier)
}

/// Leading whitespace of a line.
pub fn indent_of(line: &str) -> &str {
    let trimmed = line.trim_start_matches([' ', '\t']);
    &line[..line.len() - trimmed.len()]
}

/// Splits `code` into the code and a trailing `# comment` (comment includes the `#`).
/// Returns `None` when the line holds string quotes: then `#` may be inside a string.
pub fn split_comment(code: &str) -> Option<(&str, Option<&str>)> {
    if code.contains(['"', '\'']) {
        return None;
    }
    Some(match code.find('#') {
        Some(at) => (&code[..at], Some(&code[at..])),
        None => (code, None),
    })
}

/// Byte index of the `)` that closes the `(` at `open`, counting all bracket kinds.
pub fn matching_close(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return if c == ')' { Some(i) } else { None };
                }
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits `text` at `sep` where it is not nested in brackets.
pub fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A `def` header: the function's name, its parameter list text and where its body starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefHeader {
    /// The function name.
    pub name: String,
    /// The text between the parentheses.
    pub params: String,
    /// Byte offset (in the text given to [`parse_def`]) just after the header's `:`.
    pub body_start: usize,
}

/// Parses `def name(params) [-> ann]:` at the start of `text` (after indentation); the
/// parameter list may span lines. `None` when `text` does not start with such a header.
pub fn parse_def(text: &str) -> Option<DefHeader> {
    let indent = indent_of(text).len();
    let rest = &text[indent..];
    let after_async = rest
        .strip_prefix("async")
        .filter(|r| r.starts_with([' ', '\t']))
        .map(str::trim_start)
        .unwrap_or(rest);
    let after_def = after_async.strip_prefix("def")?;
    if !after_def.starts_with([' ', '\t']) {
        return None;
    }
    let name_start = text.len() - after_def.trim_start().len();
    let open = name_start + text[name_start..].find('(')?;
    let name = text[name_start..open].trim();
    if !is_identifier(name) {
        return None;
    }
    let close = matching_close(text, open)?;
    // The header ends at the first `:` after the parameters (a return annotation has no `:` at top level).
    let mut depth = 0i32;
    let mut colon = None;
    for (i, c) in text[close + 1..].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ':' if depth == 0 => {
                colon = Some(close + 1 + i);
                break;
            }
            '\n' if depth == 0 => return None,
            _ => {}
        }
    }
    let colon = colon?;
    Some(DefHeader {
        name: name.to_string(),
        params: text[open + 1..close].to_string(),
        body_start: colon + 1,
    })
}

/// One parameter of a function, as a caller must supply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// It has a default value.
    pub has_default: bool,
    /// It can only be passed by keyword (it follows `*` or `*args`).
    pub keyword_only: bool,
    /// It can only be passed by position (it precedes `/`).
    pub positional_only: bool,
}

/// The named parameters of a parameter list; `*args`/`**kwargs` are left out, `None` when a
/// parameter is not a plain identifier (e.g. tuple unpacking in very old code).
pub fn parse_params(params: &str) -> Option<Vec<Param>> {
    let mut out: Vec<Param> = Vec::new();
    let mut keyword_only = false;
    for raw in split_top_level(params, ',') {
        // Drop line comments inside multi-line parameter lists.
        let raw: String = raw
            .lines()
            .map(|line| line.split('#').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        if raw == "/" {
            for param in &mut out {
                param.positional_only = true;
            }
            continue;
        }
        if raw == "*" || (raw.starts_with('*') && !raw.starts_with("**")) {
            keyword_only = true;
            continue;
        }
        if raw.starts_with("**") {
            continue;
        }
        let (before_default, has_default) = match split_top_level(raw, '=').as_slice() {
            [only] => (only.to_string(), false),
            [first, ..] => (first.to_string(), true),
            [] => return None,
        };
        let name = split_top_level(&before_default, ':')[0].trim().to_string();
        if !is_identifier(&name) {
            return None;
        }
        out.push(Param {
            name,
            has_default,
            keyword_only,
            positional_only: false,
        });
    }
    Some(out)
}

/// The text of a Python number literal for an untrusted input value, or `None` when it is not
/// a finite number. Integers stay integers; everything else becomes a float literal.
pub fn number_literal(text: &str) -> Option<(String, f64)> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if let Ok(int) = text.parse::<i64>() {
        return Some((int.to_string(), int as f64));
    }
    let value = text.parse::<f64>().ok().filter(|v| v.is_finite())?;
    // Debug formatting always keeps a `.` or exponent, so Python reads it back as a float.
    Some((format!("{value:?}"), value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_reject_keywords_and_symbols() {
        assert!(is_identifier("calc"));
        assert!(is_identifier("_p2"));
        assert!(!is_identifier("2p"));
        assert!(!is_identifier("None"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier("ä"));
        assert!(is_dotted_name("self.count"));
        assert!(!is_dotted_name("self..count"));
    }

    #[test]
    fn def_header_one_line_and_multi_line() {
        let h = parse_def("def calc(p, d): return p / d").unwrap();
        assert_eq!(h.name, "calc");
        assert_eq!(h.params, "p, d");
        assert_eq!(&"def calc(p, d): return p / d"[h.body_start..], " return p / d");
        let text = "async def f(\n    a: float,\n    b: dict = {'x': 1},\n) -> float:\n    return a";
        let h = parse_def(text).unwrap();
        assert_eq!(h.name, "f");
        let params = parse_params(&h.params).unwrap();
        assert_eq!(params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(params[1].has_default);
        assert!(parse_def("    x = def_value(1)").is_none());
        assert!(parse_def("define(x)").is_none());
    }

    #[test]
    fn params_skip_star_markers_and_mark_keyword_only() {
        let p = parse_params("self, a, /, b=2, *args, c, **kw").unwrap();
        let names: Vec<_> = p.iter().map(|p| (p.name.as_str(), p.keyword_only)).collect();
        assert_eq!(names, [("self", false), ("a", false), ("b", false), ("c", true)]);
        assert!(parse_params("(a, b), c").is_none());
    }

    #[test]
    fn number_literals_are_parsed_not_copied() {
        assert_eq!(number_literal("0.0").unwrap().0, "0.0");
        assert_eq!(number_literal("0").unwrap().0, "0");
        assert_eq!(number_literal(" 49.99 ").unwrap().0, "49.99");
        assert_eq!(number_literal("1e-7").unwrap().0, "1e-7");
        assert!(number_literal("NaN").is_none());
        assert!(number_literal("inf").is_none());
        assert!(number_literal("1); import os; (").is_none());
        assert!(number_literal("lamp").is_none());
    }
}
