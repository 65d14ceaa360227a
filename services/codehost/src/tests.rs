//! Unit tests of the provider-independent parts: the decision rules, delivery's idempotence
//! (against an in-memory host), tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;

fn pr(state: PullRequestState) -> PullRequest {
    PullRequest {
        number: 7,
        url: "http://host/o/r/pulls/7".into(),
        state,
        head_branch: "selfheal/inc-1".into(),
        head_sha: "abc".into(),
        base_branch: "main".into(),
        title: "t".into(),
        body: "b".into(),
    }
}

fn review(user: &str, state: ReviewState, at_ms: i64) -> Review {
    Review {
        id: at_ms as u64,
        user: user.into(),
        state,
        body: format!("{user} says so"),
        commit: Some("abc".into()),
        at_ms,
        dismissed: false,
    }
}

fn comment(user: &str, body: &str, at_ms: i64) -> Comment {
    Comment {
        id: at_ms as u64,
        user: user.into(),
        body: body.into(),
        at_ms,
    }
}

fn approver(user: &str) -> bool {
    user == "alice"
}

#[test]
fn an_approvers_review_approves_and_nobody_elses_does() {
    let open = pr(PullRequestState::Open);
    let d = decide(&open, &[review("alice", ReviewState::Approved, 10)], &[], approver).unwrap();
    assert!(d.approved);
    assert_eq!((d.by.as_str(), d.channel, d.at_ms), ("alice", Channel::Review, 10));
    assert_eq!(d.reason, "alice says so");
    assert_eq!(
        decide(&open, &[review("mallory", ReviewState::Approved, 10)], &[], approver),
        None
    );
    assert_eq!(
        decide(
            &open,
            &[review("alice", ReviewState::Other("COMMENT".into()), 10)],
            &[],
            approver
        ),
        None
    );
    assert_eq!(decide(&open, &[], &[comment("alice", "looks fine", 3)], approver), None);
}

#[test]
fn changes_requested_or_closed_rejects() {
    let open = pr(PullRequestState::Open);
    let d = decide(
        &open,
        &[review("alice", ReviewState::ChangesRequested, 10)],
        &[],
        approver,
    )
    .unwrap();
    assert!(!d.approved && d.channel == Channel::Review);
    let closed = decide(
        &pr(PullRequestState::Closed),
        &[review("alice", ReviewState::Approved, 1)],
        &[],
        approver,
    )
    .unwrap();
    assert!(!closed.approved && closed.channel == Channel::Closed, "{closed:?}");
    assert!(
        decide(&pr(PullRequestState::Merged), &[], &[], approver)
            .unwrap()
            .approved
    );
}

#[test]
fn stale_or_dismissed_reviews_do_not_count() {
    let open = pr(PullRequestState::Open);
    let mut old = review("alice", ReviewState::Approved, 10);
    old.commit = Some("an-older-head".into());
    assert_eq!(decide(&open, &[old], &[], approver), None);
    let mut dismissed = review("alice", ReviewState::Approved, 10);
    dismissed.dismissed = true;
    assert_eq!(decide(&open, &[dismissed], &[], approver), None);
}

#[test]
fn comment_commands_decide_and_the_latest_word_counts() {
    let open = pr(PullRequestState::Open);
    let d = decide(
        &open,
        &[],
        &[comment("alice", "/selfheal reject  not on a Friday\nmore", 5)],
        approver,
    )
    .unwrap();
    assert!(!d.approved);
    assert_eq!((d.channel, d.reason.as_str()), (Channel::Comment, "not on a Friday"));
    assert!(
        decide(&open, &[], &[comment("alice", "  /selfheal approve", 5)], approver)
            .unwrap()
            .approved
    );
    // Not a command: a longer word, a command not on the first line, or from a non-approver.
    for body in ["/selfheal approved", "hi\n/selfheal approve"] {
        assert_eq!(
            decide(&open, &[], &[comment("alice", body, 5)], approver),
            None,
            "{body}"
        );
    }
    assert_eq!(
        decide(&open, &[], &[comment("mallory", "/selfheal approve", 5)], approver),
        None
    );
    // An approval, then a later reject comment: rejected; and the other way round.
    let later_reject = decide(
        &open,
        &[review("alice", ReviewState::Approved, 10)],
        &[comment("alice", "/selfheal reject", 20)],
        approver,
    )
    .unwrap();
    assert!(!later_reject.approved);
    let later_approve = decide(
        &open,
        &[review("alice", ReviewState::ChangesRequested, 30)],
        &[
            comment("alice", "/selfheal reject", 20),
            comment("alice", "/selfheal approve ok now", 40),
        ],
        approver,
    )
    .unwrap();
    assert!(later_approve.approved && later_approve.reason == "ok now");
}

