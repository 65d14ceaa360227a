//! Reading Java source well enough for the templates and the test writer: comments and
//! literals masked out, blocks and their headers (types, methods, constructors), method
//! signatures, the statement around a line, declarations in scope, and the exceptions a
//! file already throws and catches.
//!
//! This is not a parser. Every reading either finds the exact shape it expects or returns
//! `None`, and the callers decline; whatever they rewrite is compiled and tested in the
//! sandbox afterwards.

/// Java keywords that can precede `(` in a block header and are not method names.
const CONTROL_WORDS: &[&str] = &[
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "synchronized",
    "try",
    "do",
    "else",
    "return",
    "new",
    "throw",
    "case",
    "assert",
    "yield",
];

/// Modifiers that may open a declaration.
const MODIFIERS: &[&str] = &[
    "public",
    "protected",
    "private",
    "static",
    "final",
    "abstract",
    "synchronized",
    "native",
    "default",
    "strictfp",
    "transient",
    "volatile",
    "sealed",
    "non-sealed",
];

/// Whether `c` can be part of a Java identifier (ASCII subset).
pub fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// Whether `text` is a plain Java identifier (ASCII) and not a keyword we care about.
pub fn is_identifier(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && !bytes[0].is_ascii_digit()
        && bytes.iter().all(|c| is_word_byte(*c))
        && !CONTROL_WORDS.contains(&text)
        && !MODIFIERS.contains(&text)
        && !matches!(
            text,
            "this" | "super" | "null" | "true" | "false" | "class" | "instanceof"
        )
}

/// Java source with comments blanked and literal contents replaced by `#`, byte for byte,
/// so that offsets found in the mask are offsets in the text.
#[derive(Debug, Clone)]
pub struct JavaSource<'a> {
    text: &'a str,
    masked: String,
    line_starts: Vec<usize>,
}

/// A method or constructor declaration with a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Its name (the class name for a constructor).
    pub name: String,
    /// A constructor rather than a method.
    pub constructor: bool,
    /// Declared `static`.
    pub is_static: bool,
    /// Declared `private`.
    pub is_private: bool,
    /// The return type as written (`void` for constructors).
    pub return_type: String,
    /// The parameters, in order.
    pub params: Vec<Param>,
    /// The types after `throws`.
    pub throws: Vec<String>,
    /// Offset of the body's `{`.
    pub body_open: usize,
    /// Offset of the body's `}`.
    pub body_close: usize,
    /// Offset where the declaration's header starts (annotations included).
    pub header_start: usize,
}

/// One formal parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The type as written, without annotations and `final` (`List<String>`, `int[]`).
    pub ty: String,
    /// The name.
    pub name: String,
}

/// A type declaration (class, interface, enum, record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDecl {
    /// `class`, `interface`, `enum`, `record`.
    pub kind: String,
    /// Its simple name.
    pub name: String,
    /// Declared `abstract`.
    pub is_abstract: bool,
    /// Offset of the body's `{`.
    pub body_open: usize,
    /// Offset of the body's `}`.
    pub body_close: usize,
    /// Nesting: 0 for a top-level type.
    pub depth: usize,
}

/// A statement: from its first character to its `;` (inclusive) or the `{` of a block
/// statement's header (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// Offset of the first character.
    pub start: usize,
    /// Offset just past the statement's text.
    pub end: usize,
}

/// A local variable or parameter visible at a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The declared type as written (may be `var`).
    pub ty: String,
    /// The initializer's text when the declaration has one.
    pub init: Option<String>,
    /// Whether it is a parameter of the method.
    pub param: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Code,
    LineComment,
    BlockComment,
    Str,
    Char,
    TextBlock,
}

impl<'a> JavaSource<'a> {
    /// Masks `text` and indexes its lines.
    pub fn new(text: &'a str) -> Self {
        let masked = mask(text);
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        JavaSource {
            text,
            masked,
            line_starts,
        }
    }

    /// The original text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The masked text (same length as the text).
    pub fn masked(&self) -> &str {
        &self.masked
    }

    /// How many lines the text has (a trailing newline does not start a line).
    pub fn line_count(&self) -> usize {
        if self.text.ends_with('\n') {
            self.line_starts.len() - 1
        } else {
            self.line_starts.len()
        }
    }

