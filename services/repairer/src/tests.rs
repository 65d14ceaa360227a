//! End-to-end tests of the stage on real git repositories in temp dirs, with the real
//! sandbox and the venv python (SELFHEAL_PYTHON, from scripts/python-env.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use selfheal_catalog::{Catalog, ServiceEntry};
use selfheal_events::{Diagnosis, DiagnosisStatus, KnownFix, Patch, PatchStatus};
use selfheal_governance::PolicyEngine;

use crate::git::git;
use crate::sandbox::{NoSandbox, ProcessSandbox, Sandbox};
use crate::stage::{Repairer, RepairerConfig};
use crate::tests_support::python;

const ORIGINAL_LINE: &str = "def calc(p, d): return p / d\n";

/// Copies examples/pricing-api (without caches) into a fresh git repository.
async fn pricing_repo(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pricing-api");
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    for (path, content) in extra {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(dir.path(), &["init", "--quiet", "-b", "main"]).await.unwrap();
    git(dir.path(), &["add", "-A"]).await.unwrap();
    git(dir.path(), &["commit", "--quiet", "-m", "pricing-api"])
        .await
        .unwrap();
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" || name == ".pytest_cache" || name == ".git" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn entry(repo: &Path) -> ServiceEntry {
    let mut e = ServiceEntry::new(
        "pricing-api",
        repo,
        "python",
        ["python3", "-m", "pytest", "-q"].map(String::from).to_vec(),
    );
    e.test_timeout = Duration::from_secs(60);
    e.test_memory_mb = 1024;
    e.protected_globs = vec!["**/*.lock".into(), "requirements*.txt".into()];
    e.extra_env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    e
}

struct Fixture {
    repo: tempfile::TempDir,
    _work: tempfile::TempDir,
    repairer: Repairer,
}

fn repairer_for(entry: ServiceEntry, sandbox: Arc<dyn Sandbox>, work: &Path) -> Repairer {
    Repairer::new(
        Catalog::from_services([entry]).unwrap(),
        PolicyEngine::embedded().unwrap(),
        sandbox,
        RepairerConfig {
            python: Some(python()),
            allow_unsandboxed: false,
            work_dir: work.to_path_buf(),
        },
    )
}

fn real_sandbox() -> Arc<dyn Sandbox> {
    Arc::new(ProcessSandbox::probe().expect("bwrap or unshare must work on the test machine"))
}

async fn fixture_with(extra: &[(&str, &str)], tweak: impl FnOnce(&mut ServiceEntry)) -> Fixture {
    let repo = pricing_repo(extra).await;
    let work = tempfile::tempdir().unwrap();
    let mut e = entry(repo.path());
    tweak(&mut e);
    let repairer = repairer_for(e, real_sandbox(), work.path());
    Fixture {
        repo,
        _work: work,
        repairer,
    }
}

fn diagnosis(repo: &Path) -> Diagnosis {
    let mut d = selfheal_events::examples::diagnosis();
    d.repository = Some(repo.display().to_string());
    d.timeline.patch_ms = None;
    d
}

async fn branches(repo: &Path) -> Vec<String> {
    git(
        repo,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads/selfheal/"],
    )
    .await
    .unwrap()
    .lines()
    .map(String::from)
    .collect()
}

fn working_file(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("pricing_logic.py")).unwrap()
}

fn explain(patch: &Patch) -> String {
    format!(
        "status {:?}: {}\nattempts {:#?}\nvalidation {:#?}\npolicy {:?}",
        patch.status, patch.summary, patch.attempts, patch.validation, patch.policy
    )
}

