"""Log records as JSON lines (or text), each with the request id and the trace and span ids of
the work it belongs to, so a log line leads to its trace and back."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace

from maas.request_scope import current_request_id

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [request=%(request_id)s trace=%(trace_id)s]: %(message)s"
)


class RequestContext(logging.Filter):
    """Adds request_id, trace_id and span_id to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        record.span_id = format(span.span_id, "016x") if span.is_valid else None
        return True


def serving_filter() -> RequestContext:
    """The filter of the handlers logging_config sets up, for dictConfig to make in each
    process that serves. Making it also stops every record from collecting what no format of
    ours shows (its caller's file and line, found by walking the stack; its thread and process
    names): a third of the cost of each access log line. Tests that only import this module
    keep those details."""
    logging._srcfile = None  # the Logging HOWTO's optimization: no caller lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    return RequestContext()


# One encoder for every line: json.dumps with options builds a new one each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, exception."""

    # The date and time to the second of the last line: the lines of one second share it.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "trace_id", "span_id"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)

    def _time(self, created: float) -> str:
        """What datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        gives (microseconds rounded as it rounds them, then cut to milliseconds), with the
        part to the second formatted once per second."""
        second = int(created)
        micros = round((created - second) * 1_000_000)
        if micros >= 1_000_000 or second < 0:  # rounds into the next second: rare, done whole
            return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        cached = self._second
        if cached[0] != second:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            cached = self._second = (second, text)
        return f"{cached[1]}.{micros // 1000:03d}+00:00"


def logging_config(
    level: str, style: Literal["json", "text"], flush_seconds: float = 0.2
) -> dict[str, Any]:
    """A dictConfig for our loggers and uvicorn's, in every worker process; lines are written
    in batches, at most `flush_seconds` late (maas.log_stream)."""
    level = level.upper()
    formatter = {"()": JsonFormatter} if style == "json" else {"format": TEXT_FORMAT}
    handler = {
        "class": "maas.log_stream.BatchedStreamHandler",
        "formatter": "default",
        "filters": ["ids"],
        "flush_seconds": flush_seconds,
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"ids": {"()": serving_filter}},
        "formatters": {"default": formatter},
        "handlers": {"default": {**handler, "stream": "ext://sys.stderr"}},
        "loggers": {
            # uvicorn's own handlers would print its records a second time, as plain text.
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
            # mem0 logs memory contents at INFO: shown only to an operator who asks for DEBUG.
            "mem0": {"level": "DEBUG" if level == "DEBUG" else "WARNING"},
            # The MCP SDK logs the start and end of every stateless request at INFO.
            "mcp": {"level": "DEBUG" if level == "DEBUG" else "WARNING"},
            # Chatty at INFO; failed exports are reported once by maas.telemetry instead.
            "openlit": {"level": "WARNING"},
            "opentelemetry.exporter.otlp.proto.http.trace_exporter": {"level": "CRITICAL"},
        },
        "root": {"handlers": ["default"], "level": level},
    }
