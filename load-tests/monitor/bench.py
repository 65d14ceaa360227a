#!/usr/bin/env python3
"""selfheal-monitor vs a no-op librdkafka consumer (kcat) reading the same telemetry.raw.

Run by bench.sh. Fills (once) a telemetry.raw topic with --records records written by the
real selfheal-collector from telemetrygen traffic (skipped if the topic already holds them),
then reads all of it, in alternating order, --runs times with each reader:

- kcat: `kcat -C -o beginning -e -q` to /dev/null (no group, all partitions), from spawn to exit;
- selfheal-monitor: a fresh consumer group, from spawn until its selfheal_records_in_total
  reaches the record count (so its start-up and group join are included).

Per run: records/s, CPU-seconds (utime+stime), peak RSS. Prints the medians as a table.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_until(what, pred, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def end_offsets(brokers, topic, partitions):
    args = ["kcat", "-Q", "-b", brokers]
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return 0
    total = 0
    for line in out.stdout.splitlines():
        parts = line.split()
        if "offset" in parts:
            total += int(parts[parts.index("offset") + 1])
    return total


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fill(a, workdir):
    have = end_offsets(a.brokers, a.topic, a.partitions)
    if have >= a.records:
        print(f"{a.topic} already holds {have:,} records", file=sys.stderr)
        return have
    need = a.records - have
    spans_per_trace = a.child_spans + 1
    traces = -(-need // (a.workers * spans_per_trace))
    port, ops = free_port(), free_port()
    log = open(os.path.join(workdir, "fill-collector.log"), "w")
    coll = subprocess.Popen(
        [a.collector_bin, "--kafka-brokers", a.brokers, "--schema-registry-url", a.registry, "--topic-prefix",
         a.prefix, "--http-addr", f"127.0.0.1:{ops}", "--otlp-http-addr", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, SELFHEAL_LOG="warn"))
    try:
        wait_until("collector /readyz", lambda: http_get(f"http://127.0.0.1:{ops}/readyz")[0] == 200, 120, coll)
        t0 = time.monotonic()
        print(f"filling {a.topic} with {traces * a.workers * spans_per_trace:,} spans through selfheal-collector",
              file=sys.stderr)
        # Throttled: telemetrygen drops spans silently when unthrottled.
        subprocess.run(
            [a.telemetrygen_bin, "traces", "--otlp-http", "--otlp-insecure", "--otlp-endpoint", f"127.0.0.1:{port}",
             "--workers", str(a.workers), "--traces", str(traces), "--child-spans", str(a.child_spans), "--batch-size", str(a.batch_size),
             "--rate", str(a.fill_rate / a.workers), "--service", "checkout"],  # --rate: spans/s per worker
            check=True, capture_output=True, timeout=7200)
        last, since = -1, time.monotonic()
        while True:
            n = end_offsets(a.brokers, a.topic, a.partitions)
            if n >= a.records or time.monotonic() - since > 15:
                break
            if n != last:
                last, since = n, time.monotonic()
            time.sleep(0.5)
    finally:
        stop(coll)
        log.close()
    n = end_offsets(a.brokers, a.topic, a.partitions)
    print(f"filled: {n:,} records in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return n


def run_kcat(a, n):
    t0 = time.monotonic()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(["kcat", "-C", "-b", a.brokers, "-t", a.topic, "-o", "beginning", "-e", "-q"],
                                stdout=null, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = status
    wall = time.monotonic() - t0
    cpu = ru.ru_utime + ru.ru_stime
    return dict(wall=wall, cpu=cpu, rss=ru.ru_maxrss / 1024, rate=n / wall, ok=status == 0, first=None)


def run_monitor(a, n, workdir, i):
    ops = free_port()
    log = open(os.path.join(workdir, f"monitor-{i}.log"), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [a.monitor_bin, "--kafka-brokers", a.brokers, "--schema-registry-url", a.registry, "--topic-prefix", a.prefix,
         "--http-addr", f"127.0.0.1:{ops}", "--group-id", f"lt-monitor-{os.getpid()}-{i}"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, SELFHEAL_LOG="warn"))
    first = None
    try:
        last, since = -1, time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"selfheal-monitor exited with {proc.returncode}; see {log.name}")
            got = 0
            try:
                text = http_get(f"http://127.0.0.1:{ops}/metrics")[1]
                got = int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                              if l.startswith("selfheal_records_in_total")))
            except Exception:
                pass
            now = time.monotonic()
            if got and first is None:
                first = now - t0
            if got >= n:
                break
            if got != last:
                last, since = got, now
            elif now - since > 60:
                raise RuntimeError(f"selfheal-monitor stuck at {got:,} of {n:,} records")
            time.sleep(0.05)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(proc.pid)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
        log.close()
    return dict(wall=wall, cpu=cpu, rss=rss, rate=n / wall, ok=True, first=first)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=3_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--prefix", default="lt-monitor-", help="topic prefix; the topic is reused if already filled")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--fill-rate", type=float, default=40_000, help="spans/s offered while filling")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--child-spans", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=512, help="spans per OTLP request (the SDK default)")
    for name in ("monitor-bin", "collector-bin", "telemetrygen-bin", "brokers", "registry"):
        p.add_argument(f"--{name}", required=True)
    a = p.parse_args()
    a.topic = a.prefix + "telemetry.raw"
    workdir = tempfile.mkdtemp(prefix="selfheal-monitor-bench-")
    n = fill(a, workdir)
    if n < a.records:
        sys.exit(f"the topic holds {n:,} records, fewer than the {a.records:,} asked")
    res = {"kcat": [], "monitor": []}
    for i in range(a.runs):
        for who in (["kcat", "monitor"] if i % 2 == 0 else ["monitor", "kcat"]):
            load0 = os.getloadavg()[0]
            r = run_kcat(a, n) if who == "kcat" else run_monitor(a, n, workdir, i)
            r["load"] = (load0 + os.getloadavg()[0]) / 2
            res[who].append(r)
            first = "" if r["first"] is None else f", first record after {r['first']:.1f} s"
            print(f"  run {i + 1} {who}: {r['wall']:.1f} s, {r['rate']:,.0f} records/s, {r['cpu']:.1f} CPU-s, "
                  f"{r['rss']:.0f} MB peak RSS, load {r['load']:.1f}{first}", file=sys.stderr)

    def med(who, key):
        return statistics.median(r[key] for r in res[who])

    print(f"Reading {n:,} records of {a.topic} ({a.partitions} partitions, written by selfheal-collector from "
          f"telemetrygen traces), median of {a.runs} runs")
    print()
    print("| reader | records/s | wall s | CPU-s | CPU-s per million records | peak RSS MB | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for who, label in (("monitor", "selfheal-monitor (fresh group)"), ("kcat", "no-op librdkafka consumer (`kcat -C -e -q`)")):
        print(f"| {label} | {med(who, 'rate'):,.0f} | {med(who, 'wall'):.1f} | {med(who, 'cpu'):.1f} | "
              f"{med(who, 'cpu') / n * 1e6:.2f} | {med(who, 'rss'):.0f} | {med(who, 'load'):.1f} |")
    print()
    print(f"ratio monitor / no-op consumer: records/s **{med('monitor', 'rate') / med('kcat', 'rate'):.2f}** "
          f"(goal >= 0.7), CPU-s {med('monitor', 'cpu') / med('kcat', 'cpu'):.1f}x")


if __name__ == "__main__":
    main()
