//! The repairer's one call: push the fix branch and make sure exactly one pull request proposes
//! it, with the current title, body, labels and reviewers.
//!
//! Idempotent by branch: a replayed patch finds the pull request its branch already has and
//! updates it; a run that stopped between the push and the pull request (a crash, the host down)
//! completes it on the next run, because every step is "make it so", never "do it again".

use std::path::Path;

use crate::{CodeHost, CodeHostError, NewPullRequest, PullRequest, PullRequestState};

/// What the repairer proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The local branch holding the fix (pushed under the same name).
    pub branch: String,
    /// The branch to merge into.
    pub base: String,
    /// Title.
    pub title: String,
    /// Body (markdown).
    pub body: String,
    /// Labels, e.g. `selfheal` and the fix class.
    pub labels: Vec<String>,
    /// Users asked to review.
    pub reviewers: Vec<String>,
}

/// The pull request after [`deliver`], and what happened on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The pull request.
    pub pull_request: PullRequest,
    /// Whether this call opened it (`false`: it existed and was updated).
    pub opened: bool,
    /// Steps that failed without failing the delivery (labels, reviewers), for the record.
    pub notes: Vec<String>,
}

/// Pushes `proposal.branch` from `local_repo` and opens or updates its pull request. A pull
/// request closed or merged on the host is reported as it is, never reopened or duplicated.
pub async fn deliver(host: &dyn CodeHost, local_repo: &Path, proposal: &Proposal) -> Result<Delivered, CodeHostError> {
    host.push_branch(local_repo, &proposal.branch).await?;
    let (pull_request, opened) = match host.find_pull_request(&proposal.branch).await? {
        Some(found) => (refresh(host, found, proposal).await?, false),
        None => {
            let new = NewPullRequest {
                head: proposal.branch.clone(),
                base: proposal.base.clone(),
                title: proposal.title.clone(),
                body: proposal.body.clone(),
            };
            match host.open_pull_request(&new).await {
                Ok(pr) => (pr, true),
                // Opened meanwhile (a concurrent replay): use that one.
                Err(CodeHostError::Conflict(_)) => match host.find_pull_request(&proposal.branch).await? {
                    Some(found) => (refresh(host, found, proposal).await?, false),
                    None => return Err(CodeHostError::Conflict(proposal.branch.clone())),
                },
                Err(e) => return Err(e),
            }
        }
    };
    let mut notes = Vec::new();
    if pull_request.state == PullRequestState::Open {
        if let Err(e) = host.add_labels(pull_request.number, &proposal.labels).await {
            notes.push(format!("labels not set: {e}"));
        }
        if let Err(e) = host.request_reviewers(pull_request.number, &proposal.reviewers).await {
            notes.push(format!("reviewers not requested: {e}"));
        }
    } else {
        notes.push(format!(
            "pull request #{} is {:?} on the host; left as it is",
            pull_request.number, pull_request.state
        ));
    }
    Ok(Delivered {
        pull_request,
        opened,
        notes,
    })
}

/// An open pull request gets the proposal's title and body when they differ.
async fn refresh(host: &dyn CodeHost, found: PullRequest, proposal: &Proposal) -> Result<PullRequest, CodeHostError> {
    if found.state != PullRequestState::Open || (found.title == proposal.title && found.body == proposal.body) {
        return Ok(found);
    }
    host.update_pull_request(found.number, &proposal.title, &proposal.body)
        .await
}
