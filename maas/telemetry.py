"""Tracing for the process: one TracerProvider exporting OTLP over HTTP in the background, with
GenAI instrumentation (OpenLIT: OpenAI-protocol LLM and embedding calls, Cohere). mem0's
operations get their spans from services/memory_spans.py, not from OpenLIT (whose mem0 spans end
before the work they name starts, and carry the caller's metadata and user ids); store calls,
Redis's included, from stores/traced.py (one span per call, not per Redis command).

What it costs is kept small: spans are made by maas.lean_spans, batched by maas.span_batching and
encoded by maas.span_encoding, and while the collector
cannot be reached nothing is recorded at all. The collector's state (CollectorLink) is checked at
start-up with a TCP connection and then learnt from each export: when an export fails, the
process says so once, drops spans (the sampler records none, the exporter sends none) and tries
again with one trace every RETRY_SECONDS; when one goes through, it says so once and records
as usual. An export makes one attempt, never a retry storm, and shutdown waits at most
SHUTDOWN_TIMEOUT_SECONDS for the last spans.

OpenTelemetry's provider and the libraries it patches are process-wide by design, so tracing is
installed once per process; every app built later in the same process shares it, and the app
that installed it shuts it down.
"""

from __future__ import annotations

import gzip
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision, Sampler, SamplingResult
from opentelemetry.util.re import parse_env_headers

from maas.lean_spans import LeanTracerProvider
from maas.settings import Settings
from maas.span_batching import SpanBatcher
from maas.span_encoding import SpanEncoder

log = logging.getLogger("maas.telemetry")

# One attempt per batch: a collector that takes no connection within CONNECT_TIMEOUT_SECONDS, or
# does not answer within EXPORT_TIMEOUT_SECONDS, is down (the exporter's thread waits, never a
# request).
CONNECT_TIMEOUT_SECONDS = 1.0
EXPORT_TIMEOUT_SECONDS = 3.0
# While the collector is down: one trace recorded, and one export tried, this often.
RETRY_SECONDS = 5.0
# The longest shutdown waits for buffered spans (Docker waits 10 s before SIGKILL).
SHUTDOWN_TIMEOUT_SECONDS = 0.5
# Instrumentations OpenLIT may apply; it would otherwise patch every library it finds
# (HTTP clients, frameworks), doubling our own spans.
GENAI_INSTRUMENTATIONS = frozenset({"openai", "cohere", "ollama"})
# An empty price list: OpenLIT downloads one at start-up unless given a file.
_NO_PRICES = Path(__file__).with_name("genai_prices.json")


