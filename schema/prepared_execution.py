"""Prepared operations: what graphql-core works out from a document for every request, worked
out once per cached document and operation.

For each request graphql-core's executor asserts the schema is valid, scans the document for
its operation and fragments, coerces the variables, collects the root fields (resolving
fragments and directives) and runs them through its general loop for any number of fields.
Clients send the same few documents again and again (schema.document_cache keeps their parsed
trees), so for a document whose operation is a query or mutation without directives and
fragment variables, the assertion, the scan and the root-field collection are done once here.
An operation of one root field (what agents send) then runs that field directly:
graphql-core's own `execute_field` (resolver, arguments, completion, error handling), with the
result built as graphql-core builds it.

The executor of a prepared operation is a copy of one built for it once, by every class's
`__init__` (the template, holding no request's values), with the request's values and a fresh
execution state: the four `__init__`s of the executor's classes cost a request about a tenth of
its GraphQL work. What is fresh is graphql-core's per-execution state (errors, futures, plans,
the incremental work) and the helpers resolvers get; tests/unit/test_prepared_execution.py
checks that nothing else a request could change is shared.

Anything else (subscriptions, directives, an abort signal or execution hooks) takes
graphql-core's path unchanged, and so do variables that do not coerce: graphql-core reports
them, so the errors are exactly its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    MiddlewareManager,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    assert_valid_schema,
)
from graphql.execution.collect_fields import FragmentDetails, collect_fields
from graphql.execution.execute import default_field_resolver, default_type_resolver
from graphql.execution.executor import CollectedErrors
from graphql.execution.values import VariableValues, get_variable_values
from graphql.pyutils import Path, RefMap
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.node_cache import NodeCache, selection_has_directives

if TYPE_CHECKING:
    from collections.abc import Callable

    from graphql import DocumentNode, GraphQLObjectType, GraphQLSchema
    from graphql.execution.collect_fields import FieldDetailsList

    # The raw variables of a request -> their coerced values, or None when graphql-core's
    # coercion must run (it reports the errors).
    VariableCoercion = Callable[[dict[str, Any]], VariableValues | None]


@dataclass(frozen=True, slots=True)
class PreparedOperation:
    """One operation of one document, as graphql-core's executor finds it."""

    operation: OperationDefinitionNode
    fragment_definitions: dict[str, FragmentDefinitionNode]
    fragments: dict[str, FragmentDetails]
    coerce: VariableCoercion | None
    # The one root field: (root type, response name, its field nodes), or None.
    root_field: tuple[GraphQLObjectType, str, FieldDetailsList] | None
    # By executor class: an executor of this operation, built by every __init__ without a
    # request's values, whose copies run the requests (see PreparedExecution.build).
    templates: dict[type, PreparedExecution] = field(default_factory=dict)