#[test]
fn tokens_never_show() {
    let token = Token::new("  ghp_s3cr3t-value \n").unwrap();
    assert_eq!(token.expose(), "ghp_s3cr3t-value");
    assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    assert_eq!(token.redact("a ghp_s3cr3t-value b"), "a <redacted> b");
    assert!(Token::new(" \n").is_none());
    let host = gitea::Gitea::new("http://127.0.0.1:1", "o/r", token.clone()).unwrap();
    assert!(!format!("{host:?}").contains("s3cr3t"), "{host:?}");
}

#[test]
fn a_missing_token_names_its_source_only() {
    let var = format!("SELFHEAL_TEST_TOKEN_{}", uuid::Uuid::new_v4().simple());
    let err = Token::load(&selfheal_catalog::TokenSource::Env(var.clone())).unwrap_err();
    assert!(err.to_string().contains(&var), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let err = Token::load(&selfheal_catalog::TokenSource::File(file.clone())).unwrap_err();
    assert!(err.to_string().contains("token"), "{err}");
    std::fs::write(&file, "file-s3cr3t\n").unwrap();
    assert_eq!(
        Token::load(&selfheal_catalog::TokenSource::File(file))
            .unwrap()
            .expose(),
        "file-s3cr3t"
    );
}

#[tokio::test]
async fn http_errors_never_carry_the_token() {
    // A server that echoes the request's Authorization header in its error body, the worst case.
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            axum::http::StatusCode::UNAUTHORIZED,
            format!("{{\"message\":\"bad credentials: {auth}\"}}"),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let token = Token::new("tok-s3cr3t-0123456789abcdef").unwrap();
    let host = gitea::Gitea::new(&url, "o/r", token.clone()).unwrap();
    let err = host.pull_request(1).await.unwrap_err();
    let shown = format!("{err} / {err:?}");
    assert!(matches!(err, CodeHostError::Status { status: 401, .. }), "{shown}");
    assert!(shown.contains("bad credentials"), "the host's message is kept: {shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    // Unreachable host: a transport error, also without the token.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = gitea::Gitea::new(&format!("http://127.0.0.1:{port}"), "o/r", token).unwrap();
    let err = down.reviews(1).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cr3t"));
}

/// An in-memory host: one repository, pull requests by number, and a switch to fail opening.
#[derive(Debug, Default)]
struct Fake {
    pulls: Mutex<Vec<PullRequest>>,
    pushes: Mutex<Vec<String>>,
    labels: Mutex<Vec<(u64, Vec<String>)>>,
    fail_open: Mutex<bool>,
}

#[async_trait]
impl CodeHost for Fake {
    fn provider(&self) -> &'static str {
        "fake"
    }
    fn repo(&self) -> &str {
        "o/r"
    }
    async fn push_branch(&self, _local: &Path, branch: &str) -> Result<(), CodeHostError> {
        self.pushes.lock().unwrap().push(branch.into());
        Ok(())
    }
    async fn find_pull_request(&self, head: &str) -> Result<Option<PullRequest>, CodeHostError> {
        Ok(self
            .pulls
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|p| p.head_branch == head)
            .cloned())
    }
    async fn pull_request(&self, number: u64) -> Result<PullRequest, CodeHostError> {
        Ok(self.pulls.lock().unwrap()[number as usize - 1].clone())
    }
    async fn open_pull_request(&self, new: &NewPullRequest) -> Result<PullRequest, CodeHostError> {
        if std::mem::take(&mut *self.fail_open.lock().unwrap()) {
            return Err(CodeHostError::Transport {
                method: "POST".into(),
                path: "/pulls".into(),
                message: "connection reset".into(),
            });
        }
        let mut pulls = self.pulls.lock().unwrap();
        if pulls
            .iter()
            .any(|p| p.head_branch == new.head && p.state == PullRequestState::Open)
        {
            return Err(CodeHostError::Conflict(new.head.clone()));
        }
        let pr = PullRequest {
            number: pulls.len() as u64 + 1,
            url: format!("http://host/o/r/pulls/{}", pulls.len() + 1),
            state: PullRequestState::Open,
            head_branch: new.head.clone(),
            head_sha: "abc".into(),
            base_branch: new.base.clone(),
            title: new.title.clone(),
            body: new.body.clone(),
        };
        pulls.push(pr.clone());
        Ok(pr)
    }
    async fn update_pull_request(&self, number: u64, title: &str, body: &str) -> Result<PullRequest, CodeHostError> {
        let mut pulls = self.pulls.lock().unwrap();
        let pr = &mut pulls[number as usize - 1];
        pr.title = title.into();
        pr.body = body.into();
        Ok(pr.clone())
    }
    async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), CodeHostError> {
        self.labels.lock().unwrap().push((number, labels.to_vec()));
        Ok(())
    }
    async fn request_reviewers(&self, _n: u64, _r: &[String]) -> Result<(), CodeHostError> {
        Err(CodeHostError::Status {
            method: "POST".into(),
            path: "/requested_reviewers".into(),
            status: 422,
            message: "reviewer is not a collaborator".into(),
        })
    }
    async fn reviews(&self, _n: u64) -> Result<Vec<Review>, CodeHostError> {
        Ok(Vec::new())
    }
    async fn comments(&self, _n: u64) -> Result<Vec<Comment>, CodeHostError> {
        Ok(Vec::new())
    }
    async fn comment(&self, _n: u64, _b: &str) -> Result<(), CodeHostError> {
        Ok(())
    }
    async fn set_status(&self, _s: &str, _st: &CommitStatus) -> Result<(), CodeHostError> {
        Ok(())
    }
    async fn merge(&self, _n: u64) -> Result<(), CodeHostError> {
        Ok(())
    }
    async fn delete_branch(&self, _b: &str) -> Result<(), CodeHostError> {
        Ok(())
    }
}

