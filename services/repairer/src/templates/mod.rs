//! Fix templates: deterministic rewrites of one failing line, chosen by the diagnosis.
//!
//! A template either produces the whole new content of the culprit file or says why it
//! does not apply; it never guesses. Every template is proven in the sandbox afterwards,
//! so a template only has to be right about the code's shape, not about its tests.

mod python_zero_division;

pub use python_zero_division::{
    DivOp, Division, ID as ZERO_DIVISION_GUARD, LineFix, LineShape, PythonZeroDivisionGuard, analyze_expression,
    analyze_line,
};

use selfheal_events::{Diagnosis, RootCause};

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

/// One kind of fix, e.g. guarding a divisor in Python.
pub trait FixTemplate: Send + Sync {
    /// Stable id, used as the patch strategy and in the learning store.
    fn id(&self) -> &'static str;
    /// Whether the diagnosis is the kind of failure this template fixes.
    fn applies(&self, diag: &Diagnosis) -> bool;
    /// The new content of `root_cause.file`, given its current `source`.
    fn apply(&self, source: &str, root_cause: &RootCause) -> Result<String, TemplateError>;
}

/// The templates the repairer knows, in the order they are tried.
pub struct Registry {
    templates: Vec<Box<dyn FixTemplate>>,
}

impl Registry {
    /// Every built-in template.
    pub fn builtin() -> Self {
        Registry {
            templates: vec![Box::new(PythonZeroDivisionGuard)],
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

/// Splits `source` into lines with their terminators and checks `line` (one-based) exists.
pub(crate) fn culprit_line<'a>(
    source: &'a str,
    root_cause: &RootCause,
) -> Result<(Vec<&'a str>, usize), TemplateError> {
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let index = usize::try_from(root_cause.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|i| *i < lines.len())
        .ok_or_else(|| TemplateError::LineOutOfRange {
            file: root_cause.file.clone(),
            line: root_cause.line,
            lines: lines.len(),
        })?;
    Ok((lines, index))
}
