//! Git operations of the repairer, through the `git` command line.
//!
//! Two rules: the sandbox works on a copy (`git clone --local --no-checkout`, which only
//! reads the original), and the fix is committed in a temporary worktree of the real
//! repository, so the checked-out branch and working tree (which a deployer may be
//! running) are never touched. Repository hooks are disabled for every command
//! (`core.hooksPath=/dev/null`): a fix is data, and committing it must not run code.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

/// Author and committer of every selfheal commit.
pub const AUTHOR_NAME: &str = "selfheal";
/// Their e-mail address.
pub const AUTHOR_EMAIL: &str = "selfheal@localhost";

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(#[from] std::io::Error),
    /// git exited with an error.
    #[error("git {args} failed: {stderr}")]
    Failed {
        /// The arguments, for the reader.
        args: String,
        /// git's stderr, trimmed and bounded.
        stderr: String,
    },
    /// git printed something we could not read.
    #[error("unexpected git output: {0}")]
    Output(String),
}

/// One file of a commit: repository-relative path and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path, `/`-separated.
    pub path: String,
    /// The new content.
    pub content: Vec<u8>,
}

/// What the repairer needs from git (a trait so the stage can be driven without processes).
#[async_trait]
pub trait Git: Send + Sync {
    /// The full commit id `rev` names, or `None` when it names no commit.
    async fn resolve_commit(&self, repo: &Path, rev: &str) -> Result<Option<String>, GitError>;
    /// A file's content at a commit.
    async fn show_file(&self, repo: &Path, commit: &str, path: &str) -> Result<String, GitError>;
    /// A clone of `repo` at `commit` in `dest` (which must not exist), reading only from `repo`
    /// and sharing no file with it (no hard links).
    async fn copy_at(&self, repo: &Path, commit: &str, dest: &Path) -> Result<(), GitError>;
    /// The checked-out files of a copy written to `dest`, without `.git`: what the sandbox sees.
    async fn export(&self, copy: &Path, dest: &Path) -> Result<(), GitError>;
    /// Applies a unified diff in a copy; returns the paths it changes.
    async fn apply(&self, copy: &Path, diff: &str) -> Result<Vec<String>, GitError>;
    /// Stages `paths` in a copy and returns their unified diff against the copy's HEAD.
    async fn staged_diff(&self, copy: &Path, paths: &[String]) -> Result<String, GitError>;
    /// Commits `files` on top of `base` and points `branch` at the commit, without touching
    /// the working tree; fails if the branch exists. Returns the commit id.
    async fn commit_branch(
        &self,
        repo: &Path,
        base: &str,
        branch: &str,
        files: &[FileChange],
        message: &str,
    ) -> Result<String, GitError>;
    /// Unified diff between two commits.
    async fn diff(&self, repo: &Path, from: &str, to: &str) -> Result<String, GitError>;
    /// A commit's full message.
    async fn message(&self, repo: &Path, commit: &str) -> Result<String, GitError>;
    /// A commit's first parent.
    async fn parent(&self, repo: &Path, commit: &str) -> Result<String, GitError>;
}

/// [`Git`] through the `git` program; temporary worktrees go under `work_dir`.
#[derive(Debug, Clone)]
pub struct GitCli {
    work_dir: PathBuf,
}

impl GitCli {
    /// Temporary worktrees are made under `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        GitCli {
            work_dir: work_dir.into(),
        }
    }
}

/// Flags for stable, script-readable diffs whatever the user's configuration says.
const DIFF_FLAGS: &[&str] = &[
    "--no-color",
    "--no-ext-diff",
    "--no-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
];

/// Runs git in `dir` with a neutral environment; stdout on success.
pub async fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    git_with_input(dir, args, None).await
}

async fn git_with_input(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<String, GitError> {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"])
        .args(["-c", "core.quotepath=off"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input).await?;
        drop(stdin);
    }
    let out = child.wait_with_output().await?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(GitError::Failed {
            args: args.join(" "),
            stderr: stderr.trim().chars().take(2000).collect(),
        })
    }
}

/// Whether `text` is a full or abbreviated hexadecimal object id.
fn is_hex_id(text: &str) -> bool {
    (4..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_hexdigit())
}

