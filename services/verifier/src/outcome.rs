//! Turning the last rollout step of an incident into its `Outcome`.
//!
//! Every incident ends in exactly one Outcome, including the ones that never reached a
//! deploy: a `Skipped` step carries the patch, whose status says why nothing was deployed.

use selfheal_events::{
    Fix, LlmReport, Outcome, OutcomeStatus, PatchStatus, Rollout, RolloutResult, RolloutStep, Verification,
};

/// How a rollout step ends an incident, when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Intermediate step: more steps follow, no Outcome yet.
    Pending,
    /// Promoted: the outcome depends on what telemetry shows after promotion.
    Verify,
    /// The incident ended with this status.
    Final(OutcomeStatus),
}

/// What the step means for the incident.
pub fn ending_of(rollout: &Rollout) -> Ending {
    match rollout.step {
        RolloutStep::AwaitingApproval
        | RolloutStep::Approved
        | RolloutStep::CanaryStarted
        | RolloutStep::CanaryAnalyzed
        // A held canary waits for a person; the approval's step ends the incident.
        | RolloutStep::CanaryHeld => Ending::Pending,
        RolloutStep::Promoted => Ending::Verify,
        RolloutStep::RolledBack => Ending::Final(OutcomeStatus::RolledBack),
        RolloutStep::Rejected => Ending::Final(OutcomeStatus::RejectedByHuman),
        RolloutStep::PolicyDenied => Ending::Final(OutcomeStatus::RejectedByPolicy),
        RolloutStep::Failed => Ending::Final(OutcomeStatus::DeployFailed),
        RolloutStep::Skipped => Ending::Final(match rollout.patch.status {
            PatchStatus::NotLocalized => OutcomeStatus::NotLocalized,
            PatchStatus::NoFixFound => OutcomeStatus::NoFixFound,
            PatchStatus::ValidationFailed => OutcomeStatus::ValidationFailed,
            PatchStatus::PolicyDenied => OutcomeStatus::RejectedByPolicy,
            // A proposed patch is never skipped; if it was, rollout misbehaved: say so.
            PatchStatus::Error | PatchStatus::Proposed => OutcomeStatus::Error,
        }),
    }
}

/// A one-line summary for endings that need no telemetry.
pub fn final_summary(rollout: &Rollout, status: OutcomeStatus) -> String {
    let detail = if rollout.detail.trim().is_empty() {
        rollout.patch.summary.as_str()
    } else {
        rollout.detail.as_str()
    };
    let label = match status {
        OutcomeStatus::RolledBack => "rolled back",
        OutcomeStatus::RejectedByHuman => "rejected by a person",
        OutcomeStatus::RejectedByPolicy => "rejected by policy",
        OutcomeStatus::DeployFailed => "deploy failed, stable kept serving",
        OutcomeStatus::NotLocalized => "not localized",
        OutcomeStatus::NoFixFound => "no fix found",
        OutcomeStatus::ValidationFailed => "no candidate passed validation",
        OutcomeStatus::Error => "selfheal error",
        OutcomeStatus::Healed => "healed",
        OutcomeStatus::Recurred => "recurred",
        OutcomeStatus::Unverified => "unverified",
    };
    bounded(&format!("{label}: {detail}"))
}

/// The verdict after promotion and its summary: Recurred when the fingerprint came back;
/// Healed only with evidence — the failing operation (the whole service when it is unknown)
/// served at least `min_requests` requests in the window without it; otherwise Unverified,
/// with the window stated (no traffic is no evidence).
pub fn verified(
    rollout: &Rollout,
    verification: &Verification,
    errors: i64,
    min_requests: i64,
) -> (OutcomeStatus, String) {
    let secs = verification.window_ms as f64 / 1000.0;
    let what = rollout
        .patch
        .exception_type
        .clone()
        .unwrap_or_else(|| format!("fingerprint {}", rollout.fingerprint));
    if verification.occurrences > 0 {
        return (
            OutcomeStatus::Recurred,
            bounded(&format!(
                "{what} recurred {} times in {secs:.0}s after promotion ({} requests)",
                verification.occurrences, verification.requests
            )),
        );
    }
    let (served, on) = match &verification.operation {
        Some(op) => (verification.operation_requests.unwrap_or(0), op.clone()),
        None => (verification.requests, "the service".to_string()),
    };
    if served < min_requests.max(1) {
        return (
            OutcomeStatus::Unverified,
            bounded(&format!(
                "no {what} in the {secs:.0}s watch window after promotion, but {on} served only {served} requests there ({} needed) · unverified",
                min_requests.max(1)
            )),
        );
    }
    let mut summary = format!(
        "no {what} for {secs:.0}s after promotion ({} requests, {served} to {on}) · healed",
        verification.requests
    );
    if errors > 0 {
        summary.push_str(&format!(" · {errors} other failed requests"));
    }
    (OutcomeStatus::Healed, bounded(&summary))
}

/// Builds the Outcome carrying the whole story of the incident.
pub fn build(
    rollout: &Rollout,
    status: OutcomeStatus,
    summary: String,
    verification: Option<Verification>,
    now_ms: i64,
) -> Outcome {
    let patch = &rollout.patch;
    let fix = patch.strategy.as_ref().map(|strategy| Fix {
        strategy: strategy.clone(),
        learned: patch.learned,
        branch: patch.branch.clone(),
        commit: patch.commit.clone(),
        diff: patch.diff.clone(),
        files_changed: patch.files_changed.clone(),
        params: patch.template_params.clone(),
    });
    // A rollout result only exists once something was decided about deploying.
    let rollout_result = (rollout.step != RolloutStep::Skipped).then(|| RolloutResult {
        deployer: rollout.deployer.clone(),
        final_step: rollout.step,
        canary_version: rollout.canary_version.clone(),
        stable_version: rollout.stable_version.clone(),
        canary_error_rate: rollout.canary_error_rate,
        stable_error_rate: rollout.stable_error_rate,
        canary_requests: rollout.canary_requests,
        stable_requests: rollout.stable_requests,
    });
    let mut timeline = rollout.timeline.clone();
    timeline.outcome_ms = Some(now_ms);
    Outcome {
        incident_id: rollout.incident_id.clone(),
        service: rollout.service.clone(),
        fingerprint: rollout.fingerprint.clone(),
        status,
        summary,
        exception_type: patch
            .exception_type
            .clone()
            .or_else(|| patch.root_cause.as_ref().map(|r| r.exception_type.clone())),
        root_cause: patch.root_cause.clone(),
        fix,
        regression_test: patch.regression_test.clone(),
        validation: patch.validation.clone(),
        policy: patch.policy.clone(),
        approval: rollout.approval.clone(),
        rollout: rollout_result,
        verification,
        attempts: patch.attempts.clone(),
        timeline,
        // Totals and notes only: the prompts and answers stay on the patch and diagnosis records.
        llm: patch.llm.as_ref().map(|report| LlmReport {
            exchanges: Vec::new(),
            ..report.clone()
        }),
    }
}

/// Summaries quote untrusted text (exception types, details); keep them one bounded line.
fn bounded(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect();
    line
}
