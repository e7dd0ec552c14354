"""One span and one set of metrics per GraphQL operation.

The span is the parent of everything the operation causes (Redis commands, mem0, vector-store,
LLM and embedding calls). Over HTTP it is the request's span (maas.request_scope), named after
the operation; over WebSocket, a span of its own. It continues the caller's trace when the
request carries a W3C `traceparent`. Operations are labelled by the schema fields they select,
which are bounded, never by the client-chosen operation name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, get_operation_ast
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from strawberry.extensions import SchemaExtension

from maas.request_scope import request_span, tracing_on
from schema.node_cache import NodeCache

if TYPE_CHECKING:
    from graphql import DocumentNode

    from maas.metrics import PrometheusMetrics

# The label of an operation that never ran (it did not parse or validate).
INVALID = "invalid"
MAX_LABEL_FIELDS = 3
_tracer = trace.get_tracer("maas.graphql")
# (operation type, root-field label) of each operation of the documents clients send again and
# again: worked out once per document.
_described: NodeCache[tuple[str, str]] = NodeCache(512)


class OperationTelemetry(SchemaExtension):
    """Span, counts, errors and latency of each operation; active subscriptions."""

    def __init__(self, metrics: PrometheusMetrics | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics
        self._fields = INVALID
        self._type = "unknown"
        self._streaming = False

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        # The HTTP request's span, or one in the caller's trace (WebSocket): see
        # maas.request_scope. Without tracing, no span at all (a no-op one costs as much).
        request = request_span()
        if request is not None:
            spanning: contextlib.AbstractContextManager[trace.Span] = contextlib.nullcontext(
                request
            )
        elif tracing_on():
            spanning = _tracer.start_as_current_span("graphql", kind=SpanKind.SERVER)
        else:
            spanning = contextlib.nullcontext(trace.INVALID_SPAN)
        with spanning as span:
            codes: list[str] = []
            try:
                yield
                result = self.execution_context.result
                if getattr(result, "errors", None):
                    codes = _error_codes(result.errors)
            except (GeneratorExit, asyncio.CancelledError):
                # The client stopped a subscription or went away: no error of ours.
                raise
            except GraphQLError:
                # A document that does not parse: Strawberry answers it outside the extensions.
                codes = ["BAD_USER_INPUT"]
                raise
            except BaseException:
                codes = ["INTERNAL"]
                raise
            finally:
                self._describe(span)
                if codes:
                    span.set_status(Status(StatusCode.ERROR, ", ".join(sorted(set(codes)))))
                    span.set_attribute("graphql.error.codes", codes)
                self._record(codes, time.perf_counter() - started)

    def on_execute(self) -> Iterator[None]:
        # Reached only by documents that parsed and validated: their root fields are real.
        context = self.execution_context
        document, name = context.graphql_document, context.operation_name
        self._type, self._fields = _described.get(
            (id(document), name),
            (document,),
            lambda: (context.operation_type.value, _root_fields(document, name)),
        )
        if self._type == "subscription" and self._metrics is not None:
            self._streaming = True
            self._metrics.active_subscriptions.labels(self._fields).inc()
        yield

    def _describe(self, span: trace.Span) -> None:
        context = self.execution_context
        if not span.is_recording():
            return
        name = context.operation_name
        span.update_name(f"{self._type} {name or self._fields}")
        attributes = {"graphql.operation.type": self._type, "maas.graphql.fields": self._fields}
        if name:
            attributes["graphql.operation.name"] = name
        tenant = getattr(context.context, "tenant", None)
        if tenant:
            attributes["maas.tenant"] = tenant
        span.set_attributes(attributes)

    def _record(self, codes: list[str], seconds: float) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        counted, timed = metrics.operation_children(self._fields, self._type)
        counted.inc()
        for code in sorted(set(codes)):
            metrics.operation_errors.labels(self._fields, self._type, code).inc()
        if self._streaming:
            metrics.active_subscriptions.labels(self._fields).dec()
        else:
            timed.observe(seconds)


def _root_fields(document: DocumentNode | None, operation_name: str | None) -> str:
    operation = get_operation_ast(document, operation_name) if document else None
    if not isinstance(operation, OperationDefinitionNode):
        return INVALID
    names = sorted(
        {s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)}
    )
    if not names:
        return "fragments"
    return "+".join(names) if len(names) <= MAX_LABEL_FIELDS else "multiple"


def _error_codes(errors: list[GraphQLError]) -> list[str]:
    return [(error.extensions or {}).get("code", "INTERNAL") for error in errors]
