//! The policies through the Rust API: the cases the repairer and rollout meet.

use std::sync::Arc;

use selfheal_catalog::ServiceEntry;

use super::rego_suite::policies_dir;
use crate::{
    Approval, ApprovalMode, Autonomy, DeployInput, GovernanceError, PatchInput, PatchOrigin, PolicyEngine,
    PolicySource, Validation, Verdict,
};

/// The demo's fix: the guarded division plus a regression test, as `git diff` prints it.
pub(super) const TEMPLATE_DIFF: &str = "\
diff --git a/pricing_logic.py b/pricing_logic.py
index 1111111..2222222 100644
--- a/pricing_logic.py
+++ b/pricing_logic.py
@@ -14 +14,2 @@
-def calc(p, d): return p / d
+def calc(p, d):
+    return p / d if d != 0 else p
diff --git a/tests/test_regression_x.py b/tests/test_regression_x.py
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/tests/test_regression_x.py
@@ -0,0 +1,5 @@
+from pricing_logic import calc
+
+
+def test_calc_zero_discount():
+    assert calc(10.0, 0.0) == 10.0
";

fn engine() -> PolicyEngine {
    PolicyEngine::embedded().unwrap()
}

fn patch(diff: &str) -> PatchInput {
    PatchInput::from_unified_diff(
        "pricing-api",
        ".",
        diff,
        "python.zero-division-guard",
        PatchOrigin::Template,
    )
    .unwrap()
    .with_validation(Validation::proven())
}

/// A diff changing one existing file by adding `added` lines after one context line.
fn adding(path: &str, added: &[&str]) -> String {
    let mut diff = format!(
        "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1,{} @@\n unchanged = 1\n",
        added.len() + 1
    );
    for line in added {
        diff.push('+');
        diff.push_str(line);
        diff.push('\n');
    }
    diff
}

fn assert_denied_by(verdict: &Verdict, rule: &str, file: &str) {
    assert!(!verdict.allowed, "expected a denial by {rule}: {verdict:?}");
    let prefix = format!("{rule}: {file}: ");
    assert!(
        verdict.violations.iter().any(|v| v.starts_with(&prefix)),
        "no `{prefix}` in {:#?}",
        verdict.violations
    );
}

