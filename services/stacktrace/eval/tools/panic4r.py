#!/usr/bin/env python3
"""Builds eval/cases/panic4r.jsonl and eval/repos/panic4r-*.json from a Panic4R checkout.

Usage: panic4r.py <panic4r-root> <eval-dir>

Panic4R (cardigan1008/panic4r) holds reproducible panics of popular crates: for each, a
harness crate whose main.rs triggers the panic, the crate's source at the buggy commit in
`<crate>-<sha>/`, the panic message (src/panic_info.txt), the backtrace (src/backtrace) and
the fix location (src/perfect_location.txt). The trace of a case is the panic message
followed by the backtrace, as the process printed them. The known culprit is computed here,
independently of the Rust parser: the panic location when it lies in the crate's directory
(the service's repository; with `#[track_caller]` it is the failing call itself, and it is
more precise than the backtrace's line for the same frame), else the innermost backtrace
frame whose source file lies there; the path is relative to that directory. The fix location is kept beside it (`fix`).

The repository facts are the crate repository's `.rs` paths and its Cargo.toml files
(build files), never other source code.
"""
import json, os, re, sys

SHA_DIR = re.compile(r"^(?P<name>.+)-(?P<sha>[0-9a-f]{40})$")
AT = re.compile(r"^\s+at (?P<path>.+?):(?P<line>\d+)(?::\d+)?\s*$")
PANIC = re.compile(r"panicked at (?:'.*?', )?(?P<path>[^\s:]+):(?P<line>\d+):\d+")

def rel_in(path, repo_dir):
    path = path.replace("\\", "/")
    marker = "/" + repo_dir + "/"
    if marker in path:
        return path.split(marker, 1)[1]
    if path.startswith(repo_dir + "/"):
        return path[len(repo_dir) + 1:]
    return None

def main():
    root, evaldir = sys.argv[1], sys.argv[2]
    cases = []
    os.makedirs(os.path.join(evaldir, "repos"), exist_ok=True)
    for lib in sorted(os.listdir(root)):
        if not lib.startswith("lib-"):
            continue
        for case in sorted(os.listdir(os.path.join(root, lib))):
            cdir = os.path.join(root, lib, case)
            if case.endswith("-invalid") or not os.path.exists(os.path.join(cdir, "src", "backtrace")):
                continue
            repo_dirs = [d for d in os.listdir(cdir) if SHA_DIR.match(d) and os.path.isdir(os.path.join(cdir, d))]
            if len(repo_dirs) != 1:
                print("skip (repository directories):", case, repo_dirs, file=sys.stderr)
                continue
            repo_dir = repo_dirs[0]
            info_path = os.path.join(cdir, "src", "panic_info.txt")
            info = open(info_path, errors="replace").read().strip() if os.path.exists(info_path) else ""
            if len(info) > 1 and info[0] == '"' and info[-1] == '"':
                info = info[1:-1]
            bt = open(os.path.join(cdir, "src", "backtrace"), errors="replace").read().rstrip()
            trace = (info.rstrip() + "\n" if info else "") + bt + "\n"
            culprit = None
            m = PANIC.search(info)
            if m and rel_in(m.group("path"), repo_dir):
                culprit = f"{rel_in(m.group('path'), repo_dir)}:{m.group('line')}"
            if culprit is None:
                for line in bt.splitlines():
                    m = AT.match(line)
                    if m:
                        r = rel_in(m.group("path"), repo_dir)
                        if r:
                            culprit = f"{r}:{m.group('line')}"
                            break
            if culprit is None:
                print("skip (no frame in the crate):", case, file=sys.stderr)
                continue
            fix_path = os.path.join(cdir, "src", "perfect_location.txt")
            fix = [l.strip() for l in open(fix_path, errors="replace")] if os.path.exists(fix_path) else []
            files, build = [], {}
            base = os.path.join(cdir, repo_dir)
            for dp, dn, fn in os.walk(base):
                dn[:] = [d for d in dn if d not in (".git", "target")]
                for f in fn:
                    rel = os.path.relpath(os.path.join(dp, f), base)
                    if f.endswith(".rs"):
                        files.append(rel)
                    elif f == "Cargo.toml":
                        files.append(rel)
                        build[rel] = open(os.path.join(dp, f), errors="replace").read()
            repo_name = "panic4r-" + case
            with open(os.path.join(evaldir, "repos", repo_name + ".json"), "w") as f:
                json.dump({"source": f"Panic4R {lib}/{case}/{repo_dir}: .rs paths and Cargo.toml files",
                           "files": sorted(files), "build_files": build}, f, indent=0, sort_keys=True)
                f.write("\n")
            if any(c["id"] == f"panic4r/{case}" for c in cases):
                print("skip (duplicate of an earlier directory):", lib, case, file=sys.stderr)
                continue
            cases.append({"id": f"panic4r/{case}", "runtime": "rust", "repo": repo_name, "culprit": culprit,
                          "fix": [x for x in fix if x], "source": f"cardigan1008/panic4r {lib}/{case}", "trace": trace})
    with open(os.path.join(evaldir, "cases", "panic4r.jsonl"), "w") as f:
        for c in cases:
            f.write(json.dumps(c, sort_keys=True) + "\n")
    print(len(cases), "cases", file=sys.stderr)

main()
