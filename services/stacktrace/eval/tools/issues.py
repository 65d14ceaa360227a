#!/usr/bin/env python3
"""Builds eval/cases/issues-<runtime>.jsonl and eval/repos/issue-*.json from the
hand-collected issue reports in eval/tools/issues_<runtime>.json.

Usage: issues.py <eval-dir>

Each entry of issues_<runtime>.json is one trace as a user pasted it into a public GitHub
issue or pull request (`url`), copied verbatim, with the culprit as `path:line` in that
repository: the innermost frame of the root cause that is the repository's own code, read
off the trace and the repository (and, where the thread names it, the fix commit `fix`).
`repo` holds the minimal repository facts: the build file that names the module/package
(`build_files`, only the line that matters) and/or the repository paths of the source files
the trace mentions (`files`). No source code.
"""
import json, os, re, sys

def main():
    evaldir = sys.argv[1]
    tools = os.path.join(evaldir, "tools")
    for name in sorted(os.listdir(tools)):
        m = re.match(r"^issues_(\w+)\.json$", name)
        if not m:
            continue
        runtime = m.group(1)
        entries = json.load(open(os.path.join(tools, name)))
        cases = []
        for e in entries:
            um = re.match(r"https://github\.com/([^/]+)/([^/]+)/(issues|pull)/(\d+)", e["url"])
            owner, repo, kind, num = um.groups()
            repo_name = f"issue-{owner}-{repo}".replace(".", "_")
            facts = {"source": e["url"], "files": sorted(set(e["repo"].get("files", []))),
                     "build_files": e["repo"].get("build_files", {})}
            with open(os.path.join(evaldir, "repos", repo_name + ".json"), "w") as f:
                json.dump(facts, f, indent=0, sort_keys=True)
                f.write("\n")
            case = {"id": f"issues/{owner}/{repo}#{num}", "runtime": runtime, "repo": repo_name,
                    "culprit": e["culprit"], "source": e["url"], "trace": e["trace"]}
            if e.get("fix"):
                case["fix"] = e["fix"]
            cases.append(case)
        with open(os.path.join(evaldir, "cases", f"issues-{runtime}.jsonl"), "w") as f:
            for c in cases:
                f.write(json.dumps(c, sort_keys=True) + "\n")
        print(runtime, len(cases), "cases", file=sys.stderr)

main()
