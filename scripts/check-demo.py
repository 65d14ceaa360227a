#!/usr/bin/env python3
"""The README's first command, as a new user runs it, checked: CI calls this from scripts/test.sh.

Runs `scripts/demo.sh --json` exactly as written (same script, same defaults) twice in one
fresh state directory (SELFHEAL_DEMO_DIR) and checks the Outcome on the last line of each run:

  1st run: Healed; culprit pricing_logic.py:14 in calc; a selfheal/... branch; the regression
           test failed before the fix and passed after it (whole suite green); nothing learned yet.
  2nd run: Healed, the same failure fingerprint, and the fix the learning store remembered was
           the first candidate tried and the one selected.

The demo's own output streams through (it is the demo a person would see) and ends up in the CI
log. Every SELFHEAL_* variable except SELFHEAL_CACHE is removed from the demo's environment, since
a new user has none (scripts/test.sh exports the test model's SELFHEAL_LLM_* settings, which would
otherwise switch a model on). Exit status: 0 when every check holds, 1 otherwise (each failed check
is named).

    scripts/check-demo.py [--state-dir DIR]   # DIR: keep the runs there (default: a temp dir, removed)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_demo(state_dir, label):
    """Runs scripts/demo.sh --json; returns (exit code, the Outcome or None, seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFHEAL_") or k == "SELFHEAL_CACHE"}
    env["SELFHEAL_DEMO_DIR"] = state_dir
    print(f"check-demo: {label}: scripts/demo.sh --json (SELFHEAL_DEMO_DIR={state_dir})", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        ["scripts/demo.sh", "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, errors="replace"
    )
    last = ""
    for line in proc.stdout:
        # The JSON line is long: the diff and the test are in it. Show the rest of the story.
        if line.startswith("{"):
            print(f"  {{ Outcome JSON, {len(line)} bytes }}", flush=True)
        else:
            sys.stdout.write(line)
            sys.stdout.flush()
        if line.strip():
            last = line.strip()
    code = proc.wait()
    secs = time.monotonic() - started
    try:
        outcome = json.loads(last)
    except json.JSONDecodeError:
        outcome = None
    print(f"check-demo: {label}: exit {code} after {secs:.0f}s", flush=True)
    return code, outcome, secs


class Checks:
    def __init__(self):
        self.failed = []

    def expect(self, label, ok, got):
        mark = "ok  " if ok else "FAIL"
        print(f"check-demo: {mark} {label}" + ("" if ok else f" (got: {got!r})"), flush=True)
        if not ok:
            self.failed.append(label)


def get(obj, *path):
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return None
    return obj


def check_first(c, code, o):
    c.expect("run 1: exit status 0", code == 0, code)
    c.expect("run 1: the last line is the Outcome as JSON", isinstance(o, dict), o)
    if not isinstance(o, dict):
        return
    c.expect("run 1: status Healed", o.get("status") == "Healed", (o.get("status"), o.get("summary")))
    rc = o.get("root_cause") or {}
    c.expect(
        "run 1: culprit pricing_logic.py:14 in calc",
        (rc.get("file"), rc.get("line"), rc.get("function")) == ("pricing_logic.py", 14, "calc"),
        (rc.get("file"), rc.get("line"), rc.get("function")),
    )
    branch = get(o, "fix", "branch") or ""
    c.expect("run 1: the fix is on a selfheal/… branch", branch.startswith("selfheal/") and len(branch) > 9, branch)
    v = o.get("validation") or {}
    c.expect("run 1: the regression test failed before the fix", v.get("failed_before") is True, v.get("failed_before"))
    c.expect("run 1: the regression test passed after the fix", v.get("passed_after") is True, v.get("passed_after"))
    c.expect("run 1: the whole suite passed", v.get("suite_passed") is True, v)
    test_file = get(o, "regression_test", "file")
    c.expect(
        "run 1: the regression test is part of the fix",
        bool(test_file) and test_file in (get(o, "fix", "files_changed") or []),
        (test_file, get(o, "fix", "files_changed")),
    )
    c.expect("run 1: nothing was learned before (fresh state directory)", get(o, "fix", "learned") is False,
             get(o, "fix", "learned"))
    c.expect("run 1: promoted", get(o, "rollout", "final_step") == "Promoted", get(o, "rollout", "final_step"))


def check_second(c, code, o, first):
    c.expect("run 2: exit status 0", code == 0, code)
    c.expect("run 2: the last line is the Outcome as JSON", isinstance(o, dict), o)
    if not isinstance(o, dict):
        return
    c.expect("run 2: status Healed", o.get("status") == "Healed", (o.get("status"), o.get("summary")))
    if isinstance(first, dict):
        c.expect("run 2: the same failure (fingerprint)", o.get("fingerprint") == first.get("fingerprint"),
                 (o.get("fingerprint"), first.get("fingerprint")))
    c.expect("run 2: the fix came from the learning store", get(o, "fix", "learned") is True, get(o, "fix", "learned"))
    attempts = o.get("attempts") or []
    a0 = attempts[0] if attempts else {}
    c.expect(
        "run 2: the learned fix was tried first and selected",
        str(a0.get("strategy", "")).startswith("learned:") and a0.get("result") == "selected",
        [(a.get("strategy"), a.get("result")) for a in attempts],
    )
    v = o.get("validation") or {}
    c.expect("run 2: its regression test failed before and passed after",
             v.get("failed_before") is True and v.get("passed_after") is True, v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state-dir", help="keep the runs here (must be empty or absent)")
    args = ap.parse_args()
    state = args.state_dir or tempfile.mkdtemp(prefix="selfheal-demo-check-")
    os.makedirs(state, exist_ok=True)
    if os.listdir(state):
        sys.exit(f"check-demo: {state} is not empty: the first run must find no learning store")
    c = Checks()
    try:
        code1, o1, s1 = run_demo(state, "run 1")
        check_first(c, code1, o1)
        code2, o2, s2 = run_demo(state, "run 2")
        check_second(c, code2, o2, o1)
        print(f"check-demo: wall time (build + demo): run 1 {s1:.0f}s, run 2 {s2:.0f}s", flush=True)
    finally:
        if not args.state_dir and not c.failed:
            shutil.rmtree(state, ignore_errors=True)
    if c.failed:
        print(f"check-demo: {len(c.failed)} check(s) failed; runs kept in {state}", file=sys.stderr)
        sys.exit(1)
    print("check-demo: the README's first command heals the incident, and the second run uses what it learned")


if __name__ == "__main__":
    main()
