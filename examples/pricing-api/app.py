"""pricing-api: the HTTP service selfheal heals in its demo and tests.

POST /price  {"item": "book", "price": 10.0, "discount": 0.8}
          -> 200 {"item": "book", "total": 12.5, ...}
          -> 500 {"error": "ZeroDivisionError", ...} when pricing_logic.calc raises
POST /convert {"amount": 10.0, "currency": "EUR"}
          -> 200 {"amount": 10.0, "currency": "EUR", "usd": 10.8}
          -> 500 {"error": "KeyError", ...} for a currency pricing_logic does not know
GET /healthz -> 200 {"status": "ok", "version": ...}

Every request is one SERVER span; a failure is recorded on the span
(exception event, status ERROR) and logged at ERROR through the OpenTelemetry
logging handler, both exported over OTLP/HTTP (see telemetry.py).
"""

import argparse
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pricing_logic

DEFAULT_PORT = 8081
MAX_BODY_BYTES = 64 * 1024

log = logging.getLogger("pricing_api")


class BadRequest(ValueError):
    """The request body is not a valid price request (answered with 400)."""


def json_object(body):
    """The request body as a JSON object (dict), or raises BadRequest."""
    try:
        data = json.loads(body.decode("utf-8") if body else "null")
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"invalid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def parse_price_request(body):
    """Returns (item, price, discount) from a JSON request body, or raises BadRequest."""
    data = json_object(body)
    item = data.get("item", "")
    if not isinstance(item, str):
        raise BadRequest("item must be a string")
    numbers = []
    for name in ("price", "discount"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadRequest(f"{name} must be a number")
        if not math.isfinite(value):
            raise BadRequest(f"{name} must be finite")
        numbers.append(float(value))
    return item, numbers[0], numbers[1]


def parse_convert_request(body):
    """Returns (amount, currency) from a JSON request body, or raises BadRequest."""
    data = json_object(body)
    amount, currency = data.get("amount"), data.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
        raise BadRequest("amount must be a finite number")
    if not isinstance(currency, str) or not currency:
        raise BadRequest("currency must be a non-empty string")
    return float(amount), currency


def convert(amount, currency):
    """The response for one conversion request; raises whatever pricing_logic raises."""
    return {"amount": amount, "currency": currency, "usd": pricing_logic.round_money(pricing_logic.to_usd(amount, currency))}


def quote(item, price, discount):
    """The response for one price request; raises whatever pricing_logic raises."""
    total = pricing_logic.calc(price, discount)
    return {"item": item, "price": price, "discount": discount, "total": pricing_logic.round_money(total)}


def git_version(directory):
    """`git rev-parse --short HEAD` of the directory, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", directory, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def service_version():
    """SERVICE_VERSION, else the short git commit of this directory, else "dev"."""
    return os.environ.get("SERVICE_VERSION") or git_version(os.path.dirname(os.path.abspath(__file__))) or "dev"


class PricingHandler(BaseHTTPRequestHandler):
    """Serves /price and /healthz; the server carries `version`, `instance_id` and `tracer`."""

    protocol_version = "HTTP/1.1"
    server_version = "pricing-api"

    def log_message(self, format, *args):
        # Access log only on request: at demo rates it drowns the error logs.
        if self.server.access_log:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    def _send_json(self, status, payload):
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Service-Version", self.server.version)
        self.send_header("X-Service-Instance", self.server.instance_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest(f"body must be at most {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send_json(
                200, {"status": "ok", "service": "pricing-api", "version": self.server.version,
                      "instance": self.server.instance_id},
            )
        else:
            self._send_json(404, {"error": "not found", "path": path})

    def do_POST(self):
        path = urlsplit(self.path).path
        if path == "/price":
            self._post(path, parse_price_request, quote, ("item", "price", "discount"), "pricing",
                       lambda item, price, discount: f"item {item!r} (price={price}, discount={discount})")
        elif path == "/convert":
            self._post(path, parse_convert_request, convert, ("amount", "currency"), "convert",
                       lambda amount, currency: f"{amount} {currency!r}")
        else:
            self.close_connection = True
            self._send_json(404, {"error": "not found", "path": path})

    def _post(self, path, parse, compute, names, prefix, describe):
        """One POST route: parse the body into arguments, compute, answer; one SERVER span.

        The arguments are recorded as span attributes `<prefix>.<name>` and on the error log,
        so a failure carries the input that caused it.
        """
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attributes = {
            "http.request.method": "POST",
            "url.path": path,
            "url.scheme": "http",
            "http.route": path,
            "server.port": self.server.server_port,
            "client.address": self.client_address[0],
        }
        user_agent = self.headers.get("User-Agent")
        if user_agent:
            attributes["user_agent.original"] = user_agent
        with self.server.tracer.start_as_current_span(
            f"POST {path}",
            context=propagate.extract(self.headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                args = parse(self._read_body())
            except (BadRequest, ValueError) as e:
                # A client error: not a span error (OTel HTTP semantic conventions).
                self.close_connection = True
                span.set_attribute("http.response.status_code", 400)
                self._send_json(400, {"error": "bad request", "message": str(e)})
                return
            inputs = {f"{prefix}.{name}": value for name, value in zip(names, args)}
            span.set_attributes(inputs)
            try:
                result = compute(*args)
            except Exception as e:  # noqa: BLE001 - any failure of the pricing logic is a 500
                span.record_exception(e)
                span.set_status(Status(StatusCode.ERROR, f"{type(e).__name__}: {e}"))
                span.set_attributes({"error.type": type(e).__qualname__, "http.response.status_code": 500})
                described = describe(*args)
                log.exception(
                    "POST %s failed for %s: %s: %s",
                    path, described, type(e).__name__, e,
                    extra={
                        **inputs,
                        "http.request.method": "POST",
                        "url.path": path,
                        "http.response.status_code": 500,
                    },
                )
                trace_id = format(span.get_span_context().trace_id, "032x")
                self._send_json(
                    500, {"error": type(e).__name__, "message": str(e), "trace_id": trace_id},
                )
                return
            span.set_attribute("http.response.status_code", 200)
            self._send_json(200, result)


class PricingServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the service's identity and tracer."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, version, instance_id, tracer, access_log=False):
        super().__init__(address, PricingHandler)
        self.version = version
        self.instance_id = instance_id
        self.tracer = tracer
        self.access_log = access_log


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"),
                        help="address to bind (env HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)),
                        help=f"port to listen on (env PORT, default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--access-log", action="store_true", default=os.environ.get("ACCESS_LOG") == "1",
                        help="print one line per request to stderr (env ACCESS_LOG=1)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    version = service_version()

    import telemetry
    from opentelemetry import trace

    # Bind first so the instance id carries the real port (matters with --port 0).
    server = PricingServer((args.host, args.port), version, "", None, access_log=args.access_log)
    port = server.server_port
    server.instance_id = f"{socket.gethostname()}:{port}"
    shutdown_telemetry = telemetry.setup(version, server.instance_id)
    server.tracer = trace.get_tracer("pricing-api", version)

    def on_signal(signum, _frame):
        log.info("pricing-api received %s, shutting down", signal.Signals(signum).name)
        # shutdown() waits for serve_forever, which runs in this (the main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log.info("pricing-api %s listening on http://%s:%d (otlp %s)", version, args.host, port,
             os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        shutdown_telemetry()
    return 0


if __name__ == "__main__":
    sys.exit(main())
