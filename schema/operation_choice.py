"""Which operation of a document runs, and where: per the GraphQL spec, a document of several
operations needs operationName to say which (Strawberry picked the first one and ran it); a
subscription needs a WebSocket (over plain HTTP it would fail while executing). Checked on the
document Strawberry parsed for the request, before validation (by schema.document_cache, which
validates): no second parse."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphql import OperationDefinitionNode
from starlette.websockets import WebSocket
from strawberry.types.graphql import OperationType

if TYPE_CHECKING:
    from strawberry.types import ExecutionContext


def operation_problem(context: ExecutionContext) -> str | None:
    """Why the parsed document's operation may not run here: several operations without
    operationName, or a subscription that did not come over a WebSocket; else None."""
    document = context.graphql_document
    if document is None:
        return None
    # Strawberry's operation_name falls back to the first operation's: ask what was given.
    if context._provided_operation_name is None and len(document.definitions) > 1:
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        if operations > 1:
            return "The document has several operations: give operationName."
    if context.operation_type is OperationType.SUBSCRIPTION and not _over_websocket(context):
        return "Subscriptions need a WebSocket (graphql-transport-ws or graphql-ws)."
    return None


def _over_websocket(context: object) -> bool:
    request = getattr(getattr(context, "context", None), "request", None)
    # No request at all: the schema run directly (tests, tools), which may subscribe.
    return request is None or isinstance(request, WebSocket)
