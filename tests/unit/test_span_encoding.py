"""maas.span_encoding writes the bytes the SDK's OTLP encoder would, for every kind of span
content: attribute types, events, exceptions, links, statuses, remote parents, trace state,
several instrumentation scopes and resources."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from maas.span_encoding import SpanEncoder, varint

REMOTE = SpanContext(
    0x4BF92F3577B34DA6A3CE929D0E0E4736,
    0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "x"), ("other", "y")]),
)


class Collect(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def finished_spans(service: str = "svc") -> list[ReadableSpan]:
    collect = Collect()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment.name": "dev"}),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(collect)
    plain = provider.get_tracer("plain")
    scoped = provider.get_tracer(
        "scoped", "1.2.3", schema_url="https://example.com/schema", attributes={"scope.k": 1}
    )
    attributes = {
        "str": "value",
        "empty": "",
        "unicode": "välue ✓ 日本",
        "true": True,
        "false": False,
        "zero": 0,
        "negative": -5,
        "big": 2**62,
        "most negative": -(2**63),
        "float": 1.5,
        "nan-free float": -0.0,
        "strings": ("a", "b"),
        "ints": (1, -2, 3),
        "bools": (True, False),
        "floats": (1.0, 2.5),
        "long": "x" * 300,
    }
    with plain.start_as_current_span("root", kind=SpanKind.SERVER, attributes=attributes) as root:
        root.set_status(Status(StatusCode.ERROR, "BAD_USER_INPUT, INTERNAL"))
        root.add_event("an event", {"n": 1, "s": "two"})
        root.add_event("a bare event")
        root.record_exception(ValueError("boom"))
        with scoped.start_as_current_span(
            "child", links=[Link(REMOTE, {"link.k": "v"}), Link(REMOTE)]
        ) as child:
            child.set_status(Status(StatusCode.OK))
        with plain.start_as_current_span("same scope again", kind=SpanKind.CLIENT):
            pass
    remote_parent = set_span_in_context(NonRecordingSpan(REMOTE))
    with plain.start_as_current_span("remote child", context=remote_parent) as span:
        span.set_attribute("after start", 7)
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
        with plain.start_as_current_span(f"kind {kind.name}", kind=kind):
            pass
    return collect.spans


def decoded(data: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(data)
    return request


def test_bytes_are_the_sdk_encoders_bytes() -> None:
    spans = finished_spans()
    encoder = SpanEncoder()

    expected = encode_spans(spans).SerializeToString()
    assert encoder.encode(spans) == expected
    # Again, from the caches.
    assert encoder.encode(spans) == expected
    assert decoded(encoder.encode(spans)) == encode_spans(spans)


def test_spans_of_two_resources_are_grouped_as_the_sdk_groups_them() -> None:
    spans = finished_spans("one") + finished_spans("two")

    assert decoded(SpanEncoder().encode(spans)) == encode_spans(spans)


def test_an_empty_batch_is_an_empty_request() -> None:
    assert SpanEncoder().encode([]) == b""


def test_an_integer_out_of_int64_is_left_out_like_the_sdk_does() -> None:
    collect = Collect()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(collect)
    with provider.get_tracer("t").start_as_current_span("s", attributes={"ok": 1, "huge": 2**64}):
        pass

    (span,) = decoded(SpanEncoder().encode(collect.spans)).resource_spans[0].scope_spans[0].spans
    assert [a.key for a in span.attributes] == ["ok"]


def test_varint() -> None:
    assert varint(0) == b"\x00"
    assert varint(127) == b"\x7f"
    assert varint(128) == b"\x80\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"
