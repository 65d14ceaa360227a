//! The synchronous half of a diagnosis: catalog → repository → trace → culprit → code →
//! rules. The repository is opened at the deployed commit before the trace is read: its
//! files and build files decide which frames are the service's own (the culprit is the
//! innermost of those in the root cause), never a list of library prefixes. It reads git
//! and files, so it runs on a blocking thread; it never fails: every dead end becomes a
//! status and a reason.

use std::path::Path;

use selfheal_catalog::Catalog;
use selfheal_events::{Anomaly, DiagnosisStatus, Evidence, RootCause, StackFrame};
use selfheal_stacktrace::repo::{RepoLocation, SnippetLine, map_with};
use selfheal_stacktrace::{CulpritBasis, Frame, ParseOptions, ParsedTrace, Project, parse_exception_event_with};

use crate::error::DiagnoserError;
use crate::repository::{CommitSummary, RepoSnapshot, SourceRepository};
use crate::rules::{self, Finding, RuleInput, quote};

/// Lines of code shown on each side of the failing line.
pub const SNIPPET_RADIUS: u32 = 3;
/// In-app frames tried, innermost first, when the culprit itself is not in the repository.
const MAX_FRAMES_TRIED: usize = 8;

/// How sure the location is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// Not localised.
    No,
    /// The culprit frame, with path, line and function agreeing.
    Exact,
    /// A file was found, but something did not agree (see the frame evidence).
    Approximate,
}

/// What the synchronous analysis found.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// How far it got.
    pub status: DiagnosisStatus,
    /// Why it stopped, when not localised.
    pub reason: Option<String>,
    /// Runtime of the parsed trace.
    pub runtime: Option<String>,
    /// The catalog's repository.
    pub repository: Option<String>,
    /// The commit read.
    pub commit: Option<String>,
    /// The root cause, when localised.
    pub root_cause: Option<RootCause>,
    /// `file:line in function`, when localised.
    pub location: Option<String>,
    /// How sure the location is.
    pub located: Located,
    /// Root-cause frames, outermost first.
    pub frames: Vec<StackFrame>,
    /// Rule findings, strongest first (never empty).
    pub findings: Vec<Finding>,
    /// Facts behind the location: frame, version.
    pub context: Vec<Evidence>,
    /// What a model would be shown beyond the record (code window, history); gathered only
    /// when [`analyze`] is given a [`ContextRequest`].
    pub model_context: Option<ModelContext>,
}

/// What to gather for a model besides the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextRequest {
    /// Lines of code on each side of the culprit line.
    pub radius: u32,
    /// Most recent commits that touched the culprit file.
    pub max_commits: usize,
}

/// Code around the culprit line, read from the repository at the analysed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeWindow {
    /// Repository-relative path.
    pub file: String,
    /// First line shown (1-based).
    pub first_line: u32,
    /// Last line shown.
    pub last_line: u32,
    /// The failing line.
    pub culprit_line: u32,
    /// Numbered lines, the failing one marked with `>`.
    pub text: String,
}

/// Context for a model, gathered on the blocking thread with the rest of the analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelContext {
    /// The code window, when the culprit was located with a line.
    pub window: Option<CodeWindow>,
    /// Recent commits that touched the culprit file, newest first.
    pub commits: Vec<CommitSummary>,
    /// Why something is missing (file unreadable, history unavailable), for the audit notes.
    pub notes: Vec<String>,
}

/// Longest source line shown to a model.
const MAX_WINDOW_LINE_CHARS: usize = 300;

