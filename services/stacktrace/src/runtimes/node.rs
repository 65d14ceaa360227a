//! Node.js / V8 traces (`Error.stack`, uncaught exception output, `util.inspect`).
//!
//! Forms: `Type: message` headers (also `Error [ERR_CODE]: …`, `Uncaught …`, custom
//! types, multi-line messages), the source excerpt and caret Node prints above an
//! uncaught error, `at fn (file:line:col)`, anonymous `at file:line:col`, `async`
//! frames, `new` constructors, `[as alias]`, `Object.<anonymous>`, `<anonymous>` and
//! `native` locations, `index N` (Promise.all), `eval at …` locations, `file://` URLs
//! (ES modules), `node:internal/…` frames, `[cause]: …` chains from `util.inspect`
//! and `Caused by:` chains (VError, pino), error properties (`{ code: … }`) and
//! `... N lines matching cause stack trace ...` between them.

use std::sync::LazyLock;

use regex::Regex;

use super::{Draft, Entry, frame, num};
use crate::text::{Line, compile};
use crate::{Frame, MAX_CAUSES, Relation, Runtime};

static FRAME_CALL: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^at\s+(?:async\s+)?(?:new\s+)?(?P<fn>.+?(?:\s|\]))\s*\((?P<loc>.*)\)$"));
static FRAME_BARE: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^at\s+(?:async\s+)?(?P<loc>\S+:\d+:\d+|<anonymous>|native)$"));
static LOC: LazyLock<Regex> = LazyLock::new(|| compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)$"));
static EVAL_INNER: LazyLock<Regex> = LazyLock::new(|| compile(r"\((?P<loc>[^()]+:\d+:\d+)\)"));
static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^(?:Uncaught\s+(?:\(in promise\)\s+)?)?\[?(?P<ty>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(?P<code>\s\[[\w.-]+\])?(?::\s?(?P<msg>.*?))?\]?$",
    )
});

const HEADER_LOOKBACK: usize = 12;
const MAX_UNKNOWN: usize = 6;

/// Parses a location (`/app/x.js:1:2`, `<anonymous>`, `index 0`, `eval at …`).
fn parse_loc(loc: &str) -> Option<(Option<String>, Option<u32>, Option<u32>)> {
    let loc = loc.trim();
    if loc.starts_with("eval at ") {
        let inner = EVAL_INNER.captures(loc).and_then(|c| c.name("loc"));
        return Some(match inner.and_then(|m| LOC.captures(m.as_str())) {
            Some(c) => file_line_col(&c),
            None => (None, None, None),
        });
    }
    if let Some(c) = LOC.captures(loc) {
        return Some(file_line_col(&c));
    }
    if loc == "<anonymous>" || loc == "native" || loc.starts_with("index ") {
        return Some((None, None, None));
    }
    None
}

/// Source files of other runtimes: a Rust backtrace's `at /rustc/…/mod.rs:104:5` or a
/// Go file is not a V8 frame, however alike the line looks.
const FOREIGN_EXTENSIONS: &[&str] = &[
    "rs", "go", "py", "java", "kt", "scala", "rb", "cs", "c", "h", "cc", "cpp", "hpp", "s",
];

