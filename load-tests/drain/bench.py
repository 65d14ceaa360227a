#!/usr/bin/env python3
"""Benchmark: selfheal-drain against the Python drain3 package.

Runs both miners on the same files, one after the other on the same machine,
and prints lines per second for both and their ratio, grouping accuracy on
the labelled loghub samples (when ../shared/loghub exists) and on a generated
1M-line synthetic file, and the peak resident memory of both on that file.

Usage: bench.py [--lines N] [--skip-build] [--drain3-max-lines N]
Environment: SELFHEAL_CACHE (default ~/.cache/selfheal) holds the venv with
drain3, the generated file and the outputs; CARGO_TARGET_DIR is honoured.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("SELFHEAL_CACHE", Path.home() / ".cache" / "selfheal"))
WORK = CACHE / "bench-drain"
VENV = CACHE / "venv-bench"
DRAIN3_VERSION = "0.9.11"

# The logparser benchmark's settings (logparser/benchmark/Drain_benchmark.py):
# log format, per-dataset preprocessing regexes, similarity threshold, depth.
# Drain's published grouping accuracy on the same 2k samples is given for reference.
LOGHUB = {
    "HDFS": {
        "format": "<Date> <Time> <Pid> <Level> <Component>: <Content>",
        "regex": [r"blk_-?\d+", r"(\d+\.){3}\d+(:\d+)?"],
        "st": 0.5,
        "depth": 4,
        "published": 0.9975,
    },
    "OpenSSH": {
        "format": r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
        "regex": [r"(\d+\.){3}\d+", r"([\w-]+\.){2,}[\w-]+"],
        "st": 0.6,
        "depth": 5,
        "published": 0.7875,
    },
}

# selfheal-drain's defaults, given to both miners when no per-dataset tuning is given.
DEFAULT_ST = 0.6
DEFAULT_DEPTH = 4
SYNTH_FORMAT = r"<Timestamp> <Level> \[<Component>\] <Content>"

# drain3 masking instructions equivalent to selfheal-drain's built-in masks
# (drain3's own example configuration, extended with UUID, timestamp and path),
# so that both do the same masking work in the default configuration.
DRAIN3_DEFAULT_MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})((?=[^A-Za-z0-9])|$)", "UUID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}([.,]\d+)?(Z|[+-]\d{2}:?\d{2})?)?|\d{1,2}:\d{2}:\d{2}([.,]\d+)?)((?=[^A-Za-z0-9])|$)", "TS"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d{1,5})?)((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^\w/])|^)((\.{1,2}|~)?(/[\w.-]+){2,})", "PATH"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-fA-F0-9]+|(?=[a-fA-F]*\d)(?=\d*[a-fA-F])[a-fA-F0-9]{8,})((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+(\.\d+)?)((?=[^A-Za-z0-9])|$)", "NUM"),
]

DRAIN3_RUNNER = r'''
import json, re, sys, time
from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

spec = json.loads(sys.argv[1])
cfg = TemplateMinerConfig()
cfg.profiling_enabled = False
cfg.drain_sim_th = spec["st"]
cfg.drain_depth = spec["depth"]
cfg.drain_max_children = 100
cfg.masking_instructions = [MaskingInstruction(p, m) for p, m in spec["masks"]]
miner = TemplateMiner(config=cfg)

fmt = None
content_idx = None
if spec["format"]:
    # logparser's generate_logformat_regex
    parts = re.split(r"(<[^<>]+>)", spec["format"])
    rx = ""
    headers = []
    for k, p in enumerate(parts):
        if k % 2 == 0:
            rx += re.sub(" +", r"\\s+", p)
        else:
            h = p.strip("<").strip(">")
            rx += "(?P<%s>.*?)" % h
            headers.append(h)
    fmt = re.compile("^" + rx + "$")

start = time.perf_counter()
ids = []
with open(spec["file"], encoding="utf-8", errors="replace", newline="\n") as f:
    for line in f:
        line = line.rstrip("\n").rstrip("\r")
        if fmt is not None:
            m = fmt.match(line)
            if m:
                line = m.group("Content")
        r = miner.add_log_message(line)
        ids.append(r["cluster_id"])
secs = time.perf_counter() - start
with open(spec["out"], "w") as o:
    for i, cid in enumerate(ids, 1):
        o.write("%d\t%d\n" % (i, cid))
print(json.dumps({"lines": len(ids), "secs": secs, "templates": len(miner.drain.clusters)}))
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


TIME = Path("/usr/bin/time")


def run_with_rss(cmd):
    """Runs cmd; returns (stdout, stderr, wall seconds, peak RSS in KiB).

    Peak RSS comes from /usr/bin/time when present: os.wait4's ru_maxrss of a
    child forked from this (large) Python process would count the pages the
    child shared with it before exec."""
    start = time.perf_counter()
    outf, errf, rssf = WORK / "stdout.tmp", WORK / "stderr.tmp", WORK / "rss.tmp"
    full = [str(TIME), "-f", "%M", "-o", str(rssf)] + cmd if TIME.exists() else cmd
    with open(outf, "wb") as o, open(errf, "wb") as e:
        p = subprocess.Popen(full, stdout=o, stderr=e)
        _, status, ru = os.wait4(p.pid, 0)
        code = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    out = outf.read_text(errors="replace")
    err = errf.read_text(errors="replace")
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(map(str, cmd))}\n{err}")
    rss = int(rssf.read_text().split()[-1]) if TIME.exists() else ru.ru_maxrss  # KiB on Linux
    return out, err, wall, rss


def build(skip):
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "release" / "selfheal-drain"
    if not skip:
        log("building selfheal-drain (release)...")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "selfheal-drain", "--bins"], cwd=REPO, check=True)
    if not binary.exists():
        raise SystemExit(f"no binary at {binary}")
    return binary


def ensure_venv():
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"creating venv {VENV}...")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    ok = subprocess.run([str(py), "-c", f"import importlib.metadata as m; assert m.version('drain3') == '{DRAIN3_VERSION}'"],
                        capture_output=True).returncode == 0
    if not ok:
        log(f"pip install drain3=={DRAIN3_VERSION}...")
        subprocess.run([str(py), "-m", "pip", "install", "-q", f"drain3=={DRAIN3_VERSION}"], check=True)
    return py


# ---------------------------------------------------------------- synthetic data

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
         "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"]
SERVICES = ["pricing-api", "checkout", "auth", "inventory", "search", "billing", "gateway"]
LEVELS = ["INFO"] * 8 + ["DEBUG"] * 3 + ["WARN"] * 2 + ["ERROR"]


def synthetic_templates(rng):
    ip = lambda: f"{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    num = lambda: str(rng.randint(0, 100000))
    ms = lambda: f"{rng.randint(1, 9999)}ms"
    uid = lambda: "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                                  rng.getrandbits(16), rng.getrandbits(48))
    hx = lambda: "0x%x" % rng.getrandbits(40)
    sha = lambda: "%040x" % rng.getrandbits(160)
    path = lambda: "/var/lib/" + rng.choice(WORDS) + "/" + rng.choice(WORDS) + "/" + num() + ".dat"
    user = lambda: rng.choice(USERS)
    word = lambda: rng.choice(WORDS)
    svc = lambda: rng.choice(SERVICES)
    return [
        lambda: f"Connection to {ip()}:{rng.randint(1024, 65535)} timed out after {ms()}",
        lambda: f"Accepted connection from {ip()} port {num()}",
        lambda: f"User {user()} logged in from {ip()} session {uid()}",
        lambda: f"User {user()} logged out after {num()} seconds",
        lambda: f"GET /api/v1/items/{num()} returned 200 in {ms()}",
        lambda: f"POST /api/v1/orders returned 201 in {ms()} request_id={uid()}",
        lambda: f"Cache miss for key item:{num()} in region {word()}",
        lambda: f"Cache hit ratio {rng.random():.3f} over last {num()} requests",
        lambda: f"Worker {num()} started with pid {num()}",
        lambda: f"Worker {num()} exited with status {rng.randint(0, 255)}",
        lambda: f"Scheduled job {word()}-{word()} finished in {ms()} processed {num()} records",
        lambda: f"Failed to open file {path()}: permission denied",
        lambda: f"Wrote {num()} bytes to {path()}",
        lambda: f"Retrying request to {svc()} attempt {rng.randint(1, 9)} of 10 after {ms()} backoff",
        lambda: f"Circuit breaker for {svc()} opened after {rng.randint(5, 50)} consecutive failures",
        lambda: f"Circuit breaker for {svc()} closed",
        lambda: f"Deployed revision {sha()} to {svc()} canary",
        lambda: f"Memory usage {rng.randint(10, 99)}% heap {num()} KB gc pause {ms()}",
        lambda: f"Transaction {uid()} committed {rng.randint(1, 500)} rows",
        lambda: f"Transaction {uid()} rolled back: deadlock detected on table {word()}",
        lambda: f"Segfault at address {hx()} in thread {num()}",
        lambda: f"Division by zero in compute_discount for order {num()} customer {user()}",
        lambda: f"Health check passed for {svc()} in {ms()}",
        lambda: f"Health check failed for {svc()}: connection refused by {ip()}",
        lambda: f"Rate limit exceeded for client {ip()} on route /api/v1/{word()} limit {num()} per minute",
        lambda: f"Loaded configuration from {path()} with {rng.randint(1, 300)} keys",
        lambda: f"Kafka consumer group {word()} rebalanced partitions {rng.randint(0, 31)} to {rng.randint(0, 31)}",
        lambda: f"Offset {num()} committed for topic telemetry.raw partition {rng.randint(0, 31)}",
        lambda: f"TLS handshake with {ip()} failed: certificate expired on {rng.randint(2019, 2024)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        lambda: f"Request {uid()} from {user()} took {ms()} and returned {rng.randint(1, 999)} items",
    ]


def make_synthetic(path, n):
    rng = random.Random(20240501)
    ts = synthetic_templates(rng)
    weights = [1.0 / (i + 1) for i in range(len(ts))]  # Zipf-ish: a few templates dominate
    truth = path.with_suffix(".truth")
    log(f"generating {n} synthetic lines at {path}...")
    with open(path, "w") as f, open(truth, "w") as t:
        t0 = 1714557600.0
        for i in range(n):
            k = rng.choices(range(len(ts)), weights)[0]
            sec = t0 + i * 0.01
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%03dZ" % (i % 1000)
            f.write(f"{stamp} {rng.choice(LEVELS)} [{rng.choice(SERVICES)}] {ts[k]()}\n")
            t.write(f"E{k + 1}\n")


# ---------------------------------------------------------------- accuracy

def grouping_accuracy(truth, parsed):
    """logparser's evaluator: a line is right when the set of lines sharing its
    parsed template is exactly the set of lines sharing its true template."""
    assert len(truth) == len(parsed), (len(truth), len(parsed))
    truth_size = Counter(truth)
    by_parsed = defaultdict(list)
    for i, p in enumerate(parsed):
        by_parsed[p].append(i)
    right = 0
    for idx in by_parsed.values():
        labels = {truth[i] for i in idx}
        if len(labels) == 1 and truth_size[next(iter(labels))] == len(idx):
            right += len(idx)
    return right / len(truth)


def read_truth_csv(path):
    import csv
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        return [row["EventId"] for row in csv.DictReader(f)]


def read_ids(path, col):
    ids = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("#"):
                if line.startswith("# templates"):
                    break
                continue
            ids.append(line.split("\t", 2)[col])
    return ids


# ---------------------------------------------------------------- runs

def run_selfheal(binary, file, spec, tag, classic=False):
    out = WORK / f"selfheal-{tag}{'-classic' if classic else ''}.tsv"
    cmd = [str(binary), "templates", str(file), "--out", str(out), "--stats",
           "--st", str(spec["st"]), "--depth", str(spec["depth"])]
    if classic:
        cmd.append("--drain-similarity")
    if spec.get("format"):
        cmd += ["--format", spec["format"]]
    for r in spec.get("regex", []):
        cmd += ["--regex", r]
    _, err, wall, rss = run_with_rss(cmd)
    stats = dict(kv.split("=", 1) for kv in err.strip().splitlines()[-1].split())
    return {"lines": int(stats["lines"]), "secs": float(stats["secs"]), "wall": wall, "rss_kib": rss,
            "templates": int(stats["templates"]), "ids": read_ids(out, 1)}


def run_drain3(py, file, spec, tag):
    out = WORK / f"drain3-{tag}.tsv"
    masks = [(r, "*") for r in spec.get("regex", [])] if spec.get("regex") else DRAIN3_DEFAULT_MASKS
    arg = json.dumps({"file": str(file), "out": str(out), "st": spec["st"], "depth": spec["depth"],
                      "format": spec.get("format"), "masks": masks})
    stdout, _, wall, rss = run_with_rss([str(py), "-c", DRAIN3_RUNNER, arg])
    res = json.loads(stdout.strip().splitlines()[-1])
    ids = [l.split("\t")[1].strip() for l in open(out)]
    return {"lines": res["lines"], "secs": res["secs"], "wall": wall, "rss_kib": rss,
            "templates": res["templates"], "ids": ids}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="synthetic file size")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--loghub", default=None, help="loghub samples directory (default: ../shared/loghub)")
    args = ap.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    binary = build(args.skip_build)
    py = ensure_venv()

    loghub = None
    for cand in ([args.loghub] if args.loghub else []) + [REPO.parent / "shared" / "loghub", Path("/work/shared/loghub")]:
        if cand and Path(cand).is_dir():
            loghub = Path(cand)
            break

    synth = WORK / f"synthetic_{args.lines}.log"
    if not synth.exists() or not synth.with_suffix(".truth").exists():
        make_synthetic(synth, args.lines)

    # (name, file, truth, spec, published accuracy)
    runs = []
    if loghub:
        for name, ds in LOGHUB.items():
            f = loghub / name / f"{name}_2k.log"
            truth_csv = loghub / name / f"{name}_2k.log_structured.csv"
            if not f.exists():
                continue
            truth = read_truth_csv(truth_csv) if truth_csv.exists() else None
            runs.append((f"{name}_2k default", f, truth, {"format": ds["format"], "st": DEFAULT_ST, "depth": DEFAULT_DEPTH}, None))
            runs.append((f"{name}_2k benchmark", f, truth,
                         {"format": ds["format"], "regex": ds["regex"], "st": ds["st"], "depth": ds["depth"]}, ds["published"]))
        # The 2k samples take a few milliseconds to mine, too short to time reliably
        # (one-off costs such as the regex engines warming up dominate): the same
        # files repeated 50 times give the steady-state throughput.
        for name, ds in LOGHUB.items():
            f = loghub / name / f"{name}_2k.log"
            if not f.exists():
                continue
            rep = WORK / f"{name}_2k_x50.log"
            if not rep.exists():
                data = f.read_bytes()
                if not data.endswith(b"\n"):
                    data += b"\n"
                rep.write_bytes(data * 50)
            runs.append((f"{name}_2k x50 default", rep, None, {"format": ds["format"], "st": DEFAULT_ST, "depth": DEFAULT_DEPTH}, None))
            runs.append((f"{name}_2k x50 benchmark", rep, None,
                         {"format": ds["format"], "regex": ds["regex"], "st": ds["st"], "depth": ds["depth"]}, None))
    else:
        log("no loghub samples found: accuracy on labelled samples skipped")
    synth_truth = [l.strip() for l in open(synth.with_suffix(".truth"))]
    runs.append((f"synthetic_{args.lines // 1000}k default", synth, synth_truth,
                 {"format": SYNTH_FORMAT, "st": DEFAULT_ST, "depth": DEFAULT_DEPTH}, None))

    results = []
    for name, f, truth, spec, published in runs:
        tag = name.replace(" ", "_")
        log(f"{name}: selfheal-drain...")
        s = run_selfheal(binary, f, spec, tag)
        log(f"{name}: drain3...")
        d = run_drain3(py, f, spec, tag)
        acc_s = grouping_accuracy(truth, s["ids"]) if truth else None
        acc_d = grouping_accuracy(truth, d["ids"]) if truth else None
        acc_c = None
        if truth:
            log(f"{name}: selfheal-drain --drain-similarity...")
            acc_c = grouping_accuracy(truth, run_selfheal(binary, f, spec, tag, classic=True)["ids"])
        results.append((name, s, d, acc_s, acc_c, acc_d, published))

    cpu = ""
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"selfheal-drain vs drain3 {DRAIN3_VERSION}: same files, same machine ({os.cpu_count()} CPUs, {cpu}), one after the other")
    print("lines/s = lines / seconds spent reading, extracting <Content> (loghub files) and mining, inside each process")
    print(f"default = built-in masks (drain3 given regexes equivalent to selfheal's), st {DEFAULT_ST}, depth {DEFAULT_DEPTH};")
    print("benchmark = logparser's per-dataset regexes (masked to <*>), st and depth, for both miners;")
    print("acc = grouping accuracy (logparser's definition); 'acc Drain-sim' = selfheal-drain --drain-similarity")
    print()
    print(f"{'file / config':30} {'lines':>9} {'selfheal l/s':>13} {'drain3 l/s':>11} {'ratio':>7} "
          f"{'templates s/d':>14} {'acc selfheal':>13} {'acc Drain-sim':>14} {'acc drain3':>11} {'Drain paper':>12}")
    tot_s = tot_d = 0.0
    tot_lines = 0
    for name, s, d, acc_s, acc_c, acc_d, published in results:
        ls = s["lines"] / s["secs"]
        ld = d["lines"] / d["secs"]
        tot_s += s["secs"]
        tot_d += d["secs"]
        tot_lines += s["lines"]
        fmt = lambda a: f"{a:.4f}" if a is not None else "-"
        print(f"{name:30} {s['lines']:>9} {ls:>13,.0f} {ld:>11,.0f} {ld and ls / ld:>6.1f}x "
              f"{str(s['templates']) + '/' + str(d['templates']):>14} {fmt(acc_s):>13} {fmt(acc_c):>14} {fmt(acc_d):>11} {fmt(published):>12}")
    print(f"{'all runs':30} {tot_lines:>9} {tot_lines / tot_s:>13,.0f} {tot_lines / tot_d:>11,.0f} {tot_d / tot_s:>6.1f}x")
    big = results[-1]
    s, d = big[1], big[2]
    print()
    print(f"{big[0]}: wall clock per process (startup, mining, writing per-line output): "
          f"selfheal {s['wall']:.2f} s, drain3 {d['wall']:.2f} s ({d['wall'] / s['wall']:.1f}x)")
    print(f"peak RSS on {big[0].split()[0]} ({s['lines']} lines): selfheal {s['rss_kib'] / 1024:.1f} MiB, "
          f"drain3 {d['rss_kib'] / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
