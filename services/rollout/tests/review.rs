//! Review is the approval, against the real Gitea of the test bed: the watcher turns an
//! approver's review, a `/selfheal reject` comment or a closed pull request into approval records
//! naming who and through which channel (the bot's own `/selfheal approve` does not count), and
//! the reporting deployer sets commit statuses as the canary progresses and merges after promotion.
//!
//! Without Gitea these tests fail, unless `SELFHEAL_REQUIRE_BROKER=0` (see require.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../../tests/src/require.rs"]
mod require;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use selfheal_catalog::{Catalog, CodeHostSettings, ServiceEntry, TokenSource};
use selfheal_codehost::gitea::testbed::{StatusRead, TestBed};
use selfheal_codehost::{CodeHost, Proposal, PullRequestState, deliver};
use selfheal_events::{Approval, Patch};
use selfheal_rollout::{
    ApprovalSink, CanaryHandle, CodeHostReporter, CodeHosts, DeployError, Deployer, PendingPatches, ReviewWatcher,
};

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

struct Pending(Vec<Patch>);
impl PendingPatches for Pending {
    fn pending(&self) -> std::io::Result<Vec<Patch>> {
        Ok(self.0.clone())
    }
}

#[derive(Default)]
struct Sink(Mutex<Vec<Approval>>);
#[async_trait]
impl ApprovalSink for Sink {
    async fn send(&self, approval: &Approval) -> Result<(), String> {
        self.0.lock().unwrap().push(approval.clone());
        Ok(())
    }
}

struct NoopDeployer;
#[async_trait]
impl Deployer for NoopDeployer {
    fn name(&self) -> &'static str {
        "local-process"
    }
    async fn stable_version(&self, _svc: &ServiceEntry) -> Result<String, DeployError> {
        Ok("v1".into())
    }
    async fn start_canary(&self, svc: &ServiceEntry, patch: &Patch) -> Result<CanaryHandle, DeployError> {
        Ok(CanaryHandle {
            service: svc.name.clone(),
            incident_id: patch.incident_id.clone(),
            version: "v2".into(),
            commit: patch.commit.clone().unwrap_or_default(),
            address: "127.0.0.1:1".into(),
        })
    }
    async fn set_canary_weight(&self, _s: &ServiceEntry, _c: &CanaryHandle, _p: u8) -> Result<(), DeployError> {
        Ok(())
    }
    async fn promote(&self, _s: &ServiceEntry, _c: &CanaryHandle) -> Result<(), DeployError> {
        Ok(())
    }
    async fn rollback(&self, _s: &ServiceEntry, _c: &CanaryHandle) -> Result<(), DeployError> {
        Ok(())
    }
}

fn states(s: Vec<StatusRead>) -> Vec<(String, String)> {
    s.into_iter().map(|s| (s.state, s.description)).collect()
}

