#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace receiver for the integration tests.

Listens on 127.0.0.1, takes `POST /v1/traces` bodies in protobuf
(`ExportTraceServiceRequest`, decoded with the `opentelemetry-proto` package), and writes
one JSON line per span to --output: service name, name, kind, trace and span ids, parent,
attributes, links and status. Prints `listening on PORT` once it accepts requests.
scripts/install-otlp-receiver.sh installs what it needs.
"""

import argparse
import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS = {0: "unset", 1: "ok", 2: "error"}


def value(any_value):
    """An AnyValue as plain JSON."""
    which = any_value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    if which == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, which)


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def spans(request):
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "service": resource.get("service.name"),
                    "name": span.name,
                    "kind": KINDS.get(span.kind, str(span.kind)),
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "attributes": attributes(span.attributes),
                    "links": [
                        {
                            "trace_id": link.trace_id.hex(),
                            "span_id": link.span_id.hex(),
                            "attributes": attributes(link.attributes),
                        }
                        for link in span.links
                    ],
                    "status": STATUS.get(span.status.code, str(span.status.code)),
                    "status_message": span.status.message,
                }


class Receiver(BaseHTTPRequestHandler):
    output = None
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/traces":
            self.send_error(404, "only /v1/traces is received here")
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as error:  # noqa: BLE001 - any undecodable body is a 400
            self.send_error(400, f"not an ExportTraceServiceRequest: {error}")
            return
        lines = [json.dumps(span, sort_keys=True) for span in spans(request)]
        with self.lock:
            for line in lines:
                self.output.write(line + "\n")
            self.output.flush()
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--output", required=True, help="file the spans are appended to")
    args = parser.parse_args()
    Receiver.output = open(args.output, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Receiver)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
