"""Queries and mutations run by Strawberry's `Schema.execute`, step for step, with the schema's
own steps called instead of run as extensions.

Every extension costs every operation its instance, a generator per hook and the phases around
them, whatever its hooks do. Here the schema's own steps (schema.document_cache's `parse` and
`validate`, schema.errors' `code_errors`) are called where their hooks ran: the cache's on
entering the parse and validation phases, after the hooks of the extensions listed before it;
the codes on leaving the operation, before them. The extensions the schema was given
(observers, guards) run through their hooks as before.
Strawberry's `_execute_operation` is part of `execute` here, without `await_maybe` and the
keyword dicts Strawberry builds per call. The same refusals are raised, the same errors
processed at the same points, the same result returned: tests/unit/test_lean_operation.py
compares both on a corpus of operations.

Subscriptions, `execute_sync`, a schema with incremental execution or directives, and one
built without own steps run Strawberry's own, where the same steps are extensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    _coerce_error,
    _parse_operation_document,
    _run_validation,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from schema.errors import code_errors
from schema.lean_execute import LeanExecute, execute_without_increments

if TYPE_CHECKING:
    from collections.abc import Iterable

    from graphql import MiddlewareManager
    from strawberry.extensions.runner import SchemaExtensionsRunner
    from strawberry.types import ExecutionContext
    from strawberry.types.graphql import OperationType

    from schema.document_cache import DocumentCache
    from schema.extension_runner import LeanExtensionsRunner
    from schema.operation_observer import OperationObserver

# What `execute` lets through unchanged, as Strawberry's does (the transport answers them).
_REFUSALS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


@dataclass(frozen=True)
class OwnSteps:
    """The schema's own steps, which its extension list holds too (as `documents.extension`,
    ErrorCodes and an ObserverExtension per observer, for Strawberry's own execution), and the
    extensions that are not them."""

    documents: DocumentCache
    observers: tuple[OperationObserver, ...]
    extensions: tuple[Any, ...]


class LeanOperation(LeanExecute):
    """A schema whose `execute` calls its own steps (see the module)."""

    own_steps: OwnSteps | None = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        steps = self.own_steps
        if (
            steps is None
            or self._execute_function is not execute_without_increments
            or self.directives
        ):
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        if allowed_operation_types is None:
            allowed_operation_types = DEFAULT_ALLOWED_OPERATION_TYPES
        context = self._create_execution_context(
            query=query,
            allowed_operation_types=allowed_operation_types,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
        )
        extensions = [e if isinstance(e, SchemaExtension) else e() for e in steps.extensions]
        for extension in extensions:
            extension.execution_context = context
        runner = self.create_extensions_runner(context, extensions)
        # The observers first in, last out: around the extensions' hooks.
        observed: list[tuple[OperationObserver, Any]] = []
        try:
            for observer in steps.observers:
                observed.append((observer, observer.started(context)))
            operating = runner.hooked("on_operation")
            if operating is None:
                result, answered = await self._operate(context, runner, extensions, observed)
            else:
                async with operating:
                    result, answered = await self._operate(context, runner, extensions, observed)
        except BaseException as failure:
            failed = _end(observed, context, failure)
        else:
            failed = _end(observed, context, None)
        if failed is not None:
            if isinstance(failed, _REFUSALS) or not isinstance(failed, Exception):
                raise failed
            # Strawberry's: any other failure becomes an error.
            errors = PreExecutionError(data=None, errors=[_coerce_error(failed)])
            return await self._result(context, errors, runner, processed=False)
        if answered:
            return result
        return await self._result(context, result, runner, processed=True)

    async def _operate(
        self,
        context: ExecutionContext,
        runner: LeanExtensionsRunner,
        extensions: list[SchemaExtension],
        observed: list[tuple[OperationObserver, Any]],
    ) -> tuple[Any, bool]:
        """The operation within its hooks: (the answer, True) when it ended before executing,
        else (graphql-core's result, False), errors coded."""
        errors = await self._prepare(context, runner, self.own_steps.documents)  # type: ignore[union-attr]
        if errors is not None:
            result, answered = await self._result(context, errors, runner, processed=False), True
        else:
            for observer, operation in observed:
                observer.executing(operation, context)
            executing = runner.hooked("on_execute")
            if executing is None:
                result = await self._execute(context, extensions)
            else:
                async with executing:
                    result = await self._execute(context, extensions)
            answered = False
        # ErrorCodes' step: the last extension, the first to leave the operation.
        code_errors(context.result)
        return result, answered

    async def _execute(self, context: ExecutionContext, extensions: list[SchemaExtension]) -> Any:
        """Strawberry's `_execute_operation`: graphql-core's result, unless an extension set
        one already; its errors processed while the extensions are still in the operation."""
        result = context.result
        if not result:
            result = self._run(context, self._get_middleware_manager(extensions))
            if isawaitable(result):
                result = await result
            context.result = result
        if isinstance(result, GraphQLExecutionResult) and result.errors:
            context.pre_execution_errors = result.errors
            self._process_errors(result.errors, context)
        return result

    def _run(self, context: ExecutionContext, middleware: MiddlewareManager) -> Any:
        """graphql-core's execution of the operation: its result, or an awaitable of it."""
        return execute_without_increments(
            self._schema,
            context.graphql_document,  # type: ignore[arg-type]
            context.root_value,
            context.context,
            context.variables,
            context.operation_name,
            executor_class=self.execution_context_class,
            middleware=middleware,
            is_awaitable=optimized_is_awaitable,
            operation_extensions=context.operation_extensions,
        )

    async def _prepare(
        self, context: ExecutionContext, runner: LeanExtensionsRunner, documents: DocumentCache
    ) -> PreExecutionError | None:
        """Strawberry's `_prepare_operation_async` with the cache's steps: parse, check the
        operation type, validate; the errors that end the operation before it executes, or
        None. A phase no extension hooks is not entered at all."""
        if not context.query and context.graphql_document is None:
            raise MissingQueryError
        parsing = runner.hooked("on_parse")
        if parsing is None:
            errors = _parse(context, documents)
        else:
            async with parsing:
                errors = _parse(context, documents)
        if errors is not None:
            return errors
        try:
            operation_type = context.operation_type
        except RuntimeError as error:
            raise CannotGetOperationTypeError(context.operation_name) from error
        if operation_type not in context.allowed_operations:
            raise InvalidOperationTypeError(operation_type)
        validating = runner.hooked("on_validate")
        if validating is None:
            return _validate(context, documents)
        async with validating:
            return _validate(context, documents)

    async def _result(
        self,
        context: ExecutionContext,
        result: Any,
        runner: SchemaExtensionsRunner,
        *,
        processed: bool,
    ) -> ExecutionResult:
        """Strawberry's `_handle_execution_result` for a result that is not incremental (this
        schema has none): its errors processed unless they were, the extensions' results."""
        if result.errors:
            context.pre_execution_errors = result.errors
            if not processed:
                self._process_errors(result.errors, context)
        if isinstance(result, GraphQLExecutionResult):
            result = ExecutionResult(data=result.data, errors=result.errors)
        result.extensions = await runner.get_extensions_results(context)
        context.result = result
        return result


def _parse(context: ExecutionContext, documents: DocumentCache) -> PreExecutionError | None:
    """The parse phase's work: the cached document, or the parse errors."""
    documents.parse(context)
    try:
        _parse_operation_document(context)
    except GraphQLError as error:
        context.pre_execution_errors = [error]
        return PreExecutionError(data=None, errors=[error])
    except Exception as error:  # Strawberry's: any failure becomes an error
        coerced = GraphQLError(str(error), original_error=error)
        context.pre_execution_errors = [coerced]
        return PreExecutionError(data=None, errors=[coerced])
    return None


def _validate(context: ExecutionContext, documents: DocumentCache) -> PreExecutionError | None:
    """The validation phase's work: the document's validation errors, if any."""
    documents.validate(context)
    _run_validation(context)
    if context.pre_execution_errors:
        return PreExecutionError(data=None, errors=context.pre_execution_errors)
    return None


def _end(
    observed: list[tuple[OperationObserver, Any]],
    context: ExecutionContext,
    failure: BaseException | None,
) -> BaseException | None:
    """Each observer's end, the last started first. One that raises hands its exception to
    those before it, as an extension's hook would on Strawberry's exit stack: the exception
    that comes out of the operation, or None."""
    for observer, operation in reversed(observed):
        try:
            observer.ended(operation, context, failure)
        except BaseException as error:  # handed on, as the exit stack does
            failure = error
    return failure
