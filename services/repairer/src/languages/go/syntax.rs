//! Reading Go source well enough for the templates and the test writer: comments and
//! literals masked out, the top-level function around a line and its signature, the
//! package clause, imports, and the error values a function already returns.
//!
//! This is not a parser. It relies on gofmt's layout (a top-level `func` starts at column 0
//! and its body closes with a `}` at column 0); every reading either finds the shape it
//! expects or returns `None`, and the callers decline. Whatever they rewrite is compiled and
//! tested in the sandbox afterwards.

/// Go keywords: never a variable, parameter or type name.
const KEYWORDS: &[&str] = &[
    "break",
    "case",
    "chan",
    "const",
    "continue",
    "default",
    "defer",
    "else",
    "fallthrough",
    "for",
    "func",
    "go",
    "goto",
    "if",
    "import",
    "interface",
    "map",
    "package",
    "range",
    "return",
    "select",
    "struct",
    "switch",
    "type",
    "var",
];

/// Whether `c` can be part of a Go identifier (ASCII subset).
pub fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether `text` is a plain Go identifier (ASCII), not a keyword and not `_`.
pub fn is_identifier(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && !bytes[0].is_ascii_digit()
        && bytes.iter().all(|c| is_word_byte(*c))
        && text != "_"
        && !KEYWORDS.contains(&text)
}

/// Whether `text` is an identifier or a selector chain of identifiers (`c.items`, `s.cfg.limit`).
pub fn is_selector_chain(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_identifier)
}

/// `source` with the contents of comments and string/rune literals replaced by spaces (the
/// quotes stay), so byte offsets and line breaks are those of the original.
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
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c && bytes[i] != b'\n' {
                if bytes[i] == b'\\' {
                    out[i] = b' ';
                    i += 1;
                    if i >= bytes.len() {
                        break;
                    }
                }
                out[i] = b' ';
                i += 1;
            }
            i += 1;
        } else if c == b'`' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'`' {
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
    // Only ASCII bytes were replaced by ASCII spaces inside literals and comments; a
    // multi-byte character there is replaced byte by byte, which stays valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| " ".repeat(source.len()))
}

/// A parameter or result: its name (empty when unnamed) and its type as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, empty for an unnamed parameter or result.
    pub name: String,
    /// The type as written (`int`, `*Store`, `[]string`, `...int`).
    pub ty: String,
}

/// A top-level function or method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoFunc {
    /// Its name.
    pub name: String,
    /// The receiver of a method.
    pub receiver: Option<Param>,
    /// Whether it has type parameters (`func F[T any](…)`).
    pub generic: bool,
    /// Its parameters.
    pub params: Vec<Param>,
    /// Its results.
    pub results: Vec<Param>,
    /// Index of the line holding `func`.
    pub header: usize,
    /// Index of the line holding the body's opening `{`.
    pub body_start: usize,
    /// Index of the line holding the body's closing `}`.
    pub body_end: usize,
}

impl GoFunc {
    /// Whether the last result is `error`.
    pub fn returns_error(&self) -> bool {
        self.results.last().is_some_and(|r| r.ty == "error")
    }

    /// Whether it is a net/http handler: `(w http.ResponseWriter, r *http.Request)`.
    pub fn http_handler(&self) -> Option<(String, String)> {
        let [w, r] = self.params.as_slice() else {
            return None;
        };
        (w.ty == "http.ResponseWriter" && r.ty == "*http.Request" && is_identifier(&w.name) && is_identifier(&r.name))
            .then(|| (w.name.clone(), r.name.clone()))
    }

    /// The parameter (or receiver) called `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().chain(self.receiver.iter()).find(|p| p.name == name)
    }
}

/// The index of the matching close bracket for the open bracket at `open` (masked text).
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