fn proposal(body: &str) -> Proposal {
    Proposal {
        branch: "selfheal/inc-1".into(),
        base: "main".into(),
        title: "selfheal: fix".into(),
        body: body.into(),
        labels: vec![SELFHEAL_LABEL.into(), "zero-division-guard".into()],
        reviewers: vec!["alice".into()],
    }
}

#[tokio::test]
async fn delivery_opens_once_then_updates_and_completes_after_a_failure() {
    let host = Fake::default();
    let repo = Path::new("/nonexistent");
    // The host fails between the push and the pull request: nothing opened, the push done.
    *host.fail_open.lock().unwrap() = true;
    assert!(deliver(&host, repo, &proposal("v1")).await.unwrap_err().is_transient());
    assert_eq!(host.pushes.lock().unwrap().len(), 1);
    assert!(host.pulls.lock().unwrap().is_empty());
    // The re-run completes it.
    let first = deliver(&host, repo, &proposal("v1")).await.unwrap();
    assert!(first.opened);
    assert_eq!(
        first.notes.len(),
        1,
        "a refused reviewer is a note, not a failure: {:?}",
        first.notes
    );
    // A replay with a new body updates the same pull request.
    let again = deliver(&host, repo, &proposal("v2")).await.unwrap();
    assert!(!again.opened);
    assert_eq!(again.pull_request.number, first.pull_request.number);
    assert_eq!(host.pulls.lock().unwrap().len(), 1);
    assert_eq!(host.pulls.lock().unwrap()[0].body, "v2");
    assert_eq!(
        host.labels.lock().unwrap()[1].1,
        vec!["selfheal".to_string(), "zero-division-guard".into()]
    );
    // Closed on the host (rejected): reported as it is, never reopened or duplicated.
    host.pulls.lock().unwrap()[0].state = PullRequestState::Closed;
    let closed = deliver(&host, repo, &proposal("v3")).await.unwrap();
    assert_eq!(closed.pull_request.state, PullRequestState::Closed);
    assert_eq!(host.pulls.lock().unwrap().len(), 1);
    assert_eq!(host.pulls.lock().unwrap()[0].body, "v2");
}
