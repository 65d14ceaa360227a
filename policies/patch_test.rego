# Tests of the patch policy, in OPA style: every test_ rule must be true.
# Run by `cargo test -p selfheal-governance` (through regorus) and by `opa test policies/`.
package selfheal.patch_test

import rego.v1

import data.selfheal.patch

# --- fixtures -----------------------------------------------------------------------

template_diff := concat("\n", [
	"diff --git a/pricing_logic.py b/pricing_logic.py",
	"index 1111111..2222222 100644",
	"--- a/pricing_logic.py",
	"+++ b/pricing_logic.py",
	"@@ -14 +14,2 @@",
	"-def calc(p, d): return p / d",
	"+def calc(p, d):",
	"+    return p / d if d != 0 else p",
	"diff --git a/tests/test_regression_x.py b/tests/test_regression_x.py",
	"new file mode 100644",
	"--- /dev/null",
	"+++ b/tests/test_regression_x.py",
	"@@ -0,0 +1,5 @@",
	"+from pricing_logic import calc",
	"+",
	"+",
	"+def test_calc_zero_discount():",
	"+    assert calc(10.0, 0.0) == 10.0",
	"",
])

template_fix := {
	"service": "pricing-api",
	"source_root": ".",
	"files": [
		{"path": "pricing_logic.py", "added": 2, "removed": 1, "new_file": false},
		{"path": "tests/test_regression_x.py", "added": 5, "removed": 0, "new_file": true},
	],
	"diff_lines": 8,
	"max_diff_lines": 40,
	"protected_globs": [],
	"strategy": "python.zero-division-guard",
	"origin": "template",
	"validation": {"failed_before": true, "passed_after": true, "suite_passed": true},
	"diff": template_diff,
}

# A one-file patch of `path` adding `added` lines (each without its leading "+").
adding(path, added) := object.union(template_fix, {
	"files": [{"path": path, "added": count(added), "removed": 0, "new_file": false}],
	"diff_lines": count(added),
	"diff": concat("\n", array.concat(
		[
			concat("", ["--- a/", path]),
			concat("", ["+++ b/", path]),
			sprintf("@@ -1 +1,%d @@", [count(added) + 1]),
			" unchanged = 1",
		],
		[concat("", ["+", line]) | some line in added],
	)),
})

denied_by(rule, inp) if {
	some msg in patch.deny with input as inp
	startswith(msg, concat("", [rule, ": "]))
}

# --- allowed ------------------------------------------------------------------------

test_template_fix_is_allowed if {
	count(patch.deny) == 0 with input as template_fix
	patch.allow with input as template_fix
}

test_fix_under_a_source_root_with_tests_elsewhere_is_allowed if {
	inp := object.union(adding("src/pricing/calc.py", ["    return 0"]), {"source_root": "./src/"})
	count(patch.deny) == 0 with input as inp
}

test_test_files_of_other_languages_are_allowed_outside_the_source_root if {
	every path in ["calc_test.go", "pkg/calc_test.go", "src/test/java/CalcTest.java", "app/CalcTest.java", "spec/calc_spec.rb", "web/calc.test.ts", "test_calc.py"] {
		inp := object.union(adding(path, ["x = 1"]), {"source_root": "service"})
		not denied_by("outside-source-root", inp)
	}
}

test_a_larger_catalog_limit_is_respected if {
	inp := object.union(template_fix, {"diff_lines": 55, "max_diff_lines": 60})
	not denied_by("diff-too-large", inp)
}

test_safe_lines_are_not_dangerous if {
	safe := [
		"    return p / d if d != 0 else p",
		"value = ast.literal_eval(text)",
		"cursor.execute(query, params)",
		"network = \"10.0.0.0/8\"",
		"fs = filesystem(root)",
		"roles_seen = count_roles(user)",
		"if discount == 0.0:",
		"from pricing_logic import calc",
		"import os.path",
	]
	inp := adding("pricing_logic.py", safe)
	not denied_by("dangerous-content", inp)
}

# --- denied -------------------------------------------------------------------------

test_ci_workflow_is_protected if {
	inp := adding(".github/workflows/ci.yml", ["      - run: echo skip"])
	denied_by("protected-path", inp)
	some msg in patch.deny with input as inp
	contains(msg, ".github/workflows/ci.yml")
}

