//! Go panics and goroutine dumps.
//!
//! Forms: `panic: message`, `panic: runtime error: …` (type `runtime.Error`),
//! `panic: (T) value`, nested `panic: … [recovered]` / `\tpanic: …` chains,
//! `fatal error: …` (deadlocks, concurrent map writes, stack overflow), net/http's
//! `http: panic serving addr: …` log line, `[signal SIGSEGV: …]`, goroutine headers
//! (`goroutine 1 [running]:`, with wait times, and Go 1.23's `gp=… m=…`), several
//! goroutines (the panicking one is the first printed after the panic), function
//! lines with arguments (`(...)`, `{0x…?}`), method receivers (`(*T).M`), closures
//! (`func1.2`), location lines with `+0x…` offsets and `fp= sp= pc=` (GOTRACEBACK=
//! system), `created by … in goroutine N`, `...additional frames elided...`,
//! `-trimpath` paths, and dumps without a panic line (truncated head).

use std::sync::LazyLock;

use regex::Regex;

use super::{Draft, Entry, frame, num};
use crate::text::{Line, compile};
use crate::{Frame, Relation, Runtime};

static PANIC: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^(?P<kind>panic: |fatal error: |http: panic serving \S+: )(?P<msg>.*?)(?P<rec>\s*\[recovered(?:, repanicked)?\])?$",
    )
});
static SIGNAL: LazyLock<Regex> = LazyLock::new(|| compile(r"^\[signal [^\]]*\]$"));
static GOROUTINE: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^goroutine (?P<id>\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[(?P<state>[^\]]*)\]:$"));
static LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"^(?P<file>\S.*?):(?P<line>\d+)(?:\s+\+0x[0-9a-fA-F]+)?(?:\s+fp=0x[0-9a-fA-F]+\s+sp=0x[0-9a-fA-F]+\s+pc=0x[0-9a-fA-F]+)?$",
    )
});
static TYPED_VALUE: LazyLock<Regex> = LazyLock::new(|| compile(r"^\((?P<ty>[^)\s]+)\)\s*(?P<msg>.*)$"));
static GOPKG_VERSION: LazyLock<Regex> = LazyLock::new(|| compile(r"^[\w-]+\.v\d+\."));

