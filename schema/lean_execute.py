"""graphql-core's `execute` and executor, minus the wrappers that cannot apply.

For a schema without `@defer` and `@stream`: graphql-core's `execute` looks both directives
up in the schema on every call, goes through `experimental_execute_incrementally`, and wraps
an asynchronous result in one more coroutine that checks it is not an incremental one. A
schema without those directives cannot produce an incremental result (validation refuses the
directives), so here the executor is built and run as `experimental_execute_incrementally`
does, and its result (or awaitable) handed on as is.

Without an abort signal: graphql-core awaits every awaitable a resolver returns (and every
awaitable list item) through `with_abort_signal`, a coroutine that only awaits it when there is
no signal to race it against. Here the awaitable itself is handed back to be awaited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import ExecutionResult, GraphQLSchema
from graphql.execution import Executor
from graphql.execution.incremental import IncrementalExecutor

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from graphql import DocumentNode


class LeanExecute(strawberry.Schema):
    """A Strawberry schema that executes its operations by execute_without_increments when it
    can: not when incremental execution is on, nor when the schema has @defer or @stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._execute_function = (
            super()._get_execute_function()
            if self.config.enable_experimental_incremental_execution
            or self._schema.get_directive("defer")
            or self._schema.get_directive("stream")
            else execute_without_increments
        )

    def _get_execute_function(self) -> Callable[..., Any]:
        return self._execute_function


def execute_without_increments(
    schema: GraphQLSchema,
    document: DocumentNode,
    root_value: Any = None,
    context_value: Any = None,
    variable_values: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    executor_class: type[Executor] | None = None,
    middleware: Any = None,
    is_awaitable: Callable[[Any], bool] | None = None,
    **custom_context_args: Any,
) -> Any:
    """graphql-core's execute with the arguments Strawberry passes (the others at their
    defaults): an ExecutionResult, or an awaitable of one."""
    executor = (executor_class or IncrementalExecutor).build(
        schema,
        document,
        root_value,
        context_value,
        variable_values,
        operation_name,
        middleware=middleware,
        is_awaitable=is_awaitable,
        **custom_context_args,
    )
    if isinstance(executor, list):  # the request's errors (variables that do not coerce)
        return ExecutionResult(None, errors=executor)
    return executor.execute_operation()


class DirectAwaits(Executor):
    """An executor that awaits what resolvers return directly when it has no abort signal."""

    def with_abort_signal(self, awaitable: Awaitable[Any]) -> Awaitable[Any]:  # type: ignore[override]
        # Every caller awaits the result: the awaitable itself, or graphql-core's race.
        if self.abort_signal is None:
            return awaitable
        return super().with_abort_signal(awaitable)