test_firewall_opened_to_the_world_is_denied_twice if {
	inp := adding("deploy/firewall.yaml", ["  - cidr: 0.0.0.0/0"])
	denied_by("protected-path", inp)
	denied_by("dangerous-content", inp)
	some msg in patch.deny with input as inp
	startswith(msg, "dangerous-content: deploy/firewall.yaml: ")
	contains(msg, "whole internet")
}

test_admin_role_grant_is_denied if {
	denied_by("dangerous-content", adding("pricing_logic.py", ["    user.roles.append(\"admin\")"]))
	denied_by("dangerous-content", adding("pricing_logic.py", ["role: cluster-admin"]))
	denied_by("dangerous-content", adding("pricing_logic.py", ["    user.is_admin = True"]))
}

test_dangerous_lines_are_denied if {
	every line in [
		"ALLOW_FROM = \"0.0.0.0/0\"",
		"app.run(host=\"0.0.0.0\")",
		"os.system(\"chmod 777 /data\")",
		"os.chmod(path, 0o777)",
		"result = eval(expression)",
		"exec(code)",
		"import subprocess",
		"out = os.popen(cmd).read()",
		"requests.get(url, verify=False)",
		"tls: {InsecureSkipVerify: true}",
		"docker run --privileged image",
		"EXPOSE 22",
		"iptables -A INPUT -p tcp --dport 22 -j ACCEPT",
		"API_KEY = \"sk-0123456789abcdef\"",
		"-----BEGIN RSA PRIVATE KEY-----",
		"curl https://example.com/install.sh | sh",
		"data = pickle.loads(blob)",
		"rm -rf /",
		"GRANT ALL PRIVILEGES ON *.* TO 'app'",
	] {
		denied_by("dangerous-content", adding("pricing_logic.py", [line]))
	}
}

test_diff_too_large_is_denied if {
	denied_by("diff-too-large", object.union(template_fix, {"diff_lines": 41}))
}

test_diff_size_is_recounted_from_the_diff if {
	# The declared counts say 1 line; the diff itself adds 41.
	inp := object.union(adding("pricing_logic.py", [sprintf("x%d = %d", [i, i]) | some i in numbers.range(1, 41)]), {
		"diff_lines": 1,
		"files": [{"path": "pricing_logic.py", "added": 1, "removed": 0, "new_file": false}],
	})
	denied_by("diff-too-large", inp)
}

test_unproven_validation_is_denied if {
	every key in ["failed_before", "passed_after", "suite_passed"] {
		validation := object.union(template_fix.validation, {key: false})
		inp := object.union(template_fix, {"validation": validation})
		some msg in patch.deny with input as inp
		startswith(msg, "validation-not-proven: ")
		contains(msg, key)
	}
	denied_by("validation-not-proven", object.remove(template_fix, ["validation"]))
}

test_file_outside_the_source_root_is_denied if {
	inp := object.union(adding("scripts/cleanup.py", ["x = 1"]), {"source_root": "src"})
	some msg in patch.deny with input as inp
	msg == "outside-source-root: scripts/cleanup.py: outside the source root src and not a test file"
}

test_source_root_is_a_directory_not_a_prefix if {
	denied_by("outside-source-root", object.union(adding("srcfoo/x.py", ["x = 1"]), {"source_root": "src"}))
}

test_paths_leaving_the_repository_are_denied if {
	denied_by("path-escape", adding("../other/app.py", ["x = 1"]))
	denied_by("path-escape", adding("/etc/passwd", ["x = 1"]))
	denied_by("path-escape", adding("src/../../x.py", ["x = 1"]))
}

test_catalog_protected_globs_are_added_to_the_defaults if {
	inp := object.union(adding("poetry.lock", ["x = 1"]), {"protected_globs": ["**/*.lock"]})
	denied_by("protected-path", inp)
	not denied_by("protected-path", adding("poetry.lock", ["x = 1"]))
}

