# Patch policy: what a proposed fix may change before selfheal pushes it as a branch.
#
# The repairer evaluates `deny` on every candidate patch; any message stops the patch.
# Input (services/governance/src/patch.rs, PatchInput):
#   service, source_root, files[{path, added, removed, new_file, deleted, binary, old_path?}],
#   diff_lines, max_diff_lines, protected_globs, strategy, origin, validation{...}, diff.
# Paths are relative to the repository root and `/`-separated.
#
# Every message reads "<rule-id>: <file or (patch)>: <why>", so a reviewer sees which
# rule fired on which file and tests can tell rules apart.
#
# Regular expressions stick to ASCII classes ([ \t], [^a-z0-9_]) and match lower-cased
# text: regorus may be built without the regex crate's Unicode tables, where \s, \b and
# (?i) do not compile, and the same syntax runs unchanged under `opa test`.
package selfheal.patch

import rego.v1

# Every rule id this package can report; the engine reports their number as rules evaluated.
rules := {
	"empty-patch",
	"path-escape",
	"outside-source-root",
	"protected-path",
	"undeclared-file",
	"file-deleted",
	"binary-file",
	"too-many-files",
	"diff-too-large",
	"validation-not-proven",
	"unknown-origin",
	"dangerous-content",
	"test-harness",
}

default_max_diff_lines := 40

# A fix touches the faulty file and its regression test; five leaves room for a helper, not a refactor.
max_files_changed := 5

# Never changed by an automatic fix, whatever the catalog says; the catalog's
# protected_globs come on top. Compared lower-cased: a case-insensitive file system
# treats .GitHub like .github. Kept as names, suffixes and fragments rather than globs
# because each glob.match compiles a matcher, and ~100 of them per file made every
# evaluation slow.
protected_defaults := {
	# any directory on the path
	"directory": {
		".git", ".github", ".gitlab", ".circleci", ".buildkite", # version control and CI
		"secrets", # secrets
		"k8s", "kubernetes", "deploy", "deployment", "deployments", "manifests", # deployment
		"helm", "charts", "terraform", "ansible", # infrastructure
		"auth", "authz", # authentication and authorisation
	},
	# the file name, exactly
	"name": {
		".gitlab-ci.yml", ".travis.yml", ".drone.yml", "azure-pipelines.yml", # CI
		"bitbucket-pipelines.yml", "jenkinsfile", ".gitmodules", ".pre-commit-config.yaml",
		"codeowners", # review rules
		".env", # secrets
		"dockerfile", "containerfile", "compose.yml", "compose.yaml", "kustomization.yaml", # images and deployment
		"sudoers", "passwd", "shadow", # system accounts
	},
	# the start of the file name
	"name prefix": {"dockerfile.", "docker-compose", ".env.", "id_rsa", "id_ed25519", "id_ecdsa", "sudoers"},
	# the end of the file name
	"extension": {
		".pem", ".key", ".crt", ".p12", ".pfx", ".jks", ".keystore", # keys and certificates
		".dockerfile", ".tf", ".tfvars", # images and infrastructure
		".rego", # policies, these included
	},
	# anywhere in the file name
	"name fragment": {
		"secret", "credential", # secrets
		"firewall", "iptables", "nftables", "security-group", "security_group", # network exposure
		"securitygroup", "networkpolic", "ingress",
		"rbac", "role", "permission", # authorisation
	},
}

# Where a regression test may live even outside the source root. Case-sensitive: an allow list.
test_directories := {"tests", "test", "__tests__", "spec", "testdata"}

test_file_names := {"conftest.py"}

# Files that decide how a test suite is collected and run. A fix that changes them could make
# "the suite passes" mean less (skip, deselect, ignore, xfail), so no fix may touch them,
# whoever wrote it; a person changes them in a normal review. Compared lower-cased.
test_harness_names := {
	"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "noxfile.py", ".coveragerc",
	"jest.config.js", "jest.config.ts", "vitest.config.ts", "vitest.config.js", "karma.conf.js",
	".mocharc.json", ".mocharc.yml", "phpunit.xml", "build.gradle", "build.gradle.kts", "pom.xml",
}

