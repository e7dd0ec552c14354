"""The OTLP exporter and what it knows of the collector (maas.telemetry), in this process: one
attempt per batch; while the collector is down, no span recorded but one trace per retry
interval, no batch sent but one per interval, said once and once again when it is back; a
shutdown that keeps to its deadline whatever the collector does."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from maas.telemetry import (
    EXPORT_TIMEOUT_SECONDS,
    CollectorLink,
    OtlpExporter,
    Tracing,
    WhileCollectorUp,
)
from tests.support.otlp_receiver import OtlpReceiver

RETRY = 5.0


class Clock:
    """The link's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def some_spans(count: int = 3) -> list[ReadableSpan]:
    collect = Collect()
    provider = TracerProvider(resource=Resource.create({"service.name": "t"}))
    provider.add_span_processor(collect)
    for i in range(count):
        with provider.get_tracer("t").start_as_current_span(f"span {i}"):
            pass
    return collect.spans


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


@pytest.fixture
def telemetry_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="maas.telemetry")
    return caplog


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "maas.telemetry"]


def test_spans_reach_a_collector(receiver: OtlpReceiver) -> None:
    link = CollectorLink(receiver.base_url)
    exporter = OtlpExporter(receiver.base_url, link)

    assert exporter.export(some_spans(3)) is SpanExportResult.SUCCESS
    assert [s.name for s in receiver.spans] == ["span 0", "span 1", "span 2"]
    assert receiver.content_types == {"application/x-protobuf"}
    assert link.up


def test_a_down_collector_is_said_once_tried_once_per_interval_and_said_again_once_back(
    receiver: OtlpReceiver, telemetry_log: pytest.LogCaptureFixture
) -> None:
    nowhere = closed_port_url()
    clock = Clock()
    link = CollectorLink(nowhere, retry_seconds=RETRY, clock=clock)
    exporter = OtlpExporter(nowhere, link)

    assert exporter.export(some_spans()) is SpanExportResult.FAILURE
    assert not link.up
    # Dropped at once, without trying: it was just tried.
    exporter.url = f"{receiver.base_url}/v1/traces"
    assert exporter.export(some_spans()) is SpanExportResult.FAILURE
    assert receiver.spans == []
    (down,) = messages(telemetry_log)
    assert "cannot export traces" in down
    assert nowhere in down
    assert "Connection refused" in down

    clock.now += RETRY
    assert exporter.export(some_spans(2)) is SpanExportResult.SUCCESS
    assert link.up
    assert len(receiver.spans) == 2
    assert exporter.export(some_spans(2)) is SpanExportResult.SUCCESS
    assert messages(telemetry_log)[1:] == [f"exporting traces to {nowhere} again"]


def test_failing_again_after_recovery_is_said_again(
    telemetry_log: pytest.LogCaptureFixture,
) -> None:
    nowhere = closed_port_url()
    link = CollectorLink(nowhere)

    link.failed("first")
    link.failed("still")
    link.succeeded()
    link.succeeded()
    link.failed("again")

    said = messages(telemetry_log)
    assert len(said) == 3
    assert "first" in said[0]
    assert "again" in said[1]
    assert "cannot export" in said[2]
    assert "again" in said[2]


def test_a_collector_answering_an_error_is_down(
    receiver: OtlpReceiver, telemetry_log: pytest.LogCaptureFixture
) -> None:
    url = f"{receiver.base_url}/nowhere"
    link = CollectorLink(url)

    assert OtlpExporter(url, link).export(some_spans()) is SpanExportResult.FAILURE
    assert not link.up
    assert "HTTP 404" in messages(telemetry_log)[0]


def test_the_start_up_check_finds_nothing_listening(
    telemetry_log: pytest.LogCaptureFixture, receiver: OtlpReceiver
) -> None:
    nowhere = CollectorLink(closed_port_url())
    nowhere.check()
    listening = CollectorLink(receiver.base_url)
    listening.check()

    assert not nowhere.up
    assert listening.up
    assert len(messages(telemetry_log)) == 1


def sampled_provider(link: CollectorLink) -> tuple[TracerProvider, Collect]:
    collect = Collect()
    provider = TracerProvider(sampler=WhileCollectorUp(ALWAYS_ON, link))
    provider.add_span_processor(collect)
    return provider, collect


def test_while_the_collector_is_down_one_trace_per_interval_is_recorded() -> None:
    clock = Clock()
    link = CollectorLink(closed_port_url(), retry_seconds=RETRY, clock=clock)
    provider, collect = sampled_provider(link)
    tracer = provider.get_tracer("t")
    link.failed("down")

    for _ in range(5):
        with tracer.start_as_current_span("dropped") as span:
            assert not span.is_recording()
            assert span.get_span_context().is_valid  # logs still carry trace ids
    clock.now += RETRY
    with tracer.start_as_current_span("probe"), tracer.start_as_current_span("its child"):
        pass
    with tracer.start_as_current_span("dropped again"):
        pass

    assert [s.name for s in collect.spans] == ["its child", "probe"]


def test_traces_begun_before_the_collector_went_down_keep_their_spans() -> None:
    link = CollectorLink(closed_port_url(), retry_seconds=60)
    provider, collect = sampled_provider(link)
    tracer = provider.get_tracer("t")

    with tracer.start_as_current_span("begun"):
        link.failed("down")
        with tracer.start_as_current_span("later child"):
            pass
    # A caller's sampled trace is not one recorded here: dropped too.
    remote = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracer.start_as_current_span("remote", set_span_in_context(NonRecordingSpan(remote))):
        pass

    assert [s.name for s in collect.spans] == ["later child", "begun"]


def unanswering_collector() -> tuple[socket.socket, str]:
    """A port that takes connections and never answers (its backlog holds them)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("collector", ["unanswering", "down", "closed port, not known yet"])
def test_shutdown_keeps_to_its_deadline(collector: str) -> None:
    sock, url = unanswering_collector()
    if collector != "unanswering":
        sock.close()
        url = closed_port_url()
    link = CollectorLink(url, retry_seconds=60)
    if collector == "down":
        link.failed("down")
    exporter = OtlpExporter(url, link)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))
    tracer = provider.get_tracer("t")
    for _ in range(1000):
        with tracer.start_as_current_span("queued"):
            pass

    started = time.monotonic()
    Tracing(provider, exporter).shutdown(0.5)
    took = time.monotonic() - started
    sock.close()

    # One export left to its own timeout would take EXPORT_TIMEOUT_SECONDS, and one per
    # batch would follow it.
    assert took < EXPORT_TIMEOUT_SECONDS


@pytest.mark.parametrize(
    "parent",
    [
        None,
        SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)),
        SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT)),
        SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)),
        SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT)),
    ],
    ids=["root", "sampled", "not sampled", "remote sampled", "remote not sampled"],
)
def test_while_the_collector_is_up_the_default_sampler_decides_as_the_sdks(
    parent: SpanContext | None,
) -> None:
    context = set_span_in_context(NonRecordingSpan(parent)) if parent else None
    attributes = {"k": "v"}
    ours = WhileCollectorUp(DEFAULT_ON, CollectorLink(closed_port_url()))

    got = ours.should_sample(context, 7, "s", attributes=attributes)
    expected = DEFAULT_ON.should_sample(context, 7, "s", attributes=attributes)

    assert (got.decision, got.attributes, got.trace_state) == (
        expected.decision,
        expected.attributes,
        expected.trace_state,
    )