#[async_trait]
impl Git for GitCli {
    async fn resolve_commit(&self, repo: &Path, rev: &str) -> Result<Option<String>, GitError> {
        // Only ids, HEAD and our branches: a revision is never an option or an expression.
        if !(is_hex_id(rev) || rev == "HEAD" || rev.starts_with("refs/heads/selfheal/")) {
            return Ok(None);
        }
        let spec = format!("{rev}^{{commit}}");
        match git(repo, &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]).await {
            Ok(out) => Ok(Some(out.trim().to_string())),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn show_file(&self, repo: &Path, commit: &str, path: &str) -> Result<String, GitError> {
        git(repo, &["show", &format!("{commit}:{path}")]).await
    }

    async fn copy_at(&self, repo: &Path, commit: &str, dest: &Path) -> Result<(), GitError> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let repo_arg = repo.display().to_string();
        let dest_arg = dest.display().to_string();
        git(
            parent,
            &[
                "clone",
                "--quiet",
                "--local",
                "--no-hardlinks",
                "--no-checkout",
                "--",
                &repo_arg,
                &dest_arg,
            ],
        )
        .await?;
        if git(dest, &["checkout", "--quiet", "--detach", commit]).await.is_err() {
            // The base may be on no branch the clone copied; fetch it by id.
            git(dest, &["fetch", "--quiet", "origin", commit]).await?;
            git(dest, &["checkout", "--quiet", "--detach", commit]).await?;
        }
        Ok(())
    }

    async fn export(&self, copy: &Path, dest: &Path) -> Result<(), GitError> {
        std::fs::create_dir_all(dest)?;
        let prefix = format!("{}/", dest.display());
        git(
            copy,
            &["checkout-index", "--all", "--force", &format!("--prefix={prefix}")],
        )
        .await?;
        Ok(())
    }

    async fn apply(&self, copy: &Path, diff: &str) -> Result<Vec<String>, GitError> {
        let numstat = git_with_input(copy, &["apply", "--numstat", "-"], Some(diff.as_bytes())).await?;
        let mut paths = Vec::new();
        for line in numstat.lines() {
            let path = line
                .splitn(3, '\t')
                .nth(2)
                .ok_or_else(|| GitError::Output(line.to_string()))?;
            if path.contains(" => ") {
                return Err(GitError::Output(format!("renames are not supported: {path}")));
            }
            paths.push(path.to_string());
        }
        git_with_input(copy, &["apply", "--whitespace=nowarn", "-"], Some(diff.as_bytes())).await?;
        Ok(paths)
    }

    async fn staged_diff(&self, copy: &Path, paths: &[String]) -> Result<String, GitError> {
        let mut add = vec!["add", "--"];
        add.extend(paths.iter().map(String::as_str));
        git(copy, &add).await?;
        let mut diff = vec!["diff", "--cached"];
        diff.extend(DIFF_FLAGS);
        diff.push("HEAD");
        diff.push("--");
        diff.extend(paths.iter().map(String::as_str));
        git(copy, &diff).await
    }

