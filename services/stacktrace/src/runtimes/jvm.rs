//! JVM traces: Java, Kotlin, Scala, Groovy (`Throwable.printStackTrace` and logback /
//! log4j renderings).
//!
//! Forms: `Exception in thread "main" type: message`, a bare `type: message` header
//! (also unqualified types after a java.util.logging prefix), multi-line messages,
//! `\tat pkg.Class.method(File.java:N)` frames with Java 9+ module prefixes
//! (`java.base/`, `app//`), `Native Method`, `Unknown Source`, `<generated>`,
//! lambdas (`lambda$main$0`, `$$Lambda$14/0x…`), inner and anonymous classes
//! (`Outer$Inner`, `Outer$1`), Scala `$anonfun$` frames, logback's `~[jar:version]`
//! suffixes, `Caused by:` chains, `Suppressed:` blocks (nested, with their own causes),
//! `... N more` and `... N common frames omitted` (expanded from the enclosing trace),
//! `[CIRCULAR REFERENCE: …]`, and headerless (truncated) traces.

use std::sync::LazyLock;

use regex::Regex;

use super::{Draft, Entry, frame, num, split_qualified};
use crate::text::{Line, compile};
use crate::{Frame, MAX_CAUSES, Relation, Runtime};

static FRAME: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^at\s+(?:[\w.@-]+/{1,2})?(?P<fn>[^\s(]+)\((?P<loc>[^()]*)\)(?:\s*~?\[[^\]]*\])?$"));
static LOC: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^(?:(?P<native>Native Method)|(?P<unknown>Unknown Source|SourceFile|<generated>|Unknown)(?::(?P<uline>\d+))?|(?P<file>[^:()\s]+)(?::(?P<line>\d+))?)$",
    )
});
static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r#"^(?:Exception in thread "(?P<thread>[^"]*)"\s+)?(?P<ty>(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*)(?::\s?(?P<msg>.*))?$"#,
    )
});
static LENIENT_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"(?:^|[\s:])(?P<ty>[A-Za-z_$][\w$.]*(?:Exception|Error|Throwable|Failure)[\w$]*)(?::\s?(?P<msg>.*))?$")
});
static MORE: LazyLock<Regex> = LazyLock::new(|| compile(r"^\.\.\.\s*(?P<n>\d+)\s+(?:more|common frames omitted)$"));

const HEADER_LOOKBACK: usize = 12;
const MAX_UNKNOWN: usize = 3;

/// A frame from one `at …` line, or `None` when the line is not a JVM frame.
fn parse_frame(t: &str) -> Option<Frame> {
    if !t.starts_with("at") || !t.ends_with([')', ']']) {
        return None;
    }
    let c = FRAME.captures(t)?;
    let full = c.name("fn")?.as_str();
    let loc = c.name("loc")?.as_str().trim();
    let lc = LOC.captures(loc)?;
    let (module, function) = split_qualified(full, ".");
    let (file, line) = if let Some(f) = lc.name("file") {
        // A JVM source file has an extension; a bare word is more likely .NET or Node.
        if !f.as_str().contains('.') {
            return None;
        }
        (
            Some(f.as_str().to_string()),
            lc.name("line").and_then(|m| num(m.as_str())),
        )
    } else {
        (None, lc.name("uline").and_then(|m| num(m.as_str())))
    };
    Some(frame(function, module.map(str::to_string), file, line, None))
}

/// Splits a header line into type, message and thread.
fn parse_header(t: &str, lenient: bool) -> Option<(String, String, Option<String>)> {
    if let Some(c) = HEADER.captures(t) {
        let ty = c.name("ty").map(|m| m.as_str()).unwrap_or("");
        // "a.b" alone is a sentence fragment more often than an exception.
        let last = ty.rsplit('.').next().unwrap_or("");
        if c.name("msg").is_some() || c.name("thread").is_some() || last.starts_with(|ch: char| ch.is_ascii_uppercase())
        {
            return Some((
                ty.to_string(),
                c.name("msg")
                    .map(|m| m.as_str().trim_end().to_string())
                    .unwrap_or_default(),
                c.name("thread").map(|m| m.as_str().to_string()),
            ));
        }
    }
    if lenient && let Some(c) = LENIENT_HEADER.captures(t) {
        return Some((
            c.name("ty").map(|m| m.as_str().to_string()).unwrap_or_default(),
            c.name("msg")
                .map(|m| m.as_str().trim_end().to_string())
                .unwrap_or_default(),
            None,
        ));
    }
    None
}

/// An entry under construction with its place in the printed nesting.
struct Node {
    entry: Entry,
    indent: usize,
    parent: Option<usize>,
    /// Whether its `... N more` line has been expanded.
    expanded: bool,
}

