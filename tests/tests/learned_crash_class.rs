//! Learned fixes generalise, end to end with two services: the seven services as their own
//! processes on the real broker and registry heal `pricing-api`'s ZeroDivisionError with the
//! `python.zero-division-guard` template, the learning store remembers the template for the
//! crash class, and then a second service, `billing-api` (its own repository and service
//! name), crashes with a ZeroDivisionError at another site (another file line, function and
//! statement shape, so another fingerprint). Its diagnosis must offer the learned template
//! first (scope `crash-class`, learned in pricing-api), the repairer must try it first at the
//! new site, and the second incident must be healed by it.
//!
//! Needs the workspace binaries and the Python environment of `scripts/python-env.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use selfheal_e2e::examples::{Call, Traffic, send};
use selfheal_e2e::pipeline::*;
use selfheal_e2e::*;
use selfheal_events::{Codec, Diagnosis, Outcome, OutcomeStatus, Patch};

const TEMPLATE: &str = "python.zero-division-guard";

const GOOD: Call = Call {
    method: "POST",
    path: "/price",
    body: Some(r#"{"item": "book", "price": 10.0, "discount": 0.8}"#),
};
const BAD: Call = Call {
    method: "POST",
    path: "/price",
    body: Some(r#"{"item": "lamp", "price": 49.99, "discount": 0.0}"#),
};

/// billing-api's own pricing rule, appended to its copy of pricing_logic.py (whose `calc` calls
/// it): the division that crashes is an assignment in another function, on another line.
const BILLING_RULE: &str = r#"

# billing-api bills the price spread over the discount factor.
def net_total(price, factor):
    total = price / factor
    return total
"#;

/// A git repository `dir/<name>` holding examples/pricing-api's tracked files, changed by `edit`.
fn python_service(dir: &Path, name: &str, edit: impl Fn(&Path)) -> PathBuf {
    let repo = dir.join(name);
    let src = repo_root().join("examples/pricing-api");
    let listed = Command::new("git")
        .arg("-C")
        .arg(&src)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "."])
        .output()
        .unwrap();
    assert!(listed.status.success());
    for rel in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        if !src.join(rel).is_file() {
            continue;
        }
        let to = repo.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(rel), &to).unwrap();
    }
    edit(&repo);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(
        &repo,
        &["-c", "user.name=e2e", "-c", "user.email=e2e@localhost", "add", "-A"],
    );
    git(
        &repo,
        &[
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@localhost",
            "commit",
            "-qm",
            &format!("{name} v1"),
        ],
    );
    repo
}

