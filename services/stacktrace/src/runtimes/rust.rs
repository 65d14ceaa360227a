//! Rust panics, backtraces and anyhow error reports.
//!
//! Forms: `thread 'name' panicked at file:line:col:` followed by the message (Rust
//! 1.73+, also with the thread id `thread 'main' (12345)` of newer releases, and with the
//! message joined onto the same line), the older
//! `panicked at 'message', file:line:col` (also multi-line and without a column),
//! `thread '<unnamed>'`, `note: run with RUST_BACKTRACE=1`, `stack backtrace:` with
//! RUST_BACKTRACE=1 frames (`N: symbol` + `at file:line:col`) and RUST_BACKTRACE=full
//! frames (`N: 0xaddr - symbol::h<hash>`), `<unknown>` symbols, trait-impl symbols
//! (`<T as Trait>::method`), closures (`{{closure}}`), `has overflowed its stack`,
//! and anyhow's `Error: …` / `Caused by:` / `Stack backtrace:` report from `main`.
//! The panic location is a frame of its own when the backtrace does not contain it
//! (no backtrace, or `#[track_caller]` locations).

use std::sync::LazyLock;

use regex::Regex;

use super::{Draft, Entry, frame, num, split_qualified};
use crate::text::{Line, compile};
use crate::{Frame, MAX_CAUSES, Relation, Runtime};

static PANIC_NEW: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^(?:thread '(?P<thread>[^']*)'(?: \(\d+\))? )?panicked at (?P<file>[^\s'][^:]*):(?P<line>\d+):(?P<col>\d+):(?:\s+(?P<msg>\S.*))?$",
    )
});
static PANIC_OLD_START: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^(?:thread '(?P<thread>[^']*)'(?: \(\d+\))? )?panicked at '(?P<rest>.*)$"));
static OLD_TAIL: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^(?P<msg>.*)', (?P<file>[^\s:][^:]*):(?P<line>\d+)(?::(?P<col>\d+))?$"));
static OVERFLOW: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^thread '(?P<thread>[^']*)'(?: \(\d+\))? has overflowed its stack$"));
static BT_HEADER: LazyLock<Regex> = LazyLock::new(|| compile(r"^(?:stack backtrace|Stack backtrace|Backtrace):$"));
static BT_SYMBOL: LazyLock<Regex> = LazyLock::new(|| compile(r"^(?P<n>\d+):\s+(?:0x[0-9a-fA-F]+\s+-\s+)?(?P<sym>.+)$"));
static BT_AT: LazyLock<Regex> = LazyLock::new(|| compile(r"^at (?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?$"));
static SYMBOL_HASH: LazyLock<Regex> = LazyLock::new(|| compile(r"::h[0-9a-f]{16}$"));
static ANYHOW_ERROR: LazyLock<Regex> = LazyLock::new(|| compile(r"^Error: (?P<msg>.+)$"));
static CAUSE_ITEM: LazyLock<Regex> = LazyLock::new(|| compile(r"^(?:\d+:\s+)?(?P<msg>.+)$"));

const MAX_MESSAGE_LINES: usize = 20;
/// Stray lines tolerated between `stack backtrace:` and the first frame.
const MAX_STRAY_BEFORE: usize = 8;
/// Consecutive stray lines tolerated between two frames.
const MAX_STRAY_BETWEEN: usize = 2;

/// A backtrace frame's symbol split into module and function.
fn symbol_frame(sym: &str) -> Frame {
    let sym = SYMBOL_HASH.replace(sym.trim(), "");
    let (module, function) = split_qualified(&sym, "::");
    frame(function, module.map(str::to_string), None, None, None)
}

