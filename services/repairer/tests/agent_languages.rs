//! The model path beyond Python: the real LLM client against the in-process HTTP fake of a
//! model server, real fixture projects in fresh git repositories, the real `go test` and
//! `node --test` in the sandbox, the real policy gate and commit. Each language's rules
//! (`languages/<id>/model_test.rs`) say what the model's regression test must be; a correct
//! fix and test heal (failed before, passed after, suite green, committed), a test that passes
//! on the old code is refused in the sandbox, a test that is not a new file is sent back.
//!
//! Needs `go` and `node` on PATH and the caches of `eval "$(scripts/prepare-examples.sh)"`
//! (SELFHEAL_CACHE for the Go build cache), and bwrap or unshare.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "../../llm/tests/fake/mod.rs"]
mod fake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{branches, git};
use fake::{Fake, Reply};
use selfheal_catalog::{Catalog, ServiceEntry};
use selfheal_events::{Diagnosis, ExceptionInfo, Patch, PatchStatus, RootCause};
use selfheal_governance::PolicyEngine;
use selfheal_llm::{LlmClient, LlmConfig, ProviderKind};
use selfheal_repairer::{AgentSettings, ProcessSandbox, Registry, Repairer, RepairerConfig, Sandbox};
use serde_json::{Value, json};

fn openai(v: &Value) -> Reply {
    Reply::openai(&v.to_string(), 900, 150)
}

fn critique_accept() -> Value {
    json!({
        "verdict": "accept",
        "checklist": {"fixes_root_cause": true, "preserves_other_behaviour": true,
                      "keeps_security_and_error_handling": true, "test_fails_without_fix": true},
        "problems": [],
    })
}

fn client(fake: &Fake) -> LlmClient {
    LlmConfig {
        provider: Some(ProviderKind::Openai),
        endpoint: Some(format!("{}/v1", fake.base)),
        model: Some("fake-model".into()),
        max_retries: 0,
        ..LlmConfig::default()
    }
    .client_with_env(|_| None)
    .unwrap()
    .unwrap()
}

fn explain(patch: &Patch) -> String {
    format!(
        "status {:?}: {}\nattempts {:#?}\nvalidation {:#?}",
        patch.status, patch.summary, patch.attempts, patch.validation
    )
}