    /// Byte range of zero-based line `index`, without its line ending.
    pub fn line_range(&self, index: usize) -> Option<(usize, usize)> {
        let start = *self.line_starts.get(index)?;
        let mut end = self
            .line_starts
            .get(index + 1)
            .map(|n| n - 1)
            .unwrap_or(self.text.len());
        if end > start && self.text.as_bytes()[end - 1] == b'\r' {
            end -= 1;
        }
        Some((start, end))
    }

    /// Zero-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// The offset of the first non-blank character of a zero-based line (masked), if any.
    pub fn first_code_on_line(&self, index: usize) -> Option<usize> {
        let (start, end) = self.line_range(index)?;
        self.masked.as_bytes()[start..end]
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .map(|p| start + p)
    }

    /// The leading whitespace of a zero-based line.
    pub fn indent_of_line(&self, index: usize) -> &'a str {
        let Some((start, end)) = self.line_range(index) else {
            return "";
        };
        let line = &self.text[start..end];
        &line[..line.len() - line.trim_start().len()]
    }

    /// The line ending the text uses.
    pub fn newline(&self) -> &'static str {
        if self.text.contains("\r\n") { "\r\n" } else { "\n" }
    }

    /// The `package` of the file, `""` for the default package.
    pub fn package(&self) -> Option<String> {
        let m = self.masked.as_bytes();
        let mut i = 0;
        while let Some(at) = find_word(&self.masked, "package", i) {
            // Only at the top level, before any type.
            let end = self.masked[at..].find(';').map(|e| at + e)?;
            let name: String = self.masked[at + "package".len()..end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if !name.is_empty() && name.split('.').all(is_identifier) {
                return Some(name);
            }
            i = at + 1;
            if i >= m.len() {
                break;
            }
        }
        Some(String::new())
    }

    /// The simple names this file imports, mapped to their qualified names.
    pub fn imports(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(at) = find_word(&self.masked, "import", from) {
            from = at + 1;
            let Some(end) = self.masked[at..].find(';').map(|e| at + e) else {
                break;
            };
            let name: String = self.masked[at + "import".len()..end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if name.starts_with("static") || name.ends_with('*') {
                continue;
            }
            if let Some((_, simple)) = name.rsplit_once('.') {
                out.push((simple.to_string(), name.clone()));
            }
        }
        out
    }

    /// Every `{`…`}` pair, outermost first, as (open, close, header start).
    fn blocks(&self) -> Vec<(usize, usize, usize)> {
        let m = self.masked.as_bytes();
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let mut out = Vec::new();
        let mut boundary = 0usize;
        for (i, &c) in m.iter().enumerate() {
            match c {
                b'{' => {
                    stack.push((i, boundary));
                    boundary = i + 1;
                }
                b'}' => {
                    if let Some((open, header)) = stack.pop() {
                        out.push((open, i, header));
                    }
                    boundary = i + 1;
                }
                b';' => boundary = i + 1,
                _ => {}
            }
        }
        out.sort_by_key(|b| b.0);
        out
    }

    /// Every type declaration.
    pub fn types(&self) -> Vec<TypeDecl> {
        let blocks = self.blocks();
        let mut out: Vec<TypeDecl> = Vec::new();
        for (open, close, header) in blocks {
            let text = &self.masked[header..open];
            if let Some((kind, name, is_abstract)) = parse_type_header(text) {
                let depth = out
                    .iter()
                    .filter(|t| t.body_open < open && close < t.body_close)
                    .count();
                out.push(TypeDecl {
                    kind,
                    name,
                    is_abstract,
                    body_open: open,
                    body_close: close,
                    depth,
                });
            }
        }
        out
    }

    /// Every method and constructor with a body.
    pub fn methods(&self) -> Vec<Method> {
        let types = self.types();
        let mut out = Vec::new();
        for (open, close, header) in self.blocks() {
            // The innermost type whose body directly holds this block.
            let Some(owner) = types
                .iter()
                .filter(|t| t.body_open < open && close < t.body_close)
                .max_by_key(|t| t.body_open)
            else {
                continue;
            };
            let header_text = &self.masked[header..open];
            if let Some(mut method) = parse_method_header(header_text, &owner.name) {
                method.body_open = open;
                method.body_close = close;
                method.header_start = header + (header_text.len() - header_text.trim_start().len());
                out.push(method);
            }
        }
        out
    }

    /// The innermost method or constructor whose body holds `offset`.
    pub fn method_at(&self, offset: usize) -> Option<Method> {
        self.methods()
            .into_iter()
            .filter(|m| m.body_open < offset && offset < m.body_close)
            .max_by_key(|m| m.body_open)
    }

    /// The innermost type whose body holds `offset`.
    pub fn type_at(&self, offset: usize) -> Option<TypeDecl> {
        self.types()
            .into_iter()
            .filter(|t| t.body_open < offset && offset < t.body_close)
            .max_by_key(|t| t.body_open)
    }

    /// The statement of `method` that holds `offset`.
    pub fn statement_at(&self, method: &Method, offset: usize) -> Option<Statement> {
        let m = self.masked.as_bytes();
        if offset <= method.body_open || offset >= method.body_close {
            return None;
        }
        // Start: just after the last `;` at paren depth 0 of its brace level, `{` or `}`.
        let mut depths: Vec<i32> = vec![0];
        let mut boundary = method.body_open + 1;
        for (i, &c) in m.iter().enumerate().take(offset).skip(method.body_open + 1) {
            let depth = depths.last_mut()?;
            match c {
                b'(' | b'[' => *depth += 1,
                b')' | b']' => *depth -= 1,
                b'{' => {
                    depths.push(0);
                    boundary = i + 1;
                }
                b'}' => {
                    depths.pop();
                    if depths.is_empty() {
                        return None;
                    }
                    boundary = i + 1;
                }
                b';' if *depth == 0 => boundary = i + 1,
                b':' if *depth == 0 && is_label_colon(&self.masked, boundary, i) => boundary = i + 1,
                _ => {}
            }
        }
        let start = boundary + m[boundary..=offset].iter().position(|c| !c.is_ascii_whitespace())?;
        // End: the `;` at depth 0, or the `{` of a block statement's header.
        let (mut paren, mut brace) = (0i32, 0i32);
        for (i, &c) in m.iter().enumerate().take(method.body_close).skip(start) {
            match c {
                b'(' | b'[' => paren += 1,
                b')' | b']' => paren -= 1,
                b'{' if paren == 0 && brace == 0 && !self.masked[start..i].trim_end().ends_with("->") => {
                    // `x = new int[] {…}` and lambdas inside parentheses are not headers.
                    if self.masked[start..i].trim_end().ends_with(']')
                        || self.masked[start..i].trim_end().ends_with('=')
                    {
                        brace += 1;
                    } else {
                        return Some(Statement { start, end: i });
                    }
                }
                b'{' => brace += 1,
                b'}' => {
                    if brace == 0 {
                        return None;
                    }
                    brace -= 1;
                }
                b';' if paren == 0 && brace == 0 => return Some(Statement { start, end: i + 1 }),
                _ => {}
            }
        }
        None
    }

    /// The masked text of a statement.
    pub fn masked_of(&self, statement: Statement) -> &str {
        &self.masked[statement.start..statement.end]
    }

    /// The original text of a statement.
    pub fn text_of(&self, statement: Statement) -> &'a str {
        &self.text[statement.start..statement.end]
    }

    /// The parameter or local named `name` declared in `method` before `before`.
    pub fn declaration(&self, method: &Method, name: &str, before: usize) -> Option<Declaration> {
        let body = &self.masked[method.body_open + 1..before.min(method.body_close)];
        let mut found: Option<Declaration> = None;
        let mut from = 0;
        while let Some(at) = find_word(body, name, from) {
            from = at + name.len();
            let before_name = body[..at].trim_end();
            let after = body[at + name.len()..].trim_start();
            let declares = after.starts_with(';')
                || after.starts_with(':') && !after.starts_with("::")
                || (after.starts_with('=') && !after.starts_with("=="))
                || after.starts_with(')');
            let Some(last) = before_name.bytes().last() else {
                continue;
            };
            if !declares || !(is_word_byte(last) || last == b'>' || last == b']') {
                continue;
            }
            let ty = type_before(before_name);
            let Some(ty) = ty.filter(|t| {
                let first = t.split(['<', '[', '.']).next().unwrap_or("");
                !CONTROL_WORDS.contains(&first) && first != "instanceof" && first != "this"
            }) else {
                continue;
            };
            let init = after.strip_prefix('=').map(|_| {
                let abs = method.body_open + 1 + at + name.len() + (body[at + name.len()..].len() - after.len()) + 1;
                let end = statement_end(&self.masked, abs).unwrap_or(abs);
                self.text[abs..end].trim().trim_end_matches(';').trim().to_string()
            });
            found = Some(Declaration {
                ty: ty.to_string(),
                init,
                param: false,
            });
        }
        if found.is_some() {
            return found;
        }
        method.params.iter().find(|p| p.name == name).map(|p| Declaration {
            ty: p.ty.clone(),
            init: None,
            param: true,
        })
    }

    /// Whether `name` is declared as a field of the type holding `offset`.
    pub fn is_field(&self, offset: usize, name: &str) -> bool {
        let Some(ty) = self.type_at(offset) else {
            return false;
        };
        let methods = self.methods();
        let mut from = ty.body_open + 1;
        while let Some(at) = find_word(&self.masked[..ty.body_close], name, from) {
            from = at + name.len();
            if methods.iter().any(|m| m.body_open < at && at < m.body_close) {
                continue;
            }
            let after = self.masked[at + name.len()..].trim_start();
            let before = self.masked[..at].trim_end();
            if (after.starts_with(';') || after.starts_with('=') && !after.starts_with("=="))
                && before
                    .bytes()
                    .last()
                    .is_some_and(|c| is_word_byte(c) || c == b'>' || c == b']')
            {
                return true;
            }
        }
        false
    }

    /// The types named in `throw new X(` with a string argument between `from` and `to`.
    pub fn thrown_with_message(&self, from: usize, to: usize) -> Vec<String> {
        let region = &self.masked[from..to.min(self.masked.len())];
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(i) = find_word(region, "throw", at) {
            at = i + 1;
            let rest = region[i + "throw".len()..].trim_start();
            let Some(rest) = rest.strip_prefix("new") else {
                continue;
            };
            if !rest.starts_with(|c: char| c.is_whitespace()) {
                continue;
            }
            let rest = rest.trim_start();
            let name_len = rest.bytes().take_while(|c| is_word_byte(*c) || *c == b'.').count();
            let name = &rest[..name_len];
            let args = rest[name_len..].trim_start();
            // A message: the argument list starts with a string literal (masked as "#…").
            if !name.is_empty() && args.starts_with("(\"") && !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
        out
    }

    /// The types named in `catch (A | B e)` clauses anywhere in the file.
    pub fn caught(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(i) = find_word(&self.masked, "catch", at) {
            at = i + 1;
            let rest = self.masked[i + "catch".len()..].trim_start();
            let Some(rest) = rest.strip_prefix('(') else {
                continue;
            };
            let Some(close) = rest.find(')') else {
                continue;
            };
            let inner = rest[..close].trim().trim_start_matches("final ").trim();
            let types = inner.rsplit_once(char::is_whitespace).map(|(t, _)| t).unwrap_or("");
            for ty in types.split('|') {
                let ty = ty.trim();
                if !ty.is_empty() && !out.iter().any(|n| n == ty) {
                    out.push(ty.to_string());
                }
            }
        }
        out
    }

    /// Whether a top-level or nested type named `name` in this file extends `RuntimeException`
    /// or one of its well-known subclasses (so it needs no `throws` clause).
    pub fn declares_unchecked(&self, name: &str) -> bool {
        let mut at = 0;
        while let Some(i) = find_word(&self.masked, "class", at) {
            at = i + 1;
            let rest = self.masked[i + "class".len()..].trim_start();
            if !rest.starts_with(name) || rest[name.len()..].bytes().next().is_some_and(is_word_byte) {
                continue;
            }
            let header = rest[name.len()..].split('{').next().unwrap_or("");
            if let Some(parent) = header.trim().strip_prefix("extends") {
                let parent = parent.split_whitespace().next().unwrap_or("");
                let parent = parent.rsplit('.').next().unwrap_or(parent);
                return unchecked_parent(parent).is_some();
            }
        }
        false
    }
}

/// Whether a well-known unchecked exception name; returns its direct JDK parent.
pub fn unchecked_parent(simple: &str) -> Option<&'static str> {
    Some(match simple {
        "RuntimeException" => "Exception",
        "IllegalArgumentException"
        | "IllegalStateException"
        | "UnsupportedOperationException"
        | "NullPointerException"
        | "ArithmeticException"
        | "IndexOutOfBoundsException"
        | "ClassCastException"
        | "java.util.NoSuchElementException"
        | "NoSuchElementException"
        | "SecurityException"
        | "UncheckedIOException"
        | "DateTimeException"
        | "ConcurrentModificationException" => "RuntimeException",
        "NumberFormatException" | "PatternSyntaxException" | "InvalidParameterException" => "IllegalArgumentException",
        "ArrayIndexOutOfBoundsException" | "StringIndexOutOfBoundsException" => "IndexOutOfBoundsException",
        "InputMismatchException" => "NoSuchElementException",
        "DateTimeParseException" => "DateTimeException",
        _ => return None,
    })
}

