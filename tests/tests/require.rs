//! `SELFHEAL_REQUIRE_BROKER` and `SELFHEAL_REQUIRE_LLM`, read by `selfheal_e2e::require`: a test
//! that needs the broker or the model and cannot find it fails when the flag is unset or `1`
//! (what `scripts/test.sh` exports), and skips, saying so, only when it is `0`.
//!
//! The decisions are checked as a function, and end to end: this test binary runs its own
//! ignored `child_*` tests as separate processes, with the service pointed at a closed port and
//! each value of the flag, and reads their exit status and output.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::process::Command;

use selfheal_e2e::require::{self, BROKER, MODEL, Missing, REGISTRY, decide};
use selfheal_e2e::require_broker;

#[test]
fn a_missing_service_fails_unless_its_flag_is_0() {
    for service in [BROKER, REGISTRY, MODEL] {
        for flag in [None, Some(""), Some("1"), Some(" 1 ")] {
            let Missing::Fail(message) = decide(&service, flag, "connection refused") else {
                panic!("{} with {flag:?} must fail", service.flag);
            };
            assert!(
                message.contains("connection refused") && message.contains(service.hint),
                "{message}"
            );
            assert!(message.contains(&format!("{}=0 skips it", service.flag)), "{message}");
        }
        assert!(
            matches!(decide(&service, Some("0"), "refused"), Missing::Skip(m) if m.starts_with("SKIPPED") && m.contains("refused")),
            "{}=0 skips",
            service.flag
        );
        let Missing::Fail(message) = decide(&service, Some("yes"), "refused") else {
            panic!("an unknown value must not skip");
        };
        assert!(
            message.contains(&format!("{}=\"yes\" is neither 0 nor 1", service.flag)),
            "{message}"
        );
    }
    assert_eq!(MODEL.flag, "SELFHEAL_REQUIRE_LLM");
    assert_eq!(BROKER.flag, "SELFHEAL_REQUIRE_BROKER");
    assert_eq!(REGISTRY.flag, "SELFHEAL_REQUIRE_BROKER");
}

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the ignored test `name` of this binary alone with `env`: did it pass, and what it printed.
fn child(name: &str, env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"])
        .env_remove("SELFHEAL_REQUIRE_BROKER")
        .env_remove("SELFHEAL_REQUIRE_LLM")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("1 passed") || text.contains("1 failed"),
        "{name} did not run: {text}"
    );
    (out.status.success(), text)
}

/// Checks one service's flag through a child test: fails unset and at 1, skips at 0.
fn check(child_test: &str, flag: &str, service_env: &[(&str, String)]) {
    for value in [None, Some("1")] {
        let mut env = service_env.to_vec();
        if let Some(v) = value {
            env.push((flag, v.to_string()));
        }
        let (passed, out) = child(child_test, &env);
        assert!(
            !passed,
            "{child_test} with {flag}={value:?} and nothing to find must fail:\n{out}"
        );
        assert!(out.contains("which is missing") && !out.contains("SKIPPED"), "{out}");
        assert!(!out.contains("was found"), "{out}");
    }
    let mut env = service_env.to_vec();
    env.push((flag, "0".to_string()));
    let (passed, out) = child(child_test, &env);
    assert!(
        passed && out.contains("SKIPPED"),
        "{child_test} with {flag}=0 skips:\n{out}"
    );
}

#[test]
fn model_tests_fail_when_the_model_is_missing_and_skip_only_when_allowed() {
    let url = format!("http://127.0.0.1:{}/v1", closed_port());
    check(
        "child_needs_the_model",
        "SELFHEAL_REQUIRE_LLM",
        &[("SELFHEAL_TEST_LLM_URL", url), ("SELFHEAL_TEST_LLM_MODEL", "m".into())],
    );
    // Not configured at all is missing too.
    check(
        "child_needs_the_model",
        "SELFHEAL_REQUIRE_LLM",
        &[("SELFHEAL_TEST_LLM_URL", String::new())],
    );
}

#[test]
fn broker_tests_fail_when_the_broker_is_missing_and_skip_only_when_allowed() {
    let brokers = format!("127.0.0.1:{}", closed_port());
    check(
        "child_needs_the_broker",
        "SELFHEAL_REQUIRE_BROKER",
        &[("SELFHEAL_KAFKA_BROKERS", brokers)],
    );
}

#[test]
#[ignore = "run as a child process by model_tests_fail_when_the_model_is_missing_and_skip_only_when_allowed"]
fn child_needs_the_model() {
    let Some(_) = require::model() else {
        return;
    };
    panic!("the model was found");
}

#[tokio::test]
#[ignore = "run as a child process by broker_tests_fail_when_the_broker_is_missing_and_skip_only_when_allowed"]
async fn child_needs_the_broker() {
    if !require_broker().await {
        return;
    }
    panic!("the broker was found");
}
