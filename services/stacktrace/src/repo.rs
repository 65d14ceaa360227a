//! Maps a frame's file path to a file and line in the service's repository, and reads
//! the code around that line.
//!
//! Paths in traces are wherever the code ran or was built: `/app/...` in a container,
//! `/home/runner/work/svc/svc/...` on a CI runner, `Foo.java` with the package in the
//! frame's class name, `github.com/acme/svc/pay/pay.go` from a `-trimpath` Go build,
//! `C:\build\src\Pricing\Calc.cs`, `webpack:///./src/x.ts`. The strategies, in order:
//!
//! 1. strip the catalog's source root, then well-known container prefixes (`/app`,
//!    `/usr/src/app`, `/src`, `/code`, `/srv`, `/workspace`, `/var/task`, …), or take a
//!    relative path as is; if the result exists in the repository, that is the file;
//! 2. otherwise compare path components from the end against every file of the
//!    repository (skipping `.git`, `node_modules`, `target`, virtualenvs and other build
//!    output). For JVM frames the pattern is the class's package plus the file name
//!    (`com.acme.Foo` + `Foo.java` → `…/com/acme/Foo.java`). The file sharing the most
//!    trailing components wins; a tie is reported as ambiguous, not guessed.
//!
//! A location is `exact` when the file was found without ambiguity by at least two
//! trailing components or by the whole repository path, the line exists in it, and the
//! function name (when it is a plain identifier) appears in the file.
//!
//! The files come from a [`RepoFiles`]: the working tree ([`WorkTree`]) or a commit read
//! through the `git` command ([`GitTree`]), so the deployed version can be read when the
//! telemetry's service version resolves to a commit ([`resolve_version`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::Frame;

/// Lines shown on each side of the culprit line.
pub const SNIPPET_RADIUS: u32 = 5;
/// Files beyond this many are not indexed.
pub const MAX_REPO_FILES: usize = 200_000;
/// Files larger than this are not read.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Directories that never hold the service's own source.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "target",
    "venv",
    ".venv",
    "env",
    ".env",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".gradle",
    ".idea",
    ".vscode",
    "obj",
    ".next",
    ".nuxt",
    ".cache",
    "site-packages",
    ".bundle",
];

/// Prefixes that container images and build systems put in front of repository paths.
const CONTAINER_PREFIXES: &[&str] = &[
    "/app",
    "/usr/src/app",
    "/usr/src",
    "/src",
    "/code",
    "/srv/app",
    "/srv",
    "/opt/app",
    "/opt/service",
    "/workspace",
    "/workdir",
    "/home/app",
    "/var/task",
    "/var/www/html",
    "/var/www",
    "/build",
    "/project",
    "/repo",
];

/// Errors from reading the repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path that failed.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The `git` command failed.
    #[error("git {args}: {message}")]
    Git {
        /// The arguments passed to git.
        args: String,
        /// Its error output.
        message: String,
    },
    /// A commit name that could be taken for a git option or is otherwise unsafe.
    #[error("refusing unsafe revision {0:?}")]
    UnsafeRevision(String),
}

/// One line of code with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnippetLine {
    /// 1-based line number.
    pub line: u32,
    /// The line's text.
    pub text: String,
}

/// Where a frame lives in the repository, or why it could not be found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RepoLocation {
    /// The file was found.
    Found {
        /// Path relative to the repository root, with `/` separators.
        path: String,
        /// The frame's line, when it had one.
        line: Option<u32>,
        /// The frame's function.
        function: String,
        /// Lines around `line` with their numbers.
        snippet: Vec<SnippetLine>,
        /// Whether path, line and function all agree (see the module docs).
        exact: bool,
        /// Which strategy found the file.
        strategy: String,
        /// Why the location is not exact, when it is not.
        note: Option<String>,
    },
    /// Nothing matched; nothing is guessed.
    NotFound {
        /// The candidate paths and strategies that were tried.
        tried: Vec<String>,
        /// Why nothing was found.
        reason: String,
    },
}

impl RepoLocation {
    /// The repository path, when found.
    pub fn path(&self) -> Option<&str> {
        match self {
            RepoLocation::Found { path, .. } => Some(path),
            RepoLocation::NotFound { .. } => None,
        }
    }
}

