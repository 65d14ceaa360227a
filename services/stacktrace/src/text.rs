//! Text preparation shared by every runtime parser: size caps, JSON documents and JSON
//! log lines, escaped newlines, ANSI colour codes and log-line prefixes (timestamps,
//! levels, docker-compose and kubectl prefixes) that would hide a trace's shape.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::{MAX_INPUT_BYTES, MAX_LINE_CHARS, MAX_LINES};

/// Compiles a regex written in this crate.
#[allow(clippy::expect_used)]
pub(crate) fn compile(pattern: &str) -> Regex {
    // The patterns are string literals of this crate; every one is exercised by tests.
    Regex::new(pattern).expect("static regex is valid")
}

/// One prepared line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The line without log prefix, colour codes and trailing whitespace.
    pub text: String,
    /// Whether a log prefix (timestamp, level, container name) was removed: such a
    /// line is a new log record, never the continuation of a message.
    pub prefixed: bool,
}

impl Line {
    /// The line without leading and trailing whitespace.
    pub fn trimmed(&self) -> &str {
        self.text.trim()
    }

    /// Whether the line is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    /// Number of leading whitespace characters (a tab counts as four).
    pub fn indent(&self) -> usize {
        let mut n = 0;
        for c in self.text.chars() {
            match c {
                ' ' => n += 1,
                '\t' => n += 4,
                _ => break,
            }
        }
        n
    }
}

/// Hints taken from the JSON object around a stack string (type and message fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hints {
    /// Exception type from a field such as `exception.type`.
    pub ty: Option<String>,
    /// Exception message from a field such as `exception.message`.
    pub message: Option<String>,
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// The first `max` characters of `s`.
pub(crate) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

static ANSI: LazyLock<Regex> = LazyLock::new(|| compile(r"\x1b\[[0-9;?]*[A-Za-z]"));
static DOCKER_PREFIX: LazyLock<Regex> = LazyLock::new(|| compile(r"^[A-Za-z0-9][\w.-]*\s*\| ?"));
static KUBECTL_PREFIX: LazyLock<Regex> = LazyLock::new(|| compile(r"^\[pod/[^\]\s]+\] ?"));
static ISO_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\]? ?(?:std(?:out|err) [FP] )?(?:\[?(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|SEVERE|PANIC)\]?:?\s+)?",
    )
});
static GO_LOG_PREFIX: LazyLock<Regex> = LazyLock::new(|| compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? "));
static SYSLOG_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \S+ [^:\s\[]+(?:\[\d+\])?: "));

/// Removes colour codes and log prefixes from one raw line.
pub(crate) fn clean_line(raw: &str) -> Line {
    let raw = truncate_chars(raw.strip_suffix('\r').unwrap_or(raw), MAX_LINE_CHARS);
    let mut text: String = if raw.contains('\x1b') {
        ANSI.replace_all(raw, "").into_owned()
    } else {
        raw.to_string()
    };
    // A trace quoted in an e-mail or a Markdown issue (`> at f (x.js:1:2)`): the quote
    // marks are not part of the line.
    if text.starts_with("> ") || text.starts_with(">> ") {
        text = text.trim_start_matches(['>', ' ']).to_string();
    }
    let mut prefixed = false;
    for _ in 0..3 {
        if text.starts_with(char::is_whitespace) {
            break;
        }
        let mut cut = None;
        let first = text.chars().next().unwrap_or(' ');
        let candidates: [(&Regex, bool); 5] = [
            (&ISO_PREFIX, first.is_ascii_digit() || first == '['),
            (&GO_LOG_PREFIX, first.is_ascii_digit()),
            (&SYSLOG_PREFIX, first.is_ascii_uppercase()),
            (&KUBECTL_PREFIX, first == '['),
            (&DOCKER_PREFIX, text.contains('|')),
        ];
        for (re, plausible) in candidates {
            if !plausible {
                continue;
            }
            if let Some(m) = re.find(&text)
                && m.end() > 0
                && m.end() < text.len()
            {
                cut = Some(m.end());
                break;
            }
        }
        match cut {
            Some(end) => {
                text = text.get(end..).unwrap_or("").to_string();
                prefixed = true;
            }
            None => break,
        }
    }
    let trimmed_len = text.trim_end().len();
    text.truncate(trimmed_len);
    Line { text, prefixed }
}

/// Replaces JSON-style escapes in text that carries a whole trace on one line.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => {}
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('/') => out.push('/'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Splits text into prepared lines, unwrapping JSON log lines and escaped newlines.
pub(crate) fn prepare(text: &str) -> Vec<Line> {
    let text = truncate_bytes(text, MAX_INPUT_BYTES);
    let unescaped;
    let single_json = text.trim().starts_with('{') && text.trim().ends_with('}');
    let text = if !text.contains('\n') && !single_json && text.contains("\\n") {
        unescaped = unescape(text);
        unescaped.as_str()
    } else {
        text
    };
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        if lines.len() >= MAX_LINES {
            break;
        }
        let trimmed = raw.trim();
        if trimmed.starts_with('{')
            && trimmed.ends_with('}')
            && let Some(body) = json_record_text(trimmed)
        {
            for sub in body.trim_end_matches(['\n', '\r']).split('\n') {
                if lines.len() >= MAX_LINES {
                    break;
                }
                lines.push(clean_line(sub));
            }
            continue;
        }
        lines.push(clean_line(raw));
    }
    lines
}

/// The text of a log record that may be a JSON object (for [`crate::parse_lines`]).
pub(crate) fn unwrap_record(record: &str) -> String {
    let record = truncate_bytes(record, MAX_INPUT_BYTES);
    let trimmed = record.trim();
    if trimmed.starts_with('{')
        && trimmed.ends_with('}')
        && let Some(body) = json_record_text(trimmed)
    {
        return body;
    }
    record.to_string()
}

const BODY_KEYS: &[&str] = &[
    "log", "message", "msg", "body", "MESSAGE", "text", "line", "event", "@message",
];

fn is_stack_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["stack", "trace", "backtrace", "exc_info", "exception", "error", "err"]
        .iter()
        .any(|w| k.contains(w))
}

/// The message and stack fields of a JSON log record, joined by newlines.
fn json_record_text(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    let obj = value.as_object()?;
    let mut parts: Vec<String> = Vec::new();
    for key in BODY_KEYS {
        if let Some(Value::String(s)) = obj.get(*key) {
            parts.push(s.clone());
            break;
        }
    }
    for (key, v) in obj {
        if BODY_KEYS.contains(&key.as_str()) || !is_stack_key(key) {
            continue;
        }
        let mut budget = 200;
        collect_stack_text(v, &mut parts, 0, &mut budget);
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("\n"))
}

/// Strings under a stack-like key, arrays of strings joined line by line.
fn collect_stack_text(v: &Value, out: &mut Vec<String>, depth: usize, budget: &mut usize) {
    if depth > 8 || *budget == 0 {
        return;
    }
    *budget -= 1;
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => {
            if items.iter().all(|i| i.is_string()) {
                let joined: Vec<&str> = items.iter().filter_map(|i| i.as_str()).collect();
                out.push(joined.join("\n"));
            } else {
                for i in items {
                    collect_stack_text(i, out, depth + 1, budget);
                }
            }
        }
        Value::Object(map) => {
            for (k, i) in map {
                if is_stack_key(k) || ["message", "msg", "type", "class"].contains(&k.as_str()) {
                    collect_stack_text(i, out, depth + 1, budget);
                }
            }
        }
        _ => {}
    }
}