/// Splits at top-level commas (outside brackets).
pub fn split_top(text: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ if b == sep && depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// Reads a parameter list's inside (`a, b int, c string` or `int, error`).
pub fn parse_params(inside: &str) -> Option<Vec<Param>> {
    let inside = inside.trim();
    if inside.is_empty() {
        return Some(Vec::new());
    }
    let mut out: Vec<Param> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut named = false;
    for item in split_top(inside, b',') {
        let item = item.trim();
        if item.is_empty() {
            return None;
        }
        // "name type": the first space outside brackets separates them.
        let split = top_level_space(item);
        match split {
            Some(at) if is_identifier(&item[..at]) => {
                named = true;
                let ty = item[at..].trim().to_string();
                for name in pending.drain(..) {
                    out.push(Param { name, ty: ty.clone() });
                }
                out.push(Param {
                    name: item[..at].to_string(),
                    ty,
                });
            }
            _ => pending.push(item.to_string()),
        }
    }
    if named && !pending.is_empty() {
        return None;
    }
    // No names at all: every item was a type.
    out.extend(pending.into_iter().map(|ty| Param {
        name: String::new(),
        ty,
    }));
    Some(out)
}

fn top_level_space(item: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, b) in item.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b' ' | b'\t' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The line start offsets of `text` (one per line, the first is 0).
pub fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            starts.push(i + 1);
        }
    }
    starts
}

/// The top-level function whose body holds line `index` (0-based), from the masked source.
pub fn enclosing_func(masked: &str, index: usize) -> Option<GoFunc> {
    let starts = line_starts(masked);
    let header = (0..=index)
        .rev()
        .find(|i| line_at(masked, &starts, *i).starts_with("func "))?;
    let start = starts.get(header).copied()?;
    let text = masked.get(start..)?;
    let mut rest = text.strip_prefix("func ")?.trim_start();
    let mut consumed = text.len() - rest.len();
    let receiver = if rest.starts_with('(') {
        let close = matching(rest, 0)?;
        let mut params = parse_params(&rest[1..close])?;
        if params.len() != 1 {
            return None;
        }
        let r = params.pop()?;
        let trimmed = rest[close + 1..].trim_start();
        consumed += rest.len() - trimmed.len();
        rest = trimmed;
        Some(r)
    } else {
        None
    };
    let name_len = rest.bytes().take_while(|b| is_word_byte(*b)).count();
    let name = rest.get(..name_len)?.to_string();
    if !is_identifier(&name) {
        return None;
    }
    rest = &rest[name_len..];
    consumed += name_len;
    let mut generic = false;
    if rest.starts_with('[') {
        generic = true;
        let close = matching(rest, 0)?;
        rest = &rest[close + 1..];
        consumed += close + 1;
    }
    if !rest.starts_with('(') {
        return None;
    }
    let close = matching(rest, 0)?;
    let params = parse_params(&rest[1..close])?;
    let after = &rest[close + 1..];
    consumed += close + 1;
    // Results run to the body's `{` (a result list never holds a brace but `struct{}`/
    // `interface{}`, which gofmt writes without a space before `{`).
    let brace = find_body_brace(after)?;
    let results_text = after[..brace].trim();
    let results = if results_text.starts_with('(') {
        let close = matching(results_text, 0)?;
        if close + 1 != results_text.len() {
            return None;
        }
        parse_params(&results_text[1..close])?
    } else if results_text.is_empty() {
        Vec::new()
    } else {
        vec![Param {
            name: String::new(),
            ty: results_text.to_string(),
        }]
    };
    let open_at = start + consumed + brace;
    let body_start = starts.iter().rposition(|s| *s <= open_at)?;
    let close_at = matching(masked, open_at)?;
    let body_end = starts.iter().rposition(|s| *s <= close_at)?;
    if index <= body_start && index != header || index > body_end {
        return None;
    }
    Some(GoFunc {
        name,
        receiver,
        generic,
        params,
        results,
        header,
        body_start,
        body_end,
    })
}

/// Line `i` of `text`, with its ending.
fn line_at<'a>(text: &'a str, starts: &[usize], i: usize) -> &'a str {
    let start = starts.get(i).copied().unwrap_or(text.len());
    let end = starts.get(i + 1).copied().unwrap_or(text.len());
    text.get(start..end).unwrap_or("")
}