#[tokio::test]
async fn zero_division_incident_is_fixed_proven_and_committed_on_a_branch() {
    let f = fixture_with(&[], |_| {}).await;
    let repo = f.repo.path();
    let head_before = git(repo, &["rev-parse", "HEAD"]).await.unwrap();
    let diag = diagnosis(repo);
    let started = std::time::Instant::now();
    let patch = f.repairer.repair(diag.clone()).await;
    let repair_ms = started.elapsed().as_millis();
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));

    let v = patch.validation.clone().unwrap();
    assert!(v.failed_before && v.passed_after && v.suite_passed, "{v:?}");
    assert!(v.tests_run >= 10, "{v:?}");
    assert_eq!(v.tests_failed, 0);
    assert!(
        v.sandbox.contains("no network") && v.sandbox.contains("60s, 1024 MiB"),
        "{}",
        v.sandbox
    );
    // A benchmark figure for the report, not an assertion.
    eprintln!(
        "measured: 3 sandbox runs {} ms, whole repair {repair_ms} ms ({}, {} tests)",
        v.duration_ms, v.sandbox, v.tests_run
    );

    assert_eq!(patch.strategy.as_deref(), Some("python.zero-division-guard"));
    assert!(!patch.learned);
    let branch = format!("selfheal/{}", diag.incident_id);
    assert_eq!(patch.branch.as_deref(), Some(branch.as_str()));
    assert_eq!(patch.base_commit.as_deref(), Some(head_before.trim()));
    assert!(
        patch.diff.contains("+    return p / d if d != 0 else p"),
        "{}",
        patch.diff
    );
    assert!(patch.diff.contains("-def calc(p, d): return p / d"));
    assert_eq!(
        patch.files_changed,
        ["pricing_logic.py", "tests/test_selfheal_0193a8f2.py"]
    );
    let test = patch.regression_test.clone().unwrap();
    assert_eq!(test.file, "tests/test_selfheal_0193a8f2.py");
    assert!(test.code.contains("assert calc(49.99, 0.0) == 49.99"));
    assert!(patch.policy.as_ref().unwrap().allowed);
    assert_eq!(patch.attempts.last().unwrap().result, "selected");
    assert_eq!(patch.exception_type.as_deref(), Some("ZeroDivisionError"));
    assert_eq!(patch.root_cause, diag.root_cause);
    assert!(patch.timeline.patch_ms.is_some());
    assert_eq!(patch.timeline.diagnosis_ms, diag.timeline.diagnosis_ms);

    // The branch holds the fix and the test; the checkout is untouched.
    assert_eq!(branches(repo).await, std::slice::from_ref(&branch));
    let fixed = git(repo, &["show", &format!("{branch}:pricing_logic.py")])
        .await
        .unwrap();
    assert!(fixed.contains("def calc(p, d):\n    return p / d if d != 0 else p\n"));
    let committed_test = git(repo, &["show", &format!("{branch}:{}", test.file)]).await.unwrap();
    assert_eq!(committed_test, test.code);
    assert_eq!(
        patch.commit.as_deref(),
        Some(git(repo, &["rev-parse", &branch]).await.unwrap().trim())
    );
    assert!(working_file(repo).contains(ORIGINAL_LINE));
    assert_eq!(git(repo, &["rev-parse", "HEAD"]).await.unwrap(), head_before);
    assert_eq!(git(repo, &["status", "--porcelain"]).await.unwrap(), "");
    let author = git(repo, &["log", "-1", "--format=%an <%ae>", &branch]).await.unwrap();
    assert_eq!(author.trim(), "selfheal <selfheal@localhost>");
    let message = git(repo, &["log", "-1", "--format=%B", &branch]).await.unwrap();
    assert!(message.contains(&diag.incident_id) && message.contains(&diag.fingerprint));

    // A replayed diagnosis is answered from the branch: same commit, no second commit or branch.
    let started = std::time::Instant::now();
    let again = f.repairer.repair(diag.clone()).await;
    eprintln!("measured: replay {} ms", started.elapsed().as_millis());
    assert_eq!(again.status, PatchStatus::Proposed, "{}", explain(&again));
    assert_eq!(again.commit, patch.commit);
    assert_eq!(again.branch, patch.branch);
    assert_eq!(again.diff, patch.diff);
    assert_eq!(again.files_changed, patch.files_changed);
    assert_eq!(again.regression_test, patch.regression_test);
    assert_eq!(again.strategy, patch.strategy);
    assert!(again.policy.as_ref().unwrap().allowed);
    let replayed_validation = again.validation.clone().unwrap();
    assert!(replayed_validation.failed_before && replayed_validation.suite_passed);
    assert_eq!(replayed_validation.tests_run, v.tests_run);
    assert_eq!(again.attempts.len(), 1);
    assert_eq!(again.attempts[0].result, "replayed");
    assert_eq!(branches(repo).await, std::slice::from_ref(&branch));
    let count = git(repo, &["rev-list", "--count", &branch]).await.unwrap();
    assert_eq!(count.trim(), "2");
}

