//! The records of each topic, from telemetry to outcome.

use std::collections::HashMap;

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::Record;
use crate::common::*;
use crate::topics;

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// Key of `telemetry.raw`: records of one service stay in one partition, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct ServiceKey {
    /// The `service.name` resource attribute.
    pub service: String,
}

/// Key of every topic after the monitor: all records of one incident share a partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct IncidentKey {
    /// The incident id.
    pub incident_id: String,
}

// ---------------------------------------------------------------------------------------
// telemetry.raw
// ---------------------------------------------------------------------------------------

/// Which kind of signal a telemetry event came from.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum SignalKind {
    // One span of a trace.
    #[default]
    Span,
    // One log record.
    Log,
    // One metric data point.
    Metric,
    // One firing or resolved alert (Alertmanager).
    Alert,
}

/// Severity of a log record or alert, normalised from OTel severity numbers and level names.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum Severity {
    // Not reported.
    #[default]
    Unspecified,
    // TRACE.
    Trace,
    // DEBUG.
    Debug,
    // INFO.
    Info,
    // WARN.
    Warn,
    // ERROR.
    Error,
    // FATAL / CRITICAL.
    Fatal,
}

/// Outcome status of a span (OTel span status).
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum SpanStatus {
    // Not set by the instrumentation.
    #[default]
    Unset,
    // Explicitly OK.
    Ok,
    // Failed.
    Error,
}

/// One span, log record, metric point or alert, normalised by the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct TelemetryEvent {
    /// A unique id for this event (UUID).
    pub event_id: String,
    /// Which kind of signal this is.
    pub kind: SignalKind,
    /// The `service.name` resource attribute (or the alert's `service` label).
    pub service: String,
    /// `service.version`: the deployed version, ideally a commit.
    pub service_version: Option<String>,
    /// `service.instance.id`, pod name or host:port.
    pub instance: Option<String>,
    /// `deployment.environment`.
    pub environment: Option<String>,
    /// When it happened, epoch milliseconds.
    pub timestamp_ms: i64,
    /// When the collector received it, epoch milliseconds.
    pub observed_ms: i64,
    /// Trace id as 32 lowercase hex characters.
    pub trace_id: Option<String>,
    /// Span id as 16 lowercase hex characters.
    pub span_id: Option<String>,
    /// Parent span id, for spans.
    pub parent_span_id: Option<String>,
    /// Span name, metric name or alert name; for logs the logger/scope name.
    pub name: String,
    /// Span kind (`server`, `client`, `internal`, …) when a span.
    pub span_kind: Option<String>,
    /// Span status.
    pub status: SpanStatus,
    /// Span status message.
    pub status_message: Option<String>,
    /// Span duration in milliseconds.
    pub duration_ms: Option<f64>,
    /// Log severity (also set for alerts from their `severity` label).
    pub severity: Severity,
    /// Log body or alert summary (untrusted text).
    pub body: Option<String>,
    /// Metric value.
    pub value: Option<f64>,
    /// Metric unit.
    pub unit: Option<String>,
    /// Event attributes flattened to strings (span, log, point or alert labels).
    pub attributes: HashMap<String, String>,
    /// Resource attributes flattened to strings.
    pub resource: HashMap<String, String>,
    /// The exception, when the event records one.
    pub exception: Option<ExceptionInfo>,
    /// Where the event came from: `otlp-http`, `otlp-grpc`, `alertmanager`, `loki`.
    pub source: String,
}

impl Record for TelemetryEvent {
    const TOPIC: &'static str = topics::TELEMETRY_RAW;
    const SCHEMA_FILE: &'static str = "telemetry_event";
    fn key(&self) -> String {
        self.service.clone()
    }
}

// ---------------------------------------------------------------------------------------
// anomalies
// ---------------------------------------------------------------------------------------

/// A symptom the monitor recognised.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum AnomalyKind {
    // Error rate above the service's own baseline.
    #[default]
    ErrorRate,
    // An exception fingerprint never seen before for this service.
    NewFingerprint,
    // Latency shifted above its baseline.
    Latency,
    // The service restarts repeatedly.
    CrashLoop,
    // A new log template at warning level or above.
    NewLogTemplate,
    // A known log template surged above its baseline.
    LogTemplateSurge,
    // An external alert fired.
    Alert,
}

