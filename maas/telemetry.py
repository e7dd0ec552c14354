"""Tracing for the process: one TracerProvider exporting OTLP over HTTP in the background, with
Redis and GenAI (OpenLIT: OpenAI-protocol LLM and embedding calls, Cohere) auto-instrumentation.
mem0's operations get their spans from services/memory_spans.py, not from OpenLIT (whose mem0
spans end before the work they name starts, and carry the caller's metadata and user ids).

OpenTelemetry's provider and the libraries it patches are process-wide by design, so tracing is
installed once per process; every app built later in the same process shares it, and the app
that installed it shuts it down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from maas.settings import Settings

log = logging.getLogger("maas.telemetry")

# A collector that does not answer costs the exporter's background thread this long per batch
# (retries included), never a request.
EXPORT_TIMEOUT_SECONDS = 5.0
# The longest shutdown waits for buffered spans. The SDK's own flush ignores its timeout and
# spends EXPORT_TIMEOUT_SECONDS on each batch of 512 when no collector answers.
SHUTDOWN_TIMEOUT_SECONDS = 5.0
# Instrumentations OpenLIT may apply; it would otherwise patch every library it finds
# (HTTP clients, frameworks), doubling our own spans.
GENAI_INSTRUMENTATIONS = frozenset({"openai", "cohere", "ollama"})
# An empty price list: OpenLIT downloads one at start-up unless given a file.
_NO_PRICES = Path(__file__).with_name("genai_prices.json")


class Tracing:
    """The process's tracing, held by whoever installed it."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    def shutdown(self, timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
        """Export what is buffered and stop; gives up after `timeout_seconds`."""
        stopping = threading.Thread(target=self.provider.shutdown, name="tracing-shutdown")
        stopping.daemon = True
        stopping.start()
        stopping.join(timeout_seconds)
        if stopping.is_alive():
            log.warning("gave up exporting the last spans after %.0f s", timeout_seconds)


def install_tracing(settings: Settings, exporter: SpanExporter | None = None) -> Tracing | None:
    """Start tracing for this process; returns its handle to the first caller only (later calls
    change nothing). `exporter` replaces the OTLP exporter, for tests."""
    # OpenTelemetry's global provider tells whether this process traces already.
    if settings.otel_sdk_disabled or isinstance(trace.get_tracer_provider(), TracerProvider):
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": settings.otel_service_name,
                "deployment.environment.name": settings.environment,
            }
        ),
        # Tracing.shutdown does it, bounded; the SDK's exit hook could wait for minutes.
        shutdown_on_exit=False,
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter or ReportingExporter(otlp_exporter(settings.otel_exporter_otlp_endpoint)),
            export_timeout_millis=int(EXPORT_TIMEOUT_SECONDS * 1000),
        )
    )
    trace.set_tracer_provider(provider)
    _instrument_redis(provider)
    _instrument_genai(settings)
    log.info(
        "tracing to %s", settings.otel_exporter_otlp_endpoint if exporter is None else exporter
    )
    return Tracing(provider)


def otlp_exporter(endpoint: str) -> OTLPSpanExporter:
    """OTLP/HTTP to a collector's base URL (spans go to its /v1/traces, as the spec says)."""
    return OTLPSpanExporter(
        endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=EXPORT_TIMEOUT_SECONDS
    )


class ReportingExporter(SpanExporter):
    """Logs once when export starts failing (collector down) and once when it recovers, where
    the OTLP exporter would log three lines for every batch it drops."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        failing = result is not SpanExportResult.SUCCESS
        if failing and not self._failing:
            log.warning("cannot export traces (is the collector up?); spans are being dropped")
        elif self._failing and not failing:
            log.info("exporting traces again")
        self._failing = failing
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _instrument_redis(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # Command names only (arguments hold message contents); the default already sanitizes.
    RedisInstrumentor().instrument(tracer_provider=provider)


def _instrument_genai(settings: Settings) -> None:
    import openlit
    from openlit._instrumentors import INSTRUMENTOR_MAP
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider

    # OpenLIT installs a console log exporter for its events unless a provider exists; events
    # are off, so an exporter-less provider keeps stdout clean.
    set_logger_provider(LoggerProvider())
    openlit.init(
        service_name=settings.otel_service_name,
        environment=settings.environment,
        disable_metrics=True,
        disable_events=True,
        capture_message_content=settings.otel_capture_message_content,
        pricing_json=str(_NO_PRICES),
        disabled_instrumentors=sorted(set(INSTRUMENTOR_MAP) - GENAI_INSTRUMENTATIONS),
    )
