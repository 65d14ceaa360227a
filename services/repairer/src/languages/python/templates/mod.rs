//! The Python fix templates, in the order they are tried.

pub mod guards;
pub mod zero_division;

pub use zero_division::{
    DivOp, Division, ID as ZERO_DIVISION_GUARD, LineFix, LineShape, PythonZeroDivisionGuard, analyze_expression,
    analyze_line,
};

use selfheal_events::Diagnosis;

use crate::templates::FixTemplate;

/// Every Python template.
pub fn all() -> Vec<Box<dyn FixTemplate>> {
    vec![
        Box::new(PythonZeroDivisionGuard),
        Box::new(guards::KeyGuard),
        Box::new(guards::NoneGuard),
        Box::new(guards::EmptySequenceGuard),
        Box::new(guards::ParseNumberGuard),
        Box::new(guards::JsonGuard),
    ]
}

/// Whether the diagnosis is about Python code.
pub fn is_python(diag: &Diagnosis) -> bool {
    diag.runtime.as_deref() == Some("python") || diag.root_cause.as_ref().is_some_and(|rc| rc.file.ends_with(".py"))
}

/// Whether the diagnosis's exception (root cause or exception record) is `name` (by its
/// last dotted segment, so `json.decoder.JSONDecodeError` matches `JSONDecodeError`).
pub fn raised(diag: &Diagnosis, name: &str) -> bool {
    let matches = |t: &str| t.rsplit('.').next() == Some(name);
    diag.root_cause.as_ref().is_some_and(|rc| matches(&rc.exception_type))
        || diag.exception.as_ref().is_some_and(|e| matches(&e.r#type))
}