#[tokio::test]
async fn files_changed_by_tests_in_the_sandbox_are_not_committed() {
    let tamper = "import pathlib\n\ndef test_tamper():\n    p = pathlib.Path(__file__).parent.parent / 'pricing_logic.py'\n    p.write_text(p.read_text() + '\\nTAMPERED = True\\n')\n";
    let f = fixture_with(
        &[
            ("tests/test_tamper.py", tamper),
            // An earlier incident's test with the same 8-character prefix.
            ("tests/test_selfheal_0193a8f2.py", "def test_earlier():\n    pass\n"),
        ],
        |_| {},
    )
    .await;
    let patch = f.repairer.repair(diagnosis(f.repo.path())).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert!(!patch.diff.contains("TAMPERED"), "{}", patch.diff);
    let branch = patch.branch.unwrap();
    let committed = git(f.repo.path(), &["show", &format!("{branch}:pricing_logic.py")])
        .await
        .unwrap();
    assert!(!committed.contains("TAMPERED"));
    let test = patch.regression_test.unwrap();
    assert_eq!(test.file, "tests/test_selfheal_0193a8f2_7c3e_7a51_9b0e_3c9e5d1f2a44.py");
    let earlier = git(
        f.repo.path(),
        &["show", &format!("{branch}:tests/test_selfheal_0193a8f2.py")],
    )
    .await
    .unwrap();
    assert_eq!(earlier, "def test_earlier():\n    pass\n");
}

#[tokio::test]
async fn a_suite_that_already_fails_ends_in_validation_failed() {
    let f = fixture_with(
        &[("tests/test_broken.py", "def test_broken():\n    assert 1 == 2\n")],
        |_| {},
    )
    .await;
    let patch = f.repairer.repair(diagnosis(f.repo.path())).await;
    assert_eq!(patch.status, PatchStatus::ValidationFailed, "{}", explain(&patch));
    let last = patch.attempts.last().unwrap();
    assert_eq!(last.result, "suite-failed", "{}", explain(&patch));
    assert!(last.reason.contains("1 of"), "{}", last.reason);
    let v = patch.validation.unwrap();
    assert!(v.failed_before && v.passed_after && !v.suite_passed);
    assert_eq!(v.tests_failed, 1);
    assert!(v.output_tail.contains("test_broken"), "{}", v.output_tail);
    assert!(branches(f.repo.path()).await.is_empty());
}

#[tokio::test]
async fn a_hanging_suite_times_out_and_ends_in_validation_failed() {
    let f = fixture_with(
        &[(
            "tests/test_hang.py",
            "def test_hang():\n    while True:\n        pass\n",
        )],
        |e| e.test_timeout = Duration::from_secs(2),
    )
    .await;
    let patch = f.repairer.repair(diagnosis(f.repo.path())).await;
    assert_eq!(patch.status, PatchStatus::ValidationFailed, "{}", explain(&patch));
    let last = patch.attempts.last().unwrap();
    assert_eq!(last.result, "timed-out");
    assert!(last.reason.contains("timed out after 2s"), "{}", last.reason);
    assert!(patch.summary.contains("timed out after 2s"));
    assert!(branches(f.repo.path()).await.is_empty());
}

#[tokio::test]
async fn a_policy_denial_creates_no_branch() {
    let f = fixture_with(&[], |e| e.protected_globs.push("pricing_logic.py".into())).await;
    let patch = f.repairer.repair(diagnosis(f.repo.path())).await;
    assert_eq!(patch.status, PatchStatus::PolicyDenied, "{}", explain(&patch));
    let policy = patch.policy.clone().unwrap();
    assert!(!policy.allowed);
    assert!(
        policy
            .violations
            .iter()
            .any(|v| v.starts_with("protected-path: pricing_logic.py")),
        "{:?}",
        policy.violations
    );
    assert_eq!(patch.attempts.last().unwrap().result, "policy-denied");
    assert!(patch.validation.unwrap().suite_passed);
    assert!(
        patch.diff.contains("if d != 0"),
        "the denied diff is shown to the reviewer"
    );
    assert_eq!(patch.branch, None);
    assert_eq!(patch.commit, None);
    assert!(branches(f.repo.path()).await.is_empty());
    let worktrees = git(f.repo.path(), &["worktree", "list"]).await.unwrap();
    assert_eq!(worktrees.lines().count(), 1);
}

