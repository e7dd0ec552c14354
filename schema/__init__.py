"""The GraphQL schema. `schema` is the SDL's source; `build_schema` adds the request limits."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import ASTValidationRule, MiddlewareManager, ValidationContext
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.acyclic_executor import AcyclicExecution
from schema.completion_plans import CompletionPlans, PlannedCompletion
from schema.document_cache import DocumentCache
from schema.errors import (
    ErrorCodes,
    classified,
    is_request_error,
    request_error_code,
    without_suggestions,
)
from schema.execution_context import MemoizedExecutionContext
from schema.extension_runner import LeanExtensionsRunner
from schema.input_conversion import build_inputs_quickly
from schema.json_scalar import checked_json_scalar
from schema.lean_execute import DirectAwaits
from schema.lean_operation import LeanOperation, OwnSteps
from schema.operation_observer import ObserverExtension, OperationObserver
from schema.prepared_execution import PreparedExecution, PreparedOperations
from schema.quick_resolvers import build_resolvers_quickly
from schema.root import Mutation, Query, Subscription
from schema.shared_execution import SharedEventResults
from schema.variable_coercion import compile_variable_coercion
from services.json_values import JsonLimits

if TYPE_CHECKING:
    from collections.abc import Iterable

    from strawberry.types import ExecutionContext
    from strawberry.types.graphql import OperationType

ExtensionFactory = Callable[[], SchemaExtension] | type[SchemaExtension]
_NO_MIDDLEWARE = MiddlewareManager()


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2_000
    introspection: bool = True
    cache_size: int = 256
    cached_document_chars: int = 8192
    json: JsonLimits = field(default_factory=JsonLimits)


class _QuietSchema(LeanOperation):
    # With introspection off, error messages must not enumerate the schema either.
    hide_suggestions = False

    def _create_execution_context(
        self,
        query: str | None,
        allowed_operation_types: Iterable[OperationType],
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> MemoizedExecutionContext:
        # Strawberry's, of the class that remembers the operation's name and type.
        return MemoizedExecutionContext(
            query=query,
            schema=self,
            allowed_operations=allowed_operation_types,
            context=context_value,
            root_value=root_value,
            variables=variable_values,
            provided_operation_name=operation_name,
            operation_extensions=operation_extensions,
        )

    def _get_middleware_manager(self, extensions: list[SchemaExtension]) -> MiddlewareManager:
        # Strawberry asks every extension instance of every operation whether it hooks each
        # field; the answer is its class's. Without any, one empty manager (it holds nothing)
        # serves every operation.
        resolving = [e for e in extensions if _resolves_fields(type(e))]
        return MiddlewareManager(*resolving) if resolving else _NO_MIDDLEWARE

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> LeanExtensionsRunner:
        return LeanExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors, execution_context=None) -> None:
        # Strawberry would log every bad request as an error. Here every error gets its code,
        # in the list Strawberry passes (the one its result carries): a request error in place,
        # any other as ErrorCodes codes it (an internal one masked, logged with its id).
        # ErrorCodes alone misses what fails outside the operation's hooks: an extension that
        # raises would reach the client uncoded, its message unmasked.
        for index, error in enumerate(errors):
            if not is_request_error(error):
                errors[index] = classified(error)
                continue
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": request_error_code(error)}
            if self.hide_suggestions:
                error.message = without_suggestions(error.message)


def build_schema(
    limits: QueryLimits | None = None,
    observers: Sequence[OperationObserver] = (),
    shared_results: SharedEventResults | None = None,
    extensions: Sequence[ExtensionFactory] = (),
) -> strawberry.Schema:
    """The schema with its limits. `observers` (schema.operation_observer) come first, so they
    see every operation whole, errors already coded; `extensions` next, each a factory so no
    state is shared between concurrent requests (guards among them, which may refuse an
    operation before it executes). With `shared_results`, subscribers that would compute the
    same result for an event share one execution of it (see schema.shared_execution)."""
    limits = limits or QueryLimits()
    # The limiters' rule classes hold only their limits, so they are built once: the
    # validation cache keys on the rules, and new classes per request would never hit it.
    # Without introspection, DisableIntrospection's rule comes first, where its extension put
    # it.
    rules = [
        *([] if limits.introspection else [NoSchemaIntrospectionCustomRule]),
        *map(_tolerant, QueryDepthLimiter(max_depth=limits.max_depth).validation_rules),
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    documents = DocumentCache(
        limits.cache_size, limits.cached_document_chars, limits.max_tokens, rules
    )
    schema_class = type(
        "Schema",
        (_QuietSchema,),
        {
            "hide_suggestions": not limits.introspection,
            "own_steps": OwnSteps(documents, tuple(observers), tuple(extensions)),
        },
    )
    built = schema_class(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            *(functools.partial(ObserverExtension, observer) for observer in observers),
            *extensions,
            documents.extension,
            ErrorCodes,
        ],
        scalar_overrides=checked_json_scalar(limits.json),
        execution_context_class=_executor_class(shared_results),
    )
    build_inputs_quickly(built)
    build_resolvers_quickly(built)
    return built


def _executor_class(
    shared_results: SharedEventResults | None,
) -> type[StrawberryGraphQLCoreExecutionContext]:
    """Strawberry's executor, running cached documents' operations as prepared
    (schema.prepared_execution), completing plain selections by plans
    (schema.completion_plans), without a reference cycle (schema.acyclic_executor), sharing
    subscription results with `shared_results`; the plans and prepared operations are this
    schema's own."""
    base = (
        shared_results.executor_class()
        if shared_results is not None
        else StrawberryGraphQLCoreExecutionContext
    )
    return type(
        "Executor",
        # AcyclicExecution before PreparedExecution: its helpers are the ones a prepared
        # operation's executor gets.
        (PlannedCompletion, AcyclicExecution, PreparedExecution, DirectAwaits, base),
        {"plans": CompletionPlans(), "prepared": PreparedOperations(compile_variable_coercion)},
    )


@functools.cache
def _resolves_fields(extension_class: type[SchemaExtension]) -> bool:
    return extension_class._implements_resolve()


def _tolerant(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """A validation rule that steps aside on an unknown fragment (Strawberry's depth limiter
    raises KeyError for it), which graphql-core's own KnownFragmentNamesRule reports."""

    class Tolerant(rule):  # type: ignore[valid-type, misc]
        def __init__(self, context: ValidationContext) -> None:
            try:
                super().__init__(context)
            except KeyError:
                ASTValidationRule.__init__(self, context)

    return Tolerant


schema = build_schema()
