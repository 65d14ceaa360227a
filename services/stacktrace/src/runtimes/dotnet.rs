//! .NET traces: `Exception.ToString()` from CoreCLR (.NET Core / 5+) and .NET
//! Framework, and Mono's rendering.
//!
//! Forms: `Unhandled exception. Type: message` and `Unhandled Exception:` headers,
//! ASP.NET Core logger blocks (`fail: …[1]` + indented exception), inner exceptions
//! both inline (`A: m ---> B: n`) and on their own line (` ---> B: n`), frame blocks
//! separated by `--- End of inner exception stack trace ---` (innermost exception's
//! frames first), `--- End of stack trace from previous location ---` (async
//! boundaries), async state-machine frames (`<GetAsync>d__5.MoveNext()` → `GetAsync`),
//! lambdas and local functions (`<>c.<Main>b__0_0`, `<Main>g__Local|0_0`), generic
//! types and methods, `.ctor`, `in /path/File.cs:line N` (also Windows paths), Mono
//! frames (`Method (args) [0x0000f] in /path/File.cs:27`, `<filename unknown>:0`,
//! `(wrapper managed-to-native)`), and `AggregateException` members
//! (`---> (Inner Exception #1) …<---`).

use std::sync::LazyLock;

use regex::Regex;

use super::{Draft, Entry, frame, num, split_qualified};
use crate::text::{Line, compile};
use crate::{Frame, MAX_CAUSES, Relation, Runtime};

static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^at\s+(?:\(wrapper [^)]*\)\s+)?(?P<fn>[^\s(][^(]*?)\s*\((?P<args>[^()]*)\)(?:\s*\[0x[0-9a-fA-F]+\])?(?:\s*<0x[0-9a-fA-F]+(?:\s*\+\s*0x[0-9a-fA-F]+)?>)?(?:\s+in\s+(?P<file>.+?)(?::line\s+|:)(?P<line>\d+))?$",
    )
});
static HEADER_PART: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^(?:Unhandled [Ee]xception(?:\.|:)\s*|\[ERROR\] FATAL UNHANDLED EXCEPTION:\s*)?(?:\(Inner Exception #\d+\)\s*)?(?P<ty>[A-Za-z_][\w`]*(?:[.+][A-Za-z_][\w`]*)+)(?::\s?(?P<msg>[\s\S]*))?$",
    )
});
static ASYNC_MODULE: LazyLock<Regex> = LazyLock::new(|| compile(r"^(?P<outer>.+)\.<(?P<name>[^>]+)>d__\d+$"));

const HEADER_LOOKBACK: usize = 15;
const MAX_UNKNOWN: usize = 3;

/// Whether the argument list of a matched line belongs to another runtime.
fn foreign_args(args: &str) -> bool {
    let a = args.trim();
    a.contains('/')
        || a.contains('\\')
        || a == "Native Method"
        || a.starts_with("Unknown Source")
        || a.starts_with('<')
        || a.rsplit(':')
            .next()
            .is_some_and(|tail| !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit()))
        || [".java", ".kt", ".scala", ".groovy"].iter().any(|e| a.contains(e))
}

/// A frame from one `at …` line, or `None` when it is not a .NET frame.
fn parse_frame(t: &str) -> Option<Frame> {
    if !t.starts_with("at") {
        return None;
    }
    let c = FRAME.captures(t)?;
    let args = c.name("args").map(|m| m.as_str()).unwrap_or("");
    if foreign_args(args) {
        return None;
    }
    let full = c.name("fn")?.as_str().trim();
    if full.contains(' ') && !full.contains('[') && !full.contains('<') {
        return None;
    }
    let (mut module, mut function) = if let Some(m) = full.strip_suffix("..ctor") {
        (Some(m.to_string()), ".ctor".to_string())
    } else if let Some(m) = full.strip_suffix("..cctor") {
        (Some(m.to_string()), ".cctor".to_string())
    } else {
        let (m, f) = split_qualified(full, ".");
        (m.map(str::to_string), f.to_string())
    };
    if function == "MoveNext"
        && let Some(m) = module.as_deref()
        && let Some(ac) = ASYNC_MODULE.captures(m)
    {
        let outer = ac.name("outer").map(|x| x.as_str().to_string());
        function = ac.name("name").map(|x| x.as_str().to_string()).unwrap_or(function);
        module = outer;
    }
    let mut file = c.name("file").map(|m| m.as_str().trim().to_string());
    let mut line = c.name("line").and_then(|m| num(m.as_str()));
    if file.as_deref().is_some_and(|f| f.starts_with('<')) {
        file = None;
        line = None;
    }
    if line == Some(0) {
        line = None;
    }
    Some(frame(function, module, file, line, None))
}