#[tokio::test]
async fn a_learned_template_is_tried_first_and_marked_learned() {
    let f = fixture_with(&[], |_| {}).await;
    let mut diag = diagnosis(f.repo.path());
    diag.known_fixes = vec![KnownFix {
        strategy: "python.zero-division-guard".into(),
        healed: 3,
        attempts: 3,
        median_heal_secs: Some(26.0),
        last_incident_id: Some("older".into()),
        last_diff: None,
        ..Default::default()
    }];
    let patch = f.repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert!(patch.learned);
    assert_eq!(patch.strategy.as_deref(), Some("python.zero-division-guard"));
    assert_eq!(patch.attempts[0].strategy, "learned:python.zero-division-guard");
    assert_eq!(patch.attempts[0].result, "selected");
    assert!(patch.attempts[0].reason.contains("learned fix tried first"));
    assert!(patch.summary.contains("learned fix tried first"));
    // The same template is not tried a second time.
    assert_eq!(patch.attempts.len(), 1, "{:#?}", patch.attempts);
}

#[tokio::test]
async fn fix_sources_in_the_catalog_decide_which_candidates_are_tried() {
    use selfheal_catalog::FixSource;
    let known = KnownFix {
        strategy: "python.zero-division-guard".into(),
        healed: 3,
        attempts: 3,
        median_heal_secs: Some(26.0),
        last_incident_id: Some("older".into()),
        last_diff: None,
        ..Default::default()
    };
    // Templates only: the learned fix is skipped (and said so), the template still heals.
    let f = fixture_with(&[], |e| e.fix_sources = vec![FixSource::Template]).await;
    let mut diag = diagnosis(f.repo.path());
    diag.known_fixes = vec![known.clone()];
    let patch = f.repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert!(!patch.learned, "{}", explain(&patch));
    assert_eq!(patch.attempts[0].result, "not-allowed", "{}", explain(&patch));

    // Model only, no model configured: nothing is tried and no branch is made.
    let f = fixture_with(&[], |e| e.fix_sources = vec![FixSource::Model]).await;
    let mut diag = diagnosis(f.repo.path());
    diag.known_fixes = vec![known];
    let patch = f.repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::NoFixFound, "{}", explain(&patch));
    assert!(
        !patch.attempts.iter().any(|a| a.strategy.starts_with("python.")),
        "{}",
        explain(&patch)
    );
    assert!(branches(f.repo.path()).await.is_empty());
}

#[tokio::test]
async fn a_template_learned_in_another_service_is_tried_first_but_its_diff_never_replayed() {
    // The learner offers python.zero-division-guard because it healed the same crash class in
    // another service (scope crash-class): the template re-applies at this site, learned.
    let f = fixture_with(&[], |_| {}).await;
    let mut diag = diagnosis(f.repo.path());
    diag.known_fixes = vec![KnownFix {
        strategy: "python.zero-division-guard".into(),
        healed: 2,
        attempts: 2,
        last_diff: None,
        scope: Some("crash-class".into()),
        service: Some("checkout".into()),
        params: Some([("divisor".to_string(), "rate".to_string())].into_iter().collect()),
        ..Default::default()
    }];
    let patch = f.repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert!(patch.learned, "{}", explain(&patch));
    assert_eq!(patch.attempts[0].strategy, "learned:python.zero-division-guard");
    let params = patch
        .template_params
        .clone()
        .expect("the template's parameters travel on the patch");
    assert_eq!(
        params.get("divisor").map(String::as_str),
        Some("d"),
        "{params:?}: decided at this site"
    );

    // A non-template fix learned elsewhere is not replayed here; the template still heals.
    let f = fixture_with(&[], |_| {}).await;
    let mut diag = diagnosis(f.repo.path());
    diag.known_fixes = vec![KnownFix {
        strategy: "human.reviewed-fix".into(),
        healed: 1,
        attempts: 1,
        last_diff: Some("--- a/pricing_logic.py\n+++ b/pricing_logic.py\n".into()),
        scope: Some("crash-class".into()),
        service: Some("checkout".into()),
        ..Default::default()
    }];
    let patch = f.repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert!(!patch.learned);
    assert_eq!(patch.attempts[0].result, "not-applicable", "{}", explain(&patch));
    assert!(patch.attempts[0].reason.contains("checkout"), "{}", explain(&patch));
}