/// Whether the location's file belongs to another runtime.
fn foreign_file(file: &str) -> bool {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| FOREIGN_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

fn file_line_col(c: &regex::Captures<'_>) -> (Option<String>, Option<u32>, Option<u32>) {
    let file = c.name("file").map(|m| {
        let f = m.as_str();
        f.strip_prefix("file://").unwrap_or(f).to_string()
    });
    (
        file,
        c.name("line").and_then(|m| num(m.as_str())),
        c.name("col").and_then(|m| num(m.as_str())),
    )
}

/// A frame from one `at …` line, or `None` when it is not a V8 frame.
fn parse_frame(t: &str) -> Option<Frame> {
    // util.inspect opens the property block on the last frame's line.
    let t = t.strip_suffix(" {").unwrap_or(t);
    if !t.starts_with("at") {
        return None;
    }
    if let Some(c) = FRAME_CALL.captures(t) {
        let function = c.name("fn")?.as_str().trim().to_string();
        let (file, line, col) = parse_loc(c.name("loc")?.as_str())?;
        if file.as_deref().is_some_and(foreign_file) {
            return None;
        }
        return Some(frame(function, None, file, line, col));
    }
    let c = FRAME_BARE.captures(t)?;
    let (file, line, col) = parse_loc(c.name("loc")?.as_str())?;
    if file.as_deref().is_some_and(foreign_file) {
        return None;
    }
    Some(frame("<anonymous>", None, file, line, col))
}

/// Type and message of a header line; `strong` when the type looks like an error.
fn parse_header(t: &str) -> Option<(String, String, bool)> {
    let c = HEADER.captures(t)?;
    let ty = c.name("ty")?.as_str();
    let code = c.name("code").map(|m| m.as_str()).unwrap_or("");
    let msg = c.name("msg").map(|m| m.as_str().to_string());
    let strong = !code.is_empty()
        || ["Error", "Exception", "Rejection", "Failure"]
            .iter()
            .any(|s| ty.ends_with(s));
    if !strong && msg.is_none() {
        return None;
    }
    if ["at", "INFO", "DEBUG", "WARN", "ERROR", "TRACE"].contains(&ty) {
        return None;
    }
    Some((format!("{ty}{code}"), msg.unwrap_or_default(), strong))
}

/// Parses the first V8 trace in the lines.
pub(crate) fn parse(lines: &[Line]) -> Option<Draft> {
    let first = lines.iter().position(|l| parse_frame(l.trimmed()).is_some())?;

    // The header: in the block of non-blank lines right above the first frame, the
    // uppermost line with an error-like type, else the nearest line of `Type: message`.
    let mut strong_idx = None;
    let mut weak_idx = None;
    let from = first.saturating_sub(HEADER_LOOKBACK);
    for i in (from..first).rev() {
        let Some(l) = lines.get(i) else { break };
        if l.is_blank() {
            break;
        }
        if let Some((ty, _, strong)) = parse_header(l.trimmed()) {
            if strong {
                strong_idx = Some(i);
            } else if ty.starts_with(|c: char| c.is_ascii_uppercase()) {
                weak_idx = Some(i);
            }
        }
        if l.prefixed {
            break;
        }
    }
    if strong_idx.is_none() && weak_idx.is_none() {
        // Messages may contain blank lines (assertion diffs): look further up for an
        // error-like header, stopping at a new log record.
        for i in (from..first).rev() {
            let Some(l) = lines.get(i) else { break };
            if let Some((_, _, true)) = parse_header(l.trimmed()) {
                strong_idx = Some(i);
                break;
            }
            if l.prefixed {
                break;
            }
        }
    }
    let mut bonus = 0;
    let mut top = Entry::new("", "", Relation::Cause);
    if let Some(i) = strong_idx.or(weak_idx)
        && let Some(l) = lines.get(i)
        && let Some((ty, msg, _)) = parse_header(l.trimmed())
    {
        bonus += 2;
        top.ty = ty;
        top.message = msg;
        for more in lines.get(i + 1..first).unwrap_or(&[]) {
            top.message.push('\n');
            top.message.push_str(more.text.trim_end());
        }
        top.message.truncate(top.message.trim_end().len());
    }

    let mut entries = vec![top];
    let mut unknown = 0;
    for l in lines.get(first..).unwrap_or(&[]) {
        let t = l.trimmed();
        if let Some(f) = parse_frame(t) {
            if let Some(e) = entries.last_mut() {
                e.push(f);
            }
            unknown = 0;
            continue;
        }
        let cause = t
            .strip_prefix("[cause]:")
            .or_else(|| t.strip_prefix("Caused by:"))
            .or_else(|| t.strip_prefix("caused by:"));
        if let Some(rest) = cause {
            if entries.len() > MAX_CAUSES {
                break;
            }
            let rest = rest.trim();
            let (ty, msg) = match parse_header(rest) {
                Some((ty, msg, _)) => (ty, msg),
                None => (String::new(), rest.to_string()),
            };
            entries.push(Entry::new(ty, msg, Relation::Cause));
            unknown = 0;
            continue;
        }
        if t.starts_with("...") && t.contains("lines matching cause stack trace") {
            continue;
        }
        if t == "{" || t == "}" || t.ends_with('{') || t.starts_with('}') {
            // util.inspect's property block around `[cause]`.
            unknown = 0;
            continue;
        }
        unknown += 1;
        if unknown > MAX_UNKNOWN {
            break;
        }
    }
    Some(Draft {
        runtime: Runtime::Node,
        entries,
        thread: None,
        bonus,
    })
}
