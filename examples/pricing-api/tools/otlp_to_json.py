"""Renders an OTLP/HTTP protobuf export request as OTLP/JSON.

    python tools/otlp_to_json.py traces capture.pb > capture.json
    python tools/otlp_to_json.py logs capture.pb

The output follows the OTLP/JSON encoding of the OTLP specification: field
names in lowerCamelCase, enums as integers, 64-bit integers as decimal strings,
and trace/span ids as hex (protobuf's own JSON mapping would give base64).
Used to produce testdata/*.json from real captures (see testdata/README.md).
"""

import base64
import json
import sys

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REQUESTS = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
HEX_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids(node):
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in HEX_ID_FIELDS and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def to_otlp_json(signal, data):
    """The OTLP/JSON dict for one protobuf-encoded export request of `signal`."""
    message = REQUESTS[signal]()
    message.ParseFromString(data)
    return _hex_ids(MessageToDict(message, use_integers_for_enums=True))


def main(argv):
    if len(argv) != 3 or argv[1] not in REQUESTS:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[2], "rb") as f:
        data = f.read()
    json.dump(to_otlp_json(argv[1], data), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