#[test]
fn the_template_fix_with_its_regression_test_is_allowed() {
    let input = patch(TEMPLATE_DIFF);
    assert_eq!(input.files.len(), 2);
    assert_eq!(input.diff_lines, 8);
    let verdict = engine().evaluate_patch(&input).unwrap();
    assert!(verdict.allowed, "{:#?}", verdict.violations);
    assert!(verdict.violations.is_empty());
    assert_eq!(verdict.rules_evaluated, 13);
    assert_eq!(verdict.policy_digest.len(), 64);
    assert!(verdict.policy_digest.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn touching_the_ci_workflow_is_denied() {
    let diff = format!(
        "{TEMPLATE_DIFF}{}",
        adding(".github/workflows/ci.yml", &["      - run: echo skipped"])
    );
    let verdict = engine().evaluate_patch(&patch(&diff)).unwrap();
    assert_denied_by(&verdict, "protected-path", ".github/workflows/ci.yml");
    assert_eq!(
        verdict.violated_rules().into_iter().collect::<Vec<_>>(),
        ["protected-path"]
    );
}

#[test]
fn opening_the_firewall_to_the_world_is_denied() {
    let diff = adding("deploy/firewall.yaml", &["  - cidr: 0.0.0.0/0", "    port: 22"]);
    let verdict = engine().evaluate_patch(&patch(&diff)).unwrap();
    assert_denied_by(&verdict, "protected-path", "deploy/firewall.yaml");
    assert_denied_by(&verdict, "dangerous-content", "deploy/firewall.yaml");
    assert!(
        verdict
            .violations
            .iter()
            .any(|v| v.contains("diff line 6") && v.contains("0.0.0.0/0")),
        "{:#?}",
        verdict.violations
    );
}

#[test]
fn granting_an_admin_role_is_denied() {
    for line in [
        "    user.roles.append(\"admin\")",
        "    ROLE = \"admin\"",
        "  role: cluster-admin",
        "    request.user.is_superuser = True",
    ] {
        let verdict = engine()
            .evaluate_patch(&patch(&adding("pricing_logic.py", &[line])))
            .unwrap();
        assert_denied_by(&verdict, "dangerous-content", "pricing_logic.py");
        assert!(
            verdict.violations.iter().any(|v| v.contains("admin or superuser")),
            "{line}: {:#?}",
            verdict.violations
        );
    }
}

#[test]
fn a_diff_larger_than_the_limit_is_denied() {
    let lines: Vec<String> = (0..41).map(|i| format!("x{i} = {i}")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let input = patch(&adding("pricing_logic.py", &refs));
    assert_eq!(input.diff_lines, 41);
    let verdict = engine().evaluate_patch(&input).unwrap();
    assert_denied_by(&verdict, "diff-too-large", "(patch)");
    // The catalog may raise the limit for a service.
    let verdict = engine()
        .evaluate_patch(&input.clone().with_limits(60, Vec::new()))
        .unwrap();
    assert!(verdict.allowed, "{:#?}", verdict.violations);
    // A caller cannot hide lines by under-reporting them: the policy recounts the diff.
    let mut lying = input;
    lying.diff_lines = 1;
    lying.files[0].added = 1;
    assert_denied_by(&engine().evaluate_patch(&lying).unwrap(), "diff-too-large", "(patch)");
}

#[test]
fn unproven_validation_is_denied() {
    let unproven = patch(TEMPLATE_DIFF).with_validation(Validation::default());
    let verdict = engine().evaluate_patch(&unproven).unwrap();
    assert_denied_by(&verdict, "validation-not-proven", "(patch)");
    assert_eq!(verdict.violations.len(), 3, "{:#?}", verdict.violations);
    // A regression test that never failed proves nothing about the fix.
    let never_failed = patch(TEMPLATE_DIFF).with_validation(Validation {
        failed_before: false,
        ..Validation::proven()
    });
    let verdict = engine().evaluate_patch(&never_failed).unwrap();
    assert_eq!(verdict.violations.len(), 1);
    assert!(verdict.violations[0].contains("failed_before"));
}

#[test]
fn a_file_outside_the_source_root_is_denied_but_tests_are_not() {
    let diff = format!(
        "{}{}",
        adding("src/pricing_logic.py", &["    return 0"]),
        adding("scripts/migrate.py", &["x = 1"])
    );
    let mut input = patch(&diff);
    input.source_root = "src".to_string();
    let verdict = engine().evaluate_patch(&input).unwrap();
    assert_eq!(
        verdict.violations,
        ["outside-source-root: scripts/migrate.py: outside the source root src and not a test file"]
    );
    let diff = format!(
        "{}{}",
        adding("src/pricing_logic.py", &["    return 0"]),
        adding("tests/test_regression_x.py", &["x = 1"])
    );
    let mut input = patch(&diff);
    input.source_root = "src".to_string();
    assert!(engine().evaluate_patch(&input).unwrap().allowed);
}

#[test]
fn catalog_entries_supply_source_root_limits_and_protected_globs() {
    let mut entry = ServiceEntry::new("pricing-api", "/repo", "python", vec!["pytest".into()]);
    entry.protected_globs = vec!["**/*.lock".to_string()];
    entry.max_diff_lines = 10;
    let input = PatchInput::for_service(&entry, adding("poetry.lock", &["x"]), "s", PatchOrigin::Llm)
        .unwrap()
        .with_validation(Validation::proven());
    assert_eq!(input.max_diff_lines, 10);
    let verdict = engine().evaluate_patch(&input).unwrap();
    assert_denied_by(&verdict, "protected-path", "poetry.lock");
}

#[test]
fn an_invalid_protected_glob_is_an_error_not_a_pass() {
    let input = patch(TEMPLATE_DIFF).with_limits(40, vec!["[unclosed".to_string()]);
    match engine().evaluate_patch(&input) {
        Err(GovernanceError::InvalidGlob { glob, .. }) => assert_eq!(glob, "[unclosed"),
        other => panic!("expected an invalid glob error, got {other:?}"),
    }
}

fn deploy_input(autonomy: Autonomy, approval: Option<Approval>) -> DeployInput {
    DeployInput {
        service: "pricing-api".to_string(),
        autonomy,
        approval,
        patch_policy_allowed: true,
        environment: "production".to_string(),
        change_freeze: false,
    }
}

fn human(approved: bool) -> Option<Approval> {
    Some(Approval {
        approved,
        by: "alice".to_string(),
        mode: ApprovalMode::Human,
    })
}

#[test]
fn a_human_approved_deploy_is_allowed() {
    let verdict = engine()
        .evaluate_deploy(&deploy_input(Autonomy::Manual, human(true)))
        .unwrap();
    assert!(verdict.allowed, "{:#?}", verdict.violations);
    assert!(!verdict.allow_auto_approval);
    assert_eq!(verdict.rules_evaluated, 7);
}

#[test]
fn a_manual_service_without_approval_is_denied() {
    let verdict = engine().evaluate_deploy(&deploy_input(Autonomy::Manual, None)).unwrap();
    assert!(!verdict.allowed);
    assert_eq!(
        verdict.violated_rules().into_iter().collect::<Vec<_>>(),
        ["approval-required"]
    );
    assert!(!verdict.allow_auto_approval);
}

#[test]
fn an_auto_service_may_approve_itself_unless_something_stands_in_the_way() {
    let engine = engine();
    let verdict = engine.evaluate_deploy(&deploy_input(Autonomy::Auto, None)).unwrap();
    assert!(verdict.allowed && verdict.allow_auto_approval, "{verdict:?}");

    let mut denied_patch = deploy_input(Autonomy::Auto, None);
    denied_patch.patch_policy_allowed = false;
    let verdict = engine.evaluate_deploy(&denied_patch).unwrap();
    assert!(!verdict.allowed && !verdict.allow_auto_approval);
    assert!(verdict.violated_rules().contains("patch-policy-denied"));

    let mut frozen = deploy_input(Autonomy::Auto, None);
    frozen.change_freeze = true;
    let verdict = engine.evaluate_deploy(&frozen).unwrap();
    assert!(!verdict.allowed && !verdict.allow_auto_approval);
    assert_eq!(
        verdict.violations,
        ["change-freeze: pricing-api: production is in a change freeze"]
    );

    let refused = engine
        .evaluate_deploy(&deploy_input(Autonomy::Auto, human(false)))
        .unwrap();
    assert!(!refused.allowed && !refused.allow_auto_approval);
    assert!(refused.violated_rules().contains("approval-rejected"));
}

#[test]
fn an_auto_approval_is_refused_for_a_manual_service() {
    let approval = Some(Approval {
        approved: true,
        by: "selfheal-rollout".to_string(),
        mode: ApprovalMode::Auto,
    });
    let verdict = engine()
        .evaluate_deploy(&deploy_input(Autonomy::Manual, approval.clone()))
        .unwrap();
    assert!(verdict.violated_rules().contains("auto-approval-not-permitted"));
    let verdict = engine()
        .evaluate_deploy(&deploy_input(Autonomy::Auto, approval))
        .unwrap();
    assert!(verdict.allowed, "{:#?}", verdict.violations);
}

#[test]
fn the_policy_directory_and_the_embedded_copy_are_the_same_policy() {
    let from_dir = PolicyEngine::from_dir(policies_dir()).unwrap();
    let embedded = engine();
    assert_eq!(from_dir.policy_digest(), embedded.policy_digest());
    assert_eq!(from_dir.policy_files().len(), 2);
    assert!(from_dir.policy_files().iter().all(|f| !f.ends_with("_test.rego")));
    assert_eq!(embedded.policy_files(), ["deploy.rego", "patch.rego"]);
}

#[test]
fn the_digest_changes_with_the_policy_text() {
    let sources = |extra: &str| {
        vec![
            PolicySource::new(
                "patch.rego",
                format!("{}{extra}", include_str!("../../../../policies/patch.rego")),
            ),
            PolicySource::new("deploy.rego", include_str!("../../../../policies/deploy.rego")),
        ]
    };
    let a = PolicyEngine::from_sources(sources("")).unwrap();
    let b = PolicyEngine::from_sources(sources("\n# a comment\n")).unwrap();
    assert_eq!(a.policy_digest(), engine().policy_digest());
    assert_ne!(a.policy_digest(), b.policy_digest());
}

#[test]
fn a_parse_error_names_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("selfheal-gov-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("broken.rego"),
        "package broken\n\nimport rego.v1\n\nallow if {\n\tinput.a ==\n}\n",
    )
    .unwrap();
    let result = PolicyEngine::from_dir(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    match result {
        Err(GovernanceError::Parse { file, line, message }) => {
            assert!(file.ends_with("broken.rego"), "{file}");
            assert_eq!(line, 7, "{message}");
            let shown = GovernanceError::Parse {
                file: file.clone(),
                line,
                message,
            }
            .to_string();
            assert!(shown.contains("broken.rego") && shown.contains("line 7"), "{shown}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn directories_without_policies_or_without_the_rules_are_rejected() {
    let dir = std::env::temp_dir().join(format!("selfheal-gov-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("only_test.rego"), "package x_test\n").unwrap();
    let empty = PolicyEngine::from_dir(&dir);
    std::fs::write(
        dir.join("other.rego"),
        "package other\n\nimport rego.v1\n\nallow := true\n",
    )
    .unwrap();
    let unrelated = PolicyEngine::from_dir(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(empty, Err(GovernanceError::NoPolicies(_))), "{empty:?}");
    assert!(
        matches!(unrelated, Err(GovernanceError::MissingRule { .. })),
        "{unrelated:?}"
    );
    assert!(matches!(
        PolicyEngine::from_dir("/nonexistent/selfheal/policies"),
        Err(GovernanceError::Read { .. })
    ));
}

#[test]
fn one_engine_serves_many_evaluations_from_many_threads() {
    let engine = Arc::new(engine());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let allowed = engine.evaluate_patch(&patch(TEMPLATE_DIFF)).unwrap();
                    assert!(allowed.allowed);
                    let denied = engine.evaluate_patch(&patch(&adding("deploy/k.yaml", &["x"]))).unwrap();
                    assert!(!denied.allowed, "thread {i}");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn inputs_serialise_in_the_shape_the_policies_read() {
    let input = patch(TEMPLATE_DIFF);
    let json = serde_json::to_value(&input).unwrap();
    assert_eq!(json["origin"], "template");
    assert_eq!(json["files"][1]["path"], "tests/test_regression_x.py");
    assert_eq!(json["files"][1]["new_file"], true);
    assert!(json["files"][0].get("old_path").is_none());
    assert_eq!(json["validation"]["suite_passed"], true);
    let deploy = serde_json::to_value(deploy_input(Autonomy::Auto, None)).unwrap();
    assert_eq!(deploy["autonomy"], "auto");
    assert!(deploy["approval"].is_null());
    let approved = serde_json::to_value(human(true)).unwrap();
    assert_eq!(approved["mode"], "human");
}
