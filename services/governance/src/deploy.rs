//! The deploy policy's input and verdict: may rollout put a patched version in front of traffic.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use selfheal_catalog::Autonomy;

/// Who approved a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// A person, named in [`Approval::by`].
    Human,
    /// Rollout itself, after the policy allowed auto-approval.
    Auto,
}

/// A recorded decision on a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Approved (`false` records a refusal).
    pub approved: bool,
    /// Who decided: a user name, or the rollout instance for auto-approvals.
    pub by: String,
    /// Whether a person or rollout decided.
    pub mode: ApprovalMode,
}

/// Everything the deploy policy looks at, in the shape `policies/deploy.rego` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployInput {
    /// The service to deploy.
    pub service: String,
    /// The service's autonomy level from the catalog.
    pub autonomy: Autonomy,
    /// The approval so far, if any.
    pub approval: Option<Approval>,
    /// The patch policy allowed the patch being deployed.
    pub patch_policy_allowed: bool,
    /// Where it would be deployed, e.g. `production`.
    pub environment: String,
    /// A change freeze is in force for that environment.
    pub change_freeze: bool,
}

/// The deploy policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployVerdict {
    /// No rule denied the deploy.
    pub allowed: bool,
    /// One message per violation, `<rule-id>: <service>: <why>`, sorted.
    pub violations: Vec<String>,
    /// Rollout may record an auto-approval and go ahead without a human.
    pub allow_auto_approval: bool,
    /// How many rules the policy checked.
    pub rules_evaluated: u32,
    /// SHA-256 of the policy texts, hex: which policy version decided.
    pub policy_digest: String,
}

impl DeployVerdict {
    /// The ids of the rules that denied, e.g. `approval-required`.
    pub fn violated_rules(&self) -> BTreeSet<&str> {
        crate::patch::rule_ids(&self.violations)
    }
}