test_name_suffixes := {
	"_test.py", "_test.go", "_test.rs", "_test.rb", "_spec.rb",
	"Test.java", "Tests.java", "IT.java", "Test.kt", "Tests.kt", "Test.scala", "Spec.scala",
	".test.js", ".test.jsx", ".test.ts", ".test.tsx", ".spec.js", ".spec.ts",
	"Test.cs", "Tests.cs",
}

# What an added line must not contain, by what it would do. Patterns match the lower-cased line.
dangerous_patterns := {
	"opens a network range to the whole internet (0.0.0.0/0 or ::/0)": `(^|[^0-9.])0\.0\.0\.0/0([^0-9]|$)|(^|[^0-9a-f:])::/0([^0-9]|$)`,
	"binds or allows every address (0.0.0.0)": `(^|[^0-9.])0\.0\.0\.0([^/0-9.]|$)`,
	"makes files world-writable (chmod 777, a+rwx, o+w)": `chmod.*(777|a\+rwx|o\+w)|0o777`,
	"evaluates code at run time (eval)": `(^|[^a-z0-9_])eval[ \t]*\(`,
	"executes code at run time (exec)": `(^|[^a-z0-9_])exec[ \t]*\(`,
	"spawns processes (subprocess, os.system, child_process, exec.Command, ProcessBuilder)": `subprocess|os\.(system|popen|spawn|exec)|child_process|runtime\.getruntime\(\)|processbuilder|exec\.command|process\.start[ \t]*\(|(^|[^a-z0-9_.])system[ \t]*\(`,
	"grants admin or superuser rights": `cluster-admin|(^|[^a-z0-9_])(is_?admin|is_?superuser|is_?staff)["']?[ \t]*[:=]+[ \t]*(true|1|yes)|(role|roles|group|groups)["']?[ \t]*(:=|=|:|\+=|\.append\(|\.add\().*(admin|superuser)|grant[ \t]+(all|admin|superuser)|nopasswd|(^|[^a-z0-9_])(add_role|grant_role|make_admin)[ \t]*\(`,
	"disables TLS certificate verification": `verify[ \t]*=[ \t]*false|insecureskipverify[ \t]*:?[ \t]*true|rejectunauthorized["']?[ \t]*:[ \t]*false|node_tls_reject_unauthorized|cert_none|check_hostname[ \t]*=[ \t]*false|ssl_?verify["']?[ \t]*[:=][ \t]*(false|0)|verify_ssl["']?[ \t]*[:=][ \t]*(false|0)|--insecure|trustallcerts|insecure_skip_tls_verify|curl.*[ \t]-k([ \t]|$)`,
	"runs privileged or escalates privileges (--privileged, privileged: true, root user)": `--privileged|privileged["']?[ \t]*:[ \t]*true|allowprivilegeescalation["']?[ \t]*:[ \t]*true|host(network|pid|ipc)["']?[ \t]*:[ \t]*true|runasuser["']?[ \t]*:[ \t]*0([^0-9]|$)|sys_admin|setuid[ \t]*\(`,
	"opens network ports or changes firewall rules": `(^|[^a-z0-9_])expose[ \t]+[0-9]|hostport|containerport|nodeport|--dport|iptables|nftables|ufw[ \t]+allow|firewall-cmd|(from|to)_port|security_?group|ingress[ \t]*[:={]|-p[ \t]+[0-9]+:[0-9]+|\.listen[ \t]*\(|socket\.bind|authorize_security_group`,
	"embeds a private key or credential": `-----begin [a-z ]*private key-----|(password|passwd|secret|api_?key|access_?key|auth_?token)["']?[ \t]*[:=][ \t]*["'][^"']{8,}["']|aws_secret_access_key|akia[0-9a-z]{16}`,
	"downloads and runs remote code or deserialises unsafely": `(curl|wget)[^|]*\|[ \t]*(ba|z)?sh|pickle\.loads?[ \t]*\(|yaml\.load[ \t]*\(|marshal\.loads|__import__[ \t]*\(`,
	"deletes files recursively from a root (rm -rf /)": `rm[ \t]+-[a-z]*r[a-z]*[ \t]+(/|~)([ \t*]|$)`,
}

