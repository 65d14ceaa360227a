//! Stack trace parsing, fingerprinting and repository mapping for seven runtimes.
//!
//! The diagnoser's first job is to turn whatever text a crashing service emitted into
//! frames it can trust. [`parse`] recognises traces of Python, the JVM (Java, Kotlin,
//! Scala), Go, Node.js/V8, Rust, .NET and Ruby inside raw text: a log record body, an
//! OpenTelemetry exception event's `exception.stacktrace`, a JSON log document, or
//! several log records that each carry one line of the same trace ([`parse_lines`]).
//!
//! Conventions, the same for every runtime:
//!
//! - **Frames are innermost first**: `frames[0]` is where the exception was raised or
//!   the panic happened, the last frame is the entry point. Python prints the opposite
//!   order; its frames are reversed.
//! - `exception` and `frames` describe the **outermost** exception, the one that was
//!   reported (Java's first line, Python's last block, .NET's first `Type: message`).
//! - `causes` is the rest of the chain in order **outermost → root cause**: `causes[0]`
//!   is the direct cause (or context) of `exception`. Entries that are not on the cause
//!   chain (Java `Suppressed:`, the second and later members of a Python exception
//!   group) stay in the list with `primary: false`, after the exception they belong to.
//! - The **root cause** is the last `primary` entry of `causes`, or `exception` itself
//!   when there is none ([`ParsedTrace::root_cause`]).
//! - The **culprit** is the innermost in-app frame of the root cause; when the root
//!   cause has no in-app frame, the innermost in-app frame of the next exception out
//!   along the chain, and so on. Within one exception an in-app frame with a source line
//!   wins over one without (a generated proxy, a symbol without debug info).
//! - **In-app** means the service's own code. With the service's repository
//!   ([`parse_in_repo`], [`parse_with_project`]) the repository decides: files that exist
//!   in it, packages and modules its build files name ([`Project`]); a dependency, the
//!   runtime, the standard library or a test harness never is. Without one, heuristics
//!   on paths and names decide, with lower confidence ([`ParsedTrace::culprit_basis`]).
//!   How exact the culprit is on real traces is measured by [`eval`] on the crate's
//!   `eval/` set (`selfheal trace eval`).
//! - Strings the runtime does not print are empty (`function: ""` for a Python
//!   `SyntaxError` location or a Rust panic location; `type: ""` for a truncated trace
//!   whose header line is missing).
//!
//! Parsing never panics and its work is bounded: input beyond [`MAX_INPUT_BYTES`],
//! [`MAX_LINES`] lines or [`MAX_LINE_CHARS`] characters per line is ignored.

mod cli;
pub mod eval;
pub mod fingerprint;
mod inapp;
pub mod project;
pub mod repo;
mod runtimes;
mod text;

use serde::{Deserialize, Serialize};

pub use cli::{CliOptions, cli_parse, cli_parse_with};
pub use fingerprint::{fingerprint_exception, fingerprint_fallback, normalize_message};
pub use project::Project;

/// Input beyond this many bytes is ignored.
pub const MAX_INPUT_BYTES: usize = 512 * 1024;
/// Lines beyond this many are ignored.
pub const MAX_LINES: usize = 5000;
/// Characters beyond this many in one line are ignored.
pub const MAX_LINE_CHARS: usize = 2000;
/// Frames beyond this many per exception are dropped (deep recursion).
pub const MAX_FRAMES: usize = 400;
/// Chained exceptions beyond this many are dropped.
pub const MAX_CAUSES: usize = 32;

/// The language runtime that printed a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// CPython tracebacks.
    Python,
    /// Java, Kotlin, Scala and other JVM languages.
    Jvm,
    /// Go panics and goroutine dumps.
    Go,
    /// Node.js and other V8 `Error.stack` traces.
    Node,
    /// Rust panics, backtraces and anyhow error chains.
    Rust,
    /// .NET (CoreCLR and Mono) `Exception.ToString()` output.
    Dotnet,
    /// Ruby and Rails backtraces.
    Ruby,
}

