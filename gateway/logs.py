"""Structured logs: one JSON object per line, with the trace and span ids of the span the line was
written in, so a log line leads to its trace and back.

    {"time": "2026-03-01T08:00:00.123Z", "level": "WARNING", "logger": "adapters.resilience",
     "message": "member source unavailable", "trace_id": "4bf9...", "span_id": "00f0...",
     "member": "LHZX", "error": "ConnectionRefusedError"}

The gateway logs no raw resident ID, patient name or clinical value: its log calls name members,
error types, GraphQL paths and versions. Two things from elsewhere could carry data, and are cut
here: exception messages (a library may quote a value; only the type and the stack are kept) and
the query string of access lines (a GET request's document may hold a resident ID): the gateway's
own leave it out, and uvicorn's, off in the gateway, are cut wherever they are still written."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI-coloured copy
)


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


def _message(record: logging.LogRecord) -> str:
    args = record.args
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        # (client, method, path with query, http version, status): keep the path only.
        args = (args[0], args[1], str(args[2]).split("?", 1)[0], args[3], args[4])
    if not args:
        return str(record.msg)
    try:
        return str(record.msg) % args
    except (TypeError, ValueError):
        return f"{record.msg} {args!r}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id and span_id inside a
    span, every `extra` field, and for an exception its type and stack (not its message)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = f"{ctx.trace_id:032x}"
            entry["span_id"] = f"{ctx.span_id:016x}"
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = _json_safe(value)
        if record.exc_info and record.exc_info[0] is not None:
            kind, _, tb = record.exc_info
            entry["exception"] = {
                "type": f"{kind.__module__}.{kind.__qualname__}",
                "stack": "".join(traceback.format_tb(tb)),
            }
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def _json_handler(stream: Any) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines for every logger: to stderr, except the access lines (gateway/access_log.py),
    which go to stdout. uvicorn's own access lines stay off: it writes them whenever its logger
    has a handler, even where it was told not to, and before the response's first byte."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_json_handler(sys.stderr))
    root.setLevel(level)
    for name in ("uvicorn.access", "alliance_gateway.access"):
        access = logging.getLogger(name)
        for old in list(access.handlers):
            access.removeHandler(old)
        access.propagate = False
    logging.getLogger("alliance_gateway.access").addHandler(_json_handler(sys.stdout))
    # httpx logs each request's full URL at INFO: a FHIR search's query names a patient's
    # pseudonym. The FHIR adapter's own spans and logs say what operations need.
    for library in ("httpx", "httpcore"):
        logging.getLogger(library).setLevel(max(level, logging.WARNING))
