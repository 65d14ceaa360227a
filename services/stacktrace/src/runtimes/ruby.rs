//! Ruby and Rails backtraces.
//!
//! Forms: the interpreter's uncaught report (`file:N:in 'm': message (Type)` then
//! `\tfrom file:N:in 'm'`), Ruby 3.4 labels (`'Integer#/'`, `'Pricing.calc'`, straight
//! quotes), `block (2 levels) in`, `rescue in`, `<main>`, `<top (required)>`,
//! `<internal:kernel>` frames, causes printed after the exception (Ruby 3.1+), the
//! Rails log form (`Type (message):`, blank line, bare `app/…:N:in 'm'` lines, also
//! multi-line messages and template excerpts in between), Rails' framework trace lines
//! (`actionpack (7.0.4) lib/…:N:in 'm'`), and `Type: message` headers above bare frames
//! (Sidekiq, loggers, `backtrace` arrays in JSON).

use std::sync::LazyLock;

use regex::Regex;

use super::{Draft, Entry, frame, num};
use crate::text::{Line, compile};
use crate::{Frame, MAX_CAUSES, Relation, Runtime};

static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^(?P<from>from\s+)?(?P<file><internal:[^>]*>|(?:[\w.-]+ \([\w.-]+\) )?[^\s:][^:]*?|[A-Za-z]:[^:]*?):(?P<line>\d+):in\s+[`'](?P<fn>[^'`]*)'(?::\s?(?P<rest>.*))?$",
    )
});
static FROM_ONLY: LazyLock<Regex> = LazyLock::new(|| compile(r"^from\s+(?P<file>[^\s:][^:]*?):(?P<line>\d+)$"));
static INLINE_EXC: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^(?P<msg>[\s\S]*?)\s*\((?P<ty>[A-Z][\w]*(?:::[A-Z]\w*)*)\)$"));
static RAILS_HEADER: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^(?P<ty>[A-Z]\w*(?:::[A-Z]\w*)*) \((?P<msg>[\s\S]*)\):$"));
static RAILS_HEADER_START: LazyLock<Regex> = LazyLock::new(|| compile(r"^[A-Z]\w*(?:::[A-Z]\w*)* \("));
static PLAIN_HEADER: LazyLock<Regex> = LazyLock::new(|| compile(r"^(?P<ty>[A-Z]\w*(?:::[A-Z]\w*)*): (?P<msg>.*)$"));

const MAX_GAP: usize = 30;
const MAX_UNKNOWN: usize = 2;

/// One parsed frame line: the frame, whether it was a `from` line, and for a report's
/// first line the exception's `(type, message)`.
type FrameLine = (Frame, bool, Option<(String, String)>);

/// Parses one Ruby frame line.
fn parse_frame(t: &str) -> Option<FrameLine> {
    if !t.contains(":in ") && !t.starts_with("from") {
        return None;
    }
    if let Some(c) = FROM_ONLY.captures(t) {
        let f = frame(
            "",
            None,
            c.name("file").map(|m| m.as_str().to_string()),
            c.name("line").and_then(|m| num(m.as_str())),
            None,
        );
        return Some((f, true, None));
    }
    let c = FRAME.captures(t)?;
    let label = c.name("fn").map(|m| m.as_str()).unwrap_or("");
    let (module, function) = split_label(label);
    let f = frame(
        function,
        module,
        c.name("file").map(|m| m.as_str().to_string()),
        c.name("line").and_then(|m| num(m.as_str())),
        None,
    );
    let exc = c.name("rest").map(|r| {
        let r = r.as_str();
        match INLINE_EXC.captures(r) {
            Some(ec) => (
                ec.name("ty").map(|m| m.as_str().to_string()).unwrap_or_default(),
                ec.name("msg").map(|m| m.as_str().to_string()).unwrap_or_default(),
            ),
            None => (String::new(), r.to_string()),
        }
    });
    Some((f, c.name("from").is_some(), exc))
}

