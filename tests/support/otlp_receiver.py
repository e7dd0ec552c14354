"""An OTLP/HTTP trace receiver, as a collector would run one: it decodes what the real exporter
sends to /v1/traces (protobuf) and keeps the spans for the test to read."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.threaded_server import FakeService


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    service_name: str
    attributes: dict[str, object]
    start_ns: int = 0
    end_ns: int = 0

    def covers(self, other: ReceivedSpan) -> bool:
        """This span started no later and ended no earlier than `other`."""
        return self.start_ns <= other.start_ns and other.end_ns <= self.end_ns


class OtlpReceiver(FakeService):
    """Serves POST /v1/traces; `spans` holds everything received so far."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[ReceivedSpan] = []
        self.content_types: set[str] = set()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/traces", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        received = list(_spans_of(export))
        with self._lock:
            self.content_types.add(request.headers.get("content-type", ""))
            self.spans.extend(received)
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type="application/x-protobuf")

    def named(self, name: str) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.name == name]


def _spans_of(export: ExportTraceServiceRequest) -> Iterator[ReceivedSpan]:
    for resource_spans in export.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    service_name=str(resource.get("service.name")),
                    attributes=_attributes(span.attributes),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                )


def _attributes(pairs: Iterable[Any]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values
