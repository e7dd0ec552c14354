"""Client spans for store calls: a class decorator that runs each named method inside a
`{kind} {method}` span, so every instance is traced, however mem0 creates it.

One span per store call, not per command: the Redis stores' calls (message store, event store,
ledger, limits) each send one to a few commands or scripts. Their methods are coroutines run on
the event loop, where background loops (stream followers, sweeps) call them too: those get a
span only inside a recorded one (an operation's), and cost one check otherwise.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

C = TypeVar("C", bound=type)

_tracer = trace.get_tracer("maas.stores")

VECTOR_STORE_CALLS = (
    "insert",
    "search",
    "get",
    "list",
    "page",
    "update",
    "delete",
    "delete_many",
    "update_live",
    "delete_live",
    "delete_expired",
)
HISTORY_STORE_CALLS = (
    "add_history",
    "batch_add_history",
    "get_history",
    "get_histories",
    "save_messages",
    "get_last_messages",
)


def traced(kind: str, system: str, methods: tuple[str, ...]) -> Callable[[C], C]:
    """Decorates a store class; `system` is the OpenTelemetry db.system.name (sqlite, mongodb,
    redis)."""

    def decorate(cls: C) -> C:
        for name in methods:
            method = getattr(cls, name)
            wrap = _in_span_async if inspect.iscoroutinefunction(method) else _in_span
            setattr(cls, name, wrap(method, kind, system, name))
        return cls

    return decorate


def _attributes(kind: str, system: str, name: str) -> dict[str, str]:
    return {"db.system.name": system, "db.operation.name": name, "maas.store": kind}


def _in_span(method: Callable[..., Any], kind: str, system: str, name: str) -> Callable[..., Any]:
    span_name = f"{kind} {name}"
    attributes = _attributes(kind, system, name)

    @functools.wraps(method)
    def in_span(*args: Any, **kwargs: Any) -> Any:
        with CurrentSpan(_tracer, span_name, SpanKind.CLIENT, attributes):
            return method(*args, **kwargs)

    return in_span


def _in_span_async(
    method: Callable[..., Any], kind: str, system: str, name: str
) -> Callable[..., Any]:
    span_name = f"{kind} {name}"
    attributes = _attributes(kind, system, name)

    @functools.wraps(method)
    async def in_span(*args: Any, **kwargs: Any) -> Any:
        if not trace.get_current_span().is_recording():
            return await method(*args, **kwargs)
        with CurrentSpan(_tracer, span_name, SpanKind.CLIENT, attributes):
            return await method(*args, **kwargs)

    return in_span


class CurrentSpan:
    """`tracer.start_as_current_span(name, kind=kind, attributes=attributes)`: a span, current
    inside the `with` block and ended after it, an exception that escapes recorded on it. A
    plain class: entered on every store call and request, where the API's three nested
    generator context managers cost about as much as the span itself."""

    __slots__ = ("_span", "_token")

    def __init__(
        self, tracer: trace.Tracer, name: str, kind: SpanKind, attributes: dict[str, str]
    ) -> None:
        self._span: Span = tracer.start_span(name, kind=kind, attributes=attributes)

    def __enter__(self) -> Span:
        self._token = context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, _kind: Any, error: BaseException | None, _traceback: Any) -> None:
        context.detach(self._token)
        span = self._span
        # Exceptions only: GeneratorExit and CancelledError are not failures of the call.
        if isinstance(error, Exception) and span.is_recording():
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