const TYPE_KEYS: &[&str] = &[
    "exception.type",
    "exception_type",
    "exception_class",
    "exc_type",
    "error.type",
    "error.kind",
    "error_class",
    "class",
    "type",
];
const MESSAGE_KEYS: &[&str] = &[
    "exception.message",
    "exception_message",
    "error.message",
    "message",
    "msg",
];

/// Whether a JSON field value looks like an exception type name.
fn looks_like_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 200
        && !s.contains(char::is_whitespace)
        && (s.contains("Error") || s.contains("Exception") || s.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// Candidate texts in a JSON document, with type and message hints from their
/// surrounding object; `None` when `text` is not a JSON object or array.
pub(crate) fn json_candidates(text: &str) -> Option<Vec<(String, Hints)>> {
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    let value: Value = serde_json::from_str(trimmed).ok()?;
    let mut out = Vec::new();
    let mut budget = 5000usize;
    walk_json(&value, &Hints::default(), &mut out, 0, &mut budget);
    Some(out)
}

fn walk_json(v: &Value, hints: &Hints, out: &mut Vec<(String, Hints)>, depth: usize, budget: &mut usize) {
    if depth > 16 || *budget == 0 || out.len() >= 64 {
        return;
    }
    *budget -= 1;
    match v {
        Value::String(s) if s.len() >= 8 => out.push((s.clone(), hints.clone())),
        Value::Array(items) => {
            if !items.is_empty() && items.iter().all(|i| i.is_string()) {
                let joined: Vec<&str> = items.iter().filter_map(|i| i.as_str()).collect();
                out.push((joined.join("\n"), hints.clone()));
            } else {
                for i in items {
                    walk_json(i, hints, out, depth + 1, budget);
                }
            }
        }
        Value::Object(map) => {
            let mut local = Hints::default();
            for key in TYPE_KEYS {
                if let Some(Value::String(s)) = map.get(*key)
                    && looks_like_type(s)
                {
                    local.ty = Some(s.clone());
                    break;
                }
            }
            for key in MESSAGE_KEYS {
                if let Some(Value::String(s)) = map.get(*key) {
                    local.message = Some(s.clone());
                    break;
                }
            }
            for (_, i) in map {
                walk_json(i, &local, out, depth + 1, budget);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_prefixes_and_colours() {
        let l = clean_line("2024-05-01T12:00:00.123Z ERROR Traceback (most recent call last):");
        assert_eq!(l.text, "Traceback (most recent call last):");
        assert!(l.prefixed);
        let l = clean_line("web-1  | \tat com.acme.Foo.bar(Foo.java:10)");
        assert_eq!(l.text, "\tat com.acme.Foo.bar(Foo.java:10)");
        let l = clean_line("\x1b[31mTypeError: boom\x1b[0m");
        assert_eq!(l.text, "TypeError: boom");
        let l = clean_line("2024/05/01 12:00:00 http: panic serving 10.0.0.1:5000: boom");
        assert_eq!(l.text, "http: panic serving 10.0.0.1:5000: boom");
        let l = clean_line("ValueError: a | b");
        assert_eq!(l.text, "ValueError: a | b");
        assert!(!l.prefixed);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_chars("héllo", 2), "hé");
    }

    #[test]
    fn json_lines_are_unwrapped() {
        let lines = prepare("{\"log\":\"Traceback (most recent call last):\\n\",\"stream\":\"stderr\"}");
        assert_eq!(lines[0].text, "Traceback (most recent call last):");
    }
}