/// The system and user messages of every request the fake received.
fn prompts(fake: &Fake) -> Vec<String> {
    fake.seen()
        .iter()
        .map(|s| {
            s.body["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| m["content"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "node_modules" {
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

/// A fixture project plus `extra` files, committed in a fresh repository.
fn fixture_repo(fixture: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/languages")
            .join(fixture),
        dir.path(),
    );
    for (path, content) in extra {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(dir.path(), &["init", "--quiet", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(
        dir.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "v1",
        ],
    );
    dir
}

/// A repairer for one service with the built-in languages and `templates`, and the fake model.
fn repairer(entry: ServiceEntry, work: &Path, templates: Option<Registry>, fake: &Fake) -> Repairer {
    let sandbox: Arc<dyn Sandbox> =
        Arc::new(ProcessSandbox::probe().expect("bwrap or unshare must work on the test machine"));
    let r = Repairer::new(
        Catalog::from_services([entry]).unwrap(),
        PolicyEngine::embedded().unwrap(),
        sandbox,
        RepairerConfig {
            work_dir: work.to_path_buf(),
            ..RepairerConfig::default()
        },
    )
    .with_llm(Some(client(fake)), AgentSettings::default());
    match templates {
        Some(templates) => r.with_templates(templates),
        None => r,
    }
}

fn diagnosis(service: &str, runtime: &str, rc: RootCause, stacktrace: &str) -> Diagnosis {
    let mut d = selfheal_events::examples::diagnosis();
    d.incident_id = "0193c0de-2222-7333-8444-955566667777".into();
    d.fingerprint = format!("{runtime}-model-path");
    d.service = service.into();
    d.runtime = Some(runtime.into());
    d.repository = None;
    d.commit = None;
    d.summary = format!("{}:{} in {} — {}", rc.file, rc.line, rc.function, rc.message);
    d.exception = Some(ExceptionInfo {
        r#type: rc.exception_type.clone(),
        message: rc.message.clone(),
        stacktrace: Some(stacktrace.into()),
    });
    d.hypotheses.truncate(0);
    d.sample_inputs = vec![];
    d.known_fixes = vec![];
    d.root_cause = Some(rc);
    d
}

// ---- Go ---------------------------------------------------------------------------------------

/// A function that returns no error: the Go index guard has no convention to use and declines.
const RANKING: &str = "// Package ranking orders products.\npackage ranking\n\n// Top is the best-ranked product name.\nfunc Top(names []string) string {\n\treturn names[0]\n}\n";
const RANKING_TEST: &str = "package ranking\n\nimport \"testing\"\n\nfunc TestTop(t *testing.T) {\n\tif got := Top([]string{\"lamp\", \"desk\"}); got != \"lamp\" {\n\t\tt.Fatalf(\"Top = %q\", got)\n\t}\n}\n";
const GO_SEARCH: &str = "\treturn names[0]\n";
const GO_REPLACE: &str = "\tif len(names) == 0 {\n\t\treturn \"\"\n\t}\n\treturn names[0]\n";
const GO_TEST: &str = "package ranking\n\nimport \"testing\"\n\nfunc TestSelfheal_TopOfNothing(t *testing.T) {\n\tif got := Top(nil); got != \"\" {\n\t\tt.Fatalf(\"Top(nil) = %q, want \\\"\\\"\", got)\n\t}\n}\n";

fn go_patch(test_name: &str, test_code: &str) -> Value {
    json!({
        "summary": "an empty ranking has no top product",
        "edits": [{"file": "ranking/ranking.go", "search": GO_SEARCH, "replace": GO_REPLACE}],
        "test": {"name": test_name, "code": test_code, "path": "ranking/top_empty_test.go"},
        "explanation": "names[0] panics when the ranking is empty"
    })
}

fn go_case(fake: &Fake) -> (tempfile::TempDir, tempfile::TempDir, Repairer, Diagnosis) {
    let repo = fixture_repo(
        "go/fixtures/shop",
        &[
            ("ranking/ranking.go", RANKING),
            ("ranking/ranking_test.go", RANKING_TEST),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let mut entry = ServiceEntry::new(
        "shop",
        repo.path(),
        "go",
        ["go", "test", "./..."].map(String::from).to_vec(),
    );
    entry.test_timeout = Duration::from_secs(600);
    entry.test_memory_mb = 4096;
    // The built-in templates: the Go index guard is asked first and declines.
    let r = repairer(entry, work.path(), None, fake);
    let rc = RootCause {
        file: "ranking/ranking.go".into(),
        line: 6,
        function: "Top".into(),
        exception_type: "runtime.Error".into(),
        message: "runtime error: index out of range [0] with length 0".into(),
        code_snippet: None,
        commit: None,
    };
    let trace = "panic: runtime error: index out of range [0] with length 0\n\ngoroutine 1 [running]:\n\
                 example.com/shop/ranking.Top(...)\n\t/srv/shop/ranking/ranking.go:6\nmain.main()\n\t/srv/shop/main.go:9 +0x1d\n";
    let diag = diagnosis("shop", "go", rc, trace);
    (repo, work, r, diag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_a_model_fix_and_go_test_heal_where_the_template_declines() {
    let fake = Fake::start(vec![
        openai(&go_patch("TestSelfheal_TopOfNothing", GO_TEST)),
        openai(&critique_accept()),
    ])
    .await;
    let (repo, _work, r, diag) = go_case(&fake);
    let patch = r.repair(diag.clone()).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    assert_eq!(patch.strategy.as_deref(), Some("llm"));
    // The template was asked first and said why it could not decide.
    let declined = patch
        .attempts
        .iter()
        .find(|a| a.strategy == "go.index-guard")
        .unwrap_or_else(|| panic!("{}", explain(&patch)));
    assert_eq!(declined.result, "not-applicable", "{}", explain(&patch));
    let v = patch.validation.clone().unwrap();
    assert!(v.failed_before && v.passed_after && v.suite_passed, "{v:?}");
    let test = patch.regression_test.clone().unwrap();
    assert_eq!(
        (test.file.as_str(), test.name.as_str()),
        ("ranking/top_empty_test.go", "TestSelfheal_TopOfNothing")
    );
    assert!(test.code.starts_with("// Regression test written by a language model") && test.code.ends_with(GO_TEST));

    let branch = format!("selfheal/{}", diag.incident_id);
    assert_eq!(branches(repo.path()), std::slice::from_ref(&branch));
    let fixed = git(repo.path(), &["show", &format!("{branch}:ranking/ranking.go")]);
    assert!(fixed.contains("if len(names) == 0 {"), "{fixed}");
    assert_eq!(
        git(repo.path(), &["show", &format!("{branch}:{}", test.file)]),
        test.code
    );

    // The prompt asked for a go test in the culprit's package, not for pytest.
    let seen = prompts(&fake);
    assert!(
        seen[0].contains("one go test (package testing) regression test"),
        "{}",
        seen[0]
    );
    assert!(
        seen[0].contains("package `ranking`") && seen[0].contains("```go"),
        "{}",
        seen[0]
    );
    assert!(!seen[0].contains("pytest"), "{}", seen[0]);
    assert_eq!(
        fake.seen()[0].body["response_format"]["json_schema"]["schema"]["properties"]["test"]["properties"]["path"]["type"],
        "string"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_a_model_test_that_passes_on_the_old_code_is_refused() {
    let weak = "package ranking\n\nimport \"testing\"\n\nfunc TestSelfheal_TopOfOne(t *testing.T) {\n\tif Top([]string{\"x\"}) != \"x\" {\n\t\tt.Fatal(\"top\")\n\t}\n}\n";
    let fake = Fake::start(vec![
        openai(&go_patch("TestSelfheal_TopOfOne", weak)),
        openai(&critique_accept()),
    ])
    .await;
    let (repo, _work, r, diag) = go_case(&fake);
    let patch = r.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::ValidationFailed, "{}", explain(&patch));
    let last = patch.attempts.last().unwrap();
    assert_eq!(
        (last.strategy.as_str(), last.result.as_str()),
        ("llm", "failed-before-missing")
    );
    assert!(last.reason.contains("passed on the unpatched code"), "{}", last.reason);
    let v = last.validation.as_ref().unwrap();
    assert!(!v.failed_before && !v.passed_after, "{v:?}");
    assert!(branches(repo.path()).is_empty());
}

// ---- Node -------------------------------------------------------------------------------------

const NODE_SEARCH: &str = "  return user.address.city.toUpperCase();";
const NODE_REPLACE: &str = "  if (!user || !user.address || typeof user.address.city !== 'string') {\n    throw new ValidationError('the user has no address city');\n  }\n  return user.address.city.toUpperCase();";
const NODE_TEST: &str = "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert/strict');\n\nconst { ValidationError, cityOf } = require('../src/pricing');\n\ntest('cityOf without an address is a ValidationError', () => {\n  assert.throws(() => cityOf({ name: 'Ada' }), ValidationError);\n  assert.equal(cityOf({ address: { city: 'Lyon' } }), 'LYON');\n});\n";

fn node_patch(title: &str, code: &str, path: Option<&str>) -> Value {
    let mut test = json!({"name": title, "code": code});
    if let Some(path) = path {
        test["path"] = json!(path);
    }
    json!({
        "summary": "a user without an address city is a ValidationError",
        "edits": [{"file": "src/pricing.js", "search": NODE_SEARCH, "replace": NODE_REPLACE}],
        "test": test,
        "explanation": "user.address is undefined for users without an address"
    })
}

fn node_case(fake: &Fake) -> (tempfile::TempDir, tempfile::TempDir, Repairer, Diagnosis) {
    let repo = fixture_repo("node/fixtures/shop", &[]);
    let work = tempfile::tempdir().unwrap();
    let mut entry = ServiceEntry::new(
        "shop-node",
        repo.path(),
        "javascript",
        ["node", "--test"].map(String::from).to_vec(),
    );
    entry.test_timeout = Duration::from_secs(120);
    entry.test_memory_mb = 4096;
    // No templates: the Node guard would heal this crash deterministically.
    let r = repairer(entry, work.path(), Some(Registry::new(vec![])), fake);
    let source = std::fs::read_to_string(repo.path().join("src/pricing.js")).unwrap();
    let line = source.lines().position(|l| l == NODE_SEARCH).unwrap() + 1;
    let rc = RootCause {
        file: "src/pricing.js".into(),
        line: i32::try_from(line).unwrap(),
        function: "cityOf".into(),
        exception_type: "TypeError".into(),
        message: "Cannot read properties of undefined (reading 'city')".into(),
        code_snippet: None,
        commit: None,
    };
    let trace = format!(
        "TypeError: Cannot read properties of undefined (reading 'city')\n    at cityOf (/srv/shop/src/pricing.js:{line}:23)\n    \
         at Layer.handle (/srv/shop/node_modules/express/lib/router/layer.js:95:5)\n"
    );
    let diag = diagnosis("shop-node", "node", rc, &trace);
    (repo, work, r, diag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_an_existing_test_file_is_sent_back_and_the_new_node_test_heals() {
    let title = "cityOf without an address is a ValidationError";
    let fake = Fake::start(vec![
        // Round 1 names the project's own test file: never edited, sent back untested.
        openai(&node_patch(title, NODE_TEST, Some("test/pricing.test.js"))),
        openai(&node_patch(title, NODE_TEST, None)),
        openai(&critique_accept()),
    ])
    .await;
    let (repo, _work, r, diag) = node_case(&fake);
    let patch = r.repair(diag.clone()).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    let model: Vec<(&str, &str)> = patch
        .attempts
        .iter()
        .filter(|a| a.strategy.starts_with("llm"))
        .map(|a| (a.strategy.as_str(), a.result.as_str()))
        .collect();
    assert_eq!(
        model,
        [("llm", "does-not-apply"), ("llm:revision-1", "selected")],
        "{}",
        explain(&patch)
    );
    assert!(
        patch.attempts[0]
            .reason
            .contains("`test/pricing.test.js` exists at the base commit"),
        "{}",
        explain(&patch)
    );
    let v = patch.validation.clone().unwrap();
    assert!(v.failed_before && v.passed_after && v.suite_passed, "{v:?}");
    assert!(v.output_tail.contains("pass 6"), "{}", v.output_tail);
    let test = patch.regression_test.clone().unwrap();
    assert_eq!(test.file, "test/selfheal-0193c0de.test.js");
    assert!(test.code.ends_with(NODE_TEST));
    let branch = format!("selfheal/{}", diag.incident_id);
    assert_eq!(branches(repo.path()), std::slice::from_ref(&branch));
    assert_eq!(
        git(repo.path(), &["show", &format!("{branch}:{}", test.file)]),
        test.code
    );
    assert!(git(repo.path(), &["show", &format!("{branch}:src/pricing.js")]).contains("the user has no address city"));
    // The project's own test is untouched on the branch.
    assert_eq!(
        git(repo.path(), &["diff", "main", &branch, "--", "test/pricing.test.js"]),
        ""
    );
    let seen = prompts(&fake);
    assert_eq!(seen.len(), 3, "no critique of the refused round");
    assert!(seen[0].contains("one node:test regression test"), "{}", seen[0]);
    assert!(
        seen[0].contains("the culprit module is `../src/pricing.js`"),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].contains("exists at the base commit"),
        "the revision is told why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_a_model_test_that_passes_on_the_old_code_is_refused() {
    let weak = "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert/strict');\nconst { cityOf } = require('../src/pricing');\n\ntest('cities in capitals', () => {\n  assert.equal(cityOf({ address: { city: 'Lyon' } }), 'LYON');\n});\n";
    let fake = Fake::start(vec![
        openai(&node_patch("cities in capitals", weak, Some("test/cities.test.js"))),
        openai(&critique_accept()),
    ])
    .await;
    let (repo, _work, r, diag) = node_case(&fake);
    let patch = r.repair(diag).await;
    assert_eq!(patch.status, PatchStatus::ValidationFailed, "{}", explain(&patch));
    let last = patch.attempts.last().unwrap();
    assert_eq!(
        (last.strategy.as_str(), last.result.as_str()),
        ("llm", "failed-before-missing")
    );
    assert!(last.reason.contains("passed on the unpatched code"), "{}", last.reason);
    assert!(!last.validation.as_ref().unwrap().failed_before);
    assert_eq!(patch.regression_test, None, "{}", explain(&patch));
    assert!(branches(repo.path()).is_empty());
}

// ---- Java -------------------------------------------------------------------------------------

/// Maven's local repository filled by examples/inventory-java/prepare-offline.sh.
fn maven_repo() -> std::path::PathBuf {
    let repo = std::env::var_os("SELFHEAL_M2")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("SELFHEAL_CACHE")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cache/selfheal"));
            cache.join("m2")
        });
    assert!(
        repo.join("org/junit/jupiter/junit-jupiter/5.14.1").is_dir(),
        "the Maven local repository {} lacks the example's dependencies: run examples/inventory-java/prepare-offline.sh",
        repo.display()
    );
    repo
}

const JAVA_SEARCH: &str = "        Item item = items.get(sku);\n        return item.priceCents() * quantity;";
const JAVA_REPLACE: &str = "        Item item = items.get(sku);\n        if (item == null) {\n            throw new IllegalArgumentException(\"unknown sku \" + sku);\n        }\n        return item.priceCents() * quantity;";
const JAVA_TEST: &str = "package com.example.inventory;\n\nimport static org.junit.jupiter.api.Assertions.assertEquals;\nimport static org.junit.jupiter.api.Assertions.assertThrows;\n\nimport java.util.List;\nimport org.junit.jupiter.api.Test;\n\nclass QuoteUnknownSkuTest {\n\n    @Test\n    void quoteOfAnUnknownSkuIsRefused() {\n        Inventory inventory = new Inventory(List.of(new Item(\"widget\", \"Widget\", 250, 10)));\n        assertThrows(IllegalArgumentException.class, () -> inventory.quote(\"gizmo\", 2));\n        assertEquals(500, inventory.quote(\"widget\", 2));\n    }\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_a_model_fix_and_junit_test_heal_with_maven_offline() {
    let m2 = maven_repo();
    let fake = Fake::start(vec![
        openai(&json!({
            "summary": "an unknown sku is refused with IllegalArgumentException",
            "edits": [{"file": "src/main/java/com/example/inventory/Inventory.java",
                       "search": JAVA_SEARCH, "replace": JAVA_REPLACE}],
            "test": {"name": "QuoteUnknownSkuTest", "code": JAVA_TEST,
                     "path": "src/test/java/com/example/inventory/QuoteUnknownSkuTest.java"},
            "explanation": "items.get returns null for an unknown sku"
        })),
        openai(&critique_accept()),
    ])
    .await;
    let repo = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/inventory-java");
    for part in ["pom.xml", "src"] {
        let from = example.join(part);
        if from.is_dir() {
            copy_tree(&from, &repo.path().join(part));
        } else {
            std::fs::copy(&from, repo.path().join(part)).unwrap();
        }
    }
    git(repo.path(), &["init", "--quiet", "-b", "main"]);
    git(repo.path(), &["add", "-A"]);
    git(
        repo.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "v1",
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let mut entry = ServiceEntry::new(
        "inventory-java",
        repo.path(),
        "java",
        ["mvn", "-o", "-B", "-ntp", "-Dstyle.color=never", "test"]
            .map(String::from)
            .to_vec(),
    );
    entry.test_timeout = Duration::from_secs(600);
    entry.test_memory_mb = 2048;
    entry
        .extra_env
        .insert("MAVEN_OPTS".into(), format!("-Dmaven.repo.local={}", m2.display()));
    // No templates: java.null-guard would heal this crash deterministically.
    let r = repairer(entry, work.path(), Some(Registry::new(vec![])), &fake);
    let source =
        std::fs::read_to_string(repo.path().join("src/main/java/com/example/inventory/Inventory.java")).unwrap();
    let line = source
        .lines()
        .position(|l| l.contains("return item.priceCents() * quantity;"))
        .unwrap()
        + 1;
    let rc = RootCause {
        file: "src/main/java/com/example/inventory/Inventory.java".into(),
        line: i32::try_from(line).unwrap(),
        function: "Inventory.quote".into(),
        exception_type: "java.lang.NullPointerException".into(),
        message: "Cannot invoke \"com.example.inventory.Item.priceCents()\" because \"item\" is null".into(),
        code_snippet: None,
        commit: None,
    };
    let trace = format!(
        "java.lang.NullPointerException: {}\n\tat com.example.inventory.Inventory.quote(Inventory.java:{line})\n\t\
         at com.example.inventory.App.handle(App.java:57)\n",
        rc.message
    );
    let diag = diagnosis("inventory-java", "java", rc, &trace);
    let patch = r.repair(diag.clone()).await;
    assert_eq!(patch.status, PatchStatus::Proposed, "{}", explain(&patch));
    let v = patch.validation.clone().unwrap();
    assert!(v.failed_before && v.passed_after && v.suite_passed, "{v:?}");
    assert_eq!(v.tests_failed, 0, "{v:?}");
    let test = patch.regression_test.clone().unwrap();
    assert_eq!(
        (test.file.as_str(), test.name.as_str()),
        (
            "src/test/java/com/example/inventory/QuoteUnknownSkuTest.java",
            "QuoteUnknownSkuTest"
        )
    );
    let branch = format!("selfheal/{}", diag.incident_id);
    assert_eq!(branches(repo.path()), std::slice::from_ref(&branch));
    assert_eq!(
        git(repo.path(), &["show", &format!("{branch}:{}", test.file)]),
        test.code
    );
    let seen = prompts(&fake);
    assert!(seen[0].contains("one JUnit 5 (Maven) regression test"), "{}", seen[0]);
    assert!(seen[0].contains("`package com.example.inventory;`"), "{}", seen[0]);
}