/// Read access to one version of a repository.
pub trait RepoFiles {
    /// Every file, relative to the root with `/` separators (bounded by [`MAX_REPO_FILES`]).
    fn list(&self) -> Result<Vec<String>, RepoError>;
    /// Whether a relative path is a file.
    fn exists(&self, rel: &str) -> bool;
    /// The text of a file (lossy UTF-8).
    fn read(&self, rel: &str) -> Result<String, RepoError>;
}

/// The repository's working tree on disk.
#[derive(Debug, Clone)]
pub struct WorkTree {
    root: PathBuf,
}

impl WorkTree {
    /// A working tree rooted at `root`.
    pub fn new(root: &Path) -> Self {
        WorkTree {
            root: root.to_path_buf(),
        }
    }
}

/// Whether a relative path is safe to join under the root (no `..`, not absolute).
fn safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && !rel.contains('\0')
        && rel.split('/').all(|c| c != ".." && !c.is_empty())
        && !rel.contains(':')
}

impl RepoFiles for WorkTree {
    fn list(&self) -> Result<Vec<String>, RepoError> {
        let mut out = Vec::new();
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(self.root.clone(), String::new(), 0)];
        while let Some((dir, rel, depth)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if depth == 0 => {
                    return Err(RepoError::Io {
                        path: dir.display().to_string(),
                        message: e.to_string(),
                    });
                }
                Err(_) => continue,
            };
            for entry in entries.flatten() {
                let Ok(ft) = entry.file_type() else { continue };
                let name = entry.file_name().to_string_lossy().into_owned();
                let child_rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if ft.is_dir() {
                    if depth < 40 && !SKIP_DIRS.contains(&name.as_str()) {
                        stack.push((entry.path(), child_rel, depth + 1));
                    }
                } else if ft.is_file() {
                    out.push(child_rel);
                    if out.len() >= MAX_REPO_FILES {
                        return Ok(out);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn exists(&self, rel: &str) -> bool {
        safe_relative(rel) && std::fs::symlink_metadata(self.root.join(rel)).is_ok_and(|m| m.is_file())
    }

    fn read(&self, rel: &str) -> Result<String, RepoError> {
        let io = |e: std::io::Error| RepoError::Io {
            path: rel.to_string(),
            message: e.to_string(),
        };
        if !safe_relative(rel) {
            return Err(RepoError::Io {
                path: rel.to_string(),
                message: "not a relative path inside the repository".into(),
            });
        }
        let path = self.root.join(rel);
        let meta = std::fs::metadata(&path).map_err(io)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(RepoError::Io {
                path: rel.to_string(),
                message: format!("larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// One commit of a repository, read with the `git` command.
#[derive(Debug, Clone)]
pub struct GitTree {
    root: PathBuf,
    commit: String,
    files: BTreeSet<String>,
}

/// Whether a revision name is safe to pass to git as an argument.
fn safe_revision(rev: &str) -> bool {
    !rev.is_empty()
        && rev.len() <= 200
        && !rev.starts_with('-')
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+^{}~@".contains(c))
        && !rev.contains("..")
}

/// Runs git in `root` and returns its standard output.
fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, RepoError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .map_err(|e| RepoError::Git {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(RepoError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

impl GitTree {
    /// Opens `commit` of the repository at `root` and lists its files.
    pub fn open(root: &Path, commit: &str) -> Result<Self, RepoError> {
        if !safe_revision(commit) {
            return Err(RepoError::UnsafeRevision(commit.to_string()));
        }
        let out = git(root, &["ls-tree", "-r", "-z", "--name-only", commit])?;
        let files = out
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .filter(|p| !p.split('/').any(|c| SKIP_DIRS.contains(&c)))
            .take(MAX_REPO_FILES)
            .collect();
        Ok(GitTree {
            root: root.to_path_buf(),
            commit: commit.to_string(),
            files,
        })
    }
}

impl RepoFiles for GitTree {
    fn list(&self) -> Result<Vec<String>, RepoError> {
        Ok(self.files.iter().cloned().collect())
    }

    fn exists(&self, rel: &str) -> bool {
        self.files.contains(rel)
    }

    fn read(&self, rel: &str) -> Result<String, RepoError> {
        if !self.files.contains(rel) {
            return Err(RepoError::Io {
                path: rel.to_string(),
                message: format!("not in commit {}", self.commit),
            });
        }
        let spec = format!("{}:{}", self.commit, rel);
        let bytes = git(&self.root, &["show", &spec])?;
        let bytes = bytes.get(..(MAX_FILE_BYTES as usize).min(bytes.len())).unwrap_or(&[]);
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// A repository given as a list of paths with optional contents, held in memory: what an
/// evaluation set records instead of a checkout (paths and build files, no source code),
/// and a convenient [`RepoFiles`] for tests. A listed file without contents reads as empty.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    files: std::collections::BTreeMap<String, String>,
}

impl MemoryTree {
    /// A tree of `paths` (repository-relative, `/` separators), each empty.
    pub fn new<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MemoryTree {
            files: paths.into_iter().map(|p| (p.into(), String::new())).collect(),
        }
    }

    /// Adds (or replaces) a file with its text.
    pub fn insert(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.files.insert(path.into(), text.into());
    }
}

impl RepoFiles for MemoryTree {
    fn list(&self) -> Result<Vec<String>, RepoError> {
        Ok(self.files.keys().take(MAX_REPO_FILES).cloned().collect())
    }

    fn exists(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }

    fn read(&self, rel: &str) -> Result<String, RepoError> {
        self.files.get(rel).cloned().ok_or_else(|| RepoError::Io {
            path: rel.to_string(),
            message: "not in the listed repository".into(),
        })
    }
}

/// The commit a service version names, when the repository knows it: the version
/// itself (a tag, branch or sha), `v<version>`, the build metadata after `+`, the sha
/// of a `git describe` name (`1.2.3-4-gabc1234`), or a hex run of 7–40 characters.
pub fn resolve_version(repo_root: &Path, version: &str) -> Option<String> {
    let version = version.trim();
    let mut candidates: Vec<String> = vec![version.to_string(), format!("v{version}")];
    if let Some((_, meta)) = version.split_once('+') {
        candidates.push(meta.to_string());
    }
    if let Some(idx) = version.rfind("-g") {
        candidates.push(version.get(idx + 2..).unwrap_or("").to_string());
    }
    for word in version.split(|c: char| !c.is_ascii_alphanumeric()) {
        if (7..=40).contains(&word.len()) && word.chars().all(|c| c.is_ascii_hexdigit()) {
            candidates.push(word.to_string());
        }
    }
    for cand in candidates {
        if !safe_revision(&cand) {
            continue;
        }
        let spec = format!("{cand}^{{commit}}");
        if let Ok(out) = git(repo_root, &["rev-parse", "--verify", "--quiet", &spec]) {
            let sha = String::from_utf8_lossy(&out).trim().to_string();
            if !sha.is_empty() {
                return Some(sha);
            }
        }
    }
    None
}

/// Maps a frame into the working tree at `repo_root`.
pub fn map_to_repo(frame: &Frame, repo_root: &Path, source_root: Option<&str>) -> RepoLocation {
    map_with(&WorkTree::new(repo_root), frame, source_root)
}

/// Maps a frame into `commit` of the repository at `repo_root` (read through git).
pub fn map_to_repo_at(frame: &Frame, repo_root: &Path, commit: &str, source_root: Option<&str>) -> RepoLocation {
    match GitTree::open(repo_root, commit) {
        Ok(tree) => map_with(&tree, frame, source_root),
        Err(e) => RepoLocation::NotFound {
            tried: vec![format!("git commit {commit}")],
            reason: e.to_string(),
        },
    }
}

/// Cleans a traced path: URL schemes, backslashes, drive letters, `.` components.
fn normalize_path(file: &str) -> Option<String> {
    let mut f = file.trim().replace('\\', "/");
    if let Some(i) = f.find(['?', '#']) {
        f.truncate(i);
    }
    for scheme in ["file://", "webpack:///", "app:///", "webpack-internal:///"] {
        if let Some(rest) = f.strip_prefix(scheme) {
            f = rest.to_string();
        }
    }
    if let Some(rest) = f.strip_prefix("webpack://") {
        // webpack://<project>/src/x.js
        f = rest.split_once('/').map(|(_, r)| r.to_string()).unwrap_or_default();
    }
    let bytes = f.as_bytes();
    if bytes.len() > 2 && bytes.get(1) == Some(&b':') && bytes.get(2) == Some(&b'/') {
        f = f.get(2..).unwrap_or("").to_string();
    }
    if f.is_empty() || f.starts_with('<') || f.starts_with("node:") || f.starts_with('[') {
        return None;
    }
    let absolute = f.starts_with('/');
    let parts: Vec<&str> = f
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "~")
        .collect();
    if parts.is_empty() {
        return None;
    }
    let joined = parts.join("/");
    Some(if absolute { format!("/{joined}") } else { joined })
}

/// The rest of `path` after `prefix` (both normalised), when it is under it.
fn strip_root(path: &str, prefix: &str) -> Option<String> {
    let prefix = normalize_path(prefix)?;
    let prefix = prefix.trim_end_matches('/');
    let rest = path.strip_prefix(prefix)?;
    let rest = rest.strip_prefix('/')?;
    (!rest.is_empty()).then(|| rest.to_string())
}

/// The package path a JVM class implies for its file: `com.acme.Foo$1` + `Foo.java` →
/// `com/acme/Foo.java`.
fn jvm_pattern(frame: &Frame, file: &str) -> Option<String> {
    if file.contains('/') {
        return None;
    }
    let ext = file.rsplit('.').next().unwrap_or("");
    if !["java", "kt", "kts", "scala", "groovy", "clj"].contains(&ext) {
        return None;
    }
    let module = frame.module.as_deref()?;
    let (package, _) = module.rsplit_once('.')?;
    if package.is_empty() || package.contains('/') {
        return None;
    }
    Some(format!("{}/{}", package.replace('.', "/"), file))
}

/// How many trailing path components two paths share.
fn common_suffix(a: &[&str], b: &[&str]) -> usize {
    a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count()
}

/// The last segment of a function name that is a plain identifier, for the check that
/// the function is in the file.
fn plain_identifier(function: &str) -> Option<&str> {
    let last = function
        .rsplit(['.', ':', '#', ' ', '/', ')'])
        .next()
        .unwrap_or("")
        .trim();
    let ok = last.len() >= 3
        && last.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !last.starts_with(|c: char| c.is_ascii_digit())
        && ![
            "module",
            "main",
            "lambda",
            "anonymous",
            "init",
            "clinit",
            "MoveNext",
            "ctor",
        ]
        .contains(&last);
    ok.then_some(last)
}

/// Maps a frame using any view of the repository.
pub fn map_with(files: &dyn RepoFiles, frame: &Frame, source_root: Option<&str>) -> RepoLocation {
    let Some(raw) = frame.file.as_deref() else {
        return RepoLocation::NotFound {
            tried: Vec::new(),
            reason: "the frame has no source file".into(),
        };
    };
    let Some(path) = normalize_path(raw) else {
        return RepoLocation::NotFound {
            tried: vec![raw.to_string()],
            reason: format!("{raw:?} is not a source path"),
        };
    };
    let mut tried: Vec<String> = Vec::new();

    // 1. Direct candidates.
    let mut direct: Vec<(String, &'static str)> = Vec::new();
    if let Some(root) = source_root
        && let Some(rest) = strip_root(&path, root)
    {
        direct.push((rest, "source root"));
    }
    if path.starts_with('/') {
        for prefix in CONTAINER_PREFIXES {
            if let Some(rest) = strip_root(&path, prefix) {
                direct.push((rest, "container prefix"));
            }
        }
    } else {
        direct.push((path.clone(), "relative path"));
    }
    for (cand, strategy) in &direct {
        if tried.contains(cand) {
            continue;
        }
        tried.push(cand.clone());
        if files.exists(cand) {
            return located(files, frame, cand.clone(), strategy, true, None);
        }
    }

    // 2. Trailing components against every file of the repository.
    let pattern = jvm_pattern(frame, &path).unwrap_or_else(|| path.trim_start_matches('/').to_string());
    let pat: Vec<&str> = pattern.split('/').collect();
    tried.push(format!("files ending with {pattern}"));
    let all = match files.list() {
        Ok(all) => all,
        Err(e) => {
            return RepoLocation::NotFound {
                tried,
                reason: e.to_string(),
            };
        }
    };
    let mut best = 0usize;
    let mut best_files: Vec<(&str, bool)> = Vec::new();
    for f in &all {
        let comps: Vec<&str> = f.split('/').collect();
        let n = common_suffix(&comps, &pat);
        if n == 0 || n < best {
            continue;
        }
        let whole = n == comps.len();
        if n > best {
            best = n;
            best_files.clear();
        }
        best_files.push((f.as_str(), whole));
    }
    match best_files.as_slice() {
        [] => RepoLocation::NotFound {
            tried,
            reason: format!("no file named {} in the repository", pat.last().copied().unwrap_or("")),
        },
        [(only, whole)] => {
            let strong = *whole || best >= 2;
            let note =
                (!strong).then(|| format!("only the file name matched ({only} for {raw}); the directories differ"));
            located(files, frame, (*only).to_string(), "path suffix", strong, note)
        }
        many => {
            // Prefer the one file whose whole path is a suffix of the traced path.
            let whole: Vec<&(&str, bool)> = many.iter().filter(|(_, w)| *w).collect();
            if let [(only, _)] = whole.as_slice() {
                return located(files, frame, (*only).to_string(), "path suffix", true, None);
            }
            let names: Vec<&str> = many.iter().map(|(f, _)| *f).take(10).collect();
            RepoLocation::NotFound {
                tried,
                reason: format!(
                    "ambiguous: {} files end with the same {} path component(s): {}",
                    many.len(),
                    best,
                    names.join(", ")
                ),
            }
        }
    }
}

/// Reads the file and builds a found location.
fn located(
    files: &dyn RepoFiles,
    frame: &Frame,
    path: String,
    strategy: &str,
    strong: bool,
    note: Option<String>,
) -> RepoLocation {
    let mut notes: Vec<String> = note.into_iter().collect();
    let mut exact = strong;
    let mut snippet = Vec::new();
    match files.read(&path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let count = u32::try_from(lines.len()).unwrap_or(u32::MAX);
            match frame.line {
                Some(line) if line >= 1 && line <= count => {
                    let from = line.saturating_sub(SNIPPET_RADIUS).max(1);
                    let to = line.saturating_add(SNIPPET_RADIUS).min(count);
                    for n in from..=to {
                        let text = lines.get((n - 1) as usize).copied().unwrap_or("");
                        snippet.push(SnippetLine {
                            line: n,
                            text: crate::text::truncate_chars(text, 500).to_string(),
                        });
                    }
                }
                Some(line) => {
                    exact = false;
                    notes.push(format!(
                        "line {line} is outside the file ({count} lines): the repository is at another version"
                    ));
                }
                None => {
                    exact = false;
                    notes.push("the frame has no line number".into());
                }
            }
            if let Some(name) = plain_identifier(&frame.function)
                && !text.contains(name)
            {
                exact = false;
                notes.push(format!("function {name} does not appear in the file"));
            }
        }
        Err(e) => {
            exact = false;
            notes.push(e.to_string());
        }
    }
    RepoLocation::Found {
        path,
        line: frame.line,
        function: frame.function.clone(),
        snippet,
        exact,
        strategy: strategy.to_string(),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize_path("C:\\build\\src\\Calc.cs").as_deref(),
            Some("/build/src/Calc.cs")
        );
        assert_eq!(normalize_path("webpack:///./src/x.ts").as_deref(), Some("src/x.ts"));
        assert_eq!(normalize_path("file:///app/x.mjs").as_deref(), Some("/app/x.mjs"));
        assert_eq!(normalize_path("<frozen importlib._bootstrap>"), None);
        assert_eq!(normalize_path("node:internal/x"), None);
    }

    #[test]
    fn revisions_are_checked() {
        assert!(safe_revision("v1.2.3"));
        assert!(safe_revision("3f2a1b9"));
        assert!(!safe_revision("--upload-pack=x"));
        assert!(!safe_revision("a..b"));
        assert!(!safe_relative("../etc/passwd"));
        assert!(safe_relative("src/x.py"));
    }
}
