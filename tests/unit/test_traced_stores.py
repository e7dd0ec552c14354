"""stores.traced: one client span per store call, current while the call runs; a call that
fails with an exception leaves it on its span (event and error status), as
start_as_current_span would; a cancelled call is no failure."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from stores.traced import traced
from tests.conftest import Spans

_tracer = trace.get_tracer("test")


@traced("probe_store", "redis", ("current", "fail", "cancelled", "sync_fail"))
class ProbeStore:
    async def current(self) -> trace.Span:
        return trace.get_current_span()

    async def fail(self) -> None:
        raise ConnectionError("redis is down")

    async def cancelled(self) -> None:
        raise asyncio.CancelledError

    def sync_fail(self) -> None:
        raise ValueError("bad row")


async def test_a_store_call_is_a_client_span_current_while_it_runs(spans: Spans) -> None:
    with _tracer.start_as_current_span("operation") as operation:
        inner = await ProbeStore().current()
        assert trace.get_current_span() is operation

    (span,) = spans.named("probe_store current")
    assert inner.get_span_context() == span.context
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == operation.get_span_context().span_id
    assert dict(span.attributes or {}) == {
        "db.system.name": "redis",
        "db.operation.name": "current",
        "maas.store": "probe_store",
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_a_failing_call_leaves_its_exception_on_its_span(spans: Spans) -> None:
    with _tracer.start_as_current_span("operation"):
        with pytest.raises(ConnectionError, match="redis is down"):
            await ProbeStore().fail()
        with pytest.raises(ValueError, match="bad row"):
            ProbeStore().sync_fail()

    for name, description in (
        ("probe_store fail", "ConnectionError: redis is down"),
        ("probe_store sync_fail", "ValueError: bad row"),
    ):
        (span,) = spans.named(name)
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == description
        assert [event.name for event in span.events] == ["exception"]
        assert span.end_time is not None


async def test_a_cancelled_call_is_no_failure(spans: Spans) -> None:
    with _tracer.start_as_current_span("operation"), pytest.raises(asyncio.CancelledError):
        await ProbeStore().cancelled()

    (span,) = spans.named("probe_store cancelled")
    assert span.status.status_code is StatusCode.UNSET
    assert not span.events