/// Whether the JDK exception `sub` is `sup` or one of its subclasses (simple names).
pub fn is_subclass(sub: &str, sup: &str) -> bool {
    let mut current = sub;
    for _ in 0..8 {
        if current == sup {
            return true;
        }
        match unchecked_parent(current) {
            Some(parent) => current = parent,
            None => return false,
        }
    }
    false
}

/// Whether the `:` at `colon` ends a `case …:`/`default:` label or a statement label.
fn is_label_colon(masked: &str, boundary: usize, colon: usize) -> bool {
    let before = masked[boundary..colon].trim();
    if masked.as_bytes().get(colon + 1) == Some(&b':') || colon > 0 && masked.as_bytes()[colon - 1] == b':' {
        return false;
    }
    before == "default" || before.starts_with("case ") || is_identifier(before)
}

/// The offset just past the `;` ending the expression that starts at `from`.
fn statement_end(masked: &str, from: usize) -> Option<usize> {
    let (mut paren, mut brace) = (0i32, 0i32);
    for (i, c) in masked.bytes().enumerate().skip(from) {
        match c {
            b'(' | b'[' => paren += 1,
            b')' | b']' => paren -= 1,
            b'{' => brace += 1,
            b'}' => brace -= 1,
            b';' if paren == 0 && brace == 0 => return Some(i),
            _ => {}
        }
        if paren < 0 || brace < 0 {
            return Some(i);
        }
    }
    None
}