/// A log template that is part of an incident's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct TemplateEvidence {
    /// Stable template id of the monitor's miner for this service.
    pub template_id: i64,
    /// The template, variables masked.
    pub template: String,
    /// Lines matching it in the window.
    pub count: i64,
    /// A few example lines (untrusted text).
    pub examples: Vec<String>,
}

/// One incident opened by the monitor, with the evidence that opened it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Anomaly {
    /// The incident id; every later record of this incident carries it.
    pub incident_id: String,
    /// The failing service.
    pub service: String,
    /// The failure fingerprint (stable across deploys and line shifts).
    pub fingerprint: String,
    /// The operation (span name / route) where it failed, when known.
    pub operation: Option<String>,
    /// The deployed version of the service when it failed.
    pub service_version: Option<String>,
    /// Every symptom seen, strongest first.
    pub signals: Vec<AnomalyKind>,
    /// One line for a person.
    pub summary: String,
    /// When the incident was opened, epoch milliseconds.
    pub detected_ms: i64,
    /// Start of the window that tripped the detector.
    pub window_start_ms: i64,
    /// End of that window.
    pub window_end_ms: i64,
    /// Failed requests in the window.
    pub error_count: i64,
    /// All requests in the window.
    pub request_count: i64,
    /// Error rate in the window (0..1).
    pub error_rate: f64,
    /// The service's own recent error rate before the window (0..1).
    pub baseline_error_rate: f64,
    /// The exception, with a representative stack trace.
    pub exception: Option<ExceptionInfo>,
    /// Trace ids of a few failing requests.
    pub sample_trace_ids: Vec<String>,
    /// Attributes of a few failing requests: the inputs that made it fail (untrusted text).
    pub sample_inputs: Vec<HashMap<String, String>>,
    /// Log templates that belong to the incident.
    pub log_templates: Vec<TemplateEvidence>,
    /// Other facts, labelled.
    pub evidence: Vec<Evidence>,
    /// Stage timestamps so far.
    pub timeline: Timeline,
}

impl Record for Anomaly {
    const TOPIC: &'static str = topics::ANOMALIES;
    const SCHEMA_FILE: &'static str = "anomaly";
    fn key(&self) -> String {
        self.incident_id.clone()
    }
}

// ---------------------------------------------------------------------------------------
// language-model audit (carried by diagnoses and patches)
// ---------------------------------------------------------------------------------------

/// One call to a language model as the audit keeps it: the prompt as it left the process
/// (after redaction), the answer, what it cost and why it was rejected, if it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct LlmExchange {
    /// What the call was for: `hypotheses`, `patch`, `critique`, `revision`.
    pub purpose: String,
    /// Round of the repair loop (0 for the diagnoser and the first candidate).
    pub round: i32,
    /// The prompt as sent, redacted and bounded.
    pub prompt: String,
    /// The raw answer, bounded, when there was one.
    pub answer: Option<String>,
    /// Why the call or its answer was rejected.
    pub error: Option<String>,
    /// Input tokens the provider counted.
    pub input_tokens: i64,
    /// Output tokens the provider counted.
    pub output_tokens: i64,
    /// Cost in USD, where the provider reports it or prices are configured.
    pub cost_usd: Option<f64>,
    /// Wall time of the call, milliseconds.
    pub latency_ms: i64,
    /// Secrets and personal data redacted from this prompt (count; kinds are in the service log).
    pub redactions: i32,
}

/// What a stage asked a language model about one incident and what the incident has spent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct LlmReport {
    /// Provider and model, e.g. `openai-compatible smollm2 at http://127.0.0.1:8089/v1`.
    pub model: String,
    /// Calls this incident has made so far, all stages together (the budget is per incident).
    pub calls: i32,
    /// Input tokens this incident has spent so far.
    pub input_tokens: i64,
    /// Output tokens this incident has spent so far.
    pub output_tokens: i64,
    /// Cost so far in USD, where known.
    pub cost_usd: Option<f64>,
    /// Whether the per-incident budget ran out during this stage.
    pub budget_exhausted: bool,
    /// What happened, for a person: budget spent, provider unreachable, answers dropped, ….
    pub notes: Vec<String>,
    /// This stage's exchanges, in order.
    pub exchanges: Vec<LlmExchange>,
}

// ---------------------------------------------------------------------------------------
// diagnoses
// ---------------------------------------------------------------------------------------

