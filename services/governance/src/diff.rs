//! Reading a unified diff (`git diff` or `diff -u` output) into per-file change counts.
//!
//! Hunk headers are honoured: a hunk's lines are counted by its `@@ -a,b +c,d @@`
//! numbers, so an added line that happens to start with `+++ ` is content, not a new
//! file. The policy reparses the diff text on its own; both strip `a/` and `b/` the
//! same way so their file names agree.

use crate::error::GovernanceError;
use crate::patch::PatchFile;

/// The file of a diff being read, before it is finished.
#[derive(Default)]
struct Pending {
    file: PatchFile,
    /// Saw `--- `: the next `--- ` outside a hunk starts another file (plain `diff -u`).
    saw_old_header: bool,
    /// Saw `+++ ` or a hunk: the file header is complete.
    saw_new_header: bool,
}

/// One file per `diff --git` or `---`/`+++` header, with added and removed line counts.
pub fn parse_unified_diff(diff: &str) -> Result<Vec<PatchFile>, GovernanceError> {
    let mut files: Vec<PatchFile> = Vec::new();
    let mut current: Option<Pending> = None;
    // Lines still expected in the current hunk: (old side, new side).
    let mut remaining = (0u32, 0u32);

    for (index, raw) in diff.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let error = |message: String| GovernanceError::Diff { line: number, message };

        if remaining != (0, 0) {
            let Some(pending) = current.as_mut() else {
                return Err(error("hunk without a file header".to_string()));
            };
            let file = &mut pending.file;
            match line.as_bytes().first() {
                Some(b'+') => {
                    remaining.1 = remaining
                        .1
                        .checked_sub(1)
                        .ok_or_else(|| error(format!("more added lines than the hunk header says in {}", file.path)))?;
                    file.added = file.added.saturating_add(1);
                }
                Some(b'-') => {
                    remaining.0 = remaining.0.checked_sub(1).ok_or_else(|| {
                        error(format!("more removed lines than the hunk header says in {}", file.path))
                    })?;
                    file.removed = file.removed.saturating_add(1);
                }
                Some(b'\\') => {}
                // Some tools strip the single space of an empty context line.
                Some(b' ') | None => {
                    remaining = (remaining.0.saturating_sub(1), remaining.1.saturating_sub(1));
                }
                Some(_) => {
                    return Err(error(format!(
                        "hunk of {} ends early ({} old and {} new lines missing)",
                        file.path, remaining.0, remaining.1
                    )));
                }
            }
            continue;
        }

        if let Some(rest) = line.strip_prefix("diff --git ") {
            finish(&mut files, current.take());
            let mut pending = Pending::default();
            pending.file.path = git_header_path(rest);
            current = Some(pending);
        } else if let Some(rest) = line.strip_prefix("--- ") {
            let starts_file = current
                .as_ref()
                .is_none_or(|pending| pending.saw_old_header || pending.saw_new_header);
            if starts_file {
                finish(&mut files, current.take());
                current = Some(Pending::default());
            }
            if let Some(pending) = current.as_mut() {
                pending.saw_old_header = true;
                let name = header_name(rest);
                if name == "/dev/null" {
                    pending.file.new_file = true;
                } else {
                    let old = strip_side(&name);
                    if pending.file.path.is_empty() {
                        pending.file.path = old.clone();
                    }
                    if old != pending.file.path {
                        pending.file.old_path = Some(old);
                    }
                }
            }
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            let Some(pending) = current.as_mut() else {
                return Err(error("`+++` header without a `---` header".to_string()));
            };
            pending.saw_new_header = true;
            let name = header_name(rest);
            if name == "/dev/null" {
                pending.file.deleted = true;
            } else {
                let new = strip_side(&name);
                if pending.file.path != new {
                    if pending.file.old_path.is_none() && !pending.file.path.is_empty() {
                        pending.file.old_path = Some(pending.file.path.clone());
                    }
                    pending.file.path = new;
                }
                if pending.file.old_path.as_deref() == Some(pending.file.path.as_str()) {
                    pending.file.old_path = None;
                }
            }
        } else if line.starts_with("@@") {
            let Some(pending) = current.as_mut() else {
                return Err(error("hunk without a file header".to_string()));
            };
            pending.saw_new_header = true;
            remaining = hunk_counts(line).ok_or_else(|| error(format!("malformed hunk header `{line}`")))?;
        } else if line.starts_with('+') && current.as_ref().is_some_and(|p| p.saw_new_header) {
            // An addition the hunk header did not announce: the counts cannot be trusted.
            return Err(error("added line outside any hunk".to_string()));
        } else if let Some(pending) = current.as_mut() {
            let file = &mut pending.file;
            if line.starts_with("new file mode") || line.starts_with("copy to ") {
                file.new_file = true;
            } else if line.starts_with("deleted file mode") {
                file.deleted = true;
            } else if let Some(from) = line.strip_prefix("rename from ") {
                file.old_path = Some(unquote(from));
            } else if let Some(to) = line.strip_prefix("rename to ") {
                file.path = unquote(to);
            } else if line.starts_with("Binary files ") || line == "GIT binary patch" {
                file.binary = true;
            }
            // Everything else (index, mode, similarity lines) says nothing a policy needs.
        }
        // Text before the first header (a commit message from format-patch) is skipped.
    }
    if remaining != (0, 0) {
        let path = current
            .as_ref()
            .map(|pending| pending.file.path.clone())
            .unwrap_or_default();
        return Err(GovernanceError::Diff {
            line: diff.split('\n').count(),
            message: format!(
                "diff ends inside a hunk of {path} ({} old and {} new lines missing)",
                remaining.0, remaining.1
            ),
        });
    }
    finish(&mut files, current.take());
    if files.is_empty() {
        return Err(GovernanceError::Diff {
            line: 1,
            message: "no file header (`diff --git` or `---`/`+++`) found".to_string(),
        });
    }
    Ok(files)
}

