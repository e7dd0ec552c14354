"""maas.lean_spans makes the spans the SDK would: the same content, ids, parents, sampling and
limits, through the same API; only cheaper."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext

from maas.lean_spans import LeanSpan, LeanTracerProvider
from tests.support.span_samples import Collect, finished_spans


def messages(spans: list[ReadableSpan]) -> Iterator[tuple[str, SpanMessage]]:
    """Each span as the OTLP encoder writes it, with its scope's name; ids and times, which
    differ from run to run, replaced by the order of first appearance and cleared."""
    numbers: dict[bytes, bytes] = {}

    def number(span_id: bytes) -> bytes:
        return numbers.setdefault(span_id, bytes([len(numbers) + 1])) if span_id else b""

    for resource_spans in encode_spans(spans).resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.span_id = number(span.span_id)
                span.parent_span_id = number(span.parent_span_id)
                span.trace_id = b""
                span.start_time_unix_nano = span.end_time_unix_nano = 0
                for event in span.events:
                    event.time_unix_nano = 0
                yield scope_spans.scope.name, span


def test_lean_spans_carry_what_the_sdks_spans_carry() -> None:
    sdk = finished_spans(provider_class=TracerProvider)
    lean = finished_spans(provider_class=LeanTracerProvider)

    assert all(type(span) is LeanSpan for span in lean if not span.links)
    assert list(messages(lean)) == list(messages(sdk))
    assert [s.context.trace_flags for s in lean] == [s.context.trace_flags for s in sdk]


def test_a_lean_span_is_an_sdk_span_that_takes_no_change_once_ended() -> None:
    collect = Collect()
    provider = LeanTracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(collect)
    with provider.get_tracer("t").start_as_current_span("s", attributes={"a": 1}) as span:
        assert isinstance(span, Span)
        assert span.is_recording()
    span.set_attribute("b", 2)
    span.update_name("renamed")
    span.end()

    (ended,) = collect.spans
    assert ended.name == "s"
    assert dict(ended.attributes or {}) == {"a": 1}
    assert not span.is_recording()


def made_with(provider_class: type[TracerProvider], **limits: Any) -> ReadableSpan:
    collect = Collect()
    provider = provider_class(shutdown_on_exit=False, span_limits=SpanLimits(**limits))
    provider.add_span_processor(collect)
    with provider.get_tracer("t").start_as_current_span("s", attributes={"first": "one"}) as span:
        span.set_attributes({"list": [1, 2], "long": "abcdef", "": "no key", "none": None})
        span.set_attribute("first", "again")  # set again: moves last
        span.set_attribute("object", object())
        for i in range(3):
            span.add_event(f"event {i}", {"i": i})
            span.add_link(SpanContext(1, i + 1, is_remote=False), {"i": i})
    (ended,) = collect.spans
    return ended


@pytest.mark.parametrize(
    "limits",
    [
        {},
        {"max_span_attributes": 3},
        {"max_span_attribute_length": 3},
        {"max_span_attributes": 0},
        {"max_events": 2, "max_links": 2},
        {"max_events": 0, "max_links": 0},
    ],
)
def test_attributes_events_and_links_are_cleaned_and_limited_as_the_sdk_does(
    limits: dict[str, int],
) -> None:
    lean, sdk = made_with(LeanTracerProvider, **limits), made_with(TracerProvider, **limits)

    assert list((lean.attributes or {}).items()) == list((sdk.attributes or {}).items())
    assert lean.dropped_attributes == sdk.dropped_attributes
    assert [e.name for e in lean.events] == [e.name for e in sdk.events]
    assert lean.dropped_events == sdk.dropped_events
    assert [link.context for link in lean.links] == [link.context for link in sdk.links]
    assert lean.dropped_links == sdk.dropped_links


def test_the_sampler_decides_as_for_the_sdks_spans() -> None:
    collect = Collect()
    provider = LeanTracerProvider(
        shutdown_on_exit=False, sampler=ParentBased(TraceIdRatioBased(0.5))
    )
    provider.add_span_processor(collect)
    tracer = provider.get_tracer("t")
    recorded = 0
    for _ in range(200):
        with tracer.start_as_current_span("root") as root:
            with tracer.start_as_current_span("child") as child:
                assert child.is_recording() is root.is_recording()
                if not root.is_recording():
                    assert isinstance(child, NonRecordingSpan)
                    assert child.get_span_context().trace_id == root.get_span_context().trace_id
            recorded += root.is_recording()

    assert 0 < recorded < 200
    assert len(collect.spans) == 2 * recorded
    for span in collect.spans:
        assert TraceIdRatioBased(0.5).should_sample(None, span.context.trace_id, "x").decision
