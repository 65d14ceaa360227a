"""Tests of the HTTP layer: request parsing, responses and the SERVER span.

The round-trip tests listen on 127.0.0.1 and are skipped where no loopback
network is available (e.g. a sandbox without network).
"""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import app
import pricing_logic
import telemetry


def test_parse_price_request_reads_item_price_and_discount():
    body = json.dumps({"item": "book", "price": 10, "discount": 0.8}).encode()
    assert app.parse_price_request(body) == ("book", 10.0, 0.8)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"item": "book", "discount": 0.8}',
        b'{"item": "book", "price": "10", "discount": 0.8}',
        b'{"item": "book", "price": true, "discount": 0.8}',
        b'{"item": 7, "price": 10, "discount": 0.8}',
        b'{"item": "book", "price": NaN, "discount": 0.8}',
    ],
)
def test_parse_price_request_rejects_bad_bodies(body):
    with pytest.raises(app.BadRequest):
        app.parse_price_request(body)


def test_quote_rounds_the_total():
    assert app.quote("pen", 19.99, 0.95) == {"item": "pen", "price": 19.99, "discount": 0.95, "total": 21.04}


def test_service_version_prefers_environment(monkeypatch):
    monkeypatch.setenv("SERVICE_VERSION", "v1+abc1234")
    assert app.service_version() == "v1+abc1234"


def test_resource_attributes_name_the_service(monkeypatch):
    monkeypatch.setenv("DEPLOYMENT_ENVIRONMENT", "demo")
    attrs = telemetry.resource_attributes("v1", "host:8081")
    assert attrs["service.name"] == "pricing-api"
    assert attrs["service.version"] == "v1"
    assert attrs["service.instance.id"] == "host:8081"
    assert attrs["deployment.environment"] == "demo"


@pytest.fixture
def served():
    """A running PricingServer on a free loopback port, with spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        server = app.PricingServer(("127.0.0.1", 0), "test", "test:0", provider.get_tracer("test"))
    except OSError as e:
        pytest.skip(f"no loopback network: {e}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        # In a network namespace with loopback down, bind works but connect does not.
        socket.create_connection(("127.0.0.1", server.server_port), timeout=2).close()
    except OSError as e:
        server.shutdown()
        server.server_close()
        pytest.skip(f"no loopback network: {e}")
    yield f"http://127.0.0.1:{server.server_port}", exporter
    server.shutdown()
    server.server_close()
    provider.shutdown()


def request(url, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def finished(exporter, count=1, timeout=5.0):
    """The finished spans once there are `count`: a span ends just after its response is sent."""
    deadline = time.monotonic() + timeout
    while len(exporter.get_finished_spans()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return exporter.get_finished_spans()


def test_healthz(served):
    base, _ = served
    status, body, headers = request(base + "/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert headers["X-Service-Version"] == "test"


def test_post_price_returns_total_and_one_server_span(served):
    base, spans = served
    status, body, _ = request(base + "/price", {"item": "book", "price": 10.0, "discount": 0.8})
    assert status == 200
    assert body["item"] == "book"
    assert body["total"] == 12.5
    [span] = finished(spans)
    assert span.name == "POST /price"
    assert span.kind == SpanKind.SERVER
    assert span.attributes["pricing.item"] == "book"
    assert span.attributes["pricing.price"] == 10.0
    assert span.attributes["pricing.discount"] == 0.8
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["url.path"] == "/price"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code == StatusCode.UNSET


def test_bad_request_is_400_and_not_a_span_error(served):
    base, spans = served
    status, body, _ = request(base + "/price", b'{"item": "book"}')
    assert status == 400
    assert body["error"] == "bad request"
    [span] = finished(spans)
    assert span.attributes["http.response.status_code"] == 400
    assert span.status.status_code == StatusCode.UNSET


def test_unknown_path_is_404(served):
    base, _ = served
    status, _, _ = request(base + "/nope")
    assert status == 404


def test_pricing_failure_is_500_with_exception_on_span(served, monkeypatch):
    def broken(p, d):
        raise ValueError("pricing table unavailable")

    monkeypatch.setattr(pricing_logic, "calc", broken)
    base, spans = served
    status, body, _ = request(base + "/price", {"item": "book", "price": 10.0, "discount": 0.8})
    assert status == 500
    assert body["error"] == "ValueError"
    [span] = finished(spans)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 500
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "pricing table unavailable"
    assert "in broken" in event.attributes["exception.stacktrace"]
    assert body["trace_id"] == format(span.context.trace_id, "032x")


def test_post_convert_returns_dollars(served):
    base, spans = served
    status, body, _ = request(base + "/convert", {"amount": 10.0, "currency": "EUR"})
    assert status == 200
    assert body == {"amount": 10.0, "currency": "EUR", "usd": 10.8}
    [span] = finished(spans)
    assert span.name == "POST /convert"
    assert span.attributes["convert.currency"] == "EUR"
    assert span.attributes["http.route"] == "/convert"


@pytest.mark.parametrize("body", [b'{"amount": "ten", "currency": "EUR"}', b'{"amount": 1}', b'[1]'])
def test_convert_rejects_bad_bodies(served, body):
    base, _ = served
    status, payload, _ = request(base + "/convert", body)
    assert status == 400
    assert payload["error"] == "bad request"
