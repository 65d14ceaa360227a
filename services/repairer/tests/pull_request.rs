//! The repairer opens the pull request of a proven fix on the real Gitea of the test bed
//! (`deploy/gitea.sh up`; `eval "$(deploy/gitea.sh env)"`), with the real sandbox and the
//! pricing-api's zero-division incident: the body tells the reviewer what the patch record
//! holds, a replayed diagnosis updates the same pull request, and a run that stopped between
//! the push and the pull request is completed by the retry.
//!
//! Without Gitea these tests fail, unless `SELFHEAL_REQUIRE_BROKER=0` (see require.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "../../../tests/src/require.rs"]
mod require;

use std::path::Path;
use std::sync::Arc;

use selfheal_catalog::{Catalog, CodeHostSettings, ServiceEntry, TokenSource};
use selfheal_codehost::gitea::testbed::TestBed;
use selfheal_codehost::{CodeHost, PullRequestState};
use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{Diagnosis, Patch, PatchStatus};
use selfheal_governance::PolicyEngine;
use selfheal_repairer::languages::python::templates::PythonZeroDivisionGuard;
use selfheal_repairer::{ProcessSandbox, Registry, Repairer, RepairerConfig, Sandbox};

async fn bed() -> Option<TestBed> {
    require::present(&require::GITEA, TestBed::from_env().await)
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn entry_with_host(repo: &Path, bed: &TestBed, remote: &str, base_url: &str) -> ServiceEntry {
    let mut e = common::entry(repo);
    e.code_host = Some(CodeHostSettings {
        provider: "gitea".into(),
        base_url: base_url.into(),
        repo: remote.into(),
        token: TokenSource::File(bed.bot_token_file.clone()),
        base_branch: "main".into(),
        reviewers: vec![bed.reviewer_user.clone()],
        approvers: vec![bed.reviewer_user.clone()],
        merge: true,
    });
    e
}

fn repairer(entry: ServiceEntry, work: &Path) -> Repairer {
    let sandbox: Arc<dyn Sandbox> = Arc::new(ProcessSandbox::probe().expect("bwrap or unshare must work"));
    Repairer::new(
        Catalog::from_services([entry]).unwrap(),
        PolicyEngine::embedded().unwrap(),
        sandbox,
        RepairerConfig {
            python: Some(common::python()),
            allow_unsandboxed: false,
            work_dir: work.to_path_buf(),
        },
    )
    .with_templates(Registry::new(vec![Box::new(PythonZeroDivisionGuard)]))
}

fn diagnosis(repo: &Path, incident: &str) -> Diagnosis {
    let mut d = selfheal_events::examples::diagnosis();
    d.incident_id = incident.into();
    d.repository = Some(repo.display().to_string());
    d.timeline.patch_ms = None;
    d
}

async fn process(r: &Repairer, d: Diagnosis) -> Result<Patch, StageError> {
    let mut out = r.process(d, &RecordContext::default()).await?;
    assert_eq!(out.len(), 1);
    Ok(out.remove(0))
}

/// Pull requests of the repository proposing `branch`, in any state.
async fn pulls_for(host: &dyn CodeHost, branch: &str) -> usize {
    // find_pull_request returns one; count through the numbers the host has given out.
    let mut count = 0;
    for number in 1..=20 {
        match host.pull_request(number).await {
            Ok(pr) if pr.head_branch == branch => count += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    count
}

#[tokio::test]
async fn a_proven_fix_becomes_one_pull_request_that_tells_the_reviewer_everything() {
    let Some(bed) = bed().await else { return };
    let local = common::pricing_repo(&[]);
    let remote = bed.create_repo(&unique("pricing"), local.path()).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let r = repairer(entry_with_host(local.path(), &bed, &remote, &bed.url), work.path());
    let incident = "0193b000-aaaa-7bbb-8ccc-9ddd00000001";

    let patch = process(&r, diagnosis(local.path(), incident)).await.unwrap();
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", patch.summary);
    let url = patch
        .pull_request_url
        .clone()
        .expect("the patch names its pull request");
    let host = bed.host(&remote).unwrap();
    let branch = patch.branch.clone().unwrap();
    let pr = host
        .find_pull_request(&branch)
        .await
        .unwrap()
        .expect("a pull request for the branch");
    assert_eq!(pr.url, url);
    assert_eq!(pr.state, PullRequestState::Open);
    assert_eq!(
        pr.head_sha,
        patch.commit.clone().unwrap(),
        "the pushed head is the fix commit"
    );
    assert_eq!(pr.title, format!("selfheal: {}", patch.summary));
    // What the issue asks the body to hold, each as the patch record has it.
    let body = &pr.body;
    for needle in [
        incident,
        "pricing_logic.py:14",                   // culprit frame
        "ZeroDivisionError",                     // the exception
        "| 1 |",                                 // hypotheses table, ranked
        "template `python.zero-division-guard`", // where the fix came from
        "regression test fails on the base commit | yes",
        "regression test passes with the fix | yes",
        "whole suite passes with the fix | yes",
        "Allowed", // policy verdict
        "rules evaluated",
        "25% of traffic", // canary plan
        "/selfheal approve",
        "selfheal merges this pull request after promotion",
    ] {
        assert!(body.contains(needle), "the body lacks {needle:?}:\n{body}");
    }
    let rt = patch.regression_test.clone().unwrap();
    assert!(body.contains(&rt.name), "regression test named:\n{body}");
    let mut labels = bed.labels(&remote, pr.number).await.unwrap();
    labels.sort();
    assert_eq!(labels, ["selfheal", "zero-division-guard"]);
    assert_eq!(
        bed.requested_reviewers(&remote, pr.number).await.unwrap(),
        std::slice::from_ref(&bed.reviewer_user)
    );
    assert!(!body.contains(bed.bot_token().expose()));

    // The same diagnosis again (a replay after a restart): the branch is reused, the same pull
    // request is found and updated, and no second one is opened.
    let again = process(&r, diagnosis(local.path(), incident)).await.unwrap();
    assert_eq!(again.status, PatchStatus::Proposed);
    assert_eq!(again.pull_request_url.as_deref(), Some(url.as_str()));
    assert_eq!(pulls_for(&host, &branch).await, 1);
}

#[tokio::test]
async fn a_run_that_stopped_between_push_and_pull_request_is_completed_by_the_retry() {
    let Some(bed) = bed().await else { return };
    let local = common::pricing_repo(&[]);
    let remote = bed.create_repo(&unique("pricing"), local.path()).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let incident = "0193b000-aaaa-7bbb-8ccc-9ddd00000002";
    // The code host is unreachable: the fix is committed locally, and the stage asks the runner
    // to retry (a transient error) instead of publishing a patch without its pull request.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = repairer(
        entry_with_host(local.path(), &bed, &remote, &format!("http://127.0.0.1:{closed}")),
        work.path(),
    );
    let err = process(&down, diagnosis(local.path(), incident)).await.unwrap_err();
    assert!(matches!(err, StageError::Transient(_)), "{err:?}");
    assert!(!err.to_string().contains(bed.bot_token().expose()));
    let branch = format!("selfheal/{incident}");
    assert!(
        !common::git(local.path(), &["branch", "--list", &branch])
            .trim()
            .is_empty(),
        "committed locally"
    );
    // As if the previous run had crashed right after its push: the branch is on the host, no pull request.
    let host = bed.host(&remote).unwrap();
    host.push_branch(local.path(), &branch).await.unwrap();
    assert_eq!(host.find_pull_request(&branch).await.unwrap(), None);

    // The retry (the host back): the replay finds the branch and completes the pull request, once.
    let up = repairer(entry_with_host(local.path(), &bed, &remote, &bed.url), work.path());
    let patch = process(&up, diagnosis(local.path(), incident)).await.unwrap();
    assert_eq!(patch.status, PatchStatus::Proposed);
    let pr = host
        .find_pull_request(&branch)
        .await
        .unwrap()
        .expect("opened by the retry");
    assert_eq!(patch.pull_request_url.as_deref(), Some(pr.url.as_str()));
    assert!(pr.body.contains("pricing_logic.py:14"), "{}", pr.body);
    let again = process(&up, diagnosis(local.path(), incident)).await.unwrap();
    assert_eq!(again.pull_request_url, patch.pull_request_url);
    assert_eq!(pulls_for(&host, &branch).await, 1);
}

#[tokio::test]
async fn without_a_code_host_the_branch_is_the_proposal() {
    // No Gitea needed: the catalog names no code host.
    let local = common::pricing_repo(&[]);
    let work = tempfile::tempdir().unwrap();
    let r = repairer(common::entry(local.path()), work.path());
    let patch = process(&r, diagnosis(local.path(), "0193b000-aaaa-7bbb-8ccc-9ddd00000003"))
        .await
        .unwrap();
    assert_eq!(patch.status, PatchStatus::Proposed);
    assert_eq!(patch.pull_request_url, None);
}
