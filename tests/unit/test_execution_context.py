"""The memoized execution context answers what Strawberry's answers, document by document."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse
from strawberry.types import ExecutionContext

from schema import schema
from schema.execution_context import MemoizedExecutionContext

DOCUMENTS = [
    "{ sessions { sessionIds } }",
    "query Named { sessions { sessionIds } }",
    'mutation Wipe { deleteSession(sessionId: "s") }',
    'query A { sessions { sessionIds } } mutation B { deleteSession(sessionId: "s") }',
]


def _facts(context: ExecutionContext) -> tuple[Any, Any]:
    def attempt(read: Any) -> Any:
        try:
            return read()
        except Exception as error:  # the exception is part of the answer
            return type(error), str(error)

    return attempt(lambda: context.operation_name), attempt(lambda: context.operation_type)


@pytest.mark.parametrize("name", [None, "A", "B", "Named", "Missing"])
def test_name_and_type_follow_the_document_as_strawberrys_do(name: str | None) -> None:
    def make(cls: type[ExecutionContext]) -> ExecutionContext:
        return cls(query="", schema=schema, allowed_operations=(), provided_operation_name=name)

    memoized, reference = make(MemoizedExecutionContext), make(ExecutionContext)
    assert _facts(memoized) == _facts(reference)  # no document yet
    for text in DOCUMENTS:
        document = parse(text)
        memoized.graphql_document = reference.graphql_document = document
        assert _facts(memoized) == _facts(reference)
        assert _facts(memoized) == _facts(reference)  # from the memo


def test_the_schema_makes_memoized_contexts() -> None:
    context = schema._create_execution_context(query="{ x }", allowed_operation_types=())
    assert type(context) is MemoizedExecutionContext
