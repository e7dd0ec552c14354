"""One span per mem0 operation (add, search, update, delete), around the awaited work, so the
embedding, store and LLM spans of that operation are its children and its duration covers them.

OpenLIT's mem0 instrumentation wraps mem0's coroutine functions with a synchronous wrapper: its
span ends when the coroutine object is created, before any of the work runs, and it records the
caller's metadata and user ids whatever the content-capture setting says. This replaces it.

Attributes follow the GenAI conventions for memory operations (still in development) and carry
no user content: no text, query, metadata or scope ids, unless content capture is on, when the
query and the scope ids are recorded too. The span is INTERNAL: mem0 runs in this process; the
calls it makes to stores and providers are the CLIENT spans below it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

_tracer = trace.get_tracer("maas.memory")

PROVIDER = "mem0"
SCOPE_IDS = ("user_id", "agent_id", "run_id")


class TracedMemory:
    """Wraps mem0's AsyncMemory: `add` and `search` run inside a span, and `operation` gives
    the span of the updates and deletes the service makes itself; every other attribute is the
    engine's own."""

    def __init__(self, engine: Any, store_name: str, capture_content: bool = False) -> None:
        self._engine = engine
        self._store_name = store_name
        self._capture_content = capture_content

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def add(self, messages: Any, **kwargs: Any) -> Any:
        infer = bool(kwargs.get("infer", True))
        # Extraction may add, update or delete memories; a verbatim add only creates one.
        with self._span("upsert_memory" if infer else "create_memory", kwargs) as span:
            span.set_attribute("maas.memory.infer", infer)
            span.set_attribute("maas.memory.message_count", _count(messages))
            result = await self._engine.add(messages, **kwargs)
            _set_result_count(span, result)
            return result

    async def search(self, query: str, **kwargs: Any) -> Any:
        with self._span("search_memory", kwargs.get("filters") or {}) as span:
            if "top_k" in kwargs:
                span.set_attribute("maas.memory.search.limit", kwargs["top_k"])
            if kwargs.get("threshold") is not None:
                span.set_attribute("maas.memory.search.threshold", kwargs["threshold"])
            if self._capture_content:
                span.set_attribute("gen_ai.memory.query.text", query)
            result = await self._engine.search(query, **kwargs)
            _set_result_count(span, result)
            return result

    @contextlib.contextmanager
    def searching(
        self, query: str, filters: Mapping[str, Any], limit: int, threshold: float | None, mode: str
    ) -> Iterator[Span]:
        """The span of a search the service ranks itself (services/search_fusion.py): the query
        embedding and store calls run inside it; set its result count with `found`."""
        with self._span("search_memory", filters) as span:
            span.set_attribute("maas.memory.search.limit", limit)
            span.set_attribute("maas.memory.search.mode", mode)
            if threshold is not None:
                span.set_attribute("maas.memory.search.threshold", threshold)
            if self._capture_content:
                span.set_attribute("gen_ai.memory.query.text", query)
            yield span

    @contextlib.contextmanager
    def adding_verbatim(self, count: int) -> Iterator[Span]:
        """The span of verbatim adds the service writes together (services/verbatim_batch.py),
        as mem0's add of that many messages would have been."""
        with self._span("create_memory", {}) as span:
            span.set_attribute("maas.memory.infer", False)
            span.set_attribute("maas.memory.message_count", count)
            yield span

    @contextlib.contextmanager
    def operation(self, name: str, memory_id: str) -> Iterator[Span]:
        """The span of an operation on one memory that the service runs itself, past mem0
        (updates and deletes are the store's conditional writes): its embedding and store
        calls run inside it."""
        with self._span(name, {}) as span:
            span.set_attribute("gen_ai.memory.record.id", memory_id)
            yield span

    def _span(self, operation: str, scope: Mapping[str, Any]) -> Any:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.memory.store.name": self._store_name,
        }
        if self._capture_content:
            ids = {key: scope[key] for key in SCOPE_IDS if scope.get(key)}
            if ids:
                attributes["gen_ai.memory.scope"] = json.dumps(ids, sort_keys=True)
        return _tracer.start_as_current_span(
            f"{operation} {self._store_name}", kind=SpanKind.INTERNAL, attributes=attributes
        )


def operation_span(engine: Any, name: str, memory_id: str) -> AbstractContextManager[Any]:
    """The engine's span of an operation on one memory (none for an engine without spans)."""
    if isinstance(engine, TracedMemory):
        return engine.operation(name, memory_id)
    return contextlib.nullcontext()


def verbatim_span(engine: Any, count: int) -> AbstractContextManager[Any]:
    """The engine's span of verbatim adds written together (none for an engine without spans)."""
    if isinstance(engine, TracedMemory):
        return engine.adding_verbatim(count)
    return contextlib.nullcontext()


def search_span(
    engine: Any,
    query: str,
    filters: Mapping[str, Any],
    limit: int,
    threshold: float | None,
    mode: str,
) -> AbstractContextManager[Any]:
    """The engine's span of a search (none for an engine without spans)."""
    if isinstance(engine, TracedMemory):
        return engine.searching(query, filters, limit, threshold, mode)
    return contextlib.nullcontext()


def _count(messages: Any) -> int:
    return len(messages) if isinstance(messages, list | tuple) else 1


def _set_result_count(span: Span, result: Any) -> None:
    if isinstance(result, Mapping) and isinstance(result.get("results"), list):
        span.set_attribute("maas.memory.result_count", len(result["results"]))