/// Reads a `stack backtrace:` section starting after its header.
fn read_backtrace(lines: &[Line]) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut unknown = 0;
    for l in lines {
        let t = l.trimmed();
        if let Some(c) = BT_SYMBOL.captures(t) {
            if frames.len() >= crate::MAX_FRAMES {
                break;
            }
            frames.push(symbol_frame(c.name("sym").map(|m| m.as_str()).unwrap_or("")));
            unknown = 0;
            continue;
        }
        if let Some(c) = BT_AT.captures(t) {
            if let Some(f) = frames.last_mut()
                && f.file.is_none()
            {
                f.file = c.name("file").map(|m| m.as_str().to_string());
                f.line = c.name("line").and_then(|m| num(m.as_str()));
                f.column = c.name("col").and_then(|m| num(m.as_str()));
            }
            unknown = 0;
            continue;
        }
        if t.starts_with("note: ") {
            break;
        }
        // The process's own output interleaves with stderr: a few stray lines before the
        // first frame or between frames do not end the backtrace.
        unknown += 1;
        let limit = if frames.is_empty() {
            MAX_STRAY_BEFORE
        } else {
            MAX_STRAY_BETWEEN
        };
        if unknown > limit {
            break;
        }
    }
    frames
}

/// Whether a backtrace frame is at the panic location.
fn same_place(f: &Frame, file: &str, line: Option<u32>) -> bool {
    let clean = |p: &str| p.trim_start_matches("./").replace('\\', "/");
    match &f.file {
        Some(ff) => {
            let (a, b) = (clean(ff), clean(file));
            (a.ends_with(&b) || b.ends_with(&a)) && f.line == line
        }
        None => false,
    }
}

/// Parses the first Rust panic or anyhow report in the lines.
pub(crate) fn parse(lines: &[Line]) -> Option<Draft> {
    for (i, l) in lines.iter().enumerate() {
        let t = l.trimmed();
        if let Some(c) = PANIC_NEW.captures(t) {
            let thread = c.name("thread").map(|m| m.as_str().to_string());
            let file = c.name("file").map(|m| m.as_str().to_string()).unwrap_or_default();
            let line = c.name("line").and_then(|m| num(m.as_str()));
            let col = c.name("col").and_then(|m| num(m.as_str()));
            // The message follows on the next lines; a log shipper that joined the lines
            // leaves it on the location line itself.
            let mut msg_lines: Vec<&str> = c.name("msg").map(|m| m.as_str().trim_end()).into_iter().collect();
            for m in lines.get(i + 1..).unwrap_or(&[]).iter().take(MAX_MESSAGE_LINES) {
                let mt = m.trimmed();
                if mt.starts_with("note: ") || BT_HEADER.is_match(mt) || m.prefixed || mt.starts_with("thread '") {
                    break;
                }
                msg_lines.push(m.text.trim_end());
            }
            while msg_lines.last().is_some_and(|s| s.trim().is_empty()) {
                msg_lines.pop();
            }
            return Some(panic_draft(lines, i, thread, msg_lines.join("\n"), file, line, col));
        }
        if let Some(c) = PANIC_OLD_START.captures(t) {
            let thread = c.name("thread").map(|m| m.as_str().to_string());
            let rest = c.name("rest").map(|m| m.as_str()).unwrap_or("");
            let mut msg = String::new();
            let mut candidate = rest.to_string();
            let mut found = None;
            for (k, m) in std::iter::once(rest)
                .chain(lines.get(i + 1..).unwrap_or(&[]).iter().map(|m| m.text.as_str()))
                .take(MAX_MESSAGE_LINES)
                .enumerate()
            {
                if k > 0 {
                    candidate = m.to_string();
                }
                if let Some(tc) = OLD_TAIL.captures(&candidate) {
                    if !msg.is_empty() {
                        msg.push('\n');
                    }
                    msg.push_str(tc.name("msg").map(|x| x.as_str()).unwrap_or(""));
                    found = Some((
                        tc.name("file").map(|x| x.as_str().to_string()).unwrap_or_default(),
                        tc.name("line").and_then(|x| num(x.as_str())),
                        tc.name("col").and_then(|x| num(x.as_str())),
                    ));
                    break;
                }
                if !msg.is_empty() {
                    msg.push('\n');
                }
                msg.push_str(&candidate);
            }
            if let Some((file, line, col)) = found {
                return Some(panic_draft(lines, i, thread, msg, file, line, col));
            }
            continue;
        }
        if let Some(c) = OVERFLOW.captures(t) {
            let mut e = Entry::new("stack overflow", "", Relation::Cause);
            e.message = format!(
                "thread '{}' has overflowed its stack",
                c.name("thread").map(|m| m.as_str()).unwrap_or("")
            );
            return Some(Draft {
                runtime: Runtime::Rust,
                entries: vec![e],
                thread: c.name("thread").map(|m| m.as_str().to_string()),
                bonus: 3,
            });
        }
        if let Some(c) = ANYHOW_ERROR.captures(t)
            && !l.text.starts_with(char::is_whitespace)
            && let Some(d) = anyhow_draft(lines, i, c.name("msg").map(|m| m.as_str()).unwrap_or(""))
        {
            return Some(d);
        }
    }
    // A backtrace whose panic line was lost (a truncated log, stderr split from stdout):
    // the frames still say where it happened; the type stays empty.
    if let Some(bt) = lines.iter().position(|l| BT_HEADER.is_match(l.trimmed())) {
        let frames = read_backtrace(lines.get(bt + 1..).unwrap_or(&[]));
        if !frames.is_empty() {
            let mut e = Entry::new("", "", Relation::Cause);
            for f in frames {
                e.push(f);
            }
            return Some(Draft {
                runtime: Runtime::Rust,
                entries: vec![e],
                thread: None,
                bonus: 2,
            });
        }
    }
    None
}