class Tracing:
    """The process's tracing, held by whoever installed it."""

    def __init__(self, provider: TracerProvider, exporter: OtlpExporter | None = None) -> None:
        self.provider = provider
        self.exporter = exporter

    def shutdown(self, timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
        """Export what is buffered and stop; gives up after `timeout_seconds`."""
        if self.exporter is not None:
            self.exporter.finish_by(time.monotonic() + timeout_seconds)
        stopping = threading.Thread(target=self.provider.shutdown, name="tracing-shutdown")
        stopping.daemon = True
        stopping.start()
        # The exporter keeps to the deadline; the margin is for encoding the last batch.
        stopping.join(timeout_seconds + 0.25)
        if stopping.is_alive():
            log.warning("gave up exporting the last spans after %.1f s", timeout_seconds)


def install_tracing(settings: Settings, exporter: SpanExporter | None = None) -> Tracing | None:
    """Start tracing for this process; returns its handle to the first caller only (later calls
    change nothing). `exporter` replaces the OTLP exporter (and its collector checks), for
    tests."""
    # OpenTelemetry's global provider tells whether this process traces already.
    if settings.otel_sdk_disabled or isinstance(trace.get_tracer_provider(), TracerProvider):
        return None
    provider = LeanTracerProvider(
        resource=Resource.create(
            {
                "service.name": settings.otel_service_name,
                "deployment.environment.name": settings.environment,
            }
        ),
        # Tracing.shutdown does it, bounded; the SDK's exit hook could wait for minutes.
        shutdown_on_exit=False,
    )
    otlp: OtlpExporter | None = None
    if exporter is None:
        link = CollectorLink(settings.otel_exporter_otlp_endpoint)
        otlp = exporter = OtlpExporter(settings.otel_exporter_otlp_endpoint, link)
        # The SDK's sampler from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: every
        # trace, children following their parent); tracers take it when they are first used.
        provider.sampler = WhileCollectorUp(provider.sampler, link)
    provider.add_span_processor(SpanBatcher(exporter))
    trace.set_tracer_provider(provider)
    _instrument_genai(settings)
    if otlp is not None:
        otlp.link.check_in_background()
    log.info(
        "tracing to %s", settings.otel_exporter_otlp_endpoint if otlp is not None else exporter
    )
    return Tracing(provider, otlp)


class CollectorLink:
    """Whether the collector takes spans, as far as this process knows: reported once when it
    stops (a failed export, or no connection at start-up) and once when it takes them again.
    While it is down, `trace_due` and `export_due` let one trace and one export through every
    RETRY_SECONDS."""

    def __init__(
        self,
        endpoint: str,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.retry_seconds = retry_seconds
        self._clock = clock
        # Read without the lock on every sampling decision: a plain attribute.
        self.up = True
        self._next_trace = 0.0
        self._next_export = 0.0
        self._reported = False  # "cannot export" said, and not taken back yet
        self._exported = False  # an export went through, ever
        self._lock = threading.Lock()

    def trace_due(self) -> bool:
        return self._claim("_next_trace")

    def export_due(self) -> bool:
        return self._claim("_next_export")

    def _claim(self, which: str) -> bool:
        now = self._clock()
        if not self.up and now < getattr(self, which):
            return False  # the common case while down: no lock taken
        with self._lock:
            if self.up or now < getattr(self, which):
                return self.up
            setattr(self, which, now + self.retry_seconds)
            return True

    def failed(self, reason: str) -> None:
        with self._lock:
            if self.up:
                self._next_trace = self._next_export = self._clock() + self.retry_seconds
            self.up = False
            report, self._reported = not self._reported, True
        if report:
            log.warning(
                "cannot export traces to %s (%s): dropping them until it answers "
                "(tried again every %g s)",
                self.endpoint,
                reason,
                self.retry_seconds,
            )

    def succeeded(self) -> None:
        with self._lock:
            self.up = self._exported = True
            report, self._reported = self._reported, False
        if report:
            log.info("exporting traces to %s again", self.endpoint)

    def check_in_background(self) -> None:
        """Learn at start-up, not at the first export, whether anything listens there."""
        threading.Thread(target=self.check, name="otlp-check", daemon=True).start()

    def check(self) -> None:
        address = urlsplit(self.endpoint)
        port = address.port or (443 if address.scheme == "https" else 80)
        try:
            with socket.create_connection(
                (address.hostname or "localhost", port), timeout=CONNECT_TIMEOUT_SECONDS
            ):
                return
        except OSError as error:
            if not self._exported:
                self.failed(_reason(error))


_DROP = SamplingResult(Decision.DROP)


class WhileCollectorUp(Sampler):
    """`inner`'s decisions while the collector is up. While it is down: no new trace is
    recorded but one every RETRY_SECONDS (its export tells whether the collector is back), and
    traces already recorded keep their later spans."""

    def __init__(self, inner: Sampler, link: CollectorLink) -> None:
        self._inner = inner
        self._link = link
        # The default (every trace, children following their parent), decided here in fewer
        # steps: it is asked for every span.
        self._follows_parent_or_samples = inner is DEFAULT_ON

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if self._link.up and self._follows_parent_or_samples:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
            if parent.trace_flags.sampled:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
            return SamplingResult(Decision.DROP, None, parent.trace_state)
        if not self._link.up:
            parent = trace.get_current_span(parent_context).get_span_context()
            recorded_here = parent.is_valid and not parent.is_remote and parent.trace_flags.sampled
            if not recorded_here and not self._link.trace_due():
                if not parent.is_valid:
                    return _DROP
                return SamplingResult(Decision.DROP, None, parent.trace_state)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WhileCollectorUp{{{self._inner.get_description()}}}"


class OtlpExporter(SpanExporter):
    """OTLP/HTTP (protobuf) to a collector's base URL (spans go to its /v1/traces, as the spec
    says): one POST per batch, no retries; a batch the collector does not take is dropped.
    Honours OTEL_EXPORTER_OTLP[_TRACES]_HEADERS, _COMPRESSION, _CERTIFICATE and
    _CLIENT_CERTIFICATE / _CLIENT_KEY."""

    def __init__(self, endpoint: str, link: CollectorLink) -> None:
        self.url = f"{endpoint.rstrip('/')}/v1/traces"
        self.link = link
        self._encoder = SpanEncoder()
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Content-Type": "application/x-protobuf",
                "User-Agent": "maas-otlp-exporter",
                **parse_env_headers(_env("HEADERS") or "", liberal=True),
            }
        )
        self._compression = (_env("COMPRESSION") or "none").strip().lower()
        if self._compression in ("gzip", "deflate"):
            self._session.headers["Content-Encoding"] = self._compression
        if _env("CERTIFICATE"):
            self._session.verify = _env("CERTIFICATE")
        if _env("CLIENT_CERTIFICATE") and _env("CLIENT_KEY"):
            self._session.cert = (_env("CLIENT_CERTIFICATE"), _env("CLIENT_KEY"))
        self._deadline: float | None = None

    def finish_by(self, deadline: float) -> None:
        """From now on, no export may run past `deadline` (time.monotonic)."""
        self._deadline = deadline

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        link = self.link
        if not link.up and not link.export_due():
            return SpanExportResult.FAILURE  # dropped: the collector is down
        timeout = EXPORT_TIMEOUT_SECONDS
        if self._deadline is not None:
            timeout = min(timeout, self._deadline - time.monotonic())
            if timeout <= 0:
                return SpanExportResult.FAILURE
        body = self._encoder.encode(spans)
        if self._compression == "gzip":
            body = gzip.compress(body, compresslevel=6)
        elif self._compression == "deflate":
            body = zlib.compress(body)
        try:
            reply = self._session.post(
                self.url, data=body, timeout=(min(CONNECT_TIMEOUT_SECONDS, timeout), timeout)
            )
        except requests.RequestException as error:
            link.failed(_reason(error))
            return SpanExportResult.FAILURE
        if 200 <= reply.status_code < 300:
            link.succeeded()
            return SpanExportResult.SUCCESS
        link.failed(f"HTTP {reply.status_code}")
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._session.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _env(name: str) -> str | None:
    """OTEL_EXPORTER_OTLP_TRACES_{name}, else OTEL_EXPORTER_OTLP_{name}."""
    return os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(
        f"OTEL_EXPORTER_OTLP_{name}"
    )


