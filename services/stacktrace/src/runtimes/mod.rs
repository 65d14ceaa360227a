//! The seven runtime parsers, how the best reading of a text is chosen, and how a
//! parser's draft becomes a [`ParsedTrace`] (in-app flags, culprit, fingerprint).
//!
//! Every parser reads the same prepared lines and returns at most one draft: the first
//! trace of its runtime in the text. All of them run; the draft with the highest score
//! (frames with a file and line count most, then frames, then a recognised header)
//! wins, so a Java trace quoted inside a Python log line still reads as Java.

mod dotnet;
mod go;
mod jvm;
mod node;
mod python;
mod ruby;
mod rust;

use crate::fingerprint::{fingerprint_fallback, fingerprint_with_message};
use crate::inapp::{classify, classify_with_project, matches_catalog};
use crate::text::{Hints, Line, json_candidates, prepare};
use crate::{
    Cause, CulpritBasis, ExceptionInfo, Frame, MAX_CAUSES, MAX_FRAMES, ParseOptions, ParsedTrace, Project, Relation,
    Runtime,
};

/// One exception of a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ty: String,
    pub message: String,
    /// Innermost first.
    pub frames: Vec<Frame>,
    /// Relation to the entry before it (ignored for the first entry).
    pub relation: Relation,
    pub primary: bool,
}

impl Entry {
    /// A new entry with no frames.
    pub fn new(ty: impl Into<String>, message: impl Into<String>, relation: Relation) -> Self {
        Entry {
            ty: ty.into(),
            message: message.into(),
            frames: Vec::new(),
            relation,
            primary: true,
        }
    }

    /// Adds a frame unless the exception already has [`MAX_FRAMES`].
    pub fn push(&mut self, frame: Frame) {
        if self.frames.len() < MAX_FRAMES {
            self.frames.push(frame);
        }
    }
}

/// A parser's reading of a text: entries outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draft {
    pub runtime: Runtime,
    pub entries: Vec<Entry>,
    pub thread: Option<String>,
    /// Extra confidence from runtime-specific markers (a `Traceback` header…).
    pub bonus: u32,
}

impl Draft {
    /// How convincing this reading is.
    pub fn score(&self) -> u32 {
        let mut s = self.bonus;
        for e in &self.entries {
            if !e.ty.is_empty() {
                s += 4;
            }
            for f in &e.frames {
                s += 1;
                if f.file.is_some() && f.line.is_some() {
                    s += 2;
                }
            }
        }
        s
    }
}

type ParserFn = fn(&[Line]) -> Option<Draft>;

const PARSERS: &[ParserFn] = &[
    python::parse,
    jvm::parse,
    dotnet::parse,
    node::parse,
    go::parse,
    rust::parse,
    ruby::parse,
];

/// The best draft over all parsers for prepared lines.
pub(crate) fn best_in_lines(lines: &[Line]) -> Option<Draft> {
    let mut best: Option<Draft> = None;
    for p in PARSERS {
        if let Some(d) = p(lines) {
            if d.entries.is_empty() {
                continue;
            }
            if best.as_ref().is_none_or(|b| d.score() > b.score()) {
                best = Some(d);
            }
        }
    }
    best
}

/// The best draft in raw text, looking inside JSON documents (up to two levels deep).
pub(crate) fn best_in_text(text: &str, depth: usize) -> Option<Draft> {
    if depth < 2
        && let Some(candidates) = json_candidates(text)
    {
        let mut best: Option<Draft> = None;
        for (candidate, hints) in candidates {
            if let Some(mut d) = best_in_text(&candidate, depth + 1) {
                apply_hints(&mut d, &hints);
                if best.as_ref().is_none_or(|b| d.score() > b.score()) {
                    best = Some(d);
                }
            }
        }
        if best.is_some() {
            return best;
        }
    }
    best_in_lines(&prepare(text))
}

/// Fills a missing exception type and message from the surrounding JSON fields.
pub(crate) fn apply_hints(d: &mut Draft, hints: &Hints) {
    if let Some(first) = d.entries.first_mut() {
        if first.ty.is_empty()
            && let Some(ty) = &hints.ty
        {
            first.ty = ty.clone();
        }
        if first.message.is_empty()
            && let Some(m) = &hints.message
        {
            first.message = m.clone();
        }
    }
}