    async fn commit_branch(
        &self,
        repo: &Path,
        base: &str,
        branch: &str,
        files: &[FileChange],
        message: &str,
    ) -> Result<String, GitError> {
        std::fs::create_dir_all(&self.work_dir)?;
        let holder = tempfile::Builder::new()
            .prefix("selfheal-worktree-")
            .tempdir_in(&self.work_dir)?;
        let tree = holder.path().join("tree");
        let tree_arg = tree.display().to_string();
        git(repo, &["worktree", "add", "--quiet", "--detach", &tree_arg, base]).await?;
        let result = async {
            for file in files {
                let target = tree.join(&file.path);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&target, &file.content)?;
            }
            let mut add = vec!["add", "--"];
            add.extend(files.iter().map(|f| f.path.as_str()));
            git(&tree, &add).await?;
            git(&tree, &["commit", "--quiet", "--no-verify", "-m", message]).await?;
            let commit = git(&tree, &["rev-parse", "HEAD"]).await?.trim().to_string();
            // Fails when the branch exists: a concurrent replay got there first.
            git(repo, &["branch", "--end-of-options", branch, &commit]).await?;
            Ok::<String, GitError>(commit)
        }
        .await;
        if let Err(err) = git(repo, &["worktree", "remove", "--force", &tree_arg]).await {
            tracing::warn!(%err, "cannot remove the temporary worktree; pruning");
            let _ = git(repo, &["worktree", "prune"]).await;
        }
        result
    }

    async fn diff(&self, repo: &Path, from: &str, to: &str) -> Result<String, GitError> {
        let mut args = vec!["diff"];
        args.extend(DIFF_FLAGS);
        args.extend([from, to, "--"]);
        git(repo, &args).await
    }

    async fn message(&self, repo: &Path, commit: &str) -> Result<String, GitError> {
        git(repo, &["log", "-1", "--format=%B", commit, "--"]).await
    }

    async fn parent(&self, repo: &Path, commit: &str) -> Result<String, GitError> {
        Ok(git(repo, &["rev-parse", &format!("{commit}^")])
            .await?
            .trim()
            .to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A repository with one commit holding `files`.
    pub(crate) async fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--quiet", "-b", "main"]).await.unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git(dir.path(), &["add", "-A"]).await.unwrap();
        git(dir.path(), &["commit", "--quiet", "-m", "init"]).await.unwrap();
        let head = git(dir.path(), &["rev-parse", "HEAD"])
            .await
            .unwrap()
            .trim()
            .to_string();
        (dir, head)
    }

    #[tokio::test]
    async fn commit_on_a_branch_leaves_the_working_tree_alone() {
        let (repo, base) = repo_with(&[("a.py", "x = 1\n")]).await;
        // An uncommitted change in the checkout must survive.
        std::fs::write(repo.path().join("a.py"), "x = 2  # local edit\n").unwrap();
        let work = tempfile::tempdir().unwrap();
        let cli = GitCli::new(work.path());
        let files = [
            FileChange {
                path: "a.py".into(),
                content: b"x = 3\n".to_vec(),
            },
            FileChange {
                path: "tests/test_a.py".into(),
                content: b"def test(): pass\n".to_vec(),
            },
        ];
        let commit = cli
            .commit_branch(repo.path(), &base, "selfheal/abc", &files, "fix\n\nIncident: abc")
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(repo.path().join("a.py")).unwrap(),
            "x = 2  # local edit\n"
        );
        assert_eq!(
            git(repo.path(), &["branch", "--show-current"]).await.unwrap().trim(),
            "main"
        );
        assert_eq!(
            cli.resolve_commit(repo.path(), "refs/heads/selfheal/abc")
                .await
                .unwrap(),
            Some(commit.clone())
        );
        assert_eq!(cli.parent(repo.path(), &commit).await.unwrap(), base);
        let diff = cli.diff(repo.path(), &base, &commit).await.unwrap();
        assert!(diff.contains("--- a/a.py\n+++ b/a.py\n"), "{diff}");
        assert!(diff.contains("+x = 3"));
        assert!(diff.contains("+++ b/tests/test_a.py"));
        assert!(
            cli.message(repo.path(), &commit)
                .await
                .unwrap()
                .contains("Incident: abc")
        );
        let author = git(repo.path(), &["log", "-1", "--format=%an <%ae>", &commit])
            .await
            .unwrap();
        assert_eq!(author.trim(), "selfheal <selfheal@localhost>");
        // No worktree left behind, and a second commit on the same branch is refused.
        let worktrees = git(repo.path(), &["worktree", "list"]).await.unwrap();
        assert_eq!(worktrees.lines().count(), 1, "{worktrees}");
        assert!(
            cli.commit_branch(repo.path(), &base, "selfheal/abc", &files, "again")
                .await
                .is_err()
        );
        assert_eq!(
            git(repo.path(), &["worktree", "list"]).await.unwrap().lines().count(),
            1
        );
    }

    #[tokio::test]
    async fn copies_apply_diffs_and_stage_them() {
        let (repo, base) = repo_with(&[("a.py", "x = 1\n")]).await;
        let work = tempfile::tempdir().unwrap();
        let copy = work.path().join("copy");
        let cli = GitCli::new(work.path());
        cli.copy_at(repo.path(), &base, &copy).await.unwrap();
        assert_eq!(std::fs::read_to_string(copy.join("a.py")).unwrap(), "x = 1\n");
        let exported = work.path().join("box");
        cli.export(&copy, &exported).await.unwrap();
        assert_eq!(std::fs::read_to_string(exported.join("a.py")).unwrap(), "x = 1\n");
        assert!(!exported.join(".git").exists());
        let diff = "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 5\n";
        assert_eq!(cli.apply(&copy, diff).await.unwrap(), ["a.py"]);
        assert_eq!(std::fs::read_to_string(copy.join("a.py")).unwrap(), "x = 5\n");
        assert!(cli.apply(&copy, diff).await.is_err(), "applying twice must fail");
        let staged = cli.staged_diff(&copy, &["a.py".into()]).await.unwrap();
        assert!(staged.contains("-x = 1\n+x = 5"), "{staged}");
        // The original is untouched.
        assert_eq!(std::fs::read_to_string(repo.path().join("a.py")).unwrap(), "x = 1\n");
        assert_eq!(cli.resolve_commit(repo.path(), "--all").await.unwrap(), None);
        assert_eq!(cli.resolve_commit(repo.path(), "deadbeef").await.unwrap(), None);
        assert_eq!(cli.resolve_commit(repo.path(), "HEAD").await.unwrap(), Some(base));
    }
}
