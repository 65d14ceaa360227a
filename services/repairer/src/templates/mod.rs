//! Fix templates: deterministic rewrites of one culprit site, chosen by the diagnosis.
//!
//! A template either produces the whole new content of the culprit file (with what the
//! fixed code now does, for the regression test) or says why it does not apply; it never
//! guesses. Every template is proven in the sandbox afterwards, so a template only has to
//! be right about the code's shape, not about its tests. Templates live with their
//! language (`languages/<id>/templates/`); this module holds the trait and the registry.

use selfheal_events::Diagnosis;

use crate::languages::{Languages, Site, TemplateFix};

/// Why a template produced no fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The code does not have a shape this template can rewrite safely.
    #[error("not applicable: {0}")]
    NotApplicable(String),
    /// The root cause names a line the file does not have.
    #[error("line {line} is outside {file} ({lines} lines)")]
    LineOutOfRange {
        /// The file.
        file: String,
        /// The requested one-based line.
        line: i32,
        /// How many lines the file has.
        lines: usize,
    },
}

/// A `NotApplicable` error with this reason.
pub fn not_applicable(why: impl Into<String>) -> TemplateError {
    TemplateError::NotApplicable(why.into())
}

/// One kind of fix, e.g. guarding a divisor in Python.
pub trait FixTemplate: Send + Sync {
    /// Stable id (`<language>.<what>`), used as the patch strategy and in the learning store.
    fn id(&self) -> &'static str;
    /// Whether the diagnosis is the kind of failure this template fixes (language and crash class).
    fn applies(&self, diag: &Diagnosis) -> bool;
    /// The fix of the culprit site, or why this site cannot be fixed safely.
    fn apply(&self, site: &Site<'_>) -> Result<TemplateFix, TemplateError>;
}

/// The templates the repairer knows, in the order they are tried.
pub struct Registry {
    templates: Vec<Box<dyn FixTemplate>>,
}

impl Registry {
    /// Every built-in template of every built-in language.
    pub fn builtin() -> Self {
        Registry {
            templates: Languages::builtin().iter().flat_map(|l| l.templates()).collect(),
        }
    }

    /// A registry of the given templates (tests, plugins).
    pub fn new(templates: Vec<Box<dyn FixTemplate>>) -> Self {
        Registry { templates }
    }

    /// The template with this id.
    pub fn get(&self, id: &str) -> Option<&dyn FixTemplate> {
        self.templates.iter().find(|t| t.id() == id).map(|t| t.as_ref())
    }

    /// Every template, in order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn FixTemplate> {
        self.templates.iter().map(|t| t.as_ref())
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

/// The culprit line of a site: the file's lines with their terminators and the index of
/// the one-based `root_cause.line`, checked to exist.
pub fn culprit_line<'a>(site: &Site<'a>) -> Result<(Vec<&'a str>, usize), TemplateError> {
    let lines: Vec<&str> = site.source.split_inclusive('\n').collect();
    let index = usize::try_from(site.root_cause.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|i| *i < lines.len())
        .ok_or_else(|| TemplateError::LineOutOfRange {
            file: site.root_cause.file.clone(),
            line: site.root_cause.line,
            lines: lines.len(),
        })?;
    Ok((lines, index))
}

/// The line ending of a line (`\r\n`, `\n` or none) and its content without it.
pub fn split_ending(line: &str) -> (&str, &str) {
    match line.strip_suffix("\r\n") {
        Some(c) => (c, "\r\n"),
        None => match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line, ""),
        },
    }
}

/// `lines` with `lines[index]` replaced by `replacement` (which carries its own endings,
/// except for the last line, which gets `ending`).
pub fn replace_line(lines: &[&str], index: usize, replacement: &str, ending: &str) -> String {
    let mut out = String::with_capacity(lines.iter().map(|l| l.len()).sum::<usize>() + replacement.len() + 8);
    for l in &lines[..index] {
        out.push_str(l);
    }
    out.push_str(replacement);
    out.push_str(ending);
    for l in &lines[index + 1..] {
        out.push_str(l);
    }
    out
}