/// A panic's draft: message, location and the backtrace that follows, if any.
fn panic_draft(
    lines: &[Line],
    at: usize,
    thread: Option<String>,
    message: String,
    file: String,
    line: Option<u32>,
    col: Option<u32>,
) -> Draft {
    let mut frames = Vec::new();
    let rest = lines.get(at + 1..).unwrap_or(&[]);
    if let Some(bt) = rest
        .iter()
        .take(MAX_MESSAGE_LINES + 4)
        .position(|l| BT_HEADER.is_match(l.trimmed()))
    {
        frames = read_backtrace(rest.get(bt + 1..).unwrap_or(&[]));
    }
    if !frames.iter().any(|f| same_place(f, &file, line)) {
        frames.insert(0, frame("", None, Some(file), line, col));
    }
    let mut e = Entry::new("panic", message, Relation::Cause);
    for f in frames {
        e.push(f);
    }
    Draft {
        runtime: Runtime::Rust,
        entries: vec![e],
        thread,
        bonus: 6,
    }
}

/// anyhow's report: `Error: msg`, blank, `Caused by:` and numbered causes, and/or a
/// `Stack backtrace:`. `None` when the `Error:` line has neither.
fn anyhow_draft(lines: &[Line], at: usize, message: &str) -> Option<Draft> {
    let rest = lines.get(at + 1..).unwrap_or(&[]);
    let mut entries = vec![Entry::new("Error", message, Relation::Cause)];
    let mut i = 0;
    while rest.get(i).is_some_and(Line::is_blank) && i < 3 {
        i += 1;
    }
    let mut recognised = false;
    if rest.get(i).is_some_and(|l| l.trimmed() == "Caused by:") {
        recognised = true;
        i += 1;
        while let Some(l) = rest.get(i) {
            if l.is_blank() || !l.text.starts_with(char::is_whitespace) || entries.len() > MAX_CAUSES {
                break;
            }
            if let Some(c) = CAUSE_ITEM.captures(l.trimmed()) {
                entries.push(Entry::new(
                    "",
                    c.name("msg").map(|m| m.as_str()).unwrap_or(""),
                    Relation::Cause,
                ));
            }
            i += 1;
        }
        while rest.get(i).is_some_and(Line::is_blank) {
            i += 1;
        }
    }
    if rest.get(i).is_some_and(|l| BT_HEADER.is_match(l.trimmed())) {
        recognised = true;
        let frames = read_backtrace(rest.get(i + 1..).unwrap_or(&[]));
        if let Some(top) = entries.first_mut() {
            for f in frames {
                top.push(f);
            }
        }
    }
    recognised.then_some(Draft {
        runtime: Runtime::Rust,
        entries,
        thread: None,
        bonus: 3,
    })
}
