"""Strawberry's execution context, with the operation's name and type worked out once per
document: Strawberry and the extensions ask for them eight times per operation, each time
walking the document's definitions (and the type through an enum lookup)."""

from __future__ import annotations

from typing import Any

from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

_NAME = ExecutionContext.operation_name.fget  # type: ignore[attr-defined]
_TYPE = ExecutionContext.operation_type.fget  # type: ignore[attr-defined]


class MemoizedExecutionContext(ExecutionContext):
    # (the document they were found in, the value): recomputed when the document changes;
    # what raises (no document, no such operation) raises each time, as in Strawberry.
    _name_memo: tuple[Any, str | None] | None = None
    _type_memo: tuple[Any, OperationType] | None = None

    @property
    def operation_name(self) -> str | None:
        document = self.graphql_document
        memo = self._name_memo
        if memo is None or memo[0] is not document:
            memo = self._name_memo = (document, _NAME(self))
        return memo[1]

    @property
    def operation_type(self) -> OperationType:
        document = self.graphql_document
        memo = self._type_memo
        if memo is None or memo[0] is not document:
            memo = self._type_memo = (document, _TYPE(self))
        return memo[1]