/// Replaces exactly one occurrence of `from` in `file`.
fn replace_once(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{} holds `{from}` once", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

fn catalog_entry(name: &str, repo: &Path, port: u16, canary_port: u16) -> String {
    format!(
        r#"[services.{name}]
repository = "{repo}"
language = "python"
source_root = "."
test_command = ["python3", "-m", "pytest", "-q"]
test_timeout_secs = 60
autonomy = "auto"
deployer = "local-process"

[services.{name}.deploy]
command = ["python3", "app.py"]
port = {port}
canary_port = {canary_port}
health_path = "/healthz"
canary_traffic_percent = 25

[services.{name}.extra_env]
PYTHONDONTWRITEBYTECODE = "1"
OTEL_BSP_SCHEDULE_DELAY = "200"
OTEL_BLRP_SCHEDULE_DELAY = "200"

"#,
        repo = repo.display()
    )
}

/// The 1-based line of `needle` in `file`.
fn line_of(file: &Path, needle: &str) -> i32 {
    let text = std::fs::read_to_string(file).unwrap();
    let index = text.lines().position(|l| l.contains(needle)).unwrap();
    i32::try_from(index + 1).unwrap()
}

async fn outcome_of(codec: &Codec, prefix: &str, seen: &[String]) -> Outcome {
    next_outcome(codec, &format!("{prefix}outcomes"), seen, Duration::from_secs(300)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_learned_in_one_service_heals_the_same_crash_class_first_in_another() {
    if !require_broker().await {
        return;
    }
    let dir = tempdir();
    let pricing = python_service(&dir, "pricing-api", |_| {});
    let billing = python_service(&dir, "billing-api", |repo| {
        replace_once(
            &repo.join("telemetry.py"),
            r#"SERVICE_NAME = "pricing-api""#,
            r#"SERVICE_NAME = "billing-api""#,
        );
        // Its own tests name it.
        replace_once(
            &repo.join("tests/test_app.py"),
            r#"assert attrs["service.name"] == "pricing-api""#,
            r#"assert attrs["service.name"] == "billing-api""#,
        );
        let logic = repo.join("pricing_logic.py");
        replace_once(
            &logic,
            "def calc(p, d): return p / d",
            "def calc(p, d): return net_total(p, d)",
        );
        let mut text = std::fs::read_to_string(&logic).unwrap();
        text.push_str(BILLING_RULE);
        std::fs::write(&logic, text).unwrap();
    });
    let billing_line = line_of(&billing.join("pricing_logic.py"), "total = price / factor");
    let py = python();
    let prefix = format!("{}.", unique("e2e-class"));
    let (collector_port, learner_port) = (free_port(), free_port());
    let (pricing_port, billing_port) = (free_port(), free_port());
    std::fs::write(
        dir.join("catalog.toml"),
        catalog_entry("pricing-api", &pricing, pricing_port, free_port())
            + &catalog_entry("billing-api", &billing, billing_port, free_port()),
    )
    .unwrap();
    let mut env = HashMap::new();
    env.insert("SELFHEAL_KAFKA_BROKERS".to_string(), brokers());
    env.insert("SELFHEAL_SCHEMA_REGISTRY_URL".to_string(), registry_url());
    env.insert("SELFHEAL_TOPIC_PREFIX".to_string(), prefix.clone());
    env.insert(
        "SELFHEAL_CATALOG".to_string(),
        dir.join("catalog.toml").display().to_string(),
    );
    env.insert("SELFHEAL_PYTHON".to_string(), py);
    env.insert(
        "SELFHEAL_LEARNER_URL".to_string(),
        format!("http://127.0.0.1:{learner_port}"),
    );
    env.insert("SELFHEAL_LOG".to_string(), "info".to_string());
    let pipeline = Pipeline { dir: dir.clone(), env };
    let _services = [
        pipeline.spawn(
            "selfheal-learner",
            &[
                ("SELFHEAL_LEARNER_DB", dir.join("learner.db").display().to_string()),
                ("SELFHEAL_LEARNER_API_ADDR", format!("127.0.0.1:{learner_port}")),
            ],
        ),
        pipeline.spawn(
            "selfheal-collector",
            &[("SELFHEAL_OTLP_HTTP_ADDR", format!("127.0.0.1:{collector_port}"))],
        ),
        pipeline.spawn(
            "selfheal-monitor",
            &[
                ("SELFHEAL_MONITOR_WINDOW_SECS", "5".into()),
                ("SELFHEAL_MONITOR_INCIDENT_QUIET_SECS", "8".into()),
            ],
        ),
        pipeline.spawn("selfheal-diagnoser", &[]),
        pipeline.spawn(
            "selfheal-repairer",
            &[("SELFHEAL_REPAIRER_WORK_DIR", dir.join("repairer").display().to_string())],
        ),
        pipeline.spawn(
            "selfheal-verifier",
            &[
                ("SELFHEAL_VERIFY_WINDOW_SECS", "6".into()),
                ("SELFHEAL_VERIFY_MIN_REQUESTS", "5".into()),
            ],
        ),
        pipeline.spawn(
            "selfheal-rollout",
            &[
                ("SELFHEAL_ROLLOUT_STATE_DIR", dir.join("rollout").display().to_string()),
                (
                    "SELFHEAL_COLLECTOR_OTLP_URL",
                    format!("http://127.0.0.1:{collector_port}"),
                ),
                ("SELFHEAL_CANARY_SECS", "6".into()),
                ("SELFHEAL_CANARY_MAX_SECS", "25".into()),
                ("SELFHEAL_MIN_REQUESTS", "5".into()),
            ],
        ),
    ];
    for url in [
        format!("http://127.0.0.1:{collector_port}/healthz"),
        format!("http://127.0.0.1:{learner_port}/v1/fixes"),
        format!("http://127.0.0.1:{pricing_port}/healthz"),
        format!("http://127.0.0.1:{billing_port}/healthz"),
    ] {
        wait_http_ok(&url, Duration::from_secs(90)).await;
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for port in [pricing_port, billing_port] {
        let (status, body) = send(&client, port, &GOOD).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }

    // 1. pricing-api crashes and is healed by the template; billing-api only sees good requests.
    let pricing_traffic = Traffic::start(pricing_port, 20, GOOD, BAD);
    let billing_good = Traffic::start(billing_port, 10, GOOD, GOOD);
    let codec = Codec::new(&registry_url()).unwrap();
    let first = outcome_of(&codec, &prefix, &[]).await;
    assert_eq!(first.service, "pricing-api", "{}", first.summary);
    assert_eq!(first.status, OutcomeStatus::Healed, "{}", first.summary);
    let fix = first.fix.clone().expect("a fix");
    assert_eq!(fix.strategy, TEMPLATE);
    assert!(!fix.learned, "nothing was learned yet");
    assert!(
        fix.params.is_some(),
        "the template's parameters travel with the fix: {fix:?}"
    );

    // The learning store remembers the template for the crash class (wait for it: the learner
    // consumes the outcome on its own time).
    let class_url = format!("http://127.0.0.1:{learner_port}/v1/fixes/class:ZeroDivisionError");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let class_fixes = loop {
        let answer: serde_json::Value = reqwest::get(&class_url).await.unwrap().json().await.unwrap();
        if answer["fixes"].as_array().is_some_and(|f| !f.is_empty()) {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing learned for the class: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(class_fixes["fixes"][0]["strategy"], TEMPLATE, "{class_fixes}");
    assert_eq!(class_fixes["fixes"][0]["healed"], 1, "{class_fixes}");
    assert_eq!(class_fixes["fixes"][0]["service"], "pricing-api", "{class_fixes}");
    pricing_traffic.stop().await;

    // 2. billing-api crashes with the same crash class at another site.
    let (status, body) = send(&client, billing_port, &BAD).await.unwrap();
    assert_eq!(status, 500, "billing-api's bug: {body}");
    assert!(body.contains("ZeroDivisionError"), "{body}");
    billing_good.stop().await;
    let billing_traffic = Traffic::start(billing_port, 20, GOOD, BAD);
    let second = outcome_of(&codec, &prefix, std::slice::from_ref(&first.incident_id)).await;
    let seen = billing_traffic.summary();
    assert_eq!(second.service, "billing-api", "{}", second.summary);
    assert_ne!(second.fingerprint, first.fingerprint, "another site, another failure");
    let root = second.root_cause.clone().expect("root cause");
    assert_eq!(
        (root.file.as_str(), root.line, root.function.as_str()),
        ("pricing_logic.py", billing_line, "net_total")
    );

    // The diagnosis offered the template learned in pricing-api first, for the crash class.
    let diagnoses: Vec<Diagnosis> = decode_all(&codec, &format!("{prefix}diagnoses"), 20).await;
    let diagnosis = diagnoses
        .iter()
        .find(|d| d.incident_id == second.incident_id)
        .expect("billing-api's diagnosis");
    let known = diagnosis.known_fixes.first().expect("a known fix for the crash class");
    assert_eq!(known.strategy, TEMPLATE);
    assert_eq!(known.scope.as_deref(), Some("crash-class"), "{known:?}");
    assert_eq!(known.service.as_deref(), Some("pricing-api"), "{known:?}");
    assert!(known.last_diff.is_none(), "a diff made at another site is not offered");

    // The repairer tried it first, at the new site, and it was selected.
    let patches: Vec<Patch> = decode_all(&codec, &format!("{prefix}patches"), 20).await;
    let patch = patches
        .iter()
        .find(|p| p.incident_id == second.incident_id)
        .expect("billing-api's patch");
    let attempt = patch.attempts.first().expect("an attempt");
    assert_eq!(attempt.strategy, format!("learned:{TEMPLATE}"), "{:#?}", patch.attempts);
    assert_eq!(attempt.result, "selected", "{:#?}", patch.attempts);
    assert!(patch.learned);

    // And it healed billing-api.
    assert_eq!(
        second.status,
        OutcomeStatus::Healed,
        "{}; traffic {seen}",
        second.summary
    );
    let fix2 = second.fix.clone().expect("a fix for billing-api");
    assert!(fix2.learned, "the learned template was used: {:#?}", second.attempts);
    assert_eq!(fix2.strategy, TEMPLATE);
    assert!(
        fix2.diff
            .contains("+    total = price / factor if factor != 0 else price"),
        "{}",
        fix2.diff
    );
    let validation = second.validation.clone().expect("validation");
    assert!(
        validation.failed_before && validation.passed_after && validation.suite_passed,
        "{validation:?}"
    );
    assert!(
        second
            .regression_test
            .expect("regression test")
            .code
            .contains("net_total(")
    );
    assert_eq!(git(&billing, &["rev-parse", "main"]), fix2.commit.unwrap(), "promoted");
    let (status, body) = send(&client, billing_port, &BAD).await.unwrap();
    assert_eq!(status, 200, "billing-api after promotion: {body}");
    billing_traffic.stop().await;
}