/// Parses the first JVM trace in the lines.
pub(crate) fn parse(lines: &[Line]) -> Option<Draft> {
    let first = lines.iter().position(|l| parse_frame(l.trimmed()).is_some())?;

    // The header: the uppermost strict header line above the first frame, with the
    // lines between it and the frame as the rest of its message.
    let mut header: Option<(usize, String, String, Option<String>)> = None;
    let lookback_from = first.saturating_sub(HEADER_LOOKBACK);
    for i in (lookback_from..first).rev() {
        let Some(l) = lines.get(i) else { break };
        if l.is_blank() {
            break;
        }
        if let Some((ty, msg, thread)) = parse_header(l.trimmed(), false) {
            header = Some((i, ty, msg, thread));
            if l.trimmed().starts_with("Exception in thread") {
                break;
            }
        }
        if l.prefixed {
            // A new log record: the header cannot be above it.
            break;
        }
    }
    if header.is_none()
        && first > 0
        && let Some(l) = lines.get(first - 1)
        && let Some((ty, msg, thread)) = parse_header(l.trimmed(), true)
    {
        header = Some((first - 1, ty, msg, thread));
    }
    let mut bonus = 0;
    let (top_ty, mut top_msg, thread, top_indent) = match &header {
        Some((i, ty, msg, thread)) => {
            bonus += 3;
            (
                ty.clone(),
                msg.clone(),
                thread.clone(),
                lines.get(*i).map_or(0, Line::indent),
            )
        }
        None => (String::new(), String::new(), None, 0),
    };
    if let Some((i, ..)) = &header {
        for l in lines.get(i + 1..first).unwrap_or(&[]) {
            top_msg.push('\n');
            top_msg.push_str(l.text.trim_end());
        }
    }

    let mut nodes = vec![Node {
        entry: Entry::new(top_ty, top_msg, Relation::Cause),
        indent: top_indent,
        parent: None,
        expanded: false,
    }];
    let mut current = 0usize;
    let mut unknown = 0usize;
    for l in lines.get(first..).unwrap_or(&[]) {
        let t = l.trimmed();
        if let Some(f) = parse_frame(t) {
            if let Some(n) = nodes.get_mut(current) {
                n.entry.push(f);
            }
            unknown = 0;
            continue;
        }
        let (rest, relation) = if let Some(r) = t.strip_prefix("Caused by:") {
            (r.trim(), Some(Relation::Cause))
        } else if let Some(r) = t.strip_prefix("Suppressed:") {
            (r.trim(), Some(Relation::Suppressed))
        } else {
            (t, None)
        };
        if let Some(relation) = relation {
            if nodes.len() > MAX_CAUSES {
                break;
            }
            let indent = l.indent();
            let parent = match relation {
                Relation::Suppressed => nodes.iter().rposition(|n| n.indent < indent),
                _ => nodes
                    .iter()
                    .rposition(|n| n.indent == indent)
                    .or_else(|| nodes.iter().rposition(|n| n.indent < indent)),
            }
            .unwrap_or(0);
            let primary = relation == Relation::Cause && nodes.get(parent).is_some_and(|p| p.entry.primary);
            let (ty, msg, _) = parse_header(rest, true).unwrap_or_else(|| (String::new(), rest.to_string(), None));
            let mut entry = Entry::new(ty, msg, relation);
            entry.primary = primary;
            nodes.push(Node {
                entry,
                indent,
                parent: Some(parent),
                expanded: false,
            });
            current = nodes.len() - 1;
            unknown = 0;
            continue;
        }
        if let Some(c) = MORE.captures(t) {
            let n = c.name("n").and_then(|m| num(m.as_str())).unwrap_or(0) as usize;
            let parent = nodes.get(current).and_then(|n| n.parent);
            // Only one `... N more` closes an exception; more are noise (and copying
            // frames again for each would make hostile input quadratic).
            let done = nodes.get(current).is_none_or(|n| n.expanded);
            if let Some(cur) = nodes.get_mut(current) {
                cur.expanded = true;
            }
            if !done && let Some(p) = parent.and_then(|p| nodes.get(p)) {
                let frames = &p.entry.frames;
                let tail: Vec<Frame> = frames.get(frames.len().saturating_sub(n)..).unwrap_or(&[]).to_vec();
                if let Some(cur) = nodes.get_mut(current) {
                    for f in tail {
                        cur.entry.push(f);
                    }
                }
            }
            unknown = 0;
            continue;
        }
        if t.starts_with("[CIRCULAR REFERENCE") {
            continue;
        }
        // A multi-line message of a `Caused by:` continues until its first frame.
        if let Some(cur) = nodes.get_mut(current)
            && current > 0
            && cur.entry.frames.is_empty()
            && !l.is_blank()
            && unknown == 0
        {
            cur.entry.message.push('\n');
            cur.entry.message.push_str(l.text.trim_end());
            continue;
        }
        unknown += 1;
        if unknown > MAX_UNKNOWN {
            break;
        }
    }
    let entries: Vec<Entry> = nodes.into_iter().map(|n| n.entry).collect();
    Some(Draft {
        runtime: Runtime::Jvm,
        entries,
        thread,
        bonus,
    })
}