/// Where a hypothesis came from.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum HypothesisSource {
    // Deterministic rules over the parsed trace and code.
    #[default]
    Rule,
    // The learning store: this fingerprint was seen and fixed before.
    Learned,
    // A language model.
    Llm,
}

/// One ranked root-cause hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Hypothesis {
    /// 1 is the most likely.
    pub rank: i32,
    /// A failure category the repairer's templates understand, e.g. `division-by-zero`.
    pub category: String,
    /// One line for a person.
    pub summary: String,
    /// 0..1.
    pub confidence: f64,
    /// Where it came from.
    pub source: HypothesisSource,
    /// File in the repository, when localised.
    pub file: Option<String>,
    /// Line, when localised.
    pub line: Option<i32>,
    /// Function, when localised.
    pub function: Option<String>,
    /// The facts behind it.
    pub evidence: Vec<Evidence>,
}

/// A stack frame as the diagnoser parsed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct StackFrame {
    /// Function or method.
    pub function: String,
    /// Module, class or package.
    pub module: Option<String>,
    /// File as reported by the runtime.
    pub file: Option<String>,
    /// Line.
    pub line: Option<i32>,
    /// Whether the frame is the service's own code.
    pub in_app: bool,
}

/// A fix the learning store remembers for this fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct KnownFix {
    /// The fix strategy, e.g. `python.zero-division-guard`.
    pub strategy: String,
    /// Incidents it healed.
    pub healed: i32,
    /// Incidents it was tried on.
    pub attempts: i32,
    /// Median seconds from first error to healed.
    pub median_heal_secs: Option<f64>,
    /// The incident whose fix this was, most recent first.
    pub last_incident_id: Option<String>,
    /// The diff of that fix.
    pub last_diff: Option<String>,
    /// What the template decided where it last healed (`key=currency`, `error=ValueError`):
    /// absent for fixes that are not templates.
    #[serde(default)]
    pub params: Option<HashMap<String, String>>,
    /// `fingerprint` when it healed this very failure; `crash-class` when it healed the same
    /// crash class (exception type) elsewhere, in this or another service, and is offered
    /// because templates re-apply at a new site. Absent means `fingerprint`.
    #[serde(default)]
    pub scope: Option<String>,
    /// The service where it last healed.
    #[serde(default)]
    pub service: Option<String>,
}

/// How far the diagnoser got.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum DiagnosisStatus {
    // The failing line in the service's repository is known.
    #[default]
    Localized,
    // The trace's in-app frames match no file in the repository.
    NotInRepository,
    // The service is not in the catalog.
    UnknownService,
    // The catalog names a repository that does not exist or is not a git repository.
    RepositoryMissing,
    // The evidence has no parsable stack trace.
    NoStackTrace,
}

/// The diagnoser's analysis of one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Diagnosis {
    /// The incident id.
    pub incident_id: String,
    /// The failing service.
    pub service: String,
    /// The failure fingerprint.
    pub fingerprint: String,
    /// How far the analysis got.
    pub status: DiagnosisStatus,
    /// One line for a person, also when not localised (says why).
    pub summary: String,
    /// The runtime of the trace: `python`, `jvm`, `go`, `node`, `rust`, `dotnet`, `ruby`.
    pub runtime: Option<String>,
    /// The catalog's repository for the service.
    pub repository: Option<String>,
    /// The repository commit the analysis read.
    pub commit: Option<String>,
    /// The most likely root cause.
    pub root_cause: Option<RootCause>,
    /// Confidence in `root_cause`, 0..1.
    pub confidence: f64,
    /// All hypotheses, ranked.
    pub hypotheses: Vec<Hypothesis>,
    /// The parsed frames of the root-cause exception, outermost first.
    pub frames: Vec<StackFrame>,
    /// The exception as the monitor saw it.
    pub exception: Option<ExceptionInfo>,
    /// Inputs of failing requests, carried for the regression test (untrusted text).
    pub sample_inputs: Vec<HashMap<String, String>>,
    /// Fixes the learning store remembers for this fingerprint, best first.
    pub known_fixes: Vec<KnownFix>,
    /// Stage timestamps so far.
    pub timeline: Timeline,
    /// What the diagnoser asked a language model, when one is configured and was asked.
    #[serde(default)]
    pub llm: Option<LlmReport>,
}

impl Record for Diagnosis {
    const TOPIC: &'static str = topics::DIAGNOSES;
    const SCHEMA_FILE: &'static str = "diagnosis";
    fn key(&self) -> String {
        self.incident_id.clone()
    }
}

