//! CPython tracebacks (Python 2.7 to 3.13).
//!
//! Forms: `Traceback (most recent call last):` blocks with `File "…", line N, in f`
//! frames, source and caret (`^^^^`, `~~~^~~~`) lines; chained exceptions ("The above
//! exception was the direct cause…", "During handling of the above exception…");
//! exception groups (`+ Exception Group Traceback`, `+-+---- 1 ----` boxes, nested);
//! `SyntaxError`/`IndentationError` locations (`File "…", line N` without a function)
//! with or without a traceback header; headerless (truncated) tracebacks; multi-line
//! messages; `[Previous line repeated N more times]`.

use std::sync::LazyLock;

use regex::Regex;

use super::{Draft, Entry, frame, num};
use crate::text::{Line, compile};
use crate::{MAX_CAUSES, Relation, Runtime};

static HEADER: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^(?:Exception Group )?Traceback \(most recent call last\):?$"));
static FRAME: LazyLock<Regex> =
    LazyLock::new(|| compile(r#"^File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+?))?$"#));
static EXC_LINE: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^(?P<ty>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)(?::(?:\s(?P<msg>.*))?)?$"));

const CAUSE_MARKER: &str = "The above exception was the direct cause of the following exception:";
const CONTEXT_MARKER: &str = "During handling of the above exception, another exception occurred:";
const LOG_LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL", "NOTICE",
];
const MAX_MESSAGE_LINES: usize = 20;
const MAX_JUNK_LINES: usize = 30;

/// One printed traceback: frames outermost first as printed.
#[derive(Debug, Default)]
struct Block {
    ty: String,
    message: String,
    frames: Vec<crate::Frame>,
    has_header: bool,
    done: bool,
    relation_to_next: Option<Relation>,
}

/// Whether `ty` (with or without a message) can be an exception type.
fn plausible_type(ty: &str, has_message: bool) -> bool {
    if LOG_LEVELS.contains(&ty) || ty == "Traceback" || ty == "File" {
        return false;
    }
    let last = ty.rsplit('.').next().unwrap_or(ty);
    let exceptional = [
        "Error",
        "Exception",
        "Exit",
        "Interrupt",
        "Iteration",
        "Warning",
        "Group",
    ]
    .iter()
    .any(|s| last.ends_with(s));
    if !has_message {
        return exceptional || ty.contains('.');
    }
    exceptional || ty.contains('.') || ty.starts_with(|c: char| c.is_ascii_uppercase())
}

/// Parses one sequence of lines into printed blocks, root cause first.
fn parse_blocks(lines: &[Line], allow_bare: bool) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut awaiting_next = false;
    let mut msg_open = false;
    let mut msg_lines = 0;
    let mut frame_prefixed = false;
    let mut junk = 0;
    let mut base_indent = 0;

    for line in lines {
        let t = line.trimmed();
        if HEADER.is_match(t) {
            if let Some(last) = blocks.last_mut() {
                if last.done && !awaiting_next {
                    break;
                }
                last.done = true;
            }
            if blocks.len() > MAX_CAUSES {
                break;
            }
            blocks.push(Block {
                has_header: true,
                ..Block::default()
            });
            base_indent = line.indent();
            awaiting_next = false;
            msg_open = false;
            junk = 0;
            continue;
        }
        if t == CAUSE_MARKER || t == CONTEXT_MARKER {
            if let Some(last) = blocks.last_mut() {
                last.done = true;
                last.relation_to_next = Some(if t == CAUSE_MARKER {
                    Relation::Cause
                } else {
                    Relation::Context
                });
                awaiting_next = true;
                msg_open = false;
            }
            continue;
        }
        if let Some(c) = FRAME.captures(t) {
            let open = blocks.last().is_some_and(|b| !b.done);
            if !open {
                if blocks.last().is_some() && !awaiting_next {
                    break;
                }
                if blocks.len() > MAX_CAUSES {
                    break;
                }
                blocks.push(Block::default());
                base_indent = line.indent().saturating_sub(2);
                awaiting_next = false;
            }
            let file = c.name("file").map(|m| m.as_str().to_string());
            let lineno = c.name("line").and_then(|m| num(m.as_str()));
            let func = c.name("func").map(|m| m.as_str().to_string()).unwrap_or_default();
            if let Some(b) = blocks.last_mut()
                && b.frames.len() < crate::MAX_FRAMES
            {
                b.frames.push(frame(func, None, file, lineno, None));
            }
            frame_prefixed = line.prefixed;
            msg_open = false;
            junk = 0;
            continue;
        }
        if allow_bare && blocks.is_empty() && line.indent() == 0 {
            // A group member that was never raised has no traceback, only its line.
            if let Some(c) = EXC_LINE.captures(t) {
                let ty = c.name("ty").map(|m| m.as_str()).unwrap_or("");
                if plausible_type(ty, t.len() > ty.len()) {
                    blocks.push(Block {
                        ty: ty.to_string(),
                        message: c.name("msg").map(|m| m.as_str()).unwrap_or("").trim_end().to_string(),
                        done: true,
                        ..Block::default()
                    });
                    msg_open = true;
                    msg_lines = 0;
                    continue;
                }
            }
        }
        let Some(cur) = blocks.last_mut() else {
            continue;
        };
        if cur.done {
            if line.is_blank() {
                msg_open = false;
                continue;
            }
            if msg_open && line.prefixed == frame_prefixed && msg_lines < MAX_MESSAGE_LINES {
                if !cur.message.is_empty() || msg_lines > 0 {
                    cur.message.push('\n');
                }
                cur.message.push_str(line.text.trim_end());
                msg_lines += 1;
                continue;
            }
            if awaiting_next && junk < MAX_JUNK_LINES {
                junk += 1;
                continue;
            }
            break;
        }
        if line.is_blank() || line.indent() > base_indent {
            // Source lines, carets and "[Previous line repeated …]" notes.
            continue;
        }
        if let Some(c) = EXC_LINE.captures(t)
            && line.prefixed == frame_prefixed
        {
            let ty = c.name("ty").map(|m| m.as_str()).unwrap_or("");
            let msg = c.name("msg").map(|m| m.as_str());
            let has_colon = t.len() > ty.len();
            if (!cur.frames.is_empty() || cur.has_header) && plausible_type(ty, has_colon) {
                cur.ty = ty.to_string();
                cur.message = msg.unwrap_or("").trim_end().to_string();
                cur.done = true;
                msg_open = true;
                msg_lines = 0;
                junk = 0;
                continue;
            }
        }
        junk += 1;
        if junk > MAX_JUNK_LINES {
            break;
        }
    }
    while blocks.last().is_some_and(|b| b.frames.is_empty() && b.ty.is_empty()) {
        blocks.pop();
    }
    blocks
}