deny contains msg if {
	count(touched_paths) == 0
	msg := "empty-patch: (patch): the patch changes no file"
}

deny contains msg if {
	some path in touched_paths
	escapes(path)
	msg := sprintf("path-escape: %s: path is empty, absolute or leaves the repository", [path])
}

deny contains msg if {
	some path in touched_paths
	not escapes(path)
	not in_source_root(path)
	not is_test_file(path)
	msg := sprintf("outside-source-root: %s: outside the source root %s and not a test file", [path, source_root])
}

deny contains msg if {
	some path in touched_paths
	reasons := sort([why | some hit in protection; hit[0] == path; why := hit[1]])
	count(reasons) > 0
	msg := sprintf("protected-path: %s: %s", [path, concat("; ", reasons)])
}

deny contains msg if {
	some path in diff_paths
	not path in declared_paths
	msg := sprintf("undeclared-file: %s: changed by the diff but missing from the file list", [path])
}

deny contains msg if {
	some file in files
	object.get(file, "deleted", false) == true
	msg := sprintf("file-deleted: %s: a fix may not delete files", [file.path])
}

deny contains msg if {
	some file in files
	object.get(file, "binary", false) == true
	msg := sprintf("binary-file: %s: binary changes cannot be reviewed or scanned", [file.path])
}

deny contains msg if {
	count(changed_files) > max_files_changed
	msg := sprintf("too-many-files: (patch): %d files changed, at most %d allowed", [count(changed_files), max_files_changed])
}

deny contains msg if {
	effective_diff_lines > max_diff_lines
	msg := sprintf("diff-too-large: (patch): %d changed lines, at most %d allowed", [effective_diff_lines, max_diff_lines])
}

deny contains msg if {
	some key, why in validation_proofs
	not object.get(validation, key, false) == true
	msg := sprintf("validation-not-proven: (patch): %s (validation.%s is not true)", [why, key])
}

deny contains msg if {
	not object.get(input, "origin", "") in {"template", "learned", "llm"}
	msg := sprintf("unknown-origin: (patch): origin %v is not template, learned or llm", [object.get(input, "origin", null)])
}

deny contains msg if {
	some why in suspicious
	some i in added_line_idx
	regex.match(dangerous_patterns[why], added_text(i))
	msg := sprintf("dangerous-content: %s: diff line %d %s", [file_of_line(i), i + 1, why])
}

deny contains msg if {
	some path in touched_paths
	parts := split(lower(path), "/")
	parts[count(parts) - 1] in test_harness_names
	msg := sprintf("test-harness: %s: decides how the tests are collected and run; a fix may not change it", [path])
}

allow if count(deny) == 0

# --- inputs with defaults -------------------------------------------------------------

files := object.get(input, "files", [])

validation := object.get(input, "validation", {})

validation_proofs := {
	"failed_before": "the regression test did not fail before the fix",
	"passed_after": "the regression test did not pass after the fix",
	"suite_passed": "the test suite did not pass with the fix",
}

max_diff_lines := input.max_diff_lines if {
	is_number(input.max_diff_lines)
	input.max_diff_lines > 0
} else := default_max_diff_lines

catalog_globs := object.get(input, "protected_globs", [])

source_root := root if {
	root := trim_suffix(trim_prefix(object.get(input, "source_root", "."), "./"), "/")
	not root in {"", "."}
} else := "."

# --- paths --------------------------------------------------------------------------

declared_paths contains file.path if some file in files

changed_files := declared_paths | diff_paths

# A rename changes its old path too: moving .github/workflows/ci.yml away deletes it.
touched_paths := changed_files | {file.old_path | some file in files; is_string(file.old_path)}

escapes(path) if path == ""

escapes(path) if startswith(path, "/")

escapes(path) if regex.match(`(^|/)\.\.(/|$)`, path)

in_source_root(_) if source_root == "."

in_source_root(path) if startswith(path, concat("", [source_root, "/"]))

is_test_file(path) if {
	segments := split(path, "/")
	some i, dir in segments
	i < count(segments) - 1
	dir in test_directories
}

is_test_file(path) if basename(path) in test_file_names

