//! Code hosts: where a validated fix becomes a pull request a person reviews, and where that
//! review becomes the approval of its rollout.
//!
//! One [`CodeHost`] trait with one folder per provider (`gitea/` today; GitHub and GitLab are the
//! next folders). The repairer uses [`deliver`] to push the fix branch and open or update its pull
//! request; rollout uses [`decide`] on the pull request's reviews and comments, sets commit
//! statuses as the canary progresses, and merges after promotion. This is a library, not a
//! stage, so both stages depend on it without depending on each other.
//!
//! Tokens come from the environment or a file named in the catalog ([`Token`]); they are sent
//! only in `Authorization` headers (never in URLs or command lines) and never appear in a
//! `Debug` output or an error message.

mod decide;
mod deliver;
mod error;
pub mod gitea;
mod push;
mod token;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use selfheal_catalog::CodeHostSettings;

pub use decide::{APPROVE_COMMAND, Channel, REJECT_COMMAND, ReviewDecision, decide};
pub use deliver::{Delivered, Proposal, deliver};
pub use error::CodeHostError;
pub use push::push_branch;
pub use token::Token;

/// Label every selfheal pull request carries.
pub const SELFHEAL_LABEL: &str = "selfheal";
/// Context of the commit statuses selfheal sets on a pull request's head.
pub const STATUS_CONTEXT: &str = "selfheal/canary";

/// Where a pull request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestState {
    /// Open for review.
    Open,
    /// Closed without merging.
    Closed,
    /// Merged.
    Merged,
}

/// A pull request as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// The host's number for it within the repository.
    pub number: u64,
    /// Its web page.
    pub url: String,
    /// Open, closed or merged.
    pub state: PullRequestState,
    /// The branch it proposes.
    pub head_branch: String,
    /// The commit at the head of that branch.
    pub head_sha: String,
    /// The branch it merges into.
    pub base_branch: String,
    /// Title.
    pub title: String,
    /// Body (markdown).
    pub body: String,
}

/// A pull request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    /// The branch holding the fix.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    /// Title.
    pub title: String,
    /// Body (markdown).
    pub body: String,
}

/// What a review says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewState {
    /// Approved.
    Approved,
    /// Changes requested.
    ChangesRequested,
    /// A comment only, or anything else that decides nothing (pending, review requested).
    Other(String),
}

/// One submitted review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The host's id.
    pub id: u64,
    /// Login of the reviewer.
    pub user: String,
    /// What it says.
    pub state: ReviewState,
    /// Its text.
    pub body: String,
    /// The commit it reviewed, when the host says.
    pub commit: Option<String>,
    /// When it was submitted, epoch milliseconds (0 when the host did not say).
    pub at_ms: i64,
    /// Dismissed or made stale by a later push: it no longer counts.
    pub dismissed: bool,
}

/// One conversation comment on a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The host's id.
    pub id: u64,
    /// Login of the author.
    pub user: String,
    /// Its text.
    pub body: String,
    /// When it was written, epoch milliseconds.
    pub at_ms: i64,
}

/// State of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    /// Under way.
    Pending,
    /// Passed.
    Success,
    /// Failed on its merits (the canary was worse).
    Failure,
    /// Could not be judged (the deployer failed).
    Error,
}

impl StatusState {
    /// The spelling GitHub, Gitea and Forgejo use.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A commit status to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// Its state.
    pub state: StatusState,
    /// The check's name, e.g. [`STATUS_CONTEXT`].
    pub context: String,
    /// One line for the reviewer.
    pub description: String,
}

/// What selfheal does on a code host.
#[async_trait]
pub trait CodeHost: Send + Sync + std::fmt::Debug {
    /// The provider, as the catalog spells it.
    fn provider(&self) -> &'static str;
    /// `owner/name` of the repository.
    fn repo(&self) -> &str;
    /// Pushes the local branch to the host (replacing a selfheal branch of that name there).
    async fn push_branch(&self, local_repo: &Path, branch: &str) -> Result<(), CodeHostError>;
    /// The pull request proposing `head_branch`: the open one if any, else the newest closed one.
    async fn find_pull_request(&self, head_branch: &str) -> Result<Option<PullRequest>, CodeHostError>;
    /// One pull request by number.
    async fn pull_request(&self, number: u64) -> Result<PullRequest, CodeHostError>;
    /// Opens a pull request; [`CodeHostError::Conflict`] when one exists for the branch already.
    async fn open_pull_request(&self, new: &NewPullRequest) -> Result<PullRequest, CodeHostError>;
    /// Replaces a pull request's title and body.
    async fn update_pull_request(&self, number: u64, title: &str, body: &str) -> Result<PullRequest, CodeHostError>;
    /// Adds labels (created in the repository when missing); existing labels stay.
    async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), CodeHostError>;
    /// Asks these users for a review.
    async fn request_reviewers(&self, number: u64, reviewers: &[String]) -> Result<(), CodeHostError>;
    /// Every submitted review, oldest first.
    async fn reviews(&self, number: u64) -> Result<Vec<Review>, CodeHostError>;
    /// Every conversation comment, oldest first.
    async fn comments(&self, number: u64) -> Result<Vec<Comment>, CodeHostError>;
    /// Writes a comment.
    async fn comment(&self, number: u64, body: &str) -> Result<(), CodeHostError>;
    /// Sets a status on a commit.
    async fn set_status(&self, sha: &str, status: &CommitStatus) -> Result<(), CodeHostError>;
    /// Merges the pull request (a merged one is left as it is).
    async fn merge(&self, number: u64) -> Result<(), CodeHostError>;
    /// Deletes a branch on the host (a missing one is no error).
    async fn delete_branch(&self, branch: &str) -> Result<(), CodeHostError>;
}

/// The client for a catalog entry's code host, with its token read now (so a missing token is
/// reported when the service is configured, not when the first fix is ready).
pub fn connect(settings: &CodeHostSettings) -> Result<Arc<dyn CodeHost>, CodeHostError> {
    let token = Token::load(&settings.token)?;
    match settings.provider.as_str() {
        "gitea" => Ok(Arc::new(gitea::Gitea::new(&settings.base_url, &settings.repo, token)?)),
        other => Err(CodeHostError::Unsupported(other.to_string())),
    }
}

/// Milliseconds since the epoch of an RFC 3339 timestamp, 0 when it cannot be read.
pub(crate) fn rfc3339_ms(text: &str) -> i64 {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
