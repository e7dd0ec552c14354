"""Which operation of a document runs, and where: per the GraphQL spec, a document of several
operations needs operationName to say which (Strawberry picked the first one and ran it); a
subscription needs a WebSocket (over plain HTTP it would fail while executing). Checked on the
document Strawberry parsed for the request, before validation: no second parse."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType


class OneOperation(SchemaExtension):
    """Refuses, before validation, a document of several operations without operationName,
    and a subscription that did not come over a WebSocket."""

    def on_validate(self) -> Iterator[None]:
        problem = self._problem()
        if problem is not None:
            self.execution_context.pre_execution_errors = [GraphQLError(problem)]
        yield

    def _problem(self) -> str | None:
        context = self.execution_context
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