#[tokio::test]
async fn a_learned_diff_is_applied_in_the_sandbox() {
    let f = fixture_with(&[], |_| {}).await;
    let mut diag = diagnosis(f.repo.path());
    diag.known_fixes = vec![KnownFix {
        strategy: "human.reviewed-fix".into(),
        healed: 1,
        attempts: 1,
        last_diff: Some(
            // With context: pricing_logic.py goes on after line 14, and git apply refuses a
            // zero-context hunk in the middle of a file.
            "--- a/pricing_logic.py\n+++ b/pricing_logic.py\n@@ -13,3 +13,6 @@\n # Keep calc on line 14: recorded stack traces name pricing_logic.py:14.\n-def calc(p, d): return p / d\n+def calc(p, d):\n+    if d == 0:\n+        return p\n+    return p / d\n \n".into(),
        ),
        ..KnownFix::default()
    }];
    let patch = f.repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert!(patch.learned, "{}", explain(&patch));
    assert_eq!(patch.strategy.as_deref(), Some("human.reviewed-fix"));
    assert_eq!(patch.attempts[0].strategy, "learned:human.reviewed-fix");
    assert!(patch.diff.contains("+    if d == 0:"), "{}", patch.diff);
    let branch = patch.branch.unwrap();
    let fixed = git(f.repo.path(), &["show", &format!("{branch}:pricing_logic.py")])
        .await
        .unwrap();
    assert!(fixed.contains("    if d == 0:\n        return p\n"));
}

#[tokio::test]
async fn a_learned_diff_that_does_not_apply_falls_back_to_the_template() {
    let f = fixture_with(&[], |_| {}).await;
    let mut diag = diagnosis(f.repo.path());
    diag.known_fixes = vec![KnownFix {
        strategy: "human.reviewed-fix".into(),
        last_diff: Some("--- a/pricing_logic.py\n+++ b/pricing_logic.py\n@@ -20 +20 @@\n-nothing here\n+x\n".into()),
        ..KnownFix::default()
    }];
    let patch = f.repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert!(!patch.learned);
    assert_eq!(patch.attempts[0].result, "does-not-apply");
    assert_eq!(patch.attempts[1].strategy, "python.zero-division-guard");
    assert_eq!(patch.attempts[1].result, "selected");
}

#[tokio::test]
async fn not_localised_diagnoses_are_passed_on_without_work() {
    let work = tempfile::tempdir().unwrap();
    let repairer = repairer_for(
        entry(Path::new("/nonexistent")),
        Arc::new(NoSandbox::new("unused")),
        work.path(),
    );
    let mut diag = selfheal_events::examples::diagnosis();
    diag.status = DiagnosisStatus::NotInRepository;
    diag.summary = "no in-app frame matches a file".into();
    let patch = repairer.repair(diag.clone()).await;
    assert_eq!(patch.status, PatchStatus::NotLocalized);
    assert!(patch.summary.contains("NotInRepository") && patch.summary.contains("no in-app frame"));
    assert_eq!(patch.incident_id, diag.incident_id);
    assert_eq!(patch.fingerprint, diag.fingerprint);
    assert_eq!(patch.service, diag.service);
    assert!(patch.timeline.patch_ms.is_some());
    assert_eq!(patch.timeline.anomaly_ms, diag.timeline.anomaly_ms);

    let mut unknown = selfheal_events::examples::diagnosis();
    unknown.service = "billing".into();
    let patch = repairer.repair(unknown).await;
    assert_eq!(patch.status, PatchStatus::Error);
    assert!(patch.summary.contains("not in the catalog"));
}

#[tokio::test]
async fn the_diagnosers_model_spend_travels_on_when_the_repairer_does_not_ask() {
    let work = tempfile::tempdir().unwrap();
    let repairer = repairer_for(
        entry(Path::new("/nonexistent")),
        Arc::new(NoSandbox::new("unused")),
        work.path(),
    );
    let mut diag = selfheal_events::examples::diagnosis();
    diag.status = DiagnosisStatus::NotInRepository;
    let mut spent = selfheal_events::examples::patch_llm().llm.unwrap();
    spent.budget_exhausted = true;
    diag.llm = Some(spent.clone());
    let patch = repairer.repair(diag).await;
    let carried = patch.llm.expect("the incident's spend is carried");
    assert_eq!(
        (carried.calls, carried.input_tokens, carried.output_tokens),
        (spent.calls, spent.input_tokens, spent.output_tokens)
    );
    assert!(
        carried.exchanges.is_empty(),
        "the diagnoser's prompts stay on the diagnosis"
    );
    assert!(!carried.budget_exhausted, "not exhausted in this stage");
    assert!(carried.notes[0].contains("did not ask"), "{:?}", carried.notes);

    let no_model = repairer.repair(selfheal_events::examples::diagnosis()).await;
    assert!(no_model.llm.is_none(), "no model anywhere: no report");
}