/// Splits a header text (`A: m ---> B: n`) into exceptions, outermost first.
fn parse_chain(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in text.split("--->") {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if let Some(c) = HEADER_PART.captures(part) {
            out.push((
                c.name("ty").map(|m| m.as_str().to_string()).unwrap_or_default(),
                c.name("msg").map(|m| m.as_str().trim().to_string()).unwrap_or_default(),
            ));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(" ---> ");
            last.1.push_str(part);
        }
        if out.len() > MAX_CAUSES {
            break;
        }
    }
    out
}

/// Whether a line starts a .NET exception header.
fn is_header_line(t: &str) -> bool {
    let t = t.trim_start_matches("--->").trim();
    let Some(c) = HEADER_PART.captures(t) else {
        return false;
    };
    let ty = c.name("ty").map(|m| m.as_str()).unwrap_or("");
    let last = ty.rsplit(['.', '+']).next().unwrap_or("");
    ["Exception", "Error", "Fault", "Failure"]
        .iter()
        .any(|s| last.contains(s))
}

/// Parses the first .NET trace in the lines.
pub(crate) fn parse(lines: &[Line]) -> Option<Draft> {
    let first = lines.iter().position(|l| parse_frame(l.trimmed()).is_some())?;

    // The header: the uppermost header line above the first frame.
    let mut start = None;
    let from = first.saturating_sub(HEADER_LOOKBACK);
    for i in (from..first).rev() {
        let Some(l) = lines.get(i) else { break };
        if l.is_blank() {
            break;
        }
        if is_header_line(l.trimmed()) {
            start = Some(i);
        }
        if l.prefixed {
            break;
        }
    }
    let mut chain: Vec<(String, String)> = Vec::new();
    let mut bonus = 0;
    // Frame blocks: the first belongs to the innermost exception. An inner exception
    // without frames ends its (empty) block before the first frame.
    let mut blocks: Vec<Vec<Frame>> = vec![Vec::new()];
    if let Some(s) = start {
        let mut text: Vec<&str> = Vec::new();
        for l in lines.get(s..first).unwrap_or(&[]) {
            let t = l.text.trim();
            if t.starts_with("--- End of inner exception stack trace") {
                blocks.push(Vec::new());
            } else if !t.starts_with("File name:") && !t.starts_with("--- End of") {
                text.push(t);
            }
        }
        chain = parse_chain(&text.join("\n"));
        bonus += 3;
    }
    if chain.is_empty() {
        chain.push((String::new(), String::new()));
    }

    let mut members: Vec<Entry> = Vec::new();
    let mut in_member = false;
    let mut unknown = 0;
    for l in lines.get(first..).unwrap_or(&[]) {
        let t = l.trimmed();
        // An AggregateException member ends with `<---` on its last frame's line.
        let (t, closes) = match t.strip_suffix("<---") {
            Some(r) if !r.trim().is_empty() => (r.trim_end(), true),
            _ => (t, false),
        };
        if let Some(f) = parse_frame(t) {
            if in_member {
                if let Some(m) = members.last_mut() {
                    m.push(f);
                }
            } else if let Some(b) = blocks.last_mut()
                && b.len() < crate::MAX_FRAMES
            {
                b.push(f);
            }
            if closes {
                in_member = false;
            }
            unknown = 0;
            continue;
        }
        if t.starts_with("--- End of inner exception stack trace") {
            if !in_member && blocks.len() <= MAX_CAUSES {
                blocks.push(Vec::new());
            }
            unknown = 0;
            continue;
        }
        if t.starts_with("--- End of stack trace from previous location")
            || t.starts_with("Exception rethrown at")
            || t.starts_with("--- End of")
        {
            unknown = 0;
            continue;
        }
        if let Some(rest) = t.strip_prefix("--->") {
            // AggregateException members after the first: `---> (Inner Exception #1) …`.
            let parts = parse_chain(rest);
            if let Some((ty, msg)) = parts.into_iter().next()
                && members.len() < MAX_CAUSES
            {
                let mut e = Entry::new(ty, msg, Relation::GroupMember);
                e.primary = false;
                members.push(e);
                in_member = true;
            }
            unknown = 0;
            continue;
        }
        if t == "<---" {
            in_member = false;
            continue;
        }
        unknown += 1;
        if unknown > MAX_UNKNOWN {
            break;
        }
    }

    let n = chain.len();
    let mut entries: Vec<Entry> = chain
        .into_iter()
        .enumerate()
        .map(|(i, (ty, msg))| Entry::new(ty, msg, if i == 0 { Relation::Cause } else { Relation::Inner }))
        .collect();
    for (i, block) in blocks.into_iter().enumerate() {
        let idx = n.saturating_sub(1).saturating_sub(i);
        if let Some(e) = entries.get_mut(idx) {
            for f in block {
                e.push(f);
            }
        }
    }
    entries.extend(members);
    Some(Draft {
        runtime: Runtime::Dotnet,
        entries,
        thread: None,
        bonus,
    })
}
