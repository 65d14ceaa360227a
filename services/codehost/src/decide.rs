//! Review is the approval: what a pull request's state, reviews and comments decide about the
//! rollout of its fix.

use crate::{Comment, PullRequest, PullRequestState, Review, ReviewState};

/// A comment starting with this approves, when its author is an approver.
pub const APPROVE_COMMAND: &str = "/selfheal approve";
/// A comment starting with this rejects, when its author is an approver.
pub const REJECT_COMMAND: &str = "/selfheal reject";

/// Through what the decision was made on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An approving or changes-requesting review.
    Review,
    /// A `/selfheal approve` or `/selfheal reject` comment.
    Comment,
    /// The pull request was closed without merging.
    Closed,
    /// The pull request was merged by someone before the rollout.
    Merged,
}

impl Channel {
    /// The word used in approval records (`<provider>-<word>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Review => "review",
            Channel::Comment => "comment",
            Channel::Closed => "closed",
            Channel::Merged => "merged",
        }
    }
}

/// What the host says about the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewDecision {
    /// Whether the rollout may go ahead.
    pub approved: bool,
    /// The user who decided (empty when the host does not say who closed or merged).
    pub by: String,
    /// Through what.
    pub channel: Channel,
    /// When, epoch milliseconds (0 when the host did not say).
    pub at_ms: i64,
    /// Their words.
    pub reason: String,
}

/// The decision the pull request holds, if any: closed without merging rejects; otherwise the
/// latest of the approvers' reviews (approve or request changes, on the current head and not
/// dismissed) and `/selfheal approve|reject` comments decides. Reviews and comments of anyone
/// else, plain comments and comment-only reviews decide nothing.
pub fn decide(
    pr: &PullRequest,
    reviews: &[Review],
    comments: &[Comment],
    is_approver: impl Fn(&str) -> bool,
) -> Option<ReviewDecision> {
    match pr.state {
        PullRequestState::Closed => {
            return Some(ReviewDecision {
                approved: false,
                by: String::new(),
                channel: Channel::Closed,
                at_ms: 0,
                reason: format!("pull request #{} was closed without merging", pr.number),
            });
        }
        PullRequestState::Merged => {
            return Some(ReviewDecision {
                approved: true,
                by: String::new(),
                channel: Channel::Merged,
                at_ms: 0,
                reason: format!("pull request #{} was merged on the host", pr.number),
            });
        }
        PullRequestState::Open => {}
    }
    let from_reviews = reviews.iter().filter_map(|r| {
        if r.dismissed || !is_approver(&r.user) {
            return None;
        }
        // A review of an older head did not see what would be deployed.
        if r.commit
            .as_deref()
            .is_some_and(|c| !pr.head_sha.is_empty() && c != pr.head_sha)
        {
            return None;
        }
        let approved = match r.state {
            ReviewState::Approved => true,
            ReviewState::ChangesRequested => false,
            ReviewState::Other(_) => return None,
        };
        Some(ReviewDecision {
            approved,
            by: r.user.clone(),
            channel: Channel::Review,
            at_ms: r.at_ms,
            reason: r.body.trim().to_string(),
        })
    });
    let from_comments = comments.iter().filter_map(|c| {
        if !is_approver(&c.user) {
            return None;
        }
        let (approved, rest) = command(&c.body)?;
        Some(ReviewDecision {
            approved,
            by: c.user.clone(),
            channel: Channel::Comment,
            at_ms: c.at_ms,
            reason: rest,
        })
    });
    // The latest word counts; on equal times a comment (an explicit command) wins.
    from_reviews
        .chain(from_comments)
        .fold(None, |latest: Option<ReviewDecision>, next| match latest {
            Some(l) if l.at_ms > next.at_ms => Some(l),
            _ => Some(next),
        })
}

/// `(approved, the rest of the line)` for a comment whose first line is a selfheal command.
fn command(body: &str) -> Option<(bool, String)> {
    let line = body.trim_start().lines().next().unwrap_or_default().trim_end();
    for (prefix, approved) in [(APPROVE_COMMAND, true), (REJECT_COMMAND, false)] {
        if let Some(rest) = line.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with(char::is_whitespace))
        {
            return Some((approved, rest.trim().to_string()));
        }
    }
    None
}