/// The type written right before a declared name: `Map<String, Item>` in
/// `final Map<String, Item> items`.
fn type_before(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = bytes.len();
    let mut angle = 0i32;
    while i > 0 {
        let c = bytes[i - 1];
        match c {
            b'>' => angle += 1,
            b'<' => angle -= 1,
            b']' | b'[' | b'.' | b'?' => {}
            b',' | b' ' | b'\t' | b'\n' | b'\r' if angle > 0 => {}
            c if is_word_byte(c) => {}
            _ => break,
        }
        if angle < 0 {
            return None;
        }
        // A space outside generics ends the type unless the type continues (`Map .Entry` is not Java).
        if angle == 0 && (c == b' ' || c == b'\t' || c == b'\n' || c == b'\r') {
            break;
        }
        i -= 1;
    }
    let ty = text[i..].trim();
    (!ty.is_empty() && ty.bytes().next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')).then_some(ty)
}

/// Masks comments (blanks) and literal contents (`#`), keeping every byte offset and newline.
fn mask(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut state = Lex::Code;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match state {
            Lex::Code => {
                if c == b'/' && b.get(i + 1) == Some(&b'/') {
                    state = Lex::LineComment;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    continue;
                }
                if c == b'/' && b.get(i + 1) == Some(&b'*') {
                    state = Lex::BlockComment;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    continue;
                }
                if c == b'"' && b.get(i + 1) == Some(&b'"') && b.get(i + 2) == Some(&b'"') {
                    state = Lex::TextBlock;
                    i += 3;
                    continue;
                }
                if c == b'"' {
                    state = Lex::Str;
                } else if c == b'\'' {
                    state = Lex::Char;
                }
            }
            Lex::LineComment => {
                if c == b'\n' {
                    state = Lex::Code;
                } else {
                    out[i] = b' ';
                }
            }
            Lex::BlockComment => {
                if c == b'*' && b.get(i + 1) == Some(&b'/') {
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    state = Lex::Code;
                    i += 2;
                    continue;
                }
                if c != b'\n' {
                    out[i] = b' ';
                }
            }
            Lex::Str | Lex::Char => {
                let quote = if state == Lex::Str { b'"' } else { b'\'' };
                if c == b'\\' {
                    out[i] = b'#';
                    if i + 1 < b.len() && b[i + 1] != b'\n' {
                        out[i + 1] = b'#';
                    }
                    i += 2;
                    continue;
                }
                if c == quote || c == b'\n' {
                    state = Lex::Code;
                } else {
                    out[i] = b'#';
                }
            }
            Lex::TextBlock => {
                if c == b'"' && b.get(i + 1) == Some(&b'"') && b.get(i + 2) == Some(&b'"') {
                    state = Lex::Code;
                    i += 3;
                    continue;
                }
                if c == b'\\' && i + 1 < b.len() {
                    out[i] = b'#';
                    if b[i + 1] != b'\n' {
                        out[i + 1] = b'#';
                    }
                    i += 2;
                    continue;
                }
                if c != b'\n' {
                    out[i] = b'#';
                }
            }
        }
        i += 1;
    }
    // Every replaced byte is ASCII; untouched bytes are the text's own, so this is UTF-8
    // except where a multi-byte character was partly replaced, which only happens inside
    // comments and literals (replaced whole).
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The next occurrence of `word` as a whole word in `text`, at or after `from`.
pub fn find_word(text: &str, word: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut start = from;
    while start <= text.len() {
        let at = start + text.get(start..)?.find(word)?;
        let before_ok = at == 0 || !is_word_byte(bytes[at - 1]);
        let after_ok = bytes.get(at + word.len()).is_none_or(|c| !is_word_byte(*c));
        if before_ok && after_ok {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

/// Every whole-word occurrence of `word` in `text`.
pub fn count_word(text: &str, word: &str) -> usize {
    let mut n = 0;
    let mut from = 0;
    while let Some(at) = find_word(text, word, from) {
        n += 1;
        from = at + 1;
    }
    n
}

/// Strips leading annotations (`@Foo`, `@a.b.Foo(…)`) and returns the rest.
fn strip_annotations(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        let Some(rest) = text.strip_prefix('@') else {
            return text;
        };
        if rest.starts_with("interface") {
            return text;
        }
        let name_len = rest.bytes().take_while(|c| is_word_byte(*c) || *c == b'.').count();
        let mut after = &rest[name_len..];
        let trimmed = after.trim_start();
        if trimmed.starts_with('(')
            && let Some(close) = matching_close(trimmed, 0)
        {
            after = &trimmed[close + 1..];
        }
        text = after;
    }
}

/// The offset of the bracket closing the one at `open` (`(`, `<`, `[`).
fn matching_close(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (o, c) = match bytes.get(open)? {
        b'(' => (b'(', b')'),
        b'<' => (b'<', b'>'),
        b'[' => (b'[', b']'),
        _ => return None,
    };
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if b == o {
            depth += 1;
        } else if b == c {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `(kind, name, abstract)` when a block header declares a type.
fn parse_type_header(header: &str) -> Option<(String, String, bool)> {
    let text = strip_annotations(header);
    for kind in ["class", "interface", "enum", "record"] {
        if let Some(at) = find_word(text, kind, 0) {
            let before = &text[..at];
            // Only modifiers (and `@` of `@interface`) may precede the keyword.
            let ok = before
                .split_whitespace()
                .all(|w| MODIFIERS.contains(&w) || w == "@" || w.starts_with('@'));
            if !ok {
                continue;
            }
            let name: String = text[at + kind.len()..]
                .trim_start()
                .bytes()
                .take_while(|c| is_word_byte(*c))
                .map(char::from)
                .collect();
            if is_identifier(&name) {
                let is_abstract = before.split_whitespace().any(|w| w == "abstract") || kind == "interface";
                return Some((kind.to_string(), name, is_abstract));
            }
        }
    }
    None
}

/// A method or constructor when a block header declares one (offsets left at 0).
fn parse_method_header(header: &str, owner: &str) -> Option<Method> {
    let text = strip_annotations(header).trim();
    if text.contains('=') || text.ends_with("->") {
        return None;
    }
    // `throws A, B` after the parameter list.
    let close = text.rfind(')')?;
    let tail = text[close + 1..].trim();
    let throws: Vec<String> = if tail.is_empty() {
        Vec::new()
    } else {
        let list = tail.strip_prefix("throws")?;
        if !list.starts_with(char::is_whitespace) {
            return None;
        }
        list.split(',').map(|t| t.trim().to_string()).collect()
    };
    if throws.iter().any(|t| !t.split('.').all(is_identifier)) {
        return None;
    }
    // The `(` matching the last `)`.
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut open = None;
    for i in (0..=close).rev() {
        match bytes[i] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let open = open?;
    let before = text[..open].trim_end();
    let name_len = before.bytes().rev().take_while(|c| is_word_byte(*c)).count();
    let name = &before[before.len() - name_len..];
    if !is_identifier(name) {
        return None;
    }
    let prefix = before[..before.len() - name_len].trim();
    let mut words: Vec<&str> = Vec::new();
    let mut rest = prefix;
    // Modifiers first.
    loop {
        let w = rest.split_whitespace().next().unwrap_or("");
        if MODIFIERS.contains(&w) {
            words.push(w);
            rest = rest[rest.find(w).map(|p| p + w.len()).unwrap_or(rest.len())..].trim_start();
        } else {
            break;
        }
    }
    // Type parameters `<T>`.
    if rest.starts_with('<') {
        let close = matching_close(rest, 0)?;
        rest = rest[close + 1..].trim_start();
    }
    let return_type = rest.trim();
    let constructor = return_type.is_empty();
    if constructor && name != owner {
        return None;
    }
    if !constructor
        && (!return_type
            .bytes()
            .all(|c| is_word_byte(c) || matches!(c, b'<' | b'>' | b'[' | b']' | b',' | b'.' | b'?' | b' '))
            || return_type
                .split_whitespace()
                .any(|w| CONTROL_WORDS.contains(&w) || w == "new"))
    {
        return None;
    }
    let params = parse_params(&text[open + 1..close])?;
    Some(Method {
        name: name.to_string(),
        constructor,
        is_static: words.contains(&"static"),
        is_private: words.contains(&"private"),
        return_type: if constructor {
            "void".to_string()
        } else {
            return_type.to_string()
        },
        params,
        throws,
        body_open: 0,
        body_close: 0,
        header_start: 0,
    })
}

/// Formal parameters from the text between the parentheses.
fn parse_params(text: &str) -> Option<Vec<Param>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.bytes().enumerate() {
        match c {
            b'<' | b'(' => depth += 1,
            b'>' | b')' => depth -= 1,
            b',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let mut out = Vec::new();
    for part in parts {
        let mut part = strip_annotations(part).trim();
        while let Some(rest) = part.strip_prefix("final ") {
            part = strip_annotations(rest).trim();
        }
        let name_len = part.bytes().rev().take_while(|c| is_word_byte(*c)).count();
        let name = &part[part.len() - name_len..];
        let ty = part[..part.len() - name_len].trim();
        if !is_identifier(name) || ty.is_empty() {
            return None;
        }
        out.push(Param {
            ty: ty.replace("...", "[]"),
            name: name.to_string(),
        });
    }
    Some(out)
}

/// The Java string literal for `text`.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether an expression is safe to evaluate twice and to name in a guard: a name, a dotted
/// name, `this.x`, an integer literal, `x.length`, `x.size()`, and `+`/`-` of those.
pub fn is_simple_expression(expr: &str) -> bool {
    let expr = expr.trim();
    if expr.is_empty() {
        return false;
    }
    expr.split(['+', '-']).all(|term| {
        let term = term.trim();
        if term.is_empty() {
            return false;
        }
        if term.bytes().all(|c| c.is_ascii_digit()) {
            return true;
        }
        let term = term.strip_suffix(".size()").unwrap_or(term);
        term.split('.')
            .all(|p| is_identifier(p) || p == "this" || p == "length")
    })
}

/// The identifiers an expression reads (the first segment of each dotted name).
pub fn roots(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if is_word_byte(bytes[i]) && !bytes[i].is_ascii_digit() && (i == 0 || bytes[i - 1] != b'.') {
            let len = bytes[i..].iter().take_while(|c| is_word_byte(**c)).count();
            let word = &expr[i..i + len];
            if is_identifier(word) && !out.iter().any(|w| w == word) {
                out.push(word.to_string());
            }
            i += len;
        } else if is_word_byte(bytes[i]) {
            i += bytes[i..].iter().take_while(|c| is_word_byte(**c)).count();
        } else {
            i += 1;
        }
    }
    out
}