def _reason(error: BaseException) -> str:
    """A few words for why an export or a connection failed."""
    if isinstance(error, requests.ConnectTimeout | socket.timeout | TimeoutError):
        return "no connection within the timeout"
    if isinstance(error, requests.Timeout):
        return "no reply within the timeout"
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        cause = pending.pop()
        if id(cause) in seen or not isinstance(cause, BaseException):
            continue
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        pending.extend([cause.__cause__, cause.__context__, *cause.args])
        pending.extend(getattr(cause, attr, None) for attr in ("reason", "original_error"))
    return type(error).__name__


def _instrument_genai(settings: Settings) -> None:
    import openlit
    import wrapt
    from openlit._instrumentors import INSTRUMENTOR_MAP
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider

    # OpenLIT installs a console log exporter for its events unless a provider exists; events
    # are off, so an exporter-less provider keeps stdout clean.
    set_logger_provider(LoggerProvider())
    # Configured with every instrumentation off: applied at init, OpenLIT's instrumentations
    # import the SDKs they patch (~1 s of CPU and ~50 MB for openai and cohere), which the
    # embedded defaults never load. Each is applied when its SDK is first imported instead.
    openlit.init(
        service_name=settings.otel_service_name,
        environment=settings.environment,
        disable_metrics=True,
        disable_events=True,
        capture_message_content=settings.otel_capture_message_content,
        pricing_json=str(_NO_PRICES),
        disabled_instrumentors=sorted(INSTRUMENTOR_MAP),
    )
    for name in sorted(GENAI_INSTRUMENTATIONS):
        wrapt.register_post_import_hook(lambda _module, name=name: _instrument_sdk(name), name)


def _instrument_sdk(name: str) -> None:
    """Applies OpenLIT's instrumentation of one GenAI SDK (its module is `name`)."""
    from openlit import instrument_if_available
    from openlit._config import OpenlitConfig
    from openlit._instrumentors import get_instrumentor_class

    instrumentor = get_instrumentor_class(name)
    if instrumentor is not None:
        instrument_if_available(name, instrumentor(), OpenlitConfig(), ())