#[tokio::test]
async fn reviews_decide_the_rollout_and_the_canary_reports_back_and_merges() {
    let Some(bed) = require::present(&require::GITEA, TestBed::from_env().await) else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    git(local.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(local.path().join("a.py"), "x = 1\n").unwrap();
    git(local.path(), &["add", "."]);
    git(local.path(), &["commit", "-q", "-m", "first"]);
    let incidents = ["inc-approve", "inc-reject", "inc-close"];
    for inc in incidents {
        git(
            local.path(),
            &["checkout", "-q", "-b", &format!("selfheal/{inc}"), "main"],
        );
        std::fs::write(local.path().join("a.py"), format!("x = 2  # {inc}\n")).unwrap();
        git(local.path(), &["commit", "-q", "-am", inc]);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let remote = bed
        .create_repo(&format!("svc-{}-{nanos}", std::process::id()), local.path())
        .await
        .unwrap();
    let host = bed.host(&remote).unwrap();
    let mut entry = ServiceEntry::new("svc", local.path(), "python", vec!["true".into()]);
    entry.code_host = Some(CodeHostSettings {
        provider: "gitea".into(),
        base_url: bed.url.clone(),
        repo: remote.clone(),
        token: TokenSource::File(bed.bot_token_file.clone()),
        base_branch: "main".into(),
        reviewers: vec![bed.reviewer_user.clone()],
        approvers: vec![bed.reviewer_user.clone()],
        merge: true,
    });
    let catalog = Arc::new(Catalog::from_services([entry.clone()]).unwrap());
    let mut patches = Vec::new();
    let mut numbers = Vec::new();
    for inc in incidents {
        let branch = format!("selfheal/{inc}");
        let proposal = Proposal {
            branch: branch.clone(),
            base: "main".into(),
            title: inc.into(),
            body: inc.into(),
            labels: vec!["selfheal".into()],
            reviewers: vec![],
        };
        let pr = deliver(&host, local.path(), &proposal).await.unwrap().pull_request;
        numbers.push(pr.number);
        patches.push(Patch {
            incident_id: inc.into(),
            service: "svc".into(),
            branch: Some(branch),
            commit: Some(pr.head_sha.clone()),
            pull_request_url: Some(pr.url.clone()),
            ..Patch::default()
        });
    }
    let hosts = Arc::new(CodeHosts::default());
    let sink = Arc::new(Sink::default());
    let watcher = ReviewWatcher::new(catalog, Arc::new(Pending(patches.clone())), hosts.clone(), sink.clone());
    assert!(watcher.poll_once().await.is_empty(), "nothing decided yet");
    // The bot (not an approver) approving by comment decides nothing.
    host.comment(numbers[0], "/selfheal approve").await.unwrap();
    assert!(watcher.poll_once().await.is_empty());

    bed.review(&remote, numbers[0], "APPROVED", "ship it").await.unwrap();
    bed.reviewer(&remote)
        .unwrap()
        .comment(numbers[1], "/selfheal reject not now")
        .await
        .unwrap();
    bed.close(&remote, numbers[2]).await.unwrap();
    let mut decided = watcher.poll_once().await;
    decided.sort_by(|a, b| a.incident_id.cmp(&b.incident_id));
    let got: Vec<(&str, bool, &str, Option<&str>)> = decided
        .iter()
        .map(|a| {
            (
                a.incident_id.as_str(),
                a.decision.approved,
                a.decision.by.as_str(),
                a.decision.channel.as_deref(),
            )
        })
        .collect();
    let closed_by = format!("gitea pull request #{}", numbers[2]);
    assert_eq!(
        got,
        [
            ("inc-approve", true, bed.reviewer_user.as_str(), Some("gitea-review")),
            ("inc-close", false, closed_by.as_str(), Some("gitea-closed")),
            ("inc-reject", false, bed.reviewer_user.as_str(), Some("gitea-comment")),
        ]
    );
    assert_eq!(sink.0.lock().unwrap().len(), 3);
    assert!(watcher.poll_once().await.is_empty(), "each decision is sent once");
    let rejected = states(
        bed.statuses(&remote, patches[1].commit.as_deref().unwrap())
            .await
            .unwrap(),
    );
    assert!(
        rejected.iter().any(|(s, d)| s == "failure" && d.contains("rejected")),
        "{rejected:?}"
    );

    // The approved one deploys through the reporting deployer: statuses as it goes, then the merge.
    let reporter = CodeHostReporter::new(Arc::new(NoopDeployer), hosts);
    let canary = reporter.start_canary(&entry, &patches[0]).await.unwrap();
    reporter.set_canary_weight(&entry, &canary, 25).await.unwrap();
    reporter.promote(&entry, &canary).await.unwrap();
    let sha = patches[0].commit.clone().unwrap();
    let seen = states(bed.statuses(&remote, &sha).await.unwrap());
    for (state, words) in [
        ("pending", "approved by"),
        ("pending", "started"),
        ("pending", "25% of the traffic"),
        ("success", "promoted"),
    ] {
        assert!(
            seen.iter().any(|(s, d)| s == state && d.contains(words)),
            "{state} {words}: {seen:?}"
        );
    }
    assert_eq!(
        host.pull_request(numbers[0]).await.unwrap().state,
        PullRequestState::Merged
    );
    assert!(
        !bed.branch_exists(&remote, "selfheal/inc-approve").await.unwrap(),
        "branch deleted after the merge"
    );
    let comments = host.comments(numbers[0]).await.unwrap();
    assert!(comments.iter().any(|c| c.body.contains("promoted")), "{comments:?}");
}
