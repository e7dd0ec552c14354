"""Finished spans with every kind of content a span can carry (attribute types, events, an
exception, links, statuses, remote parents, trace state, several instrumentation scopes), made
by a tracer provider of the caller's choice: the SDK's, or maas.lean_spans'."""

from __future__ import annotations

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


def finished_spans(
    service: str = "svc", provider_class: type[TracerProvider] = TracerProvider
) -> list[ReadableSpan]:
    """Spans of every kind of content, made by `provider_class` (the SDK's, or ours)."""
    collect = Collect()
    provider = provider_class(
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
