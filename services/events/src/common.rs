//! Record parts shared by several topics: exceptions, root causes, timelines, verdicts.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// An exception as reported by the failing service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct ExceptionInfo {
    /// The exception type, e.g. `ZeroDivisionError` or `java.lang.NullPointerException`.
    pub r#type: String,
    /// The exception message as the service reported it (untrusted text).
    pub message: String,
    /// The stack trace text, when the service sent one (untrusted text).
    pub stacktrace: Option<String>,
}

/// Where the failure is in the service's own code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct RootCause {
    /// Path relative to the repository root.
    pub file: String,
    /// One-based line number.
    pub line: i32,
    /// The function or method that failed.
    pub function: String,
    /// The exception type raised there.
    pub exception_type: String,
    /// The exception message (untrusted text).
    pub message: String,
    /// A few lines of code around `line`, numbered, as read from the repository.
    pub code_snippet: Option<String>,
    /// The repository commit the snippet was read at, when known.
    pub commit: Option<String>,
}

/// One timestamp (Unix epoch milliseconds) per stage of an incident; each stage fills its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Timeline {
    /// The first failing event the monitor attributed to the incident.
    pub first_error_ms: Option<i64>,
    /// When the monitor opened the incident.
    pub anomaly_ms: Option<i64>,
    /// When the diagnoser emitted its diagnosis.
    pub diagnosis_ms: Option<i64>,
    /// When the repairer emitted the patch (validated and policy-checked).
    pub patch_ms: Option<i64>,
    /// When the patch was approved or rejected.
    pub approval_ms: Option<i64>,
    /// When the canary started taking traffic.
    pub canary_ms: Option<i64>,
    /// When the canary was promoted to stable.
    pub promotion_ms: Option<i64>,
    /// When the canary was rolled back.
    pub rollback_ms: Option<i64>,
    /// When the verifier decided the outcome.
    pub outcome_ms: Option<i64>,
}

/// The regression test written for a fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct RegressionTest {
    /// Path of the test file relative to the repository root.
    pub file: String,
    /// The test's name, e.g. `test_calc_zero_discount`.
    pub name: String,
    /// The test's source code.
    pub code: String,
}

/// What the sandbox proved about a candidate fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Validation {
    /// The regression test failed on the unpatched code (it reproduces the incident).
    pub failed_before: bool,
    /// The regression test passed on the patched code.
    pub passed_after: bool,
    /// The service's whole test suite passed on the patched code.
    pub suite_passed: bool,
    /// Tests run in the final (patched) suite run.
    pub tests_run: i32,
    /// Tests failed in the final (patched) suite run.
    pub tests_failed: i32,
    /// Wall time of all sandbox runs, milliseconds.
    pub duration_ms: i64,
    /// How the sandbox was isolated, e.g. `bwrap: no network, 60s, 1024 MiB`.
    pub sandbox: String,
    /// The last lines of test output, for a reviewer.
    pub output_tail: String,
}

/// The policy gate's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct PolicyVerdict {
    /// Whether every policy allowed the change.
    pub allowed: bool,
    /// One message per violated rule, naming the rule and the file.
    pub violations: Vec<String>,
    /// How many rules were evaluated.
    pub rules_evaluated: i32,
    /// Digest of the policy set that decided, so a verdict can be traced to policy text.
    pub policy_digest: String,
}

/// How a patch was approved or rejected.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum ApprovalMode {
    // A person decided with `selfheal approve` / `selfheal reject`.
    #[default]
    Human,
    // The service catalog grants automatic approval and policy allowed it.
    Automatic,
    // Policy refused deployment before anyone was asked.
    Policy,
}

/// A decision on a patch: by whom, how, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct ApprovalDecision {
    /// Whether deployment may go ahead.
    pub approved: bool,
    /// Who decided: a user name, or `catalog` / `policy`.
    pub by: String,
    /// How the decision was made.
    pub mode: ApprovalMode,
    /// When, epoch milliseconds.
    pub at_ms: i64,
    /// Why, in the decider's words.
    pub reason: Option<String>,
    /// Through what the decision came: `cli` (`selfheal approve`), `catalog`, `policy`,
    /// `gitea-review`, `gitea-comment`, `gitea-closed`, …; absent on records written before it.
    #[serde(default)]
    pub channel: Option<String>,
}

/// One evidence item behind a hypothesis or an anomaly, as a short labelled fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Evidence {
    /// What kind of fact: `failing_spans`, `input`, `frame`, `log_template`, `learned`, …
    pub kind: String,
    /// The fact, for a person.
    pub detail: String,
}