/// Turns a draft into the public result: in-app flags, causes, culprit, fingerprint.
/// With a project, the repository decides which frames are in-app (see [`Project`]);
/// when it claims none, the catalog and heuristics decide, as without one.
pub(crate) fn finalize(mut draft: Draft, opts: &ParseOptions, project: Option<&Project>) -> ParsedTrace {
    draft.entries.truncate(MAX_CAUSES + 1);
    let runtime = draft.runtime;
    let mut basis = None;
    if let Some(project) = project.filter(|p| !p.is_empty()) {
        let mut any = false;
        for e in &mut draft.entries {
            for f in &mut e.frames {
                f.in_app = classify_with_project(runtime, f, opts, project);
                any |= f.in_app;
            }
        }
        if any {
            basis = Some(CulpritBasis::Repository);
        }
    }
    if basis.is_none() {
        let mut any = false;
        let mut by_catalog = false;
        for e in &mut draft.entries {
            for f in &mut e.frames {
                f.in_app = classify(runtime, f, opts, true);
                any |= f.in_app;
                by_catalog |= f.in_app && matches_catalog(f, opts);
            }
        }
        let catalog_given = !opts.source_roots.is_empty() || !opts.app_packages.is_empty();
        if !any && catalog_given {
            // The catalog matched nothing at all: it is probably stale, so fall back to
            // the runtime heuristics rather than report no culprit.
            for e in &mut draft.entries {
                for f in &mut e.frames {
                    f.in_app = classify(runtime, f, opts, false);
                }
            }
        }
        basis = Some(if by_catalog {
            CulpritBasis::Catalog
        } else {
            CulpritBasis::Heuristic
        });
    }
    let mut entries = draft.entries.into_iter();
    let top = entries.next().unwrap_or_else(|| Entry::new("", "", Relation::Cause));
    let causes: Vec<Cause> = entries
        .map(|e| Cause {
            ty: e.ty,
            message: e.message,
            relation: e.relation,
            primary: e.primary,
            frames: e.frames,
        })
        .collect();
    let mut trace = ParsedTrace {
        runtime,
        exception: ExceptionInfo {
            ty: top.ty,
            message: top.message,
        },
        causes,
        frames: top.frames,
        culprit: None,
        culprit_basis: basis.unwrap_or_default(),
        fingerprint: String::new(),
        thread: draft.thread,
    };
    trace.culprit = culprit(&trace);
    let root = trace.root_cause();
    trace.fingerprint = if root.frames.is_empty() && trace.frames.is_empty() {
        fingerprint_fallback(root.ty, root.message)
    } else if root.frames.is_empty() {
        fingerprint_with_message(root.ty, root.message, &trace.frames)
    } else {
        fingerprint_with_message(root.ty, root.message, root.frames)
    };
    trace
}

/// The innermost in-app frame of the root cause, else of the next exception out. Within
/// one exception, an in-app frame with a source line wins over one without (a generated
/// proxy, a native method, a symbol without debug info): only a line can be fixed.
fn culprit(trace: &ParsedTrace) -> Option<Frame> {
    let mut chain: Vec<&[Frame]> = vec![&trace.frames];
    chain.extend(trace.causes.iter().filter(|c| c.primary).map(|c| c.frames.as_slice()));
    chain
        .iter()
        .rev()
        .find_map(|frames| {
            frames
                .iter()
                .find(|f| f.in_app && f.file.is_some() && f.line.is_some())
                .or_else(|| frames.iter().find(|f| f.in_app))
        })
        .cloned()
}

/// Parses a decimal number that fits in `u32`.
pub(crate) fn num(s: &str) -> Option<u32> {
    s.trim().parse::<u32>().ok()
}

/// A frame with the given parts and `in_app` false (decided later).
pub(crate) fn frame(
    function: impl Into<String>,
    module: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
) -> Frame {
    Frame {
        function: function.into(),
        module,
        file,
        line,
        column,
        in_app: false,
    }
}

/// Splits `a.b.C.method` into (`a.b.C`, `method`) at the last `sep` outside brackets.
pub(crate) fn split_qualified<'a>(name: &'a str, sep: &str) -> (Option<&'a str>, &'a str) {
    let bytes = name.as_bytes();
    let sep_b = sep.as_bytes();
    let mut depth: i32 = 0;
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        let c = bytes.get(i).copied().unwrap_or(0);
        match c {
            b')' | b']' | b'>' | b'}' => depth += 1,
            b'(' | b'[' | b'<' | b'{' => depth -= 1,
            _ => {}
        }
        if depth == 0 && i + sep_b.len() <= bytes.len() && bytes.get(i..i + sep_b.len()) == Some(sep_b) && i > 0 {
            let module = name.get(..i);
            let function = name.get(i + sep_b.len()..);
            if let (Some(m), Some(f)) = (module, function)
                && !f.is_empty()
            {
                return (Some(m), f);
            }
        }
    }
    (None, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_qualified_respects_brackets() {
        assert_eq!(split_qualified("com.acme.Foo.bar", "."), (Some("com.acme.Foo"), "bar"));
        assert_eq!(split_qualified("bar", "."), (None, "bar"));
        assert_eq!(
            split_qualified("<alloc::boxed::Box<F> as core::ops::FnOnce<A>>::call_once", "::"),
            (Some("<alloc::boxed::Box<F> as core::ops::FnOnce<A>>"), "call_once")
        );
        assert_eq!(
            split_qualified(
                "System.Collections.Generic.Dictionary`2[System.String,System.Int32].get_Item",
                "."
            ),
            (
                Some("System.Collections.Generic.Dictionary`2[System.String,System.Int32]"),
                "get_Item"
            )
        );
    }
}
