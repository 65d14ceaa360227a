"""OpenTelemetry setup for pricing-api: traces and logs over OTLP/HTTP (protobuf).

Everything here is the stock OpenTelemetry Python SDK; the only local choices
are short batch delays (so selfheal sees a failure within a second), a
resource that names the service, version and instance, and keeping the SDK's
own log lines (export failures) off the exported log stream.
"""

import logging
import os
import sys
import threading
import time

DEFAULT_OTLP_ENDPOINT = "http://127.0.0.1:4318"
SERVICE_NAME = "pricing-api"
# Batch delays when the standard OTEL_BSP_/OTEL_BLRP_SCHEDULE_DELAY variables are unset.
DEFAULT_SCHEDULE_DELAY_MS = 250
# Per-request exporter timeout when OTEL_EXPORTER_OTLP_TIMEOUT is unset: keeps a
# SIGTERM flush short when no collector is listening.
DEFAULT_EXPORT_TIMEOUT_S = "3"
# Longest wait for the final flush on exit.
SHUTDOWN_GRACE_S = 5.0


class _RateLimitFilter(logging.Filter):
    """Lets one record per (logger, message template) through every `interval` seconds.

    Without it, an unreachable collector makes the SDK log a failure every
    batch (several lines a second) for as long as the service runs.
    """

    def __init__(self, interval=10.0):
        super().__init__()
        self._interval = interval
        self._last = {}
        self._lock = threading.Lock()

    def filter(self, record):
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            self._last[key] = now
        return True


def _logging_handler_class():
    """The OTel `logging` handler: from opentelemetry-instrumentation-logging, else the SDK's (deprecated there)."""
    try:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        return LoggingHandler, {"log_code_attributes": True}
    except ImportError:
        import warnings

        warnings.filterwarnings("ignore", message=".*LoggingHandler.*deprecated", category=DeprecationWarning)
        from opentelemetry.sdk._logs import LoggingHandler

        return LoggingHandler, {}


def resource_attributes(version, instance_id):
    """The resource attributes pricing-api reports (before OTEL_RESOURCE_ATTRIBUTES is merged in)."""
    attrs = {
        "service.name": SERVICE_NAME,
        "service.version": version,
        "service.instance.id": instance_id,
    }
    env = os.environ.get("DEPLOYMENT_ENVIRONMENT")
    if env:
        attrs["deployment.environment"] = env
        attrs["deployment.environment.name"] = env
    return attrs


def setup(version, instance_id, level=logging.INFO):
    """Installs tracer and logger providers and the root logging handlers.

    Returns a function that flushes and shuts both providers down; call it once
    on exit (SIGTERM) so the last spans and logs are delivered.
    """
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_OTLP_ENDPOINT)
    os.environ.setdefault("OTEL_EXPORTER_OTLP_TIMEOUT", DEFAULT_EXPORT_TIMEOUT_S)

    from opentelemetry import _logs, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME; ours win.
    resource = Resource.create(resource_attributes(version, instance_id))

    def delay(var):
        return None if os.environ.get(var) else DEFAULT_SCHEDULE_DELAY_MS

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=delay("OTEL_BSP_SCHEDULE_DELAY"))
    )
    trace.set_tracer_provider(tracer_provider)

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(), schedule_delay_millis=delay("OTEL_BLRP_SCHEDULE_DELAY"))
    )
    _logs.set_logger_provider(logger_provider)

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    # The SDK's own records (e.g. "Failed to export ...") go to stderr only:
    # exporting them would feed export failures back into the exporter.
    sdk_logger = logging.getLogger("opentelemetry")
    sdk_logger.propagate = False
    sdk_stderr = logging.StreamHandler(sys.stderr)
    sdk_stderr.setFormatter(stderr.formatter)
    sdk_stderr.addFilter(_RateLimitFilter())
    sdk_logger.addHandler(sdk_stderr)

    handler_cls, kwargs = _logging_handler_class()
    otel_handler = handler_cls(level=level, logger_provider=logger_provider, **kwargs)
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(stderr)
    root.addHandler(otel_handler)

    done = threading.Event()

    def shutdown():
        if done.is_set():
            return
        done.set()
        root.removeHandler(otel_handler)
        # Both flush at once, each bounded by the exporter timeout, so an absent
        # collector delays exit by a few seconds, not by the sum of retries.
        threads = [threading.Thread(target=p.shutdown, daemon=True) for p in (tracer_provider, logger_provider)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    return shutdown
