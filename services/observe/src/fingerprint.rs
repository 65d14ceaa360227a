//! Recognising the same failure: the exception of a telemetry event and its fingerprint.
//!
//! [`fingerprint_of`] is the one definition shared by the monitor, the verifier and
//! rollout. It gives the same value for the span and for the log record of one
//! exception: both carry `exception.type`, `exception.message` and
//! `exception.stacktrace` (as [`TelemetryEvent::exception`] or as attributes), and the
//! fingerprint is computed from those alone with `selfheal_stacktrace`:
//! [`parse_exception_event`] and its `fingerprint` (line numbers and paths left out),
//! or [`fingerprint_fallback`] of type and message when the trace does not parse.

use selfheal_events::{ExceptionInfo, Severity, SignalKind, TelemetryEvent};
use selfheal_stacktrace::{ParseOptions, fingerprint_fallback, parse, parse_exception_event};
use sha2::{Digest, Sha256};

/// Bytes of a message, stack trace or log body that are used; the rest is cut.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// An exception recognised in an event, with its fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The grouping fingerprint (16 hex characters).
    pub fingerprint: String,
    /// The exception, its texts bounded to [`MAX_TEXT_BYTES`].
    pub exception: ExceptionInfo,
    /// The function of the culprit frame (innermost in-app frame of the root cause).
    pub culprit: Option<String>,
    /// `file:line` of the culprit frame, file as its base name.
    pub location: Option<String>,
}

impl Failure {
    /// `Type@function` (or the type alone) for summaries.
    pub fn label(&self) -> String {
        let ty = if self.exception.r#type.is_empty() {
            "exception"
        } else {
            self.exception.r#type.as_str()
        };
        match &self.culprit {
            Some(f) if !f.is_empty() => format!("{ty}@{f}"),
            _ => ty.to_string(),
        }
    }
}

/// The largest char boundary at or below `max`.
fn floor_boundary(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The first `max` bytes of `s` (on a char boundary).
pub fn truncate_head(s: &str, max: usize) -> &str {
    &s[..floor_boundary(s, max)]
}

/// `s` bounded to `max` bytes keeping its head and its tail: a Python traceback ends
/// with the exception and its innermost frames, a JVM trace starts with them.
pub fn truncate_middle(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let marker = "\n...\n";
    let half = max.saturating_sub(marker.len()) / 2;
    let head = &s[..floor_boundary(s, half)];
    let mut tail_start = s.len() - half;
    while !s.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    // Cut at line boundaries so that no half frame line reaches the parser.
    let head = head.rfind('\n').map_or(head, |i| &head[..i]);
    let tail = &s[tail_start..];
    let tail = tail.find('\n').map_or(tail, |i| &tail[i + 1..]);
    format!("{head}{marker}{tail}")
}

fn attr<'a>(event: &'a TelemetryEvent, key: &str) -> Option<&'a str> {
    event
        .attributes
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// The exception an event records: [`TelemetryEvent::exception`], else the
/// `exception.*` attributes (a log record), else a stack trace in the body of an
/// error log line. Texts are bounded to [`MAX_TEXT_BYTES`].
pub fn exception_of(event: &TelemetryEvent) -> Option<ExceptionInfo> {
    let found = if let Some(e) = &event.exception {
        Some(e.clone())
    } else if attr(event, "exception.type").is_some() || attr(event, "exception.stacktrace").is_some() {
        Some(ExceptionInfo {
            r#type: attr(event, "exception.type").unwrap_or("").to_string(),
            message: attr(event, "exception.message").unwrap_or("").to_string(),
            stacktrace: attr(event, "exception.stacktrace").map(str::to_string),
        })
    } else if event.kind == SignalKind::Log && event.severity >= Severity::Error {
        let body = truncate_middle(event.body.as_deref()?, MAX_TEXT_BYTES);
        let parsed = parse(&body, &ParseOptions::default())?;
        // A lone "Error: message" line is not a stack trace.
        if parsed.frames.is_empty() {
            return None;
        }
        Some(ExceptionInfo {
            r#type: parsed.exception.ty,
            message: parsed.exception.message,
            stacktrace: Some(body),
        })
    } else {
        None
    };
    let e = found?;
    if e.r#type.trim().is_empty()
        && e.message.trim().is_empty()
        && e.stacktrace.as_deref().is_none_or(|s| s.trim().is_empty())
    {
        return None;
    }
    Some(ExceptionInfo {
        r#type: truncate_head(e.r#type.trim(), 512).to_string(),
        message: truncate_head(&e.message, MAX_TEXT_BYTES).to_string(),
        stacktrace: e
            .stacktrace
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| truncate_middle(s, MAX_TEXT_BYTES)),
    })
}

/// The exception of an event with its fingerprint and culprit frame.
pub fn failure_of(event: &TelemetryEvent) -> Option<Failure> {
    let mut exception = exception_of(event)?;
    let parsed = exception
        .stacktrace
        .as_deref()
        .and_then(|st| parse_exception_event(&exception.r#type, &exception.message, st, &ParseOptions::default()));
    let Some(p) = parsed else {
        return Some(Failure {
            fingerprint: fingerprint_fallback(&exception.r#type, &exception.message),
            exception,
            culprit: None,
            location: None,
        });
    };
    if exception.r#type.is_empty() {
        exception.r#type = p.exception.ty.clone();
    }
    let frame = p.culprit.as_ref().or_else(|| p.root_cause().frames.first());
    let culprit = frame.map(|f| f.function.clone()).filter(|f| !f.is_empty());
    let location = frame.and_then(|f| {
        let file = f.file.as_deref()?;
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        Some(match f.line {
            Some(l) => format!("{base}:{l}"),
            None => base.to_string(),
        })
    });
    Some(Failure {
        fingerprint: p.fingerprint,
        exception,
        culprit,
        location,
    })
}

/// The fingerprint of the exception an event records, `None` when it records none.
/// The same exception gives the same value on its span and on its log record.
pub fn fingerprint_of(event: &TelemetryEvent) -> Option<String> {
    failure_of(event).map(|f| f.fingerprint)
}

/// A fingerprint for a failure without an exception (an error-rate or log-template
/// incident): the first 16 hex characters of SHA-256 over `derived`, then the parts.
pub fn derived_fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"derived\n");
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize().get(..8).unwrap_or(&[]))
}
