"""maas.span_batching.SpanBatcher: every sampled span that ended is exported, in batches of at
most max_batch, as soon as a batch is full or when the delay has passed; at shutdown, all that
waits; force_flush, at once; beyond max_waiting, spans are dropped and that is said."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from maas.lean_spans import LeanTracerProvider
from maas.span_batching import SpanBatcher
from tests.support.patience import patience

FOREVER = 3600.0  # a delay no test waits for


class Recorder(SpanExporter):
    """Keeps each batch; `release` holds exports back while it is clear."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.exported = threading.Condition()
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.started.set()
        self.release.wait(patience())
        with self.exported:
            self.batches.append([span.name for span in spans])
            self.exported.notify_all()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut_down = True

    def names(self) -> list[str]:
        return [name for batch in self.batches for name in batch]

    def wait_for(self, count: int) -> list[str]:
        with self.exported:
            self.exported.wait_for(lambda: len(self.names()) >= count, patience())
        return self.names()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = LeanTracerProvider(shutdown_on_exit=False)
    yield provider
    provider.shutdown()


def end_spans(provider: TracerProvider, count: int, prefix: str = "span") -> list[str]:
    tracer = provider.get_tracer("t")
    names = [f"{prefix} {i}" for i in range(count)]
    for name in names:
        with tracer.start_as_current_span(name):
            pass
    return names


def test_shutdown_exports_every_span_that_ended_in_batches_of_at_most_max_batch(
    recorder: Recorder, provider: TracerProvider
) -> None:
    batcher = SpanBatcher(recorder, max_batch=64, delay_seconds=FOREVER)
    provider.add_span_processor(batcher)
    names = end_spans(provider, 1000)

    batcher.shutdown()

    assert recorder.names() == names
    assert max(len(batch) for batch in recorder.batches) <= 64
    assert recorder.shut_down


def test_a_full_batch_is_exported_without_waiting_for_the_delay(
    recorder: Recorder, provider: TracerProvider
) -> None:
    provider.add_span_processor(SpanBatcher(recorder, max_batch=10, delay_seconds=FOREVER))
    names = end_spans(provider, 9)
    assert recorder.names() == []

    names += end_spans(provider, 1, "tenth")

    assert recorder.wait_for(10) == names


def test_fewer_spans_than_a_batch_are_exported_once_the_delay_has_passed(
    recorder: Recorder, provider: TracerProvider
) -> None:
    delay = 0.05
    provider.add_span_processor(SpanBatcher(recorder, max_batch=10, delay_seconds=delay))
    ended = time.monotonic()
    names = end_spans(provider, 3)

    assert recorder.wait_for(3) == names
    assert time.monotonic() - ended >= delay * 0.9  # the timer's own rounding


def test_force_flush_exports_what_waits_at_once(
    recorder: Recorder, provider: TracerProvider
) -> None:
    batcher = SpanBatcher(recorder, max_batch=10, delay_seconds=FOREVER)
    provider.add_span_processor(batcher)
    names = end_spans(provider, 3)

    assert batcher.force_flush()
    assert recorder.names() == names


def test_spans_not_sampled_are_not_exported(recorder: Recorder) -> None:
    provider = LeanTracerProvider(shutdown_on_exit=False, sampler=ALWAYS_OFF)
    batcher = SpanBatcher(recorder, max_batch=10, delay_seconds=FOREVER)
    provider.add_span_processor(batcher)
    end_spans(provider, 3)

    batcher.shutdown()
    assert recorder.names() == []


def test_beyond_max_waiting_spans_are_dropped_and_that_is_said(
    recorder: Recorder, provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.release.clear()  # the first export hangs: the spans after it wait
    batcher = SpanBatcher(recorder, max_batch=2, delay_seconds=FOREVER, max_waiting=5)
    provider.add_span_processor(batcher)
    first = end_spans(provider, 2, "first")
    assert recorder.started.wait(patience())  # the first batch is being exported
    kept = end_spans(provider, 5, "kept")
    end_spans(provider, 3, "dropped")

    with caplog.at_level(logging.WARNING, logger="maas.span_batching"):
        recorder.release.set()
        batcher.shutdown()

    assert recorder.names() == first + kept
    assert [r.getMessage() for r in caplog.records] == [
        "dropped 3 spans: more ended than could be exported"
    ]
