#!/usr/bin/env python3
"""selfheal-collector vs the OpenTelemetry Collector: OTLP/HTTP protobuf -> Kafka.

Run by bench.sh, which builds the binaries and brings up the broker. For each of --runs rounds,
each collector (in alternating order) gets a fresh topic on the same broker and the same
telemetrygen load (throttled, and built with a blocking span processor by load-tests/lib/otelcol.sh:
the official one drops spans when the receiver is slower and still exits 0). A run
counts only if the topic holds exactly the spans sent: selfheal writes one record per span
(counted by end offsets of a fresh topic), the Collector one OTLP protobuf batch per record
(every record read back with kcat and its spans counted). Per run: wall time from the first
span sent to the last one on the topic, the collector's CPU time over that span (utime+stime
from /proc), its peak RSS (VmHWM). Prints the medians as a Markdown table. Stdlib only.
"""
import argparse
import json
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
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


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
    """Sum of the end offsets of a topic (kcat -Q with timestamp -1 = end)."""
    args = ["kcat", "-Q", "-b", brokers]
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    total = 0
    for line in out.stdout.splitlines():
        # "topic [p] offset N"
        parts = line.split()
        if "offset" in parts:
            total += int(parts[parts.index("offset") + 1])
    return total


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf):
    """(field number, wire type, value or bytes) of one protobuf message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
            yield num, wt, v
        elif wt == 1:
            i += 8
        elif wt == 2:
            ln, i = varint(buf, i)
            yield num, wt, buf[i : i + ln]
            i += ln
        elif wt == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wt}")


def count_otlp_spans(payload):
    """Spans in an OTLP TracesData: resource_spans(1) -> scope_spans(2) -> spans(2)."""
    count = 0
    for num, wt, rs in fields(payload):
        if num == 1 and wt == 2:
            for n2, w2, ss in fields(rs):
                if n2 == 2 and w2 == 2:
                    count += sum(1 for n3, w3, _ in fields(ss) if n3 == 2 and w3 == 2)
    return count


def topic_spans_otlp(brokers, topic):
    """Reads every record of the topic and counts the spans in them."""
    out = subprocess.run(
        ["kcat", "-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%R%s"],
        capture_output=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.decode().strip())
    buf, i, spans, records = out.stdout, 0, 0, 0
    while i < len(buf):
        ln = int.from_bytes(buf[i : i + 4], "big")
        i += 4
        spans += count_otlp_spans(buf[i : i + ln])
        records += 1
        i += ln
    return spans, records


def prom_sum(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def create_topic(kafka_libs, brokers, topic, partitions):
    subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", f"{kafka_libs}/*", "org.apache.kafka.tools.TopicCommand",
         "--bootstrap-server", brokers, "--create", "--topic", topic, "--partitions", str(partitions),
         "--replication-factor", "1"],
        check=True, capture_output=True, timeout=120,
    )


class Selfheal:
    name = "selfheal-collector"

    def __init__(self, a, workdir):
        self.a, self.workdir = a, workdir

    def start(self, run_id):
        self.port, self.ops = free_port(), free_port()
        prefix = f"lt-{run_id}-"
        self.topic = prefix + "telemetry.raw"
        env = dict(os.environ, SELFHEAL_LOG="warn")
        self.log = open(os.path.join(self.workdir, f"{run_id}-selfheal.log"), "w")
        self.proc = subprocess.Popen(
            [self.a.selfheal_bin, "--kafka-brokers", self.a.brokers, "--schema-registry-url", self.a.registry,
             "--topic-prefix", prefix, "--http-addr", f"127.0.0.1:{self.ops}",
             "--otlp-http-addr", f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        wait_until("selfheal-collector /readyz", lambda: http_get(f"http://127.0.0.1:{self.ops}/readyz")[0] == 200,
                   120, self.proc)

    def delivered(self):
        return end_offsets(self.a.brokers, self.topic, self.a.partitions)

    def verify(self):
        return self.delivered(), None


class Otelcol:
    name = "OpenTelemetry Collector"

    def __init__(self, a, workdir):
        self.a, self.workdir = a, workdir

    def start(self, run_id):
        self.port, self.metrics = free_port(), free_port()
        self.topic = f"lt-{run_id}-otelcol"
        create_topic(self.a.kafka_libs, self.a.brokers, self.topic, self.a.partitions)
        config = {
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{self.port}"}}}},
            # The default batch (8,192 spans) makes records over the exporter's 1 MB limit,
            # which are dropped after the client got 200.
            "processors": {"batch": {"send_batch_size": 4096, "send_batch_max_size": 4096, "timeout": "200ms"}},
            "exporters": {
                "kafka": {
                    "brokers": [self.a.brokers],
                    "traces": {"topic": self.topic, "encoding": "otlp_proto"},
                    # At least once, as selfheal: every replica acknowledges, idempotent, retried.
                    "producer": {"required_acks": -1, "compression": "lz4"},
                    "retry_on_failure": {"enabled": True},
                }
            },
            "service": {
                "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["kafka"]}},
                "telemetry": {
                    "logs": {"level": "warn"},
                    "metrics": {"level": "normal", "readers": [{"pull": {"exporter": {"prometheus": {
                        "host": "127.0.0.1", "port": self.metrics}}}}]},
                },
            },
        }
        path = os.path.join(self.workdir, f"{run_id}-otelcol.yaml")
        with open(path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        self.log = open(os.path.join(self.workdir, f"{run_id}-otelcol.log"), "w")
        self.proc = subprocess.Popen([self.a.otelcol_bin, f"--config={path}"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_until("otelcol metrics", lambda: http_get(f"http://127.0.0.1:{self.metrics}/metrics")[0] == 200,
                   120, self.proc)
        wait_until("otelcol OTLP port", lambda: socket.create_connection(("127.0.0.1", self.port), 1).close() or True,
                   60, self.proc)

    def delivered(self):
        text = http_get(f"http://127.0.0.1:{self.metrics}/metrics")[1]
        return int(prom_sum(text, "otelcol_exporter_sent_spans") or 0)

    def verify(self):
        return topic_spans_otlp(self.a.brokers, self.topic)


def one_run(sut, a, run_id):
    sut.start(run_id)
    try:
        pid = sut.proc.pid
        cpu0 = cpu_seconds(pid)
        load0 = os.getloadavg()[0]
        t0 = time.monotonic()
        gen = subprocess.run(
            [a.telemetrygen_bin, "traces", "--otlp-http", "--otlp-insecure", "--otlp-endpoint",
             f"127.0.0.1:{sut.port}", "--workers", str(a.workers), "--traces", str(a.traces_per_worker),
             "--child-spans", str(a.child_spans), "--batch-size", str(a.batch_size), "--rate", str(a.rate_per_worker)],
            capture_output=True, text=True, timeout=3600,
        )
        t_gen = time.monotonic() - t0
        with open(os.path.join(sut.workdir, f"{run_id}-{sut.name.split()[0]}-telemetrygen.log"), "w") as f:
            f.write(gen.stdout + gen.stderr)
        if gen.returncode != 0:
            raise RuntimeError(f"telemetrygen failed: {gen.stderr[-2000:]}")
        # Wait until every span is on the topic, or nothing moved for 15 s.
        last, last_change, t_done = -1, time.monotonic(), None
        while True:
            n = sut.delivered()
            now = time.monotonic()
            if n >= a.spans:
                t_done = now
                break
            if n != last:
                last, last_change = n, now
            elif now - last_change > 15:
                break
            time.sleep(0.05)
        cpu1 = cpu_seconds(pid)
        wall = (t_done or time.monotonic()) - t0
        rss = peak_rss_mb(pid)
        load1 = os.getloadavg()[0]
    finally:
        sut.proc.send_signal(signal.SIGTERM)
        try:
            sut.proc.wait(30)
        except subprocess.TimeoutExpired:
            sut.proc.kill()
            sut.proc.wait()
        sut.log.close()
    spans, records = sut.verify()
    ok = spans == a.spans
    cpu = cpu1 - cpu0
    r = dict(system=sut.name, ok=ok, spans=spans, records=records, wall=wall, gen=t_gen, cpu=cpu, rss=rss,
             rate=spans / wall, per_cpu=spans / cpu if cpu else float("inf"), load=(load0 + load1) / 2)
    print(f"  {sut.name}: {spans}/{a.spans} spans{'' if records is None else f' in {records} records'}, "
          f"{wall:.2f} s (telemetrygen {t_gen:.2f} s), {cpu:.2f} CPU-s, {rss:.0f} MB peak RSS, "
          f"load {r['load']:.1f}{'' if ok else '  <-- COUNT MISMATCH, run not counted'}", file=sys.stderr)
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--spans", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rate", type=float, default=40_000, help="offered spans/s in total")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--child-spans", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=512, help="spans per OTLP request (the SDK default)")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--only", help="run only the collector whose name starts with this (a smoke check; no ratio)")
    for name in ("selfheal-bin", "otelcol-bin", "telemetrygen-bin", "brokers", "registry", "kafka-libs"):
        p.add_argument(f"--{name}", required=True)
    a = p.parse_args()
    spans_per_trace = a.child_spans + 1
    if a.spans % (a.workers * spans_per_trace):
        sys.exit("--spans must be a multiple of workers x (child spans + 1)")
    a.traces_per_worker = a.spans // (a.workers * spans_per_trace)
    # telemetrygen's --rate counts spans per second per worker (measured: traces of 10 spans at
    # --rate 500 with 4 workers send 2,000 spans/s).
    a.rate_per_worker = a.rate / a.workers
    workdir = tempfile.mkdtemp(prefix="selfheal-collector-bench-")
    stamp = time.strftime("%H%M%S")
    systems = [Selfheal(a, workdir), Otelcol(a, workdir)]
    if a.only:
        systems = [s for s in systems if s.name.startswith(a.only)]
    results = {s.name: [] for s in systems}
    print(f"{a.spans} spans per run ({a.workers} telemetrygen workers, traces of {spans_per_trace} spans, "
          f"offered {a.rate:.0f} spans/s); logs in {workdir}", file=sys.stderr)
    for run in range(a.runs):
        order = systems if run % 2 == 0 else systems[::-1]
        print(f"run {run + 1}/{a.runs}", file=sys.stderr)
        for s in order:
            results[s.name].append(one_run(s, a, f"{stamp}-{run}"))

    def med(name, key):
        ok = [r[key] for r in results[name] if r["ok"]]
        return statistics.median(ok) if ok else float("nan")

    if len(systems) < 2:
        for r in results[systems[0].name]:
            print(r)
        return
    sh, ot = systems[0].name, systems[1].name
    print(f"OTLP/HTTP protobuf -> Kafka, {a.spans:,} spans per run, offered {a.rate:,.0f} spans/s by telemetrygen "
          f"({a.workers} workers, {spans_per_trace} spans per trace), median of the runs whose counts matched")
    print()
    print("| collector | valid runs | spans/s | CPU-s | spans per CPU-second | CPU-s per million spans | peak RSS MB | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in (sh, ot):
        valid = sum(r["ok"] for r in results[n])
        per_cpu = med(n, "per_cpu")
        print(f"| {n} | {valid}/{a.runs} | {med(n, 'rate'):,.0f} | {med(n, 'cpu'):.2f} | {per_cpu:,.0f} | "
              f"{1e6 / per_cpu:.1f} | {med(n, 'rss'):.0f} | {med(n, 'load'):.1f} |")
    print()
    print(f"ratio selfheal / OpenTelemetry Collector: spans per CPU-second **{med(sh, 'per_cpu') / med(ot, 'per_cpu'):.2f}**, "
          f"spans/s {med(sh, 'rate') / med(ot, 'rate'):.2f}, peak RSS {med(sh, 'rss') / med(ot, 'rss'):.2f}")
    if any(not r["ok"] for rs in results.values() for r in rs):
        sys.exit(1)


if __name__ == "__main__":
    main()