impl Runtime {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Jvm => "jvm",
            Runtime::Go => "go",
            Runtime::Node => "node",
            Runtime::Rust => "rust",
            Runtime::Dotnet => "dotnet",
            Runtime::Ruby => "ruby",
        }
    }
}

/// What the catalog knows about the service, used to decide which frames are in-app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseOptions {
    /// Path prefixes of the service's own code, e.g. `/app`, `src/`.
    pub source_roots: Vec<String>,
    /// Package, namespace or module prefixes of the service's own code, e.g. `com.acme`,
    /// `github.com/acme/svc`, `Acme.Pricing`, `pricing_api` (a Rust crate).
    pub app_packages: Vec<String>,
}

/// An exception's type and message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionInfo {
    /// The exception type as printed (`ZeroDivisionError`, `java.lang.IllegalStateException`,
    /// `runtime.Error` for a Go runtime error, `panic` for other Go and Rust panics).
    #[serde(rename = "type")]
    pub ty: String,
    /// The message, possibly several lines.
    pub message: String,
}

/// How a chained exception relates to the one before it in [`ParsedTrace::causes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The explicit cause: Java `Caused by:`, Python `raise … from`, Node `[cause]`,
    /// an anyhow `Caused by:` entry.
    Cause,
    /// Python implicit chaining: it was being handled when the previous one was raised.
    Context,
    /// A .NET inner exception (`--->`).
    Inner,
    /// A Java suppressed exception; not on the cause chain.
    Suppressed,
    /// A sub-exception of a Python exception group or .NET `AggregateException`.
    GroupMember,
    /// A Go panic that was recovered and followed by another panic.
    Recovered,
}

/// One exception of the chain below the reported one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// The exception type.
    #[serde(rename = "type")]
    pub ty: String,
    /// The message.
    pub message: String,
    /// How it relates to the exception before it.
    pub relation: Relation,
    /// Whether it is on the path from the reported exception to the root cause.
    pub primary: bool,
    /// Its frames, innermost first.
    pub frames: Vec<Frame>,
}

/// One stack frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Function or method name (empty when the runtime does not print one).
    pub function: String,
    /// Class, namespace, package or module the function belongs to, when printed.
    pub module: Option<String>,
    /// Source file as printed (container path, build path, bare file name…).
    pub file: Option<String>,
    /// 1-based line number.
    pub line: Option<u32>,
    /// 1-based column number.
    pub column: Option<u32>,
    /// Whether the frame is the service's own code.
    pub in_app: bool,
}

/// What decided which frames are in-app, and so how far the culprit can be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CulpritBasis {
    /// The service's repository: files that exist in it, packages its build files name
    /// ([`Project`]). The strongest basis.
    Repository,
    /// The catalog's source roots and app packages ([`ParseOptions`]).
    Catalog,
    /// Runtime heuristics on paths and names, with nothing known about the service
    /// (or when nothing the repository or catalog knows appears in the trace): lower
    /// confidence, the culprit may be a library frame.
    #[default]
    Heuristic,
}

/// A parsed stack trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedTrace {
    /// The runtime that printed it.
    pub runtime: Runtime,
    /// The reported (outermost) exception.
    pub exception: ExceptionInfo,
    /// The rest of the chain, outermost → root cause (see the crate docs).
    pub causes: Vec<Cause>,
    /// The reported exception's frames, innermost first.
    pub frames: Vec<Frame>,
    /// The innermost in-app frame of the root cause.
    pub culprit: Option<Frame>,
    /// What decided the in-app frames (and so the culprit).
    #[serde(default)]
    pub culprit_basis: CulpritBasis,
    /// Grouping fingerprint: 16 lowercase hex characters (see [`fingerprint`]).
    pub fingerprint: String,
    /// Thread or goroutine that failed, when printed.
    pub thread: Option<String>,
}

/// A borrowed view of one exception of a trace with its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionView<'a> {
    /// The exception type.
    pub ty: &'a str,
    /// The message.
    pub message: &'a str,
    /// Its frames, innermost first.
    pub frames: &'a [Frame],
}