/// Splits a Ruby 3.4 label (`block in Foo::Bar#baz`) into class and method.
fn split_label(label: &str) -> (Option<String>, String) {
    let (prefix, rest) = match label.rfind(" in ") {
        Some(i) => (label.get(..i + 4).unwrap_or(""), label.get(i + 4..).unwrap_or("")),
        None => ("", label),
    };
    if rest.starts_with('<') {
        return (None, label.to_string());
    }
    for sep in ['#', '.'] {
        if let Some(i) = rest.rfind(sep)
            && i > 0
            && rest
                .get(..1)
                .is_some_and(|c| c.chars().all(|ch| ch.is_ascii_uppercase()))
        {
            let module = rest.get(..i).unwrap_or("").to_string();
            let method = rest.get(i + 1..).unwrap_or("");
            return (Some(module), format!("{prefix}{method}"));
        }
    }
    (None, label.to_string())
}

/// Parses the first Ruby backtrace in the lines.
pub(crate) fn parse(lines: &[Line]) -> Option<Draft> {
    let first = lines.iter().position(|l| parse_frame(l.trimmed()).is_some())?;
    let mut bonus = 0;
    let mut entries: Vec<Entry> = Vec::new();

    // A header above bare frames: Rails `Type (message):` or `Type: message`.
    let from = first.saturating_sub(MAX_GAP);
    let mut header: Option<(String, String)> = None;
    for i in (from..first).rev() {
        let Some(l) = lines.get(i) else { break };
        let t = l.trimmed();
        if let Some(c) = RAILS_HEADER.captures(t) {
            header = Some((
                c.name("ty").map(|m| m.as_str().to_string()).unwrap_or_default(),
                c.name("msg").map(|m| m.as_str().to_string()).unwrap_or_default(),
            ));
            bonus += 3;
            break;
        }
        if t.ends_with("):") {
            // A multi-line Rails message: find where it starts.
            let mut msg: Vec<&str> = vec![t];
            for j in (from..i).rev() {
                let Some(s) = lines.get(j) else { break };
                msg.push(s.text.trim_end());
                if RAILS_HEADER_START.is_match(s.trimmed()) {
                    msg.reverse();
                    let joined = msg.join("\n");
                    if let Some(c) = RAILS_HEADER.captures(joined.trim()) {
                        header = Some((
                            c.name("ty").map(|m| m.as_str().to_string()).unwrap_or_default(),
                            c.name("msg").map(|m| m.as_str().to_string()).unwrap_or_default(),
                        ));
                        bonus += 3;
                    }
                    break;
                }
            }
            if header.is_some() {
                break;
            }
        }
        if i + 2 >= first
            && let Some(c) = PLAIN_HEADER.captures(t)
        {
            header = Some((
                c.name("ty").map(|m| m.as_str().to_string()).unwrap_or_default(),
                c.name("msg").map(|m| m.as_str().to_string()).unwrap_or_default(),
            ));
            bonus += 2;
            break;
        }
        if l.prefixed && i + 1 < first {
            break;
        }
    }

    let mut unknown = 0;
    let mut seen_blank_after_frames = false;
    for l in lines.get(first..).unwrap_or(&[]) {
        let t = l.trimmed();
        if let Some((f, is_from, exc)) = parse_frame(t) {
            if seen_blank_after_frames && !is_from && exc.is_none() {
                break;
            }
            match exc {
                Some((ty, msg)) if !is_from => {
                    // A report's first line: a new exception (the first, or a cause).
                    if entries.len() > MAX_CAUSES {
                        break;
                    }
                    if !ty.is_empty() {
                        bonus += 3;
                    }
                    let mut e = Entry::new(ty, msg, Relation::Cause);
                    e.push(f);
                    entries.push(e);
                }
                _ => {
                    if entries.is_empty() {
                        let (ty, msg) = header.take().unwrap_or_default();
                        entries.push(Entry::new(ty, msg, Relation::Cause));
                    }
                    if let Some(e) = entries.last_mut() {
                        e.push(f);
                    }
                }
            }
            unknown = 0;
            continue;
        }
        if l.is_blank() {
            seen_blank_after_frames = true;
            continue;
        }
        if let Some(e) = entries.last_mut()
            && e.frames.len() == 1
            && unknown == 0
            && !e.ty.is_empty()
            && !l.prefixed
        {
            // The rest of a multi-line message: `file:1:in 'm': line one (Type)` is
            // followed by the other lines before the `from` lines.
            e.message.push('\n');
            e.message.push_str(t);
            continue;
        }
        unknown += 1;
        if unknown > MAX_UNKNOWN {
            break;
        }
    }
    if entries.is_empty() {
        return None;
    }
    Some(Draft {
        runtime: Runtime::Ruby,
        entries,
        thread: None,
        bonus,
    })
}
