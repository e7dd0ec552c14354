"""Client spans for store calls: a class decorator that runs each named method inside a
`{kind} {method}` span, so every instance is traced, however mem0 creates it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind

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
    """Decorates a store class; `system` is the OpenTelemetry db.system.name (sqlite, mongodb)."""

    def decorate(cls: C) -> C:
        for name in methods:
            setattr(cls, name, _in_span(getattr(cls, name), kind, system, name))
        return cls

    return decorate


def _in_span(method: Callable[..., Any], kind: str, system: str, name: str) -> Callable[..., Any]:
    span_name = f"{kind} {name}"
    attributes = {"db.system.name": system, "db.operation.name": name, "maas.store": kind}

    @functools.wraps(method)
    def in_span(*args: Any, **kwargs: Any) -> Any:
        with _tracer.start_as_current_span(span_name, kind=SpanKind.CLIENT, attributes=attributes):
            return method(*args, **kwargs)

    return in_span