// ---------------------------------------------------------------------------------------
// patches
// ---------------------------------------------------------------------------------------

/// What the repairer achieved.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum PatchStatus {
    // A fix was validated, allowed by policy and committed on a branch.
    #[default]
    Proposed,
    // No template, learned fix or model produced a candidate.
    NoFixFound,
    // Candidates existed but none passed the sandbox.
    ValidationFailed,
    // The best validated candidate was denied by policy.
    PolicyDenied,
    // The diagnosis did not localise the failure, so nothing was attempted.
    NotLocalized,
    // The repairer could not work (repository missing, git failed, …).
    Error,
}

/// One candidate the repairer tried, and why it won or lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct PatchAttempt {
    /// The strategy, e.g. `python.zero-division-guard`, `learned:python.zero-division-guard`, `llm`.
    pub strategy: String,
    /// `selected`, `not-applicable`, `failed-before-missing`, `suite-failed`, `policy-denied`, …
    pub result: String,
    /// Why, for a person.
    pub reason: String,
    /// The candidate's diff (fix and regression test), when one was written.
    #[serde(default)]
    pub diff: Option<String>,
    /// The self-critique of a model-written candidate, one paragraph per round.
    #[serde(default)]
    pub critique: Option<String>,
    /// What the sandbox proved about this candidate, when it got that far.
    #[serde(default)]
    pub validation: Option<Validation>,
    /// The policy gate's decision on this candidate, when it got that far.
    #[serde(default)]
    pub policy: Option<PolicyVerdict>,
}

/// The repairer's fix for one incident (or why there is none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Patch {
    /// The incident id.
    pub incident_id: String,
    /// The failing service.
    pub service: String,
    /// The failure fingerprint.
    pub fingerprint: String,
    /// What the repairer achieved.
    pub status: PatchStatus,
    /// One line for a person.
    pub summary: String,
    /// The winning strategy, when there is one.
    pub strategy: Option<String>,
    /// Whether the winning fix came from the learning store.
    pub learned: bool,
    /// The service's repository.
    pub repository: Option<String>,
    /// The commit the fix is based on.
    pub base_commit: Option<String>,
    /// The branch holding the fix, `selfheal/<incident-id>`.
    pub branch: Option<String>,
    /// The commit on that branch.
    pub commit: Option<String>,
    /// Unified diff of the fix and its regression test.
    pub diff: String,
    /// Files the diff touches.
    pub files_changed: Vec<String>,
    /// The regression test.
    pub regression_test: Option<RegressionTest>,
    /// What the sandbox proved.
    pub validation: Option<Validation>,
    /// The policy gate's decision.
    pub policy: Option<PolicyVerdict>,
    /// Every candidate tried, in order.
    pub attempts: Vec<PatchAttempt>,
    /// The root cause the fix addresses (copied from the diagnosis).
    pub root_cause: Option<RootCause>,
    /// The exception type of the incident.
    pub exception_type: Option<String>,
    /// Stage timestamps so far.
    pub timeline: Timeline,
    /// What the repairer asked a language model, when one is configured and was asked.
    #[serde(default)]
    pub llm: Option<LlmReport>,
    /// What the winning template decided at this site (`key=currency`, `error=ValueError`),
    /// kept by the learning store; absent for learned diffs and model-written fixes.
    #[serde(default)]
    pub template_params: Option<HashMap<String, String>>,
    /// The pull request proposing the fix on the service's code host, when the catalog names
    /// one and it was opened (absent: the fix is a local branch only).
    #[serde(default)]
    pub pull_request_url: Option<String>,
}

impl Record for Patch {
    const TOPIC: &'static str = topics::PATCHES;
    const SCHEMA_FILE: &'static str = "patch";
    fn key(&self) -> String {
        self.incident_id.clone()
    }
}

// ---------------------------------------------------------------------------------------
// approvals
// ---------------------------------------------------------------------------------------

/// A person's (or a tool's) decision on a pending patch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Approval {
    /// The incident whose patch is decided.
    pub incident_id: String,
    /// The decision.
    pub decision: ApprovalDecision,
}

impl Record for Approval {
    const TOPIC: &'static str = topics::APPROVALS;
    const SCHEMA_FILE: &'static str = "approval";
    fn key(&self) -> String {
        self.incident_id.clone()
    }
}

