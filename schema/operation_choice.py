"""Which operation of a document runs: per the GraphQL spec, a document of several operations
needs operationName to say which (graphql-core's execution would say so too, but Strawberry
picks the first operation for its own checks before that, and ran it)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension


class OneOperation(SchemaExtension):
    """Refuses, before validation, a document of several operations without operationName."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Strawberry's operation_name falls back to the first operation's: ask what was given.
        if context._provided_operation_name is None and document is not None:
            operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if operations > 1:
                message = "The document has several operations: give operationName."
                context.pre_execution_errors = [GraphQLError(message)]
        yield