#[tokio::test]
async fn without_a_sandbox_validation_is_refused() {
    let repo = pricing_repo(&[]).await;
    let work = tempfile::tempdir().unwrap();
    let repairer = repairer_for(
        entry(repo.path()),
        Arc::new(NoSandbox::new("no namespaces")),
        work.path(),
    );
    let patch = repairer.repair(diagnosis(repo.path())).await;
    assert_eq!(patch.status, PatchStatus::Error, "{}", explain(&patch));
    assert!(patch.summary.contains("refusing to validate") && patch.summary.contains("no namespaces"));
    assert!(branches(repo.path()).await.is_empty());
}

#[tokio::test]
async fn unusual_code_and_unsafe_ids_end_in_clear_statuses() {
    let repo = pricing_repo(&[]).await;
    let work = tempfile::tempdir().unwrap();
    let repairer = repairer_for(entry(repo.path()), real_sandbox(), work.path());
    // Line 9 is round_money's body: no division to guard.
    let mut diag = diagnosis(repo.path());
    let rc = diag.root_cause.as_mut().unwrap();
    rc.line = 9;
    rc.function = "round_money".into();
    let patch = repairer.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::NoFixFound, "{}", explain(&patch));
    assert_eq!(patch.attempts[0].result, "not-applicable");
    assert!(patch.attempts[0].reason.contains("no division"), "{}", explain(&patch));

    let mut hostile = diagnosis(repo.path());
    hostile.incident_id = "../../etc; rm -rf".into();
    let patch = repairer.repair(hostile).await;
    assert_eq!(patch.status, PatchStatus::Error);
    assert!(patch.summary.contains("cannot name a branch"));

    let mut escape = diagnosis(repo.path());
    escape.root_cause.as_mut().unwrap().file = "../outside.py".into();
    let patch = repairer.repair(escape).await;
    assert_eq!(patch.status, PatchStatus::Error);
    assert!(patch.summary.contains("not a plain path"));
    assert!(branches(repo.path()).await.is_empty());
}

/// The host's address on its first non-loopback interface (the one a default route would
/// use); `None` on a machine with loopback only. Connecting a UDP socket sends nothing.
fn host_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.254:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The sandbox has no network (issue 12): a listener on the host, on every interface, cannot
/// be reached from inside the sandbox, neither through loopback nor through the host's own
/// address, while the same probe outside the sandbox reaches it both ways (so the probe
/// works and the listener is really there). Nothing outside the machine is contacted.
#[tokio::test]
async fn sandboxed_tests_cannot_reach_the_network() {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut targets = vec!["127.0.0.1".to_string()];
    match host_address() {
        Some(ip) => targets.push(ip.to_string()),
        None => eprintln!("no non-loopback interface here: only loopback is probed"),
    }
    let probe = |host: &str| {
        format!(
            "import socket, sys\ntry:\n    socket.create_connection(('{host}', {port}), timeout=3).close()\n    print('CONNECTED')\nexcept OSError as e:\n    print('BLOCKED', type(e).__name__)\n    sys.exit(7)\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let limits = crate::sandbox::Limits::new(Duration::from_secs(20), 512);
    let run = |sandbox: ProcessSandbox, code: String| {
        let dir: PathBuf = dir.path().to_path_buf();
        let limits = limits.clone();
        async move { sandbox.run(&dir, &[python(), "-c".into(), code], limits).await.unwrap() }
    };
    let accepted = |listener: &std::net::TcpListener| {
        let mut n = 0;
        while listener.accept().is_ok() {
            n += 1;
        }
        n
    };
    for host in &targets {
        let inside = run(ProcessSandbox::probe().unwrap(), probe(host)).await;
        assert_eq!(inside.exit_code, Some(7), "{host}: {inside:?}");
        assert!(inside.output_tail.contains("BLOCKED"), "{host}: {inside:?}");
        assert_eq!(
            accepted(&listener),
            0,
            "{host}: the host listener must not have been reached"
        );

        let outside = run(ProcessSandbox::new(crate::sandbox::Isolation::Unsandboxed), probe(host)).await;
        assert!(outside.output_tail.contains("CONNECTED"), "{host}: {outside:?}");
        assert_eq!(
            accepted(&listener),
            1,
            "{host}: the unsandboxed control run reached the listener"
        );
    }
}