/// Turns printed blocks (root first) into entries outermost first.
fn blocks_to_entries(blocks: Vec<Block>, top_relation: Relation, primary: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let n = blocks.len();
    for (i, b) in blocks.into_iter().enumerate().rev() {
        let relation = if i + 1 == n {
            top_relation
        } else {
            b.relation_to_next.unwrap_or(Relation::Context)
        };
        let mut e = Entry::new(b.ty, b.message, relation);
        e.primary = primary;
        e.frames = b.frames.into_iter().rev().collect();
        out.push(e);
    }
    out
}

/// A group segment: the lines of one exception group box.
#[derive(Debug, Default)]
struct Segment {
    primary: bool,
    lines: Vec<Line>,
}

fn is_group_separator(t: &str) -> bool {
    t.starts_with("+-") && t.chars().all(|c| "+-. 0123456789".contains(c)) && t.matches('-').count() >= 8
}

/// Splits exception-group output into segments; `None` when there is no group.
fn split_groups(lines: &[Line]) -> Option<Vec<Segment>> {
    let has_group = lines.iter().any(|l| {
        let t = l.trimmed();
        t.starts_with("+ Exception Group Traceback") || is_group_separator(t)
    });
    if !has_group {
        return None;
    }
    let mut segments = vec![Segment {
        primary: true,
        lines: Vec::new(),
    }];
    for line in lines {
        let t = line.trimmed();
        if is_group_separator(t) {
            let primary = if t.starts_with("+-+") {
                segments.last().is_some_and(|s| s.primary)
            } else {
                false
            };
            if segments.len() > MAX_CAUSES {
                break;
            }
            segments.push(Segment {
                primary,
                lines: Vec::new(),
            });
            continue;
        }
        let content = strip_box(&line.text);
        if let Some(seg) = segments.last_mut() {
            seg.lines.push(Line {
                text: content.to_string(),
                prefixed: line.prefixed,
            });
        }
    }
    Some(segments)
}

/// Removes one leading `|` or `+` box marker (and the space after it).
fn strip_box(text: &str) -> &str {
    let rest = text.trim_start();
    for marker in ["| ", "+ ", "|"] {
        if let Some(r) = rest.strip_prefix(marker) {
            return r;
        }
    }
    if rest == "+" {
        return "";
    }
    text
}

/// Parses the first Python traceback in the lines.
pub(crate) fn parse(lines: &[Line]) -> Option<Draft> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut bonus = 0;
    match split_groups(lines) {
        Some(segments) => {
            bonus += 8;
            for (i, seg) in segments.into_iter().enumerate() {
                let blocks = parse_blocks(&seg.lines, i > 0);
                if blocks.is_empty() {
                    continue;
                }
                if i == 0 || entries.is_empty() {
                    entries.extend(blocks_to_entries(blocks, Relation::Cause, true));
                } else {
                    entries.extend(blocks_to_entries(blocks, Relation::GroupMember, seg.primary));
                }
            }
        }
        None => {
            let blocks = parse_blocks(lines, false);
            if blocks.iter().any(|b| b.has_header) {
                bonus += 5;
            }
            entries = blocks_to_entries(blocks, Relation::Cause, true);
        }
    }
    // A lone exception line is not a trace; a SyntaxError location is.
    let has_frames = entries.iter().any(|e| !e.frames.is_empty());
    if entries.is_empty() || !has_frames {
        return None;
    }
    Some(Draft {
        runtime: Runtime::Python,
        entries,
        thread: None,
        bonus,
    })
}
