# Tests of the deploy policy, in OPA style: every test_ rule must be true.
# Run by `cargo test -p selfheal-governance` (through regorus) and by `opa test policies/`.
package selfheal.deploy_test

import rego.v1

import data.selfheal.deploy

human_approved := {
	"service": "pricing-api",
	"autonomy": "manual",
	"approval": {"approved": true, "by": "alice", "mode": "human"},
	"patch_policy_allowed": true,
	"environment": "production",
	"change_freeze": false,
}

unapproved_auto := object.union(human_approved, {"autonomy": "auto", "approval": null})

# object.union merges nested objects, so an approval is replaced rather than merged.
with_approval(base, approval) := object.union(object.remove(base, ["approval"]), {"approval": approval})

denied_by(rule, inp) if {
	some msg in deploy.deny with input as inp
	startswith(msg, concat("", [rule, ": pricing-api: "]))
}

test_human_approved_deploy_is_allowed if {
	count(deploy.deny) == 0 with input as human_approved
	deploy.allow with input as human_approved
	not deploy.allow_auto_approval with input as human_approved
}

test_manual_service_without_approval_is_denied if {
	inp := object.union(human_approved, {"approval": null})
	denied_by("approval-required", inp)
	denied_by("approval-required", object.remove(human_approved, ["approval"]))
}

test_unknown_autonomy_is_treated_as_manual if {
	denied_by("approval-required", object.union(human_approved, {"autonomy": "yolo", "approval": null}))
	denied_by("approval-required", object.remove(object.union(human_approved, {"approval": null}), ["autonomy"]))
}

test_auto_service_may_approve_itself if {
	count(deploy.deny) == 0 with input as unapproved_auto
	deploy.allow_auto_approval with input as unapproved_auto
	decision := deploy.decision with input as unapproved_auto
	decision.allow_auto_approval == true
	count(decision.deny) == 0
}

test_auto_approval_record_is_accepted_for_auto_services if {
	inp := with_approval(unapproved_auto, {"approved": true, "by": "selfheal-rollout", "mode": "auto"})
	count(deploy.deny) == 0 with input as inp
}

test_auto_approval_is_refused_for_manual_services if {
	inp := with_approval(human_approved, {"approved": true, "by": "selfheal-rollout", "mode": "auto"})
	denied_by("auto-approval-not-permitted", inp)
}

test_denied_patch_blocks_every_deploy if {
	denied_by("patch-policy-denied", object.union(human_approved, {"patch_policy_allowed": false}))
	denied_by("patch-policy-denied", object.remove(human_approved, ["patch_policy_allowed"]))
	inp := object.union(unapproved_auto, {"patch_policy_allowed": false})
	denied_by("patch-policy-denied", inp)
	not deploy.allow_auto_approval with input as inp
}

test_change_freeze_blocks_even_approved_deploys if {
	inp := object.union(human_approved, {"change_freeze": true})
	some msg in deploy.deny with input as inp
	msg == "change-freeze: pricing-api: production is in a change freeze"
	frozen_auto := object.union(unapproved_auto, {"change_freeze": true})
	denied_by("change-freeze", frozen_auto)
	not deploy.allow_auto_approval with input as frozen_auto
}

test_refused_approval_is_denied_even_for_auto_services if {
	refused := {"approved": false, "by": "bob", "mode": "human"}
	refused_auto := with_approval(unapproved_auto, refused)
	some msg in deploy.deny with input as refused_auto
	msg == "approval-rejected: pricing-api: the deploy was refused by bob"
	refused_manual := with_approval(human_approved, refused)
	msgs := deploy.deny with input as refused_manual
	count({m | some m in msgs; startswith(m, "approval-required: ")}) == 0
}

test_human_approval_must_name_the_approver if {
	denied_by("approval-unattributed", with_approval(human_approved, {"approved": true, "by": " ", "mode": "human"}))
	denied_by("approval-unattributed", with_approval(human_approved, {"approved": true}))
}

test_unknown_approval_mode_is_denied if {
	denied_by("approval-invalid-mode", with_approval(human_approved, {"approved": true, "by": "alice", "mode": "telepathy"}))
}

test_every_message_names_a_known_rule if {
	inp := {"approval": {"approved": true, "mode": "auto"}, "change_freeze": true, "service": "pricing-api"}
	msgs := deploy.deny with input as inp
	count(msgs) >= 3
	every msg in msgs {
		some rule in deploy.rules
		startswith(msg, concat("", [rule, ": "]))
	}
}