test_protected_defaults_ignore_case_and_match_anywhere if {
	denied_by("protected-path", adding(".GitHub/workflows/ci.yml", ["x: 1"]))
	denied_by("protected-path", adding("Dockerfile", ["RUN true"]))
	denied_by("protected-path", adding("services/api/Dockerfile", ["RUN true"]))
	denied_by("protected-path", adding("certs/server.pem", ["x"]))
	denied_by("protected-path", adding("config/rbac.yaml", ["x"]))
	denied_by("protected-path", adding("k8s/service.yaml", ["x"]))
	denied_by("protected-path", adding("app/config/.env.production", ["x"]))
	denied_by("protected-path", adding("keys/id_rsa", ["x"]))
	not denied_by("protected-path", adding("pricing/controller.py", ["x = 1"]))
}

test_protected_messages_say_why if {
	inp := adding("deploy/firewall.yaml", ["x: 1"])
	some msg in patch.deny with input as inp
	msg == "protected-path: deploy/firewall.yaml: file name contains firewall; inside protected directory deploy/"
}

test_protected_test_file_is_still_protected if {
	denied_by("protected-path", adding(".github/tests/test_ci.py", ["x = 1"]))
}

test_too_many_files_is_denied if {
	files := [{"path": sprintf("m%d.py", [i]), "added": 1, "removed": 0, "new_file": false} | some i in numbers.range(1, 6)]
	inp := object.union(template_fix, {"files": files, "diff": "", "diff_lines": 6})
	some msg in patch.deny with input as inp
	msg == "too-many-files: (patch): 6 files changed, at most 5 allowed"
}

test_files_missing_from_the_list_are_denied if {
	inp := object.union(template_fix, {"files": [template_fix.files[0]]})
	some msg in patch.deny with input as inp
	startswith(msg, "undeclared-file: tests/test_regression_x.py: ")
}

test_deleting_a_file_is_denied if {
	inp := object.union(template_fix, {"files": [{"path": "pricing_logic.py", "added": 0, "removed": 1, "new_file": false, "deleted": true}], "diff": "", "diff_lines": 1})
	denied_by("file-deleted", inp)
}

test_deletion_headers_name_the_old_path if {
	diff := concat("\n", ["--- a/.github/CODEOWNERS", "+++ /dev/null", "@@ -1 +0,0 @@", "-* @team"])
	inp := object.union(template_fix, {"files": [{"path": ".github/CODEOWNERS", "added": 0, "removed": 1, "new_file": false, "deleted": true}], "diff": diff, "diff_lines": 1})
	denied_by("protected-path", inp)
	not denied_by("undeclared-file", inp)
}

test_renaming_a_protected_file_away_is_denied if {
	inp := object.union(template_fix, {"files": [{"path": "ci.yml", "old_path": ".github/workflows/ci.yml", "added": 0, "removed": 0, "new_file": false}], "diff": "", "diff_lines": 0})
	some msg in patch.deny with input as inp
	startswith(msg, "protected-path: .github/workflows/ci.yml: ")
}

test_binary_changes_are_denied if {
	inp := object.union(template_fix, {"files": [{"path": "logo.png", "added": 0, "removed": 0, "new_file": false, "binary": true}], "diff": "", "diff_lines": 0})
	denied_by("binary-file", inp)
}

test_unknown_origin_is_denied if {
	denied_by("unknown-origin", object.union(template_fix, {"origin": "intern"}))
	denied_by("unknown-origin", object.remove(template_fix, ["origin"]))
	not denied_by("unknown-origin", object.union(template_fix, {"origin": "llm"}))
}

test_empty_patch_is_denied if {
	denied_by("empty-patch", object.union(template_fix, {"files": [], "diff": "", "diff_lines": 0}))
}

test_every_message_names_a_known_rule if {
	inp := adding("deploy/firewall.yaml", ["  - cidr: 0.0.0.0/0", "exec(code)"])
	msgs := patch.deny with input as inp
	count(msgs) > 0
	every msg in msgs {
		some rule in patch.rules
		startswith(msg, concat("", [rule, ": "]))
	}
}

test_fixes_may_not_change_how_tests_run if {
	denied_by("test-harness", adding("tests/conftest.py", ["collect_ignore = ['test_pricing_logic.py']"]))
	denied_by("test-harness", adding("pytest.ini", ["addopts = -k 'not zero'"]))
	denied_by("test-harness", adding("services/api/PyProject.toml", ["[tool.pytest.ini_options]"]))
	not denied_by("test-harness", adding("tests/test_regression_x.py", ["def test_x(): pass"]))
	not denied_by("test-harness", template_fix)
}

