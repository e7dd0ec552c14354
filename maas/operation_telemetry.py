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
from typing import TYPE_CHECKING

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, get_operation_ast
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from maas.request_scope import request_span, tracing_on
from schema.node_cache import NodeCache

if TYPE_CHECKING:
    from graphql import DocumentNode
    from strawberry.types import ExecutionContext

    from maas.metrics import PrometheusMetrics

# The label of an operation that never ran (it did not parse or validate).
INVALID = "invalid"
MAX_LABEL_FIELDS = 3
_tracer = trace.get_tracer("maas.graphql")
# (operation type, root-field label) of each operation of the documents clients send again and
# again: worked out once per document.
_described: NodeCache[tuple[str, str]] = NodeCache(512)


class OperationTelemetry:
    """Span, counts, errors and latency of each operation; active subscriptions. An observer
    (schema.operation_observer)."""

    def __init__(self, metrics: PrometheusMetrics | None = None) -> None:
        self._metrics = metrics

    def started(self, context: ExecutionContext) -> _Operation:
        started = time.perf_counter()
        # The HTTP request's span, or one in the caller's trace (WebSocket): see
        # maas.request_scope. Without tracing, no span at all (a no-op one costs as much).
        request = request_span()
        if request is not None:
            return _Operation(started, request, None)
        if tracing_on():
            spanning = _tracer.start_as_current_span("graphql", kind=SpanKind.SERVER)
            return _Operation(started, spanning.__enter__(), spanning)
        return _Operation(started, trace.INVALID_SPAN, None)

    def executing(self, operation: _Operation, context: ExecutionContext) -> None:
        # Reached only by documents that parsed and validated: their root fields are real.
        document, name = context.graphql_document, context.operation_name
        operation.type, operation.fields = _described.get(
            (id(document), name),
            (document,),
            lambda: (context.operation_type.value, _root_fields(document, name)),
        )
        if operation.type == "subscription" and self._metrics is not None:
            operation.streaming = True
            self._metrics.active_subscriptions.labels(operation.fields).inc()

    def ended(
        self, operation: _Operation, context: ExecutionContext, failure: BaseException | None
    ) -> None:
        codes: list[str] = []
        if failure is None:
            result = context.result
            if getattr(result, "errors", None):
                codes = _error_codes(result.errors)  # type: ignore[union-attr]
        elif isinstance(failure, (GeneratorExit, asyncio.CancelledError)):
            pass  # the client stopped a subscription or went away: no error of ours
        elif isinstance(failure, GraphQLError):
            # A document that does not parse: Strawberry answers it outside the extensions.
            codes = ["BAD_USER_INPUT"]
        else:
            codes = ["INTERNAL"]
        span = operation.span
        try:
            self._describe(span, operation, context)
            if codes:
                span.set_status(Status(StatusCode.ERROR, ", ".join(sorted(set(codes)))))
                span.set_attribute("graphql.error.codes", codes)
            self._record(operation, codes, time.perf_counter() - operation.started)
        finally:
            if operation.spanning is not None:  # the span this operation started ends
                if failure is None:
                    operation.spanning.__exit__(None, None, None)
                else:
                    operation.spanning.__exit__(type(failure), failure, failure.__traceback__)

    @staticmethod
    def _describe(span: trace.Span, operation: _Operation, context: ExecutionContext) -> None:
        if not span.is_recording():
            return
        name = context.operation_name
        span.update_name(f"{operation.type} {name or operation.fields}")
        attributes = {
            "graphql.operation.type": operation.type,
            "maas.graphql.fields": operation.fields,
        }
        if name:
            attributes["graphql.operation.name"] = name
        tenant = getattr(context.context, "tenant", None)
        if tenant:
            attributes["maas.tenant"] = tenant
        span.set_attributes(attributes)

    def _record(self, operation: _Operation, codes: list[str], seconds: float) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        counted, timed = metrics.operation_children(operation.fields, operation.type)
        counted.inc()
        for code in sorted(set(codes)):
            metrics.operation_errors.labels(operation.fields, operation.type, code).inc()
        if operation.streaming:
            metrics.active_subscriptions.labels(operation.fields).dec()
        else:
            timed.observe(seconds)


class _Operation:
    """What the telemetry keeps of one operation until it ends."""

    __slots__ = ("fields", "span", "spanning", "started", "streaming", "type")

    def __init__(
        self,
        started: float,
        span: trace.Span,
        spanning: contextlib.AbstractContextManager[trace.Span] | None,
    ) -> None:
        self.started = started
        self.span = span
        # The span's context manager, when the operation started the span (else the
        # request's or none).
        self.spanning = spanning
        self.type = "unknown"
        self.fields = INVALID
        self.streaming = False


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
