"""maas.span_encoding writes the bytes the SDK's OTLP encoder would, for every kind of span
content: attribute types, events, exceptions, links, statuses, remote parents, trace state,
several instrumentation scopes and resources."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

from maas.lean_spans import LeanTracerProvider
from maas.span_encoding import SpanEncoder, varint
from tests.support.span_samples import Collect, finished_spans


def decoded(data: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(data)
    return request


@pytest.mark.parametrize("provider_class", [TracerProvider, LeanTracerProvider])
def test_bytes_are_the_sdk_encoders_bytes(provider_class: type[TracerProvider]) -> None:
    spans = finished_spans(provider_class=provider_class)
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