// ---------------------------------------------------------------------------------------
// rollouts
// ---------------------------------------------------------------------------------------

/// One step of a rollout.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum RolloutStep {
    // The patch waits for `selfheal approve`.
    #[default]
    AwaitingApproval,
    // Approved (by a person or the catalog).
    Approved,
    // Rejected by a person.
    Rejected,
    // Deployment refused by policy.
    PolicyDenied,
    // The canary runs and takes a share of traffic.
    CanaryStarted,
    // Canary and stable error rates compared.
    CanaryAnalyzed,
    // The canary became stable.
    Promoted,
    // The canary was removed; stable keeps serving.
    RolledBack,
    // The deployer failed; stable keeps serving.
    Failed,
    // Nothing to deploy: the patch was not proposed.
    Skipped,
    // Canary analysis stayed inconclusive past its limit: the canary waits for a person (`selfheal approve`/reject).
    CanaryHeld,
}

/// One metric of one canary measurement: both samples' sizes, the test, and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct CanaryMetric {
    /// The step measured (0-based).
    pub step: i32,
    /// The measurement number (1-based, counting extensions).
    pub measurement: i32,
    /// Percent of traffic the canary had in that step.
    pub weight: i32,
    /// `error-rate`, `error-rate <route>`, `latency` or `new-fingerprint <fingerprint>`.
    pub metric: String,
    /// `fisher-exact`, `two-proportion-z`, `mann-whitney-u` or `fingerprint`.
    pub test: String,
    /// The canary's sample size.
    pub canary_samples: i64,
    /// Stable's sample size over the same window.
    pub stable_samples: i64,
    /// The test statistic.
    pub statistic: f64,
    /// One-sided p-value for "the canary is worse".
    pub p_value: f64,
    /// Observed effect (error-rate difference, or ratio of median latencies).
    pub effect: f64,
    /// The largest acceptable effect.
    pub bound: f64,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    /// One line for a person.
    pub reason: String,
    /// Canary latency p50/p95/p99, milliseconds (latency only).
    #[serde(default)]
    pub canary_latency_ms: Option<Vec<f64>>,
    /// Stable latency p50/p95/p99, milliseconds (latency only).
    #[serde(default)]
    pub stable_latency_ms: Option<Vec<f64>>,
}

/// The canary analysis of a rollout so far: every measurement's metrics and the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct CanaryReport {
    /// Every metric of every measurement, in order.
    pub metrics: Vec<CanaryMetric>,
    /// The last measurement's verdict: `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    /// What was decided: `promote`, `roll-back`, `hold`, or empty while measuring.
    pub decision: String,
}

/// One step of deploying a patch, with the patch it deploys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Rollout {
    /// The incident id.
    pub incident_id: String,
    /// The service.
    pub service: String,
    /// The failure fingerprint.
    pub fingerprint: String,
    /// This step.
    pub step: RolloutStep,
    /// When this step happened, epoch milliseconds.
    pub step_ms: i64,
    /// One line for a person.
    pub detail: String,
    /// The deployer used: `local-process`, `kubernetes`, `gitops`.
    pub deployer: String,
    /// The approval decision, once made.
    pub approval: Option<ApprovalDecision>,
    /// Version of the stable deployment.
    pub stable_version: Option<String>,
    /// Version of the canary.
    pub canary_version: Option<String>,
    /// Share of traffic sent to the canary, percent.
    pub traffic_percent: i32,
    /// Canary error rate over the analysis (0..1).
    pub canary_error_rate: Option<f64>,
    /// Stable error rate over the same period (0..1).
    pub stable_error_rate: Option<f64>,
    /// Requests the canary served during analysis.
    pub canary_requests: i64,
    /// Requests stable served during analysis.
    pub stable_requests: i64,
    /// The patch being deployed (carried so later stages need no lookup).
    pub patch: Patch,
    /// Stage timestamps so far.
    pub timeline: Timeline,
    /// The statistical canary analysis, once the canary was measured.
    #[serde(default)]
    pub canary_report: Option<CanaryReport>,
}

impl Record for Rollout {
    const TOPIC: &'static str = topics::ROLLOUTS;
    const SCHEMA_FILE: &'static str = "rollout";
    fn key(&self) -> String {
        self.incident_id.clone()
    }
}

// ---------------------------------------------------------------------------------------
// outcomes
// ---------------------------------------------------------------------------------------

