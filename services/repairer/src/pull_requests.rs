//! Pull requests for a pushed branch. Only a local no-op exists today; GitHub and GitLab
//! implementations will sit behind the same trait.

use std::path::Path;

use async_trait::async_trait;

/// A pull request that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open a pull request: {0}")]
pub struct PullRequestError(pub String);

/// What a pull request is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// The repository.
    pub repository: String,
    /// The branch holding the fix.
    pub branch: String,
    /// The commit the branch starts from.
    pub base_commit: String,
    /// Title.
    pub title: String,
    /// Body (markdown).
    pub body: String,
}

/// Opens (or finds) the pull request of a branch; must be idempotent per branch.
#[async_trait]
pub trait PullRequests: Send + Sync {
    /// Opens the pull request and returns its URL, or `None` when there is no forge.
    async fn open(&self, repo: &Path, pr: &PullRequest) -> Result<Option<String>, PullRequestError>;
}

/// The local repository is the review surface: the branch itself is the proposal.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalPullRequests;

#[async_trait]
impl PullRequests for LocalPullRequests {
    async fn open(&self, _repo: &Path, pr: &PullRequest) -> Result<Option<String>, PullRequestError> {
        tracing::info!(branch = %pr.branch, title = %pr.title, "fix proposed on a local branch (no forge configured)");
        Ok(None)
    }
}
