"""Observers: what sees every operation whole (its span and metrics, maas.operation_telemetry),
as three plain calls instead of an extension's hooks.

An extension costs every operation its instance, a generator per hook and the phases that
drive them (about a twelfth of a write's own GraphQL work, for the telemetry alone). Queries
and mutations (schema.lean_operation) call an observer's steps where its hooks would run, as
the first extension: `started` on entering the operation, `executing` on entering execution,
`ended` on leaving the operation. Strawberry's own execution (subscriptions, `execute_sync`)
runs the same steps as the hooks of `ObserverExtension`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from strawberry.extensions import SchemaExtension

if TYPE_CHECKING:
    from strawberry.types import ExecutionContext


class OperationObserver(Protocol):
    def started(self, context: ExecutionContext) -> Any:
        """The operation begins (before any extension's hook): what to keep of it until it
        ends."""

    def executing(self, operation: Any, context: ExecutionContext) -> None:
        """The operation, parsed and validated, begins to execute."""

    def ended(
        self, operation: Any, context: ExecutionContext, failure: BaseException | None
    ) -> None:
        """The operation ends (after every extension's hook): `failure` is the exception
        passing out of it, if any; otherwise its result is `context.result`."""


class ObserverExtension(SchemaExtension):
    """An observer's steps as the hooks of an extension."""

    def __init__(self, observer: OperationObserver) -> None:
        super().__init__()
        self._observer = observer
        self._operation: Any = None

    def on_operation(self) -> Iterator[None]:
        observer, context = self._observer, self.execution_context
        operation = self._operation = observer.started(context)
        try:
            yield
        except BaseException as failure:
            observer.ended(operation, context, failure)
            raise
        observer.ended(operation, context, None)

    def on_execute(self) -> Iterator[None]:
        self._observer.executing(self._operation, self.execution_context)
        yield
