#!/usr/bin/env python3
"""Traffic generator for pricing-api: steady POST /price load with a share of 0.0 discounts.

    python3 examples/traffic/traffic.py --target http://127.0.0.1:8081 \\
        --rate 20 --zero-share 0.1 --duration 60

Sends --rate requests a second with random items, prices and discounts in
(0.5, 0.95]; with probability --zero-share the discount is 0.0, which the
unpatched service answers with a 500 (ZeroDivisionError). Every --report
seconds it prints one line to stderr:

    traffic t=10s sent=200 2xx=181 4xx=0 5xx=19 conn=0 skip=0 | last 5s: 100 req 9.0% 5xx, 5xx on d=0: 9/9 | versions: v1=100

and a final summary when it stops (after --duration seconds, 0 = until
SIGINT/SIGTERM). With --json the final summary is also printed to stdout as
one JSON object. Connection errors (service restarting) are counted as
`conn`, never fatal. Standard library only.
"""

import argparse
import ipaddress
import json
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

ITEMS = ["book", "pen", "notebook", "backpack", "lamp", "mug", "headphones", "charger", "desk", "chair"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="http://127.0.0.1:8081", help="base URL of pricing-api (default %(default)s)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second (default %(default)s)")
    p.add_argument("--zero-share", type=float, default=0.1,
                   help="probability of a 0.0 discount, 0..1 (default %(default)s)")
    p.add_argument("--duration", type=float, default=60.0,
                   help="seconds to run; 0 runs until SIGINT/SIGTERM (default %(default)s)")
    p.add_argument("--report", type=float, default=5.0, help="seconds between summary lines (default %(default)s)")
    p.add_argument("--timeout", type=float, default=2.0, help="per-request timeout in seconds (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="requests in flight at most; beyond it ticks are skipped (default %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    p.add_argument("--json", action="store_true", help="print the final summary to stdout as JSON")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a target that is not a loopback address (default: refuse)")
    args = p.parse_args(argv)
    if args.rate <= 0:
        p.error("--rate must be > 0")
    if not 0.0 <= args.zero_share <= 1.0:
        p.error("--zero-share must be within 0..1")
    if args.duration < 0 or args.report <= 0 or args.timeout <= 0 or args.concurrency < 1:
        p.error("--duration must be >= 0; --report, --timeout and --concurrency must be > 0")
    host = urllib.parse.urlsplit(args.target).hostname or ""
    if not args.allow_remote and not is_loopback(host):
        p.error(f"target host {host!r} is not a loopback address; pass --allow-remote to send traffic there")
    return args


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def random_request(rng, zero_share):
    """One request body: random item and price; discount 0.0 with probability zero_share."""
    discount = 0.0 if rng.random() < zero_share else round(0.95 - rng.random() * 0.45, 2)
    # random() is in [0, 1), so the discount is in (0.5, 0.95].
    return {"item": rng.choice(ITEMS), "price": round(rng.uniform(1.0, 200.0), 2), "discount": discount}


class Stats:
    """Thread-safe counters, overall and for the current report interval."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total = Counter()
        self.window = Counter()
        self.versions = Counter()

    def add(self, outcome, zero, version=None):
        with self.lock:
            for c in (self.total, self.window):
                c["sent"] += 1
                c[outcome] += 1
                if zero:
                    c["zero"] += 1
                    c[f"{outcome}_zero"] += 1
            if version:
                self.versions[version] += 1

    def skip(self):
        with self.lock:
            self.total["skip"] += 1
            self.window["skip"] += 1

    def take_window(self):
        with self.lock:
            window, self.window = self.window, Counter()
            versions, self.versions = self.versions, Counter()
            return window, versions, Counter(self.total)


def send(target, body, timeout):
    """POSTs one request; returns (outcome, service version header or None)."""
    req = urllib.request.Request(
        target.rstrip("/") + "/price",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "selfheal-traffic/1"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return f"{resp.status // 100}xx", resp.headers.get("X-Service-Version")
    except urllib.error.HTTPError as e:
        e.read()
        return f"{e.code // 100}xx", e.headers.get("X-Service-Version")
    except (urllib.error.URLError, OSError, ValueError):
        # Refused, reset, timed out or a malformed reply: the service is down or restarting.
        return "conn", None


def line(elapsed, total, window, versions, interval):
    n = window["sent"]
    err = 100.0 * window["5xx"] / n if n else 0.0
    ver = " ".join(f"{v}={c}" for v, c in sorted(versions.items())) or "-"
    return (
        f"traffic t={elapsed:.0f}s sent={total['sent']} 2xx={total['2xx']} 4xx={total['4xx']} "
        f"5xx={total['5xx']} conn={total['conn']} skip={total['skip']} | last {interval:.0f}s: {n} req "
        f"{err:.1f}% 5xx, 5xx on d=0: {window['5xx_zero']}/{window['zero']} | versions: {ver}"
    )


def run(args):
    rng = random.Random(args.seed)
    stats = Stats()
    stop = threading.Event()
    inflight = threading.Semaphore(args.concurrency)

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def one(body):
        try:
            outcome, version = send(args.target, body, args.timeout)
            stats.add(outcome, body["discount"] == 0.0, version)
        finally:
            inflight.release()

    start = time.monotonic()
    end = start + args.duration if args.duration > 0 else float("inf")
    next_report = start + args.report
    last_report = start
    interval = 1.0 / args.rate
    tick = start
    print(f"traffic: {args.rate:g} req/s to {args.target}, {args.zero_share:.0%} with discount 0.0, "
          f"duration {'until stopped' if args.duration == 0 else f'{args.duration:g}s'}", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="traffic") as pool:
        while not stop.is_set():
            now = time.monotonic()
            if now >= end:
                break
            if now >= next_report:
                window, versions, total = stats.take_window()
                print(line(now - start, total, window, versions, now - last_report), file=sys.stderr, flush=True)
                last_report = now
                next_report += args.report
            if now < tick:
                stop.wait(min(tick, next_report, end) - now)
                continue
            tick += interval
            if tick < now - 1.0:
                tick = now  # fell far behind (suspended?): do not burst to catch up
            if inflight.acquire(blocking=False):
                pool.submit(one, random_request(rng, args.zero_share))
            else:
                stats.skip()
    elapsed = time.monotonic() - start
    window, versions, total = stats.take_window()
    print(line(elapsed, total, window, versions, elapsed - (last_report - start)), file=sys.stderr, flush=True)
    summary = {
        "elapsed_s": round(elapsed, 3),
        "sent": total["sent"],
        "2xx": total["2xx"],
        "4xx": total["4xx"],
        "5xx": total["5xx"],
        "conn_errors": total["conn"],
        "skipped": total["skip"],
        "zero_discount": total["zero"],
        "5xx_on_zero_discount": total["5xx_zero"],
    }
    print("traffic done: " + " ".join(f"{k}={v}" for k, v in summary.items()), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


def main(argv=None):
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
