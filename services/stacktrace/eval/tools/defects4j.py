#!/usr/bin/env python3
"""Builds eval/cases/defects4j.jsonl and eval/repos/defects4j-*.json from a Defects4J checkout.

Usage: defects4j.py <defects4j-root> <eval-dir>

Each case is one trigger-test stack trace of a Defects4J bug whose root cause is an
exception thrown by code (assertion failures from the test framework are left out: their
"culprit" is the test's assertion line, not a crash). The known culprit is computed here,
independently of the Rust parser: the innermost frame of the root cause (the last
`Caused by:`) whose class Defects4J records as a class of the project (loaded_classes/N.src
for the main source, loaded_classes/N.test for the tests), else the same in the next
exception out. Its repository path is the project's source directory for that revision
(dir-layout.csv) + the class's package as directories + the frame's file name.

The repository facts of a case are the paths of the project's classes (the union over the
project's bugs with the same source layout), never source code.
"""
import csv, json, os, re, sys

ASSERTION = re.compile(r"^(junit\.framework\.(AssertionFailedError|ComparisonFailure)|org\.junit\.ComparisonFailure|java\.lang\.AssertionError|org\.opentest4j\.|junit\.framework\.AssertionError|org\.junit\.internal\.ArrayComparisonFailure)")
FRAME = re.compile(r"^\s*at\s+(?:[\w.@-]+/{1,2})?([^\s(]+)\(([^()]*)\)")

def top_level(cls, classes):
    """The top-level class of a binary class name: the shortest prefix at a `$` that is a
    class itself (`a.$Gson$Types$Wildcard` → `a.$Gson$Types`), else the part before `$`."""
    parts = cls.split("$")
    for i in range(1, len(parts) + 1):
        cand = "$".join(parts[:i])
        if cand in classes and not cand.endswith("."):
            return cand
    return parts[0] if parts[0] and not parts[0].endswith(".") else cls

def blocks(text):
    cur = None
    for line in text.splitlines():
        if line.startswith("--- "):
            if cur is not None:
                yield cur
            cur = [line[4:].strip(), []]
        elif cur is not None:
            cur[1].append(line)
    if cur is not None:
        yield cur

def sections(lines):
    """[(header, [frames])] outermost first; frames are (class, file, line)."""
    out = [[lines[0] if lines else "", []]]
    for l in lines[1:]:
        s = l.strip()
        if s.startswith("Caused by:"):
            out.append([s[len("Caused by:"):].strip(), []])
            continue
        m = FRAME.match(l)
        if m:
            name, loc = m.group(1), m.group(2)
            cls = name.rsplit(".", 1)[0]
            fl = loc.split(":")
            file = fl[0] if fl[0].endswith((".java",)) else None
            line = int(fl[1]) if len(fl) > 1 and fl[1].isdigit() else None
            out[-1][1].append((cls, file, line))
    return out

def main():
    root, evaldir = sys.argv[1], sys.argv[2]
    projects = os.path.join(root, "framework", "projects")
    cases, repos, pending = [], {}, []
    for proj in sorted(os.listdir(projects)):
        pdir = os.path.join(projects, proj)
        tdir = os.path.join(pdir, "trigger_tests")
        if not os.path.isdir(tdir):
            continue
        layout = {}
        with open(os.path.join(pdir, "dir-layout.csv")) as f:
            for row in csv.reader(f):
                if len(row) >= 3:
                    layout[row[0]] = (row[1], row[2])
        bugs = {}
        with open(os.path.join(pdir, "active-bugs.csv")) as f:
            for row in csv.DictReader(f):
                bugs[row["bug.id"]] = row
        for bug in sorted(os.listdir(tdir), key=lambda b: int(b) if b.isdigit() else 0):
            if bug not in bugs:
                continue
            rev = bugs[bug]["revision.id.buggy"]
            src, test = layout.get(rev, (None, None))
            if src is None:
                continue
            def load(kind):
                p = os.path.join(pdir, "loaded_classes", f"{bug}.{kind}")
                if not os.path.exists(p):
                    return set()
                return {l.strip() for l in open(p) if l.strip()}
            main_classes, test_classes = load("src"), load("test")
            repo_name = f"defects4j-{proj}-" + re.sub(r"[^A-Za-z0-9]+", "_", src).strip("_")
            repo = repos.setdefault(repo_name, {"project": proj, "src": src, "test": test, "main": set(), "tests": set()})
            repo["main"] |= main_classes
            repo["tests"] |= test_classes
            pending.append((proj, bug, repo_name, src, test))
    # Second pass: a case's culprit is judged against the same facts its repository lists
    # (the project's classes over all its bugs), not only the classes one bug's tests loaded.
    for proj, bug, repo_name, src, test in pending:
            pdir = os.path.join(projects, proj)
            tdir = os.path.join(pdir, "trigger_tests")
            main_classes, test_classes = repos[repo_name]["main"], repos[repo_name]["tests"]
            seen = set()
            with open(os.path.join(tdir, bug), errors="replace") as f:
                text = f.read()
            for test_name, lines in blocks(text):
                while lines and not lines[-1].strip():
                    lines.pop()
                if not lines or ASSERTION.match(lines[0].strip()):
                    continue
                body = "\n".join(lines) + "\n"
                if body in seen:
                    continue
                secs = sections(lines)
                culprit = None
                for header, frames in reversed(secs):
                    if ASSERTION.match(header):
                        break
                    for cls, file, line in frames:
                        pkg = cls.rsplit(".", 1)[0] if "." in cls else ""
                        # The file names the top-level class (`$Gson$Types.java`).
                        top = f"{pkg}.{file[:-5]}" if file else cls.split("$", 1)[0]
                        base = src if top in main_classes else test if top in test_classes else None
                        if base and file and line:
                            culprit = f"{base}/{pkg.replace('.', '/')}/{file}:{line}"
                            break
                    if culprit:
                        break
                if not culprit:
                    continue
                seen.add(body)
                cases.append({
                    "id": f"defects4j/{proj}-{bug}/{len(seen)}",
                    "runtime": "jvm",
                    "repo": repo_name,
                    "culprit": culprit,
                    "source": f"rjust/defects4j framework/projects/{proj}/trigger_tests/{bug} ({test_name})",
                    "trace": body,
                })
    os.makedirs(os.path.join(evaldir, "cases"), exist_ok=True)
    os.makedirs(os.path.join(evaldir, "repos"), exist_ok=True)
    with open(os.path.join(evaldir, "cases", "defects4j.jsonl"), "w") as f:
        for c in cases:
            f.write(json.dumps(c, sort_keys=True) + "\n")
    for name, r in repos.items():
        files = set()
        for base, classes in ((r["src"], r["main"]), (r["test"], r["tests"])):
            for c in classes:
                files.add(f"{base}/{top_level(c, classes).replace('.', '/')}.java")
        with open(os.path.join(evaldir, "repos", name + ".json"), "w") as f:
            json.dump({"source": f"Defects4J {r['project']}: loaded_classes (src and test) under dir-layout {r['src']} / {r['test']}",
                       "files": sorted(files), "build_files": {}}, f, indent=0, sort_keys=True)
            f.write("\n")
    print(len(cases), "cases,", len(repos), "repositories", file=sys.stderr)

main()