/// The function name of a goroutine frame line (`pkg.F(args)`), without arguments.
fn function_name(t: &str) -> Option<&str> {
    let t = t.trim_end();
    let body = t.strip_suffix(')')?;
    // Find the `(` that opens the argument list: the last one at depth zero.
    let bytes = body.as_bytes();
    let mut depth = 0i32;
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        match bytes.get(i) {
            Some(b')') => depth += 1,
            Some(b'(') => {
                if depth == 0 {
                    let name = body.get(..i)?;
                    return (!name.is_empty() && !name.contains(' ')).then_some(name);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    None
}

/// Splits `github.com/acme/svc/pay.(*Service).Charge` into package and function.
fn split_go_name(name: &str) -> (Option<String>, String) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let tail = name.get(slash..).unwrap_or(name);
    // gopkg.in/yaml.v3.(*decoder).unmarshal: the version is part of the package name.
    let skip = GOPKG_VERSION.find(tail).map_or(0, |m| m.end().saturating_sub(1));
    let rest = tail.get(skip..).unwrap_or("");
    match rest.find('.') {
        Some(dot) => {
            let split = slash + skip + dot;
            (
                name.get(..split).map(str::to_string),
                name.get(split + 1..).unwrap_or("").to_string(),
            )
        }
        None => (None, name.to_string()),
    }
}

/// Type and message of a panic line's value.
fn panic_type(kind: &str, msg: &str) -> (String, String) {
    if kind.starts_with("fatal error") {
        return ("fatal error".into(), msg.to_string());
    }
    if msg.starts_with("runtime error: ") {
        return ("runtime.Error".into(), msg.to_string());
    }
    if let Some(c) = TYPED_VALUE.captures(msg) {
        return (
            c.name("ty").map(|m| m.as_str().to_string()).unwrap_or_default(),
            c.name("msg").map(|m| m.as_str().to_string()).unwrap_or_default(),
        );
    }
    ("panic".into(), msg.to_string())
}

/// Parses the first Go panic or goroutine dump in the lines.
pub(crate) fn parse(lines: &[Line]) -> Option<Draft> {
    let start = lines.iter().position(|l| {
        let t = l.trimmed();
        (PANIC.is_match(t) && !l.text.starts_with(char::is_whitespace)) || GOROUTINE.is_match(t)
    })?;

    // Panic lines (a recovered panic, then the one that killed the program).
    let mut panics: Vec<(String, String)> = Vec::new();
    let mut signal = None;
    let mut i = start;
    let mut continuation = false;
    while let Some(l) = lines.get(i) {
        let t = l.trimmed();
        if let Some(c) = PANIC.captures(t) {
            let kind = c.name("kind").map(|m| m.as_str()).unwrap_or("");
            let msg = c.name("msg").map(|m| m.as_str()).unwrap_or("");
            panics.push(panic_type(kind, msg));
            continuation = true;
        } else if SIGNAL.is_match(t) {
            signal = Some(t.to_string());
            continuation = false;
        } else if GOROUTINE.is_match(t) || i > start + 40 {
            break;
        } else if l.is_blank() || l.prefixed {
            continuation = false;
        } else if continuation && panics.len() < crate::MAX_CAUSES {
            // A multi-line panic value.
            if let Some(last) = panics.last_mut() {
                last.1.push('\n');
                last.1.push_str(t);
            }
        }
        i += 1;
    }

    // The first goroutine after the panic: the one that panicked.
    let g = lines
        .iter()
        .enumerate()
        .skip(start)
        .take(400)
        .find(|(_, l)| GOROUTINE.is_match(l.trimmed()))
        .map(|(i, _)| i);
    let mut frames: Vec<Frame> = Vec::new();
    let mut thread = None;
    if let Some(g) = g {
        if let Some(c) = lines.get(g).and_then(|l| GOROUTINE.captures(l.trimmed())) {
            thread = c.name("id").map(|m| format!("goroutine {}", m.as_str()));
        }
        let mut pending: Option<String> = None;
        for l in lines.get(g + 1..).unwrap_or(&[]) {
            let t = l.trimmed();
            if t.is_empty() || GOROUTINE.is_match(t) || frames.len() >= crate::MAX_FRAMES {
                break;
            }
            if let Some(name) = pending.take()
                && let Some(c) = LOCATION.captures(t)
            {
                let (module, function) = split_go_name(&name);
                frames.push(frame(
                    function,
                    module,
                    c.name("file").map(|m| m.as_str().to_string()),
                    c.name("line").and_then(|m| num(m.as_str())),
                    None,
                ));
                continue;
            }
            if let Some(rest) = t.strip_prefix("created by ") {
                let name = rest.split(" in goroutine ").next().unwrap_or(rest).trim();
                pending = Some(name.to_string());
                continue;
            }
            if let Some(name) = function_name(t) {
                pending = Some(name.to_string());
                continue;
            }
            // "...additional frames elided...", "goroutine running on other thread".
        }
    }

    if panics.is_empty() && frames.is_empty() {
        return None;
    }
    if !panics.is_empty()
        && g.is_none()
        && signal.is_none()
        && !panics
            .iter()
            .any(|(ty, _)| ty == "runtime.Error" || ty == "fatal error")
    {
        // "panic: something" in prose, with no dump: not a trace.
        return None;
    }
    let mut bonus: u32 = if g.is_some() { 5 } else { 2 };
    if frames.is_empty() {
        bonus = bonus.saturating_sub(1);
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut panics = panics.into_iter().rev();
    let (ty, mut msg) = panics.next().unwrap_or_default();
    if let Some(sig) = signal {
        msg.push('\n');
        msg.push_str(&sig);
    }
    let mut top = Entry::new(ty, msg, Relation::Cause);
    for f in frames {
        top.push(f);
    }
    entries.push(top);
    for (ty, msg) in panics {
        entries.push(Entry::new(ty, msg, Relation::Recovered));
    }
    Some(Draft {
        runtime: Runtime::Go,
        entries,
        thread,
        bonus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(function_name("main.(*T).M(0xc000, {0x1, 0x2})"), Some("main.(*T).M"));
        assert_eq!(function_name("panic({0x4a7e60?, 0x5e4d58?})"), Some("panic"));
        assert_eq!(function_name("main.divide(...)"), Some("main.divide"));
        assert_eq!(
            split_go_name("github.com/acme/svc/pay.(*Service).Charge"),
            (Some("github.com/acme/svc/pay".into()), "(*Service).Charge".into())
        );
        assert_eq!(
            split_go_name("main.main.func1"),
            (Some("main".into()), "main.func1".into())
        );
        assert_eq!(
            split_go_name("gopkg.in/yaml.v3.(*decoder).unmarshal"),
            (Some("gopkg.in/yaml.v3".into()), "(*decoder).unmarshal".into())
        );
        assert_eq!(split_go_name("panic"), (None, "panic".into()));
    }
}