/// The offset of the `{` that opens a body after a signature's parameter list.
fn find_body_brace(after: &str) -> Option<usize> {
    let bytes = after.as_bytes();
    let mut depth = 0i32;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'{' if depth == 0 => {
                // `struct{}` / `interface{}` in a result type.
                let before = after[..i].trim_end();
                if before.ends_with("struct") || before.ends_with("interface") {
                    let close = matching(after, i)?;
                    return find_body_brace(&after[close + 1..]).map(|j| close + 1 + j);
                }
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

/// The package name of a Go file (`package stock`).
pub fn package_name(masked: &str) -> Option<String> {
    masked.lines().find_map(|l| {
        let name = l.strip_prefix("package ")?.trim();
        is_identifier(name).then(|| name.to_string())
    })
}

/// The imported paths of a file, from its (unmasked) source.
pub fn imports(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in source.lines() {
        let t = line.trim();
        if in_block {
            if t.starts_with(')') {
                in_block = false;
                continue;
            }
            if let Some(path) = quoted(t) {
                out.push(path);
            }
        } else if let Some(rest) = t.strip_prefix("import") {
            let rest = rest.trim_start();
            if rest.starts_with('(') {
                in_block = true;
            } else if let Some(path) = quoted(rest) {
                out.push(path);
            }
        } else if t.starts_with("func ") || t.starts_with("type ") || t.starts_with("var ") {
            break;
        }
    }
    out
}

fn quoted(t: &str) -> Option<String> {
    let open = t.find('"')?;
    let close = t[open + 1..].find('"')? + open + 1;
    Some(t[open + 1..close].to_string())
}

/// `source` with `path` imported (nothing changes when it already is).
pub fn with_import(source: &str, path: &str) -> Option<String> {
    if imports(source).iter().any(|p| p == path) {
        return Some(source.to_string());
    }
    let mut out = String::with_capacity(source.len() + path.len() + 16);
    let mut done = false;
    let mut lines = source.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if !done && t == "import (" {
            out.push_str(line);
            // Sorted into the first group (the standard library's, in gofmt's layout).
            while let Some(next) = lines.peek() {
                let nt = next.trim();
                if nt.is_empty() || nt.starts_with(')') {
                    break;
                }
                match quoted(nt) {
                    Some(existing) if existing.as_str() < path && !nt.contains(' ') => {
                        out.push_str(next);
                        lines.next();
                    }
                    _ => break,
                }
            }
            out.push_str(&format!("\t\"{path}\"\n"));
            done = true;
            continue;
        }
        if !done && t.starts_with("import \"") {
            out.push_str(&format!(
                "import (\n\t\"{path}\"\n\t{}\n)\n",
                t.trim_start_matches("import ").trim()
            ));
            done = true;
            continue;
        }
        if !done && line.starts_with("package ") {
            out.push_str(line);
            let has_import = source.lines().any(|l| l.trim_start().starts_with("import"));
            if !has_import {
                out.push_str(&format!("\nimport \"{path}\"\n"));
                done = true;
            }
            continue;
        }
        out.push_str(line);
    }
    done.then_some(out)
}

/// The zero value of a Go type as an expression, when it has a plain one.
pub fn zero_value(ty: &str) -> Option<String> {
    let ty = ty.trim();
    let value = match ty {
        "int" | "int8" | "int16" | "int32" | "int64" | "uint" | "uint8" | "uint16" | "uint32" | "uint64"
        | "uintptr" | "byte" | "rune" | "float32" | "float64" | "complex64" | "complex128" => "0".to_string(),
        "string" => "\"\"".to_string(),
        "bool" => "false".to_string(),
        "error" | "any" => "nil".to_string(),
        _ if ty.starts_with('*')
            || ty.starts_with("[]")
            || ty.starts_with("map[")
            || ty.starts_with("chan ")
            || ty.starts_with("<-chan")
            || ty.starts_with("func(")
            || ty.starts_with("interface") =>
        {
            "nil".to_string()
        }
        _ if ty.starts_with('[') => format!("{ty}{{}}"),
        _ if is_selector_chain(ty) && ty.split('.').count() <= 2 => format!("{ty}{{}}"),
        _ => return None,
    };
    Some(value)
}

/// Whether a type is one of Go's numeric types.
pub fn is_numeric(ty: &str) -> bool {
    matches!(
        ty,
        "int"
            | "int8"
            | "int16"
            | "int32"
            | "int64"
            | "uint"
            | "uint8"
            | "uint16"
            | "uint32"
            | "uint64"
            | "uintptr"
            | "byte"
            | "rune"
            | "float32"
            | "float64"
    )
}

/// A Go interpreted string literal of `text` (quotes, backslashes, control and non-ASCII
/// characters escaped), so untrusted text can sit in generated code.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// The leading whitespace of a line.
pub fn indent_of(line: &str) -> &str {
    let n = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..n]
}