/// Numbered lines `line ± radius` of `text`, or `None` when the line is outside the file.
pub fn code_window(file: &str, text: &str, line: u32, radius: u32) -> Option<CodeWindow> {
    let lines: Vec<&str> = text.lines().collect();
    let count = u32::try_from(lines.len()).unwrap_or(u32::MAX);
    if line == 0 || line > count {
        return None;
    }
    let first = line.saturating_sub(radius).max(1);
    let last = line.saturating_add(radius).min(count);
    let width = last.to_string().len();
    let body = (first..=last)
        .map(|n| {
            let code: String = lines
                .get((n - 1) as usize)
                .copied()
                .unwrap_or("")
                .chars()
                .take(MAX_WINDOW_LINE_CHARS)
                .collect();
            let mark = if n == line { '>' } else { ' ' };
            format!("{mark} {n:>width$} | {code}")
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(CodeWindow {
        file: file.to_string(),
        first_line: first,
        last_line: last,
        culprit_line: line,
        text: body,
    })
}

/// Formats numbered snippet lines, the failing one marked: `> 14 | code`.
pub fn format_snippet(lines: &[SnippetLine], line: u32) -> String {
    let shown: Vec<&SnippetLine> = lines
        .iter()
        .filter(|l| l.line.abs_diff(line) <= SNIPPET_RADIUS)
        .collect();
    let width = shown.iter().map(|l| l.line.to_string().len()).max().unwrap_or(1);
    shown
        .iter()
        .map(|l| {
            let mark = if l.line == line { '>' } else { ' ' };
            format!("{mark} {:>width$} | {}", l.line, l.text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn stack_frame(f: &Frame) -> StackFrame {
    StackFrame {
        function: f.function.clone(),
        module: f.module.clone(),
        file: f.file.clone(),
        line: f.line.and_then(|l| i32::try_from(l).ok()),
        in_app: f.in_app,
    }
}

fn describe(f: &Frame) -> String {
    let file = f.file.as_deref().unwrap_or("?");
    match f.line {
        Some(l) => format!("{}:{l} in {}", quote(file), quote(&f.function)),
        None => format!("{} in {}", quote(file), quote(&f.function)),
    }
}

/// Analyses an anomaly against the catalog and the repository; with a [`ContextRequest`]
/// also gathers what a model would be shown ([`Analysis::model_context`]).
pub fn analyze(
    catalog: &Catalog,
    repos: &dyn SourceRepository,
    anomaly: &Anomaly,
    want: Option<ContextRequest>,
) -> Analysis {
    let entry = catalog.service(&anomaly.service);
    let mut opts = ParseOptions::default();
    if let Some(e) = entry {
        if e.source_root != selfheal_catalog::DEFAULT_SOURCE_ROOT {
            opts.source_roots.push(e.source_root.clone());
        }
        opts.source_roots.push(e.repository.display().to_string());
    }
    // The repository at the deployed commit decides which frames are the service's own,
    // so it is opened before the trace is read; without it the heuristics decide.
    let snapshot: Option<Result<RepoSnapshot, DiagnoserError>> =
        entry.map(|e| repos.open(&e.repository, anomaly.service_version.as_deref()));
    let project: Option<Project> = match &snapshot {
        Some(Ok(snap)) => Project::from_files(snap.files.as_ref()).ok(),
        _ => None,
    };
    let parsed: Option<ParsedTrace> = anomaly.exception.as_ref().and_then(|ex| {
        let st = ex.stacktrace.as_deref().filter(|s| !s.trim().is_empty())?;
        parse_exception_event_with(&ex.r#type, &ex.message, st, &opts, project.as_ref())
    });

    let mut a = Analysis {
        status: DiagnosisStatus::Localized,
        reason: None,
        runtime: parsed.as_ref().map(|p| p.runtime.as_str().to_string()),
        repository: entry.map(|e| e.repository.display().to_string()),
        commit: None,
        root_cause: None,
        location: None,
        located: Located::No,
        frames: Vec::new(),
        findings: Vec::new(),
        context: Vec::new(),
        model_context: None,
    };
    if let Some(p) = &parsed {
        a.frames = p.root_cause().frames.iter().rev().map(stack_frame).collect();
    }
    let (exc_type, exc_message) = match (&parsed, &anomaly.exception) {
        (Some(p), _) => (p.root_cause().ty.to_string(), p.root_cause().message.to_string()),
        (None, Some(e)) => (e.r#type.clone(), e.message.clone()),
        (None, None) => (String::new(), String::new()),
    };

    let mut code_line: Option<String> = None;
    match locate(&mut a, entry, snapshot, repos, anomaly, parsed.as_ref(), want) {
        Ok(found) => {
            code_line = found.code_line;
            a.root_cause = Some(RootCause {
                file: found.path.clone(),
                line: found.line.and_then(|l| i32::try_from(l).ok()).unwrap_or(0),
                function: found.function.clone(),
                exception_type: exc_type.clone(),
                message: exc_message.clone(),
                code_snippet: found.snippet,
                commit: a.commit.clone(),
            });
            a.location = Some(match found.line {
                Some(l) => format!("{}:{l} in {}", found.path, quote(&found.function)),
                None => format!("{} in {}", found.path, quote(&found.function)),
            });
        }
        Err((status, reason)) => {
            a.status = status;
            a.reason = Some(reason);
        }
    }

    a.findings = rules::evaluate(&RuleInput {
        runtime: a.runtime.as_deref(),
        exception_type: &exc_type,
        message: &exc_message,
        code_line: code_line.as_deref(),
        sample_inputs: &anomaly.sample_inputs,
    });
    a
}

/// A frame found in the repository.
struct Found {
    path: String,
    line: Option<u32>,
    function: String,
    snippet: Option<String>,
    code_line: Option<String>,
}

/// Finds the failing line, or says why not (status and reason).
fn locate(
    a: &mut Analysis,
    entry: Option<&selfheal_catalog::ServiceEntry>,
    snapshot: Option<Result<RepoSnapshot, DiagnoserError>>,
    repos: &dyn SourceRepository,
    anomaly: &Anomaly,
    parsed: Option<&ParsedTrace>,
    want: Option<ContextRequest>,
) -> Result<Found, (DiagnosisStatus, String)> {
    let Some(entry) = entry else {
        return Err((
            DiagnosisStatus::UnknownService,
            format!(
                "service `{}` is not in the service catalog, so there is no repository to read",
                quote(&anomaly.service)
            ),
        ));
    };
    let root: &Path = &entry.repository;
    let version = anomaly.service_version.as_deref();
    let snapshot = snapshot.unwrap_or_else(|| repos.open(root, version));
    let snap: RepoSnapshot = snapshot.map_err(|e| {
        (
            DiagnosisStatus::RepositoryMissing,
            format!("the repository of `{}` cannot be read: {e}", quote(&entry.name)),
        )
    })?;
    a.commit = Some(snap.commit.clone());
    a.context.push(Evidence {
        kind: "version".into(),
        detail: match (version, snap.from_version) {
            (Some(v), true) => format!("service version {} is commit {}", quote(v), snap.commit),
            (Some(v), false) => format!(
                "service version {} is not a commit of the repository; read HEAD {}",
                quote(v),
                snap.commit
            ),
            (None, _) => format!("no service version reported; read HEAD {}", snap.commit),
        },
    });

    let Some(parsed) = parsed else {
        let what = match &anomaly.exception {
            None => "the anomaly carries no exception".to_string(),
            Some(e) if e.stacktrace.as_deref().is_none_or(|s| s.trim().is_empty()) => {
                format!("the exception {} has no stack trace", quote(&e.r#type))
            }
            Some(e) => format!("the stack trace of {} could not be parsed", quote(&e.r#type)),
        };
        return Err((
            DiagnosisStatus::NoStackTrace,
            format!("{what}, so the failing line cannot be located"),
        ));
    };

    let root_frames = parsed.root_cause().frames;
    let mut candidates: Vec<&Frame> = parsed.culprit.iter().collect();
    candidates.extend(
        root_frames
            .iter()
            .filter(|f| f.in_app && Some(*f) != parsed.culprit.as_ref()),
    );
    if candidates.is_empty() {
        return Err((
            DiagnosisStatus::NotInRepository,
            format!(
                "the trace has no frame of the service's own code ({} frames, all library or runtime)",
                root_frames.len()
            ),
        ));
    }
    let mut misses: Vec<String> = Vec::new();
    for (i, frame) in candidates.iter().take(MAX_FRAMES_TRIED).enumerate() {
        match map_with(snap.files.as_ref(), frame, Some(&entry.source_root)) {
            RepoLocation::Found {
                path,
                line,
                function,
                snippet,
                exact,
                note,
                ..
            } => {
                let culprit = i == 0 && parsed.culprit.is_some();
                // Only the repository (or the catalog) makes a culprit certain: when the
                // heuristics chose the in-app frames, the location is approximate.
                let trusted = parsed.culprit_basis != CulpritBasis::Heuristic;
                a.located = if exact && culprit && trusted {
                    Located::Exact
                } else {
                    Located::Approximate
                };
                let where_ = format!(
                    "{path}:{} in {}",
                    line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                    quote(&function)
                );
                let mut detail = if culprit {
                    format!("innermost in-app frame {where_}")
                } else {
                    format!(
                        "in-app frame {where_} (frames further in are not in the repository: {})",
                        misses.join("; ")
                    )
                };
                if let Some(n) = note {
                    detail.push_str(&format!(" — {}", quote(&n)));
                }
                detail.push_str(match parsed.culprit_basis {
                    CulpritBasis::Repository => " (in-app frames: files and packages of the repository)",
                    CulpritBasis::Catalog => " (in-app frames: the catalog's source roots and packages)",
                    CulpritBasis::Heuristic => {
                        " (no frame is a file or package of the repository: in-app frames guessed from paths and names, lower confidence)"
                    }
                });
                a.context.insert(
                    0,
                    Evidence {
                        kind: "frame".into(),
                        detail,
                    },
                );
                let code_line = line
                    .and_then(|l| snippet.iter().find(|s| s.line == l))
                    .map(|s| s.text.clone());
                let snippet_text = match line {
                    Some(l) if !snippet.is_empty() => Some(format_snippet(&snippet, l)),
                    _ => None,
                };
                if let Some(want) = want {
                    a.model_context = Some(gather(repos, root, &snap, &path, line, want));
                }
                return Ok(Found {
                    path,
                    line,
                    function,
                    snippet: snippet_text,
                    code_line,
                });
            }
            RepoLocation::NotFound { reason, .. } => misses.push(format!("{}: {}", describe(frame), quote(&reason))),
        }
    }
    Err((
        DiagnosisStatus::NotInRepository,
        format!(
            "no in-app frame of the trace is a file of {} at {}: {}",
            root.display(),
            short(&snap.commit),
            misses.join("; ")
        ),
    ))
}

/// The code window and the file's recent history; what cannot be read becomes a note.
fn gather(
    repos: &dyn SourceRepository,
    root: &Path,
    snap: &RepoSnapshot,
    path: &str,
    line: Option<u32>,
    want: ContextRequest,
) -> ModelContext {
    let mut ctx = ModelContext::default();
    match (line, snap.files.read(path)) {
        (Some(l), Ok(text)) => {
            ctx.window = code_window(path, &text, l, want.radius);
            if ctx.window.is_none() {
                ctx.notes.push(format!("line {l} is outside {path}; no code window"));
            }
        }
        (None, _) => ctx.notes.push("the culprit frame has no line; no code window".into()),
        (_, Err(e)) => ctx.notes.push(format!("{path} could not be read: {e}")),
    }
    if want.max_commits > 0 {
        match repos.recent_commits(root, &snap.commit, path, want.max_commits) {
            Ok(mut commits) => {
                commits.truncate(want.max_commits);
                ctx.commits = commits;
            }
            Err(e) => ctx.notes.push(format!("history of {path} unavailable: {e}")),
        }
    }
    ctx
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A service whose package looks like a library's (`org.apache.…`): the repository at
    /// the deployed commit says the frame is its own, so the culprit is exact; the JDK frame
    /// further in is not the culprit.
    #[test]
    fn the_repository_decides_the_culprit() {
        use crate::repository::GitRepositories;
        use selfheal_catalog::ServiceEntry;
        use selfheal_events::ExceptionInfo;

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = root.join("src/main/java/org/apache/billing/Parser.java");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let body: String = (1..=20)
            .map(|i| {
                if i == 17 {
                    "        return Integer.parseInt(raw); // amount\n".to_string()
                } else {
                    format!("// {i}\n")
                }
            })
            .collect();
        std::fs::write(&file, body).unwrap();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .arg("-C")
                .arg(root)
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t.invalid",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "v1"]);
        let catalog = Catalog::from_services([ServiceEntry::new(
            "billing",
            root.to_path_buf(),
            "java",
            vec!["mvn test".into()],
        )])
        .unwrap();
        let mut anomaly = selfheal_events::examples::anomaly();
        anomaly.service = "billing".into();
        anomaly.service_version = None;
        anomaly.exception = Some(ExceptionInfo {
            r#type: "java.lang.NumberFormatException".into(),
            message: "For input string: \"x\"".into(),
            stacktrace: Some(
                "java.lang.NumberFormatException: For input string: \"x\"\n\
                 \tat java.lang.Integer.parseInt(Integer.java:580)\n\
                 \tat org.apache.billing.Parser.amount(Parser.java:17)\n\
                 \tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)\n"
                    .into(),
            ),
        });
        let a = analyze(&catalog, &GitRepositories, &anomaly, None);
        assert_eq!(a.status, DiagnosisStatus::Localized, "{:?}", a.reason);
        let rc = a.root_cause.as_ref().unwrap();
        assert_eq!(
            (rc.file.as_str(), rc.line),
            ("src/main/java/org/apache/billing/Parser.java", 17)
        );
        assert_eq!(a.located, Located::Exact);
        assert!(
            a.context
                .iter()
                .any(|e| e.detail.contains("files and packages of the repository")),
            "{:?}",
            a.context
        );
    }

    #[test]
    fn snippet_is_numbered_and_marked() {
        let lines: Vec<SnippetLine> = (9..=19)
            .map(|n| SnippetLine {
                line: n,
                text: if n == 14 { "x = p / d".into() } else { String::new() },
            })
            .collect();
        let s = format_snippet(&lines, 14);
        assert_eq!(s.lines().count(), 7);
        assert!(s.lines().next().unwrap().starts_with("  11 | "));
        assert!(s.contains("> 14 | x = p / d"));
        assert!(s.lines().last().unwrap().starts_with("  17 |"));
    }

    #[test]
    fn code_window_is_bounded_by_the_file_and_marks_the_line() {
        let text: String = (1..=40).map(|n| format!("line{n}\n")).collect();
        let w = code_window("a.py", &text, 20, 15).unwrap();
        assert_eq!((w.first_line, w.last_line, w.culprit_line), (5, 35, 20));
        assert_eq!(w.text.lines().count(), 31);
        assert!(w.text.contains("> 20 | line20"));
        assert!(w.text.starts_with("   5 | line5"));
        let w = code_window("a.py", &text, 2, 15).unwrap();
        assert_eq!((w.first_line, w.last_line), (1, 17));
        let w = code_window("a.py", &text, 39, 15).unwrap();
        assert_eq!(w.last_line, 40);
        assert!(code_window("a.py", &text, 41, 15).is_none());
        assert!(code_window("a.py", &text, 0, 15).is_none());
        let long = format!("{}\n", "x".repeat(1000));
        let w = code_window("b.py", &long, 1, 15).unwrap();
        assert!(w.text.len() < 400);
    }
}
