# Deploy policy: whether rollout may put a patched version in front of traffic.
#
# Rollout evaluates this before any canary. Input (services/governance/src/deploy.rs, DeployInput):
#   service, autonomy ("manual" | "auto"), approval ({approved, by, mode: "human" | "auto"} or null),
#   patch_policy_allowed, environment, change_freeze.
# Missing or unexpected values fail closed: an unknown autonomy is treated as manual, a
# missing patch verdict as a denied one.
#
# Every message reads "<rule-id>: <service>: <why>".
package selfheal.deploy

import rego.v1

# Every rule id this package can report; the engine reports their number as rules evaluated.
rules := {
	"approval-required",
	"approval-rejected",
	"approval-unattributed",
	"approval-invalid-mode",
	"auto-approval-not-permitted",
	"patch-policy-denied",
	"change-freeze",
}

deny contains msg if {
	not approved
	not rejected
	autonomy != "auto"
	msg := sprintf("approval-required: %s: autonomy is %s and nobody approved the deploy", [service, autonomy])
}

deny contains msg if {
	rejected
	msg := sprintf("approval-rejected: %s: the deploy was refused by %s", [service, approver_or_unknown])
}

# An approval nobody can be held to is no approval.
deny contains msg if {
	approved
	approval_mode == "human"
	approver == ""
	msg := sprintf("approval-unattributed: %s: a human approval must name who approved", [service])
}

deny contains msg if {
	is_object(approval)
	not approval_mode in {"human", "auto"}
	msg := sprintf("approval-invalid-mode: %s: approval mode %v is not human or auto", [service, approval_mode])
}

deny contains msg if {
	approved
	approval_mode == "auto"
	autonomy != "auto"
	msg := sprintf("auto-approval-not-permitted: %s: autonomy is %s, only a human may approve", [service, autonomy])
}

deny contains msg if {
	not input.patch_policy_allowed == true
	msg := sprintf("patch-policy-denied: %s: the patch did not pass the patch policy", [service])
}

deny contains msg if {
	input.change_freeze == true
	msg := sprintf("change-freeze: %s: %s is in a change freeze", [service, environment])
}

# Rollout may approve by itself: the catalog allows it and nothing else stands in the way.
default allow_auto_approval := false

allow_auto_approval if {
	autonomy == "auto"
	not rejected
	input.patch_policy_allowed == true
	not input.change_freeze == true
}

allow if count(deny) == 0

# One document for the engine, so a deploy decision is a single evaluation.
decision := {
	"deny": deny,
	"allow_auto_approval": allow_auto_approval,
}

# --- inputs with defaults -------------------------------------------------------------

service := object.get(input, "service", "(unknown service)")

environment := object.get(input, "environment", "(unknown environment)")

autonomy := object.get(input, "autonomy", "manual")

approval := object.get(input, "approval", null)

approval_mode := object.get(approval, "mode", "human") if is_object(approval)

approver := trim_space(object.get(approval, "by", "")) if is_object(approval)

approver_or_unknown := approver if approver != "" else := "(unknown)"

approved if {
	is_object(approval)
	approval.approved == true
}

rejected if {
	is_object(approval)
	not approval.approved == true
}
