"""Parse OTLP/HTTP logs JSON bodies with the official protobuf definitions.

Usage: parse_logs.py FILE...  Each FILE holds one request body. Every body is parsed with
google.protobuf.json_format.Parse into opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest
(unknown fields are errors), and one JSON line per log record is printed: the record's
time_unix_nano, severity_text, body string and attributes (as typed by protobuf).
"""

import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def value(v):
    kind = v.WhichOneof("value")
    return {"string_value": v.string_value, "int_value": v.int_value}.get(kind, kind)


def main(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            req = json_format.Parse(f.read(), ExportLogsServiceRequest())
        for rl in req.resource_logs:
            resource = {a.key: value(a.value) for a in rl.resource.attributes}
            for sl in rl.scope_logs:
                for lr in sl.log_records:
                    print(json.dumps({
                        "resource": resource,
                        "scope": sl.scope.name,
                        "time_unix_nano": lr.time_unix_nano,
                        "observed_time_unix_nano": lr.observed_time_unix_nano,
                        "severity_number": lr.severity_number,
                        "severity_text": lr.severity_text,
                        "body": lr.body.string_value,
                        "attributes": {a.key: value(a.value) for a in lr.attributes},
                    }))


if __name__ == "__main__":
    main(sys.argv[1:])