/// Every occurrence of `word` as a whole identifier in `text` (byte offsets).
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

/// The selector chain that ends right before byte `end` of `text` (`c.items` in `c.items[k]`).
pub fn chain_before(text: &str, end: usize) -> Option<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut start = end;
    while start > 0 && (is_word_byte(bytes[start - 1]) || bytes[start - 1] == b'.') {
        start -= 1;
    }
    let chain = text.get(start..end)?;
    is_selector_chain(chain).then_some((start, chain))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SRC: &str = "package stock\n\nimport (\n\t\"fmt\"\n\t\"strings\"\n)\n\n// Parse reads \"a-b\".\nfunc (s *Store) Parse(code string, n, m int) (Location, error) {\n\tparts := strings.Split(code, \"-\")\n\treturn Location{}, fmt.Errorf(\"%w: x\", ErrInvalid)\n}\n\nfunc F() {}\n";

    #[test]
    fn reads_the_enclosing_function() {
        let masked = mask(SRC);
        let f = enclosing_func(&masked, 9).unwrap();
        assert_eq!(f.name, "Parse");
        assert_eq!(f.receiver.as_ref().unwrap().ty, "*Store");
        assert_eq!(f.params.len(), 3);
        assert_eq!((f.params[1].name.as_str(), f.params[1].ty.as_str()), ("n", "int"));
        assert_eq!(f.results.len(), 2);
        assert!(f.returns_error());
        assert_eq!((f.header, f.body_start, f.body_end), (8, 8, 11));
        assert!(enclosing_func(&masked, 12).is_none(), "between functions");
        assert_eq!(package_name(&masked).as_deref(), Some("stock"));
        assert_eq!(imports(SRC), ["fmt", "strings"]);
        assert!(masked.contains("Split(code, \" \")"));
    }

    #[test]
    fn imports_are_added_in_order() {
        let with = with_import(SRC, "errors").unwrap();
        assert!(with.contains("import (\n\t\"errors\"\n\t\"fmt\"\n"), "{with}");
        let single = with_import("package a\n\nimport \"fmt\"\n\nfunc F() {}\n", "errors").unwrap();
        assert!(single.contains("import (\n\t\"errors\"\n\t\"fmt\"\n)\n"), "{single}");
        let none = with_import("package a\n\nfunc F() {}\n", "errors").unwrap();
        assert!(none.contains("package a\n\nimport \"errors\"\n"), "{none}");
    }

    #[test]
    fn zero_values_and_literals() {
        assert_eq!(zero_value("int64").as_deref(), Some("0"));
        assert_eq!(zero_value("Location").as_deref(), Some("Location{}"));
        assert_eq!(zero_value("*Store").as_deref(), Some("nil"));
        assert_eq!(zero_value("[]int").as_deref(), Some("nil"));
        assert_eq!(zero_value("func() int").as_deref(), Some("nil"));
        assert_eq!(zero_value("Pair[int]").as_deref(), None);
        assert_eq!(string_literal("a\"b\\\n\u{2028}"), "\"a\\\"b\\\\\\n\\u2028\"");
        assert_eq!(parse_params("int, error").unwrap().len(), 2);
        assert!(parse_params("a, b").unwrap().iter().all(|p| p.name.is_empty()));
    }
}