/// How an incident ended.
#[allow(missing_docs)] // variants are documented with line comments: the Avro derive rejects doc attributes on unit variants
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub enum OutcomeStatus {
    // The fix was promoted and the failure stopped.
    #[default]
    Healed,
    // The failure came back after promotion.
    Recurred,
    // The canary was worse than stable and was rolled back.
    RolledBack,
    // Policy denied the patch or its deployment.
    RejectedByPolicy,
    // A person rejected the patch.
    RejectedByHuman,
    // No candidate fix was found.
    NoFixFound,
    // Candidates existed but none was proven in the sandbox.
    ValidationFailed,
    // The failure could not be located in the service's code.
    NotLocalized,
    // Deployment failed; stable kept serving.
    DeployFailed,
    // selfheal itself failed on this incident; see the summary.
    Error,
    // Promoted, but too little traffic reached the failing operation in the watch window to tell.
    Unverified,
}

/// The fix that was deployed (or proposed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Fix {
    /// The strategy.
    pub strategy: String,
    /// Whether it came from the learning store.
    pub learned: bool,
    /// The branch.
    pub branch: Option<String>,
    /// The commit.
    pub commit: Option<String>,
    /// The unified diff.
    pub diff: String,
    /// Files the diff touches.
    pub files_changed: Vec<String>,
    /// What the template decided at this site, when the fix is a template.
    #[serde(default)]
    pub params: Option<HashMap<String, String>>,
}

/// What the rollout measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct RolloutResult {
    /// The deployer used.
    pub deployer: String,
    /// The last rollout step.
    pub final_step: RolloutStep,
    /// Canary version.
    pub canary_version: Option<String>,
    /// Stable version before promotion.
    pub stable_version: Option<String>,
    /// Canary error rate (0..1).
    pub canary_error_rate: Option<f64>,
    /// Stable error rate (0..1).
    pub stable_error_rate: Option<f64>,
    /// Requests the canary served.
    pub canary_requests: i64,
    /// Requests stable served.
    pub stable_requests: i64,
}

/// What the verifier watched after promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Verification {
    /// How long it watched, milliseconds.
    pub window_ms: i64,
    /// Occurrences of the fingerprint in that window.
    pub occurrences: i64,
    /// Requests to the service seen in that window.
    pub requests: i64,
    /// The failing operation watched (route or span name), when known.
    #[serde(default)]
    pub operation: Option<String>,
    /// Requests that operation served in the window.
    #[serde(default)]
    pub operation_requests: Option<i64>,
    /// Requests it had to serve, without the failure, for the incident to count as healed.
    #[serde(default)]
    pub min_requests: Option<i64>,
}

/// The end of one incident, with its whole story. Downstream consumers subscribe to this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema, Default)]
#[avro(namespace = "io.selfheal.v1")]
pub struct Outcome {
    /// The incident id.
    pub incident_id: String,
    /// The service.
    pub service: String,
    /// The failure fingerprint.
    pub fingerprint: String,
    /// How it ended.
    pub status: OutcomeStatus,
    /// One line for a person.
    pub summary: String,
    /// The exception type of the incident.
    pub exception_type: Option<String>,
    /// Where the failure was.
    pub root_cause: Option<RootCause>,
    /// The fix.
    pub fix: Option<Fix>,
    /// The regression test.
    pub regression_test: Option<RegressionTest>,
    /// What the sandbox proved.
    pub validation: Option<Validation>,
    /// The policy gate's decision.
    pub policy: Option<PolicyVerdict>,
    /// The approval.
    pub approval: Option<ApprovalDecision>,
    /// What the rollout measured.
    pub rollout: Option<RolloutResult>,
    /// What the verifier watched.
    pub verification: Option<Verification>,
    /// Every candidate the repairer tried.
    pub attempts: Vec<PatchAttempt>,
    /// One timestamp per stage.
    pub timeline: Timeline,
    /// What the incident spent on a language model (totals and notes; the prompts and answers
    /// stay on the `diagnoses` and `patches` records, see `selfheal explain`).
    #[serde(default)]
    pub llm: Option<LlmReport>,
}

impl Record for Outcome {
    const TOPIC: &'static str = topics::OUTCOMES;
    const SCHEMA_FILE: &'static str = "outcome";
    fn key(&self) -> String {
        self.incident_id.clone()
    }
}
