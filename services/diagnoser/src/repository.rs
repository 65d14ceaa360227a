//! Reading the service's code at the deployed version.
//!
//! The deployed version is the anomaly's `service_version` when it resolves to a commit
//! of the repository (a sha, tag, `git describe` name); otherwise `HEAD`. Files are read
//! from that commit through git, never from the working tree, so uncommitted edits in the
//! repository cannot change a diagnosis and the commit recorded says exactly what was read.

use std::path::{Path, PathBuf};
use std::process::Command;

use selfheal_stacktrace::repo::{GitTree, RepoFiles, resolve_version};

use crate::error::DiagnoserError;

/// One version of a repository, ready to read.
pub struct RepoSnapshot {
    /// The full commit sha read.
    pub commit: String,
    /// Whether `commit` came from the service version (else it is `HEAD`).
    pub from_version: bool,
    /// The files of that commit.
    pub files: Box<dyn RepoFiles + Send + Sync>,
}

impl std::fmt::Debug for RepoSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSnapshot")
            .field("commit", &self.commit)
            .field("from_version", &self.from_version)
            .finish()
    }
}

/// One commit that touched a file, as shown to a model (no author: names are personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// Abbreviated sha.
    pub sha: String,
    /// Author date, `YYYY-MM-DD`.
    pub date: String,
    /// The subject line (repository text: untrusted when it goes into a prompt).
    pub subject: String,
}

/// Longest commit subject kept.
const MAX_SUBJECT_CHARS: usize = 200;

/// Access to service repositories.
pub trait SourceRepository: Send + Sync {
    /// Opens the repository at `root` at the commit `version` names, or at `HEAD`.
    /// `Err(RepositoryMissing)` when it does not exist or is not a git repository of its own.
    fn open(&self, root: &Path, version: Option<&str>) -> Result<RepoSnapshot, DiagnoserError>;

    /// At most `max` most recent commits reachable from `commit` that touched `file`
    /// (repository-relative), newest first. Only the model's context needs them, so the
    /// default (for fakes and stores without history) is none.
    fn recent_commits(
        &self,
        _root: &Path,
        _commit: &str,
        _file: &str,
        _max: usize,
    ) -> Result<Vec<CommitSummary>, DiagnoserError> {
        Ok(Vec::new())
    }
}

/// Repositories on the local disk, read with the `git` command.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitRepositories;

/// Runs `git -C root <args>` (fixed arguments only; no untrusted text reaches the command line
/// except revisions already checked by `resolve_version`).
fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl SourceRepository for GitRepositories {
    fn open(&self, root: &Path, version: Option<&str>) -> Result<RepoSnapshot, DiagnoserError> {
        let shown = root.display();
        if !root.is_dir() {
            return Err(DiagnoserError::RepositoryMissing(format!(
                "{shown} does not exist or is not a directory"
            )));
        }
        let top = git(root, &["rev-parse", "--show-toplevel"])
            .map_err(|e| DiagnoserError::RepositoryMissing(format!("{shown} is not a git repository ({e})")))?;
        // A directory inside another repository would read (and the repairer would commit
        // to) the outer one: refuse rather than guess.
        if canonical(Path::new(&top)) != canonical(root) {
            return Err(DiagnoserError::RepositoryMissing(format!(
                "{shown} is not a git repository of its own (it is inside {top})"
            )));
        }
        let resolved = version
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| resolve_version(root, v));
        let (commit, from_version) = match resolved {
            Some(sha) => (sha, true),
            None => {
                let head = git(root, &["rev-parse", "--verify", "HEAD^{commit}"])
                    .map_err(|e| DiagnoserError::RepositoryMissing(format!("{shown} has no commit at HEAD ({e})")))?;
                (head, false)
            }
        };
        let tree = GitTree::open(root, &commit)
            .map_err(|e| DiagnoserError::RepositoryMissing(format!("cannot list {shown} at {commit}: {e}")))?;
        Ok(RepoSnapshot {
            commit,
            from_version,
            files: Box::new(tree),
        })
    }

    fn recent_commits(
        &self,
        root: &Path,
        commit: &str,
        file: &str,
        max: usize,
    ) -> Result<Vec<CommitSummary>, DiagnoserError> {
        // `commit` is a full sha resolved by `open`; anything else is refused rather than passed
        // to git as a revision. The path comes after `--`, so it is never read as an option.
        if commit.len() < 7 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(DiagnoserError::Internal(format!("not a commit sha: {commit:?}")));
        }
        let max = max.clamp(1, 50).to_string();
        let out = git(
            root,
            &[
                "log",
                "--no-color",
                "--no-show-signature",
                "-n",
                &max,
                "--date=short",
                "--format=%h%x1f%ad%x1f%s",
                commit,
                "--",
                file,
            ],
        )
        .map_err(|e| DiagnoserError::RepositoryMissing(format!("git log of {file} at {commit}: {e}")))?;
        Ok(out.lines().filter_map(parse_log_line).collect())
    }
}

/// `sha \x1f date \x1f subject` → a bounded summary.
fn parse_log_line(line: &str) -> Option<CommitSummary> {
    let mut parts = line.splitn(3, '\u{1f}');
    let sha = parts.next()?.trim();
    let date = parts.next()?.trim();
    let subject = parts.next().unwrap_or("").trim();
    if sha.is_empty() {
        return None;
    }
    Some(CommitSummary {
        sha: sha.to_string(),
        date: date.to_string(),
        subject: subject.chars().take(MAX_SUBJECT_CHARS).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse_and_subjects_are_bounded() {
        let long = "s".repeat(500);
        let c = parse_log_line(&format!("abc1234\u{1f}2026-01-02\u{1f}{long}")).unwrap();
        assert_eq!((c.sha.as_str(), c.date.as_str()), ("abc1234", "2026-01-02"));
        assert_eq!(c.subject.chars().count(), MAX_SUBJECT_CHARS);
        let c = parse_log_line("abc1234\u{1f}2026-01-02\u{1f}fix: a \u{1f} b").unwrap();
        assert_eq!(c.subject, "fix: a \u{1f} b");
        assert!(parse_log_line("").is_none());
    }

    #[test]
    fn history_is_read_only_at_a_sha() {
        let dir = std::env::temp_dir();
        let e = GitRepositories
            .recent_commits(&dir, "HEAD --output=/tmp/x", "a.py", 5)
            .unwrap_err();
        assert!(e.to_string().contains("not a commit sha"), "{e}");
    }
}