impl ParsedTrace {
    /// The root cause: the last primary entry of `causes`, or the reported exception.
    pub fn root_cause(&self) -> ExceptionView<'_> {
        match self.causes.iter().rev().find(|c| c.primary) {
            Some(c) => ExceptionView {
                ty: &c.ty,
                message: &c.message,
                frames: &c.frames,
            },
            None => ExceptionView {
                ty: &self.exception.ty,
                message: &self.exception.message,
                frames: &self.frames,
            },
        }
    }

    /// All frames of all exceptions, reported exception first.
    pub fn all_frames(&self) -> impl Iterator<Item = &Frame> {
        self.frames
            .iter()
            .chain(self.causes.iter().flat_map(|c| c.frames.iter()))
    }
}

/// Finds and parses the first stack trace in `text`; `None` when there is none.
///
/// Without a repository, in-app frames come from the catalog's `opts` and runtime
/// heuristics ([`CulpritBasis::Heuristic`] or [`CulpritBasis::Catalog`]); prefer
/// [`parse_in_repo`] or [`parse_with_project`] when the service's repository is at hand.
pub fn parse(text: &str, opts: &ParseOptions) -> Option<ParsedTrace> {
    let draft = runtimes::best_in_text(text, 0)?;
    Some(runtimes::finalize(draft, opts, None))
}

/// [`parse`] with in-app frames decided by the service's repository ([`Project`]): a
/// frame is in-app when its file exists in the repository or its package is one the
/// build files name; the catalog's `opts` still count. When no frame of the trace is the
/// repository's, the heuristics decide and `culprit_basis` says so.
pub fn parse_with_project(text: &str, opts: &ParseOptions, project: &Project) -> Option<ParsedTrace> {
    let draft = runtimes::best_in_text(text, 0)?;
    Some(runtimes::finalize(draft, opts, Some(project)))
}

/// [`parse_with_project`] for a repository read through [`repo::RepoFiles`] (a working
/// tree, a commit, a listing). A repository that cannot be listed leaves the heuristics.
pub fn parse_in_repo(text: &str, opts: &ParseOptions, files: &dyn repo::RepoFiles) -> Option<ParsedTrace> {
    match Project::from_files(files) {
        Ok(project) => parse_with_project(text, opts, &project),
        Err(_) => parse(text, opts),
    }
}

/// Parses an OpenTelemetry exception event (`exception.type`, `exception.message`,
/// `exception.stacktrace`). The event's type and message fill in what the stacktrace
/// text lacks (Ruby and some Go SDKs record frames only), so the fingerprint includes
/// the type either way; without a parsable stacktrace this is `None` and the caller
/// uses [`fingerprint_fallback`].
pub fn parse_exception_event(
    exception_type: &str,
    message: &str,
    stacktrace: &str,
    opts: &ParseOptions,
) -> Option<ParsedTrace> {
    parse_exception_event_with(exception_type, message, stacktrace, opts, None)
}

/// [`parse_exception_event`] with in-app frames decided by the service's repository, as
/// [`parse_with_project`] does.
pub fn parse_exception_event_with(
    exception_type: &str,
    message: &str,
    stacktrace: &str,
    opts: &ParseOptions,
    project: Option<&Project>,
) -> Option<ParsedTrace> {
    let mut draft = runtimes::best_in_text(stacktrace, 0)?;
    let hints = text::Hints {
        ty: (!exception_type.trim().is_empty()).then(|| exception_type.trim().to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
    };
    runtimes::apply_hints(&mut draft, &hints);
    Some(runtimes::finalize(draft, opts, project))
}

/// Parses a trace split across several log records, one or more lines each, in order.
pub fn parse_lines(lines: &[&str], opts: &ParseOptions) -> Option<ParsedTrace> {
    let mut joined = String::new();
    for record in lines.iter().take(MAX_LINES) {
        if joined.len() >= MAX_INPUT_BYTES {
            break;
        }
        let unwrapped = text::unwrap_record(record);
        joined.push_str(unwrapped.trim_end_matches(['\n', '\r']));
        joined.push('\n');
    }
    parse(&joined, opts)
}