fn finish(files: &mut Vec<PatchFile>, pending: Option<Pending>) {
    if let Some(pending) = pending {
        files.push(pending.file);
    }
}

/// `a/x b/x` → `x`; paths with spaces are split where both halves agree.
fn git_header_path(rest: &str) -> String {
    let rest = rest.trim();
    if rest.starts_with('"') {
        // Quoted paths: `"a/x y" "b/x y"`; the second token is the new path.
        let tokens: Vec<&str> = rest.split('"').filter(|t| !t.trim().is_empty()).collect();
        if let Some(last) = tokens.last() {
            return strip_side(last);
        }
    }
    // Both halves are the same length when the file was not renamed.
    let half = rest.len() / 2;
    if let (Some(old), Some(new)) = (rest.get(..half), rest.get(half + 1..))
        && strip_side(old) == strip_side(new)
    {
        return strip_side(new);
    }
    match rest.rfind(" b/") {
        Some(at) => strip_side(rest.get(at + 1..).unwrap_or(rest)),
        None => strip_side(rest),
    }
}

/// The file name of a `---`/`+++` header: no timestamp after a tab, no quotes.
fn header_name(rest: &str) -> String {
    let name = rest.split('\t').next().unwrap_or(rest);
    unquote(name)
}

fn unquote(name: &str) -> String {
    name.trim_matches('"').to_string()
}

/// Drops git's `a/` / `b/` side prefix.
fn strip_side(path: &str) -> String {
    path.strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path)
        .to_string()
}

/// `@@ -14 +14,2 @@ fn` → (1, 2): the line counts of each side, 1 when omitted.
fn hunk_counts(line: &str) -> Option<(u32, u32)> {
    let mut parts = line.split_whitespace();
    if parts.next() != Some("@@") {
        return None;
    }
    let old = side_count(parts.next()?.strip_prefix('-')?)?;
    let new = side_count(parts.next()?.strip_prefix('+')?)?;
    if parts.next() != Some("@@") {
        return None;
    }
    Some((old, new))
}

fn side_count(range: &str) -> Option<u32> {
    match range.split_once(',') {
        Some((start, count)) => {
            start.parse::<u32>().ok()?;
            count.parse().ok()
        }
        None => {
            range.parse::<u32>().ok()?;
            Some(1)
        }
    }
}