class PreparedOperations:
    """The prepared operations of one schema, by document and operation name; bounded, and
    holding no document alive. `compile_coercion` (schema, variable definitions) gives the
    operation's variable coercion, or None."""

    def __init__(
        self,
        compile_coercion: Callable[[GraphQLSchema, Any], VariableCoercion | None] | None = None,
        max_entries: int = 512,
    ) -> None:
        self._cache: NodeCache[PreparedOperation | None] = NodeCache(max_entries)
        self._compile_coercion = compile_coercion

    def __len__(self) -> int:
        return len(self._cache)

    def get(
        self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> PreparedOperation | None:
        return self._cache.get(
            (id(document), operation_name),
            (document,),
            lambda: self._prepare(schema, document, operation_name),
        )

    def _prepare(
        self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> PreparedOperation | None:
        operation: OperationDefinitionNode | None = None
        fragment_definitions: dict[str, FragmentDefinitionNode] = {}
        fragments: dict[str, FragmentDetails] = {}
        # The same search as graphql-core's Executor.build.
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                if operation_name is None:
                    if operation is not None:
                        return None  # ambiguous: graphql-core reports it
                    operation = definition
                elif definition.name and definition.name.value == operation_name:
                    operation = definition
            elif isinstance(definition, FragmentDefinitionNode):
                if definition.variable_definitions:
                    return None
                fragment_definitions[definition.name.value] = definition
                fragments[definition.name.value] = FragmentDetails(definition, None)
        if operation is None or operation.operation == OperationType.SUBSCRIPTION:
            return None
        # graphql-core asserts this for every request; a schema does not change once built.
        assert_valid_schema(schema)
        if operation.directives or selection_has_directives(operation.selection_set, fragments):
            return None
        coerce = (
            self._compile_coercion(schema, operation.variable_definitions or ())
            if self._compile_coercion is not None
            else None
        )
        return PreparedOperation(
            operation,
            fragment_definitions,
            fragments,
            coerce,
            _root_field(schema, operation, fragments),
        )


def _root_field(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict[str, FragmentDetails]
) -> tuple[GraphQLObjectType, str, FieldDetailsList] | None:
    """The operation's one root field, collected as graphql-core collects it: without
    directives nor fragment variables the collection does not depend on the variables."""
    root_type = schema.get_root_type(operation.operation)
    if root_type is None:
        return None
    grouped, defer_usages, forbidden = collect_fields(
        schema, fragments, VariableValues({}, {}), root_type, operation
    )
    if defer_usages or forbidden or len(grouped) != 1:
        return None
    ((response_name, details),) = grouped.items()
    return root_type, response_name, details


class PreparedExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, building from and running prepared operations."""

    prepared: PreparedOperations
    _operation: PreparedOperation | None = None

    @classmethod
    def build(  # type: ignore[override]
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        field_resolver: Any = None,
        type_resolver: Any = None,
        subscribe_field_resolver: Any = None,
        max_coercion_errors: int = 50,
        enable_early_execution: bool = False,
        middleware: Any = None,
        is_awaitable: Any = None,
        is_async_iterable: Any = None,
        hide_suggestions: bool = False,
        abort_signal: Any = None,
        hooks: Any = None,
        **custom_args: Any,
    ) -> Any:
        prepared = (
            cls.prepared.get(schema, document, operation_name)
            if middleware is None or isinstance(middleware, MiddlewareManager)
            else None
        )
        if prepared is None:
            return super().build(
                schema,
                document,
                root_value,
                context_value,
                raw_variable_values,
                operation_name,
                field_resolver,
                type_resolver,
                subscribe_field_resolver,
                max_coercion_errors,
                enable_early_execution,
                middleware,
                is_awaitable,
                is_async_iterable,
                hide_suggestions=hide_suggestions,
                abort_signal=abort_signal,
                hooks=hooks,
                **custom_args,
            )
        raw = raw_variable_values or {}
        coerced = prepared.coerce(raw) if prepared.coerce is not None else None
        if coerced is None:
            coerced = get_variable_values(
                schema,
                prepared.operation.variable_definitions or (),
                raw,
                max_errors=max_coercion_errors,
                hide_suggestions=hide_suggestions,
            )
            if isinstance(coerced, list):
                return coerced  # errors
        if (
            field_resolver is None
            and type_resolver is None
            and subscribe_field_resolver is None
            and not enable_early_execution
            and is_async_iterable is None
            and not hide_suggestions
            and abort_signal is None
            and hooks is None
            and custom_args.keys() <= {"operation_extensions"}
        ):
            template = prepared.templates.get(cls)
            if template is None:
                template = prepared.templates[cls] = cls._template(schema, prepared)
            return template._copy(
                root_value,
                context_value,
                coerced,
                middleware,
                is_awaitable,
                custom_args.get("operation_extensions"),
            )
        executor = cls(
            schema,
            prepared.fragment_definitions,
            prepared.fragments,
            root_value,
            context_value,
            prepared.operation,
            coerced,
            field_resolver or default_field_resolver,
            type_resolver or default_type_resolver,
            subscribe_field_resolver or default_field_resolver,
            enable_early_execution,
            middleware,
            is_awaitable,
            is_async_iterable,
            hide_suggestions=hide_suggestions,
            abort_signal=abort_signal,
            hooks=hooks,
            **custom_args,
        )
        executor._operation = prepared
        return executor

    @classmethod
    def _template(cls, schema: GraphQLSchema, prepared: PreparedOperation) -> PreparedExecution:
        """An executor of the operation with the settings `build` copies, and no request's
        values."""
        template = cls(
            schema,
            prepared.fragment_definitions,
            prepared.fragments,
            None,
            None,
            prepared.operation,
            VariableValues({}, {}),
            default_field_resolver,
            default_type_resolver,
            default_field_resolver,
            operation_extensions=None,
        )
        template._operation = prepared
        return template

    def _copy(
        self,
        root_value: Any,
        context_value: Any,
        variables: VariableValues,
        middleware: MiddlewareManager | None,
        is_awaitable: Any,
        operation_extensions: dict[str, Any] | None,
    ) -> PreparedExecution:
        """This template's executor for one request: its settings, the request's values, and
        the execution state graphql-core's executors set in `__init__`, fresh."""
        executor = object.__new__(type(self))
        state = executor.__dict__
        state.update(self.__dict__)
        state["root_value"] = root_value
        state["context_value"] = context_value
        state["variable_values"] = variables
        state["middleware_manager"] = middleware
        state["is_awaitable"] = is_awaitable or self.is_awaitable
        state["operation_extensions"] = operation_extensions
        state["collected_errors"] = CollectedErrors()
        state["pending_incremental_futures"] = set()
        state["background_futures"] = set()
        state["_relevant_sub_fields"] = {}
        state["_stream_usages"] = RefMap()
        # IncrementalExecutor's
        state["groups"] = []
        state["tasks"] = []
        state["streams"] = []
        state["_initial_execution_plans"] = RefMap()
        state["_deferred_execution_plans"] = RefMap()
        state["async_helpers"] = executor._async_helpers()
        return executor

    def _async_helpers(self) -> GraphQLResolveInfoHelpers:
        """The helpers graphql-core's executor hands resolvers (schema.acyclic_executor's
        reach the executor weakly)."""
        return GraphQLResolveInfoHelpers(gather=self.gather_async_work, track=self.track_async_work)

    def execute_operation(self, serially: bool | None = None) -> Any:
        prepared = self._operation
        if (
            prepared is None
            or prepared.root_field is None
            or self.abort_signal is not None
            or self.hooks is not None
        ):
            return super().execute_operation(serially)
        # What graphql-core's execute_operation does for one root field, serially or not
        # (the same for one field), without the collection and the loop.
        root_type, response_name, details = prepared.root_field
        path = Path(None, response_name, root_type.name)
        try:
            result = self.execute_field(root_type, self.root_value, details, path, None)
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self.build_response(None)
        if result is Undefined:
            return self.build_response({})
        if self.is_awaitable(result):
            return self._await_root_field(response_name, result)
        return self.build_response({response_name: result})

    async def _await_root_field(self, response_name: str, result: Any) -> Any:
        try:
            data = await result
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self.build_response(None)
        except Exception:
            await self.cancel_incremental_work()
            self.run_async_work_finished_hook()
            raise
        return self.build_response({response_name: data})