is_test_file(path) if {
	name := basename(path)
	startswith(name, "test_")
	endswith(name, ".py")
}

is_test_file(path) if {
	some suffix in test_name_suffixes
	endswith(basename(path), suffix)
}

basename(path) := name if {
	segments := split(path, "/")
	name := segments[count(segments) - 1]
}

# Why each touched path is protected, as [path, reason] pairs.
protection contains [path, sprintf("inside protected directory %s/", [dir])] if {
	some path in touched_paths
	segments := split(lower(path), "/")
	some i, dir in segments
	i < count(segments) - 1
	dir in protected_defaults.directory
}

protection contains [path, sprintf("protected file name %s", [name])] if {
	some path in touched_paths
	name := basename(lower(path))
	name in protected_defaults.name
}

protection contains [path, sprintf("file name starts with %s", [prefix])] if {
	some path in touched_paths
	some prefix in protected_defaults["name prefix"]
	startswith(basename(lower(path)), prefix)
}

protection contains [path, sprintf("protected extension %s", [extension])] if {
	some path in touched_paths
	some extension in protected_defaults.extension
	endswith(basename(lower(path)), extension)
}

protection contains [path, sprintf("file name contains %s", [fragment])] if {
	some path in touched_paths
	some fragment in protected_defaults["name fragment"]
	contains(basename(lower(path)), fragment)
}

protection contains [path, sprintf("matches protected glob %s", [glob])] if {
	some path in touched_paths
	some glob in catalog_globs
	glob_match(lower(glob), lower(path))
}

# "**/x" also matches "x" at the repository root, whatever the glob library does with it.
glob_match(glob, path) if glob.match(glob, ["/"], path)

glob_match(glob, path) if {
	startswith(glob, "**/")
	glob.match(substring(glob, 3, -1), ["/"], path)
}

# --- the unified diff ---------------------------------------------------------------

lines := [trim_suffix(line, "\r") | some line in split(object.get(input, "diff", ""), "\n")]

# "+++ " right after "--- " starts a file. A removed "-- x" followed by an added "++ y"
# looks the same; it then names an undeclared file and is denied, never skipped.
header_idx contains i if {
	some i, line in lines
	i > 0
	startswith(line, "+++ ")
	startswith(lines[i - 1], "--- ")
}

diff_paths contains header_path(i) if some i in header_idx

header_path(i) := strip_side(header_name(lines[i])) if {
	header_name(lines[i]) != "/dev/null"
} else := strip_side(header_name(lines[i - 1]))

header_name(line) := trim(split(substring(line, 4, -1), "\t")[0], "\"")

strip_side(path) := substring(path, 2, -1) if {
	some prefix in ["a/", "b/"]
	startswith(path, prefix)
} else := path

added_line_idx contains i if {
	some i, line in lines
	startswith(line, "+")
	not i in header_idx
}

removed_line_idx contains i if {
	some i, line in lines
	startswith(line, "-")
	next := i + 1
	not next in header_idx
}

added_text(i) := lower(substring(lines[i], 1, -1))

# Compiling a regular expression dominates the cost of an evaluation, so the patterns
# run as one alternation over all added lines first (multi-line mode, so ^ and $ still
# mean a line); only when it hits does each pattern run, and only the patterns that hit
# are matched line by line to say where. A clean patch compiles one expression.
any_suspicious if regex.match(all_patterns, all_added_text)

all_patterns := concat("", ["(?m)", concat("|", [concat("", ["(?:", pattern, ")"]) | some pattern in dangerous_patterns])])

suspicious contains why if {
	any_suspicious
	some why, pattern in dangerous_patterns
	regex.match(concat("", ["(?m)", pattern]), all_added_text)
}

all_added_text := concat("\n", [added_text(i) | some i in added_line_idx])

file_of_line(i) := header_path(max(before)) if {
	before := [h | some h in header_idx; h < i]
	count(before) > 0
} else := "(no file header)"

effective_diff_lines := max([
	object.get(input, "diff_lines", 0),
	sum([(object.get(file, "added", 0) + object.get(file, "removed", 0)) | some file in files]),
	count(added_line_idx) + count(removed_line_idx),
])
