"""The SDK's tracer and span, made and ended with less work per span.

The SDK's `Tracer.start_span` and `Span` spend most of a span's cost on machinery a span of ours
never uses: a `BoundedAttributes` (with its own lock, cleaning every value through a chain of
isinstance checks) for the attributes and for the events, a `BoundedList` for the links, and at
the end a second, read-only copy of the span for the processors. With a collector up that was
~20 us per span, several per request (issue 11). `LeanTracerProvider` hands out tracers whose
spans (`LeanSpan`) are still the SDK's `Span` class, with the same ids, sampling, processors,
limits and exported content, but keep their attributes in a plain dict (values of the four plain
types stored as they are, anything else cleaned as the SDK cleans it) and are handed to the
processors themselves when they end (they take no change after that).

Everything that creates spans through the OpenTelemetry API (our code, OpenLIT) gets them.
A span with links, or from a tracer disabled by configuration, is made by the SDK as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import _clean_attribute_value
from opentelemetry.sdk.trace import Span, SpanLimits, Tracer, TracerProvider
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util import types

log = logging.getLogger(__name__)

_PLAIN = frozenset({str, bool, int, float})
_UNSET = Status(StatusCode.UNSET)
# TraceFlags by (sampled, random trace id): the SDK makes a new one for every span.
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        | (TraceFlags.RANDOM_TRACE_ID if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}


class LeanTracerProvider(TracerProvider):
    """A TracerProvider whose tracers make `LeanSpan`s."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace_api.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        # The SDK builds (and caches) the tracer; only how it starts spans changes.
        if type(tracer) is Tracer:
            tracer.__class__ = LeanTracer
        return tracer


class LeanTracer(Tracer):
    """The SDK's Tracer, starting `LeanSpan`s: the same decisions, in fewer steps."""

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        if links or not self._is_enabled():
            return super().start_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )
        parent = trace_api.get_current_span(context).get_span_context()
        ids = self.id_generator
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = ids.generate_trace_id()
            random_trace_id = ids.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_trace_id = parent.trace_flags.random_trace_id
        sampling = self.sampler.should_sample(context, trace_id, name, kind, attributes, ())
        decision = sampling.decision
        span_context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=_FLAGS[decision.is_sampled(), bool(random_trace_id)],
            trace_state=sampling.trace_state,
        )
        record_end_metrics = self._tracer_metrics.start_span(parent, decision)
        if not decision.is_recording():
            return NonRecordingSpan(context=span_context)
        span = LeanSpan(
            name,
            span_context,
            parent,
            self,
            kind,
            sampling.attributes,
            record_exception,
            set_status_on_exception,
            record_end_metrics,
        )
        span._start_time = start_time if start_time is not None else time_ns()
        self.span_processor.on_start(span, parent_context=context)
        return span


class LeanSpan(Span):
    """An SDK span without the SDK's per-span containers (see the module's docstring); ended,
    it is its own read-only copy."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        tracer: Tracer,
        kind: SpanKind,
        attributes: types.Attributes,
        record_exception: bool,
        set_status_on_exception: bool,
        record_end_metrics: Any,
    ) -> None:
        # ReadableSpan's and Span's fields, set here: their constructors build what this avoids.
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope
        self._parent = parent
        self._start_time: int | None = None
        self._end_time: int | None = None
        self._resource = tracer.resource
        self._status = _UNSET
        self._sampler = tracer.sampler
        self._trace_config = None
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._span_processor = tracer.span_processor
        self._limits: SpanLimits = tracer._span_limits
        self._lock = threading.Lock()
        self._events: list[Any] = []
        self._links: list[trace_api.Link] = []
        self._record_end_metrics = record_end_metrics
        self._attributes: dict[str, Any] = {}
        self._dropped_attributes = self._dropped_events = self._dropped_links = 0
        if attributes:
            self._put_all(attributes)

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._dropped_events

    @property
    def dropped_links(self) -> int:
        return self._dropped_links

    def _add_event(self, event: Any) -> None:
        # Span.add_event and record_exception build the event (its attributes bounded).
        self._bounded_append(self._events, event, self._limits.max_events, "_dropped_events")

    def _add_link(self, link: trace_api.Link) -> None:
        self._bounded_append(self._links, link, self._limits.max_links, "_dropped_links")

    def _bounded_append(self, items: list[Any], item: Any, most: int | None, dropped: str) -> None:
        """As BoundedList appends: the oldest item dropped (and counted) when full."""
        if self._end_time is not None:
            log.warning("Tried adding an event or link to an ended span.")
            return
        if most is not None and len(items) >= most:
            setattr(self, dropped, getattr(self, dropped) + 1)
            if most == 0:
                return
            del items[0]
        items.append(item)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            log.warning("Setting attribute on ended span.")
            return
        self._put_all(attributes)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is not None:
            log.warning("Setting attribute on ended span.")
            return
        self._put_all({key: value})

    def _put_all(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """As BoundedAttributes stores them: values cleaned (a string cut to the length limit,
        a list made a tuple, ...), a key set again moved last, the oldest dropped when full."""
        limits = self._limits
        if limits.max_span_attribute_length is not None or not all(
            type(key) is str and key and type(value) in _PLAIN for key, value in attributes.items()
        ):
            given = len(attributes)
            attributes = _clean_attribute_value(attributes, limits.max_span_attribute_length)
            self._dropped_attributes += given - len(attributes)  # invalid keys
        stored = self._attributes
        most = limits.max_span_attributes
        for key, value in attributes.items():
            if key in stored:
                del stored[key]
            elif most is not None and len(stored) >= most:
                if most == 0:
                    self._dropped_attributes += 1
                    continue
                del stored[next(iter(stored))]
                self._dropped_attributes += 1
            stored[key] = value

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                log.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
        self._record_end_metrics()
        self._span_processor._on_ending(self)
        self._span_processor.on_end(self)
