//! The Gitea client against the real Gitea of the test bed (`deploy/gitea.sh up`, then
//! `eval "$(deploy/gitea.sh env)"`): pushes, pull requests opened once and updated on replay,
//! a crash between push and pull request completed, labels, reviewers, reviews and comments
//! read as decisions, commit statuses, merge, branch deletion, a refused token.
//!
//! Without the server these tests fail, unless `SELFHEAL_REQUIRE_BROKER=0` (see require.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../../tests/src/require.rs"]
mod require;

use std::path::Path;
use std::process::Command;

use selfheal_codehost::gitea::Gitea;
use selfheal_codehost::gitea::testbed::TestBed;
use selfheal_codehost::{
    Channel, CodeHost, CodeHostError, CommitStatus, Proposal, PullRequestState, STATUS_CONTEXT, StatusState, Token,
    decide, deliver,
};

async fn bed() -> Option<TestBed> {
    require::present(&require::GITEA, TestBed::from_env().await)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A local repository with `main` and a fix branch per name, and its copy on Gitea.
async fn repo_with_branches(bed: &TestBed, branches: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("calc.py"), "def div(a, b):\n    return a / b\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "first"]);
    for branch in branches {
        git(dir.path(), &["checkout", "-q", "-b", branch, "main"]);
        std::fs::write(
            dir.path().join("calc.py"),
            format!("def div(a, b):\n    # {branch}\n    return a / b if b else 0\n"),
        )
        .unwrap();
        git(dir.path(), &["commit", "-q", "-am", &format!("fix on {branch}")]);
    }
    git(dir.path(), &["checkout", "-q", "main"]);
    let name = format!("svc-{}", uuid::Uuid::new_v4().simple());
    let repo = bed.create_repo(&name, dir.path()).await.unwrap();
    (dir, repo)
}

fn proposal(branch: &str, body: &str, reviewer: &str) -> Proposal {
    Proposal {
        branch: branch.into(),
        base: "main".into(),
        title: format!("selfheal: fix on {branch}"),
        body: body.into(),
        labels: vec!["selfheal".into(), "zero-division-guard".into()],
        reviewers: vec![reviewer.into()],
    }
}

#[tokio::test]
async fn a_pull_request_is_opened_once_updated_on_replay_and_completed_after_a_crash() {
    let Some(bed) = bed().await else { return };
    let (dir, repo) = repo_with_branches(&bed, &["selfheal/inc-a", "selfheal/inc-b"]).await;
    let host = bed.host(&repo).unwrap();

    let first = deliver(
        &host,
        dir.path(),
        &proposal("selfheal/inc-a", "body v1", &bed.reviewer_user),
    )
    .await
    .unwrap();
    assert!(first.opened && first.notes.is_empty(), "{first:?}");
    let pr = &first.pull_request;
    assert_eq!(pr.state, PullRequestState::Open);
    assert_eq!(pr.head_sha, git(dir.path(), &["rev-parse", "selfheal/inc-a"]));
    assert!(
        pr.url.starts_with(&bed.url) && pr.url.ends_with(&format!("/pulls/{}", pr.number)),
        "{}",
        pr.url
    );
    let mut labels = bed.labels(&repo, pr.number).await.unwrap();
    labels.sort();
    assert_eq!(labels, ["selfheal", "zero-division-guard"]);
    assert_eq!(
        bed.requested_reviewers(&repo, pr.number).await.unwrap(),
        std::slice::from_ref(&bed.reviewer_user)
    );

    // A replayed patch: the same pull request, updated, and still only one.
    let again = deliver(
        &host,
        dir.path(),
        &proposal("selfheal/inc-a", "body v2", &bed.reviewer_user),
    )
    .await
    .unwrap();
    assert!(!again.opened);
    assert_eq!(again.pull_request.number, pr.number);
    assert_eq!(host.pull_request(pr.number).await.unwrap().body, "body v2");
    assert_eq!(
        bed.labels(&repo, pr.number).await.unwrap().len(),
        2,
        "labels not doubled"
    );

    // A crash after the push, before the pull request: the re-run opens it, once.
    host.push_branch(dir.path(), "selfheal/inc-b").await.unwrap();
    assert!(bed.branch_exists(&repo, "selfheal/inc-b").await.unwrap());
    assert_eq!(host.find_pull_request("selfheal/inc-b").await.unwrap(), None);
    let completed = deliver(&host, dir.path(), &proposal("selfheal/inc-b", "b", &bed.reviewer_user))
        .await
        .unwrap();
    assert!(completed.opened);
    assert_ne!(completed.pull_request.number, pr.number);
    let replay = deliver(&host, dir.path(), &proposal("selfheal/inc-b", "b", &bed.reviewer_user))
        .await
        .unwrap();
    assert_eq!(replay.pull_request.number, completed.pull_request.number);
    // Opening directly a second time is refused by the host as a conflict.
    let dup = host
        .open_pull_request(&selfheal_codehost::NewPullRequest {
            head: "selfheal/inc-b".into(),
            base: "main".into(),
            title: "dup".into(),
            body: String::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(dup, CodeHostError::Conflict(_)), "{dup}");
}

#[tokio::test]
async fn reviews_and_comments_decide_statuses_are_set_and_the_fix_is_merged() {
    let Some(bed) = bed().await else { return };
    let (dir, repo) = repo_with_branches(&bed, &["selfheal/inc-c", "selfheal/inc-d"]).await;
    let host = bed.host(&repo).unwrap();
    let approver = |user: &str| user == bed.reviewer_user;
    let pr = deliver(&host, dir.path(), &proposal("selfheal/inc-c", "c", &bed.reviewer_user))
        .await
        .unwrap()
        .pull_request;

    let undecided = decide(
        &pr,
        &host.reviews(pr.number).await.unwrap(),
        &host.comments(pr.number).await.unwrap(),
        approver,
    );
    assert_eq!(undecided, None);
    // A plain comment and a comment-only review decide nothing.
    bed.reviewer(&repo)
        .unwrap()
        .comment(pr.number, "looking")
        .await
        .unwrap();
    bed.review(&repo, pr.number, "COMMENT", "hmm").await.unwrap();
    assert_eq!(
        decide(
            &pr,
            &host.reviews(pr.number).await.unwrap(),
            &host.comments(pr.number).await.unwrap(),
            approver
        ),
        None
    );
    // The bot's own approval is refused by the host, and would not count anyway.
    assert!(host.comment(pr.number, "/selfheal approve").await.is_ok());
    assert_eq!(
        decide(
            &pr,
            &host.reviews(pr.number).await.unwrap(),
            &host.comments(pr.number).await.unwrap(),
            approver
        ),
        None,
        "the bot is not an approver"
    );

    bed.review(&repo, pr.number, "APPROVED", "ship it").await.unwrap();
    let reviews = host.reviews(pr.number).await.unwrap();
    let approved = decide(&pr, &reviews, &host.comments(pr.number).await.unwrap(), approver).unwrap();
    assert!(approved.approved, "{approved:?}");
    assert_eq!(
        (approved.by.as_str(), approved.channel),
        (bed.reviewer_user.as_str(), Channel::Review)
    );
    assert_eq!(approved.reason, "ship it");
    assert!(approved.at_ms > 1_700_000_000_000, "a real time: {}", approved.at_ms);
    // Not an approver: the same review decides nothing.
    assert_eq!(decide(&pr, &reviews, &[], |u: &str| u == "somebody-else"), None);

    for (state, description) in [
        (StatusState::Pending, "canary started: 25% traffic"),
        (StatusState::Success, "promoted"),
    ] {
        host.set_status(
            &pr.head_sha,
            &CommitStatus {
                state,
                context: STATUS_CONTEXT.into(),
                description: description.into(),
            },
        )
        .await
        .unwrap();
    }
    let statuses = bed.statuses(&repo, &pr.head_sha).await.unwrap();
    let seen: Vec<(&str, &str)> = statuses
        .iter()
        .map(|s| (s.state.as_str(), s.description.as_str()))
        .collect();
    assert!(
        seen.contains(&("pending", "canary started: 25% traffic")) && seen.contains(&("success", "promoted")),
        "{seen:?}"
    );
    assert!(statuses.iter().all(|s| s.context == STATUS_CONTEXT));

    host.merge(pr.number).await.unwrap();
    assert_eq!(
        host.pull_request(pr.number).await.unwrap().state,
        PullRequestState::Merged
    );
    host.merge(pr.number).await.unwrap(); // merging a merged one is no error
    host.delete_branch("selfheal/inc-c").await.unwrap();
    assert!(!bed.branch_exists(&repo, "selfheal/inc-c").await.unwrap());
    host.delete_branch("selfheal/inc-c").await.unwrap(); // nor deleting a deleted one

    // Another fix: changes requested rejects; a later `/selfheal approve` from the reviewer
    // approves; closing the pull request rejects whatever was said before.
    let pr = deliver(&host, dir.path(), &proposal("selfheal/inc-d", "d", &bed.reviewer_user))
        .await
        .unwrap()
        .pull_request;
    bed.review(&repo, pr.number, "REQUEST_CHANGES", "no").await.unwrap();
    let rejected = decide(
        &pr,
        &host.reviews(pr.number).await.unwrap(),
        &host.comments(pr.number).await.unwrap(),
        approver,
    )
    .unwrap();
    assert!(
        !rejected.approved && rejected.channel == Channel::Review,
        "{rejected:?}"
    );
    // Comment times have a resolution of a second on Gitea: make the comment clearly later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    bed.reviewer(&repo)
        .unwrap()
        .comment(pr.number, "/selfheal approve fine after all")
        .await
        .unwrap();
    let by_comment = decide(
        &pr,
        &host.reviews(pr.number).await.unwrap(),
        &host.comments(pr.number).await.unwrap(),
        approver,
    )
    .unwrap();
    assert!(
        by_comment.approved && by_comment.channel == Channel::Comment,
        "{by_comment:?}"
    );
    assert_eq!(by_comment.reason, "fine after all");
    bed.close(&repo, pr.number).await.unwrap();
    let closed = host.pull_request(pr.number).await.unwrap();
    let d = decide(
        &closed,
        &host.reviews(pr.number).await.unwrap(),
        &host.comments(pr.number).await.unwrap(),
        approver,
    )
    .unwrap();
    assert!(!d.approved && d.channel == Channel::Closed, "{d:?}");
    // A replay of a rejected fix finds the closed pull request and opens no second one.
    let replay = deliver(&host, dir.path(), &proposal("selfheal/inc-d", "d2", &bed.reviewer_user))
        .await
        .unwrap();
    assert!(
        !replay.opened
            && replay.pull_request.number == pr.number
            && replay.pull_request.state == PullRequestState::Closed
    );
}

#[tokio::test]
async fn a_refused_token_is_an_error_that_does_not_show_it() {
    let Some(bed) = bed().await else { return };
    let (dir, repo) = repo_with_branches(&bed, &["selfheal/inc-e"]).await;
    let wrong = Token::new("0123456789abcdef0123456789abcdef01234567").unwrap();
    let host = Gitea::new(&bed.url, &repo, wrong.clone()).unwrap();
    let err = host.find_pull_request("selfheal/inc-e").await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, CodeHostError::Status { status: 401, .. }), "{shown}");
    assert!(!shown.contains(wrong.expose()), "{shown}");
    let err = host.push_branch(dir.path(), "selfheal/inc-e").await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, CodeHostError::Push { .. }), "{shown}");
    assert!(!shown.contains(wrong.expose()), "{shown}");
    assert!(!bed.branch_exists(&repo, "selfheal/inc-e").await.unwrap());
    // And the right token pushes, so the failure above was the token.
    bed.host(&repo)
        .unwrap()
        .push_branch(dir.path(), "selfheal/inc-e")
        .await
        .unwrap();
    assert!(bed.branch_exists(&repo, "selfheal/inc-e").await.unwrap());
    assert!(!format!("{:?}", bed.host(&repo).unwrap()).contains(bed.bot_token().expose()));
}
