"""Prepared operations, quick resolvers and the lean execute function answer exactly what
graphql-core and Strawberry answer on their own: the same data, the same errors (message, path,
locations, extensions), the same resolver calls. Each operation runs on a schema with them and
on one without."""

from __future__ import annotations

import asyncio
import enum
import gc
import weakref
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, MiddlewareManager, experimental_execute_incrementally, parse
from graphql.execution.executor import CollectedErrors
from graphql.pyutils import RefMap
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema import build_schema
from schema.input_conversion import build_inputs_quickly
from schema.lean_execute import LeanExecute, execute_without_increments
from schema.prepared_execution import PreparedExecution, PreparedOperations
from schema.quick_resolvers import build_resolvers_quickly
from schema.variable_coercion import compile_variable_coercion

CALLS: list[tuple[str, Any]] = []


@strawberry.enum
class Mood(enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


@strawberry.input
class Item:
    name: str
    mood: Mood = Mood.HAPPY
    tags: list[str] | None = None
    note: str | None = None


@strawberry.input
class Batch:
    key: str
    items: list[Item]
    nested: Item | None = None


@strawberry.type
class Stored:
    key: str
    names: list[str]
    moods: list[Mood]
    count: int

    @strawberry.field
    def shout(self, times: int = 2) -> str:
        return self.key.upper() * times


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str = "world") -> str:
        CALLS.append(("hello", name))
        return f"hello {name}"

    @strawberry.field
    async def stored(self, info: strawberry.Info, key: strawberry.ID) -> Stored | None:
        CALLS.append(("stored", (key, info.field_name)))
        if key == "missing":
            return None
        if key == "boom":
            raise ValueError("the store is down")
        return Stored(key=key, names=["a"], moods=[Mood.GRUMPY], count=1)

    @strawberry.field
    async def required(self, key: str) -> Stored:
        CALLS.append(("required", key))
        if key == "boom":
            raise GraphQLError("refused", extensions={"code": "BAD_USER_INPUT"})
        return Stored(key=key, names=[], moods=[], count=0)

    @strawberry.field
    def sync_fail(self) -> str:
        raise RuntimeError("sync failure")


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def put(self, info: strawberry.Info, batch: Batch, dry: bool = False) -> Stored:
        CALLS.append(("put", (batch, dry, info.path.key)))
        if batch.key == "boom":
            raise ValueError("cannot store")
        return Stored(
            key=batch.key,
            names=[item.name for item in batch.items],
            moods=[item.mood for item in batch.items],
            count=len(batch.items),
        )

    @strawberry.mutation
    def plain(self, value: int, factor: float | None = None) -> float:
        CALLS.append(("plain", (value, factor)))
        return value * (factor or 1.0)


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    reference = strawberry.Schema(query=Query, mutation=Mutation)
    executor = type(
        "Prepared",
        (PreparedExecution, StrawberryGraphQLCoreExecutionContext),
        {"prepared": PreparedOperations(compile_variable_coercion)},
    )
    prepared = LeanExecute(query=Query, mutation=Mutation, execution_context_class=executor)
    build_inputs_quickly(prepared)
    build_resolvers_quickly(prepared)
    return reference, prepared


REFERENCE, PREPARED = _schemas()

PUT = (
    "mutation Put($b: Batch!, $dry: Boolean) "
    "{ put(batch: $b, dry: $dry) { key names moods count shout } }"
)
FRAGMENTS = (
    '{ ...F } fragment F on Query { stored(key: "f") { ...G } } fragment G on Stored { key }'
)
TWO_ITEMS = [{"name": "x"}, {"name": "y", "mood": "GRUMPY", "tags": ["t"]}]
CASES: list[tuple[str, dict[str, Any] | None, str | None]] = [
    ("{ hello }", None, None),
    ('{ hello(name: "ann") }', None, None),
    ("query Q($n: String!) { hello(name: $n) }", {"n": "bob"}, None),
    ("query Q($n: String!) { hello(name: $n) }", {}, None),  # missing variable
    ("query Q($n: String!) { hello(name: $n) }", {"n": 3}, None),  # wrong type
    ("query Q($n: String) { hello(name: $n) }", {}, None),  # absent nullable: default
    ("query Q($n: String) { hello(name: $n) }", {"n": None}, None),
    ('query Q($n: String = "dflt") { hello(name: $n) }', {}, None),
    ('{ a: hello b: hello(name: "x") }', None, None),  # two root fields
    ('{ stored(key: "k") { key names moods count shout(times: 3) } }', None, None),
    ('{ stored(key: "missing") { key } }', None, None),
    ('{ stored(key: "boom") { key } }', None, None),
    ('{ required(key: "boom") { key } }', None, None),
    ('{ required(key: "ok") { key __typename } }', None, None),
    ("{ syncFail }", None, None),
    ("query Q($s: Boolean!) { hello @skip(if: $s) }", {"s": True}, None),
    ("query Q($s: Boolean!) { hello @include(if: $s) }", {"s": True}, None),
    (FRAGMENTS, None, None),
    ('{ hello ...F } fragment F on Query { stored(key: "f") { key } }', None, None),
    ("{ ...F ...F } fragment F on Query { hello }", None, None),
    ("{ ... on Query { hello } }", None, None),
    ('query A { hello } query B { hello(name: "b") }', None, "B"),
    ('query A { hello } query B { hello(name: "b") }', None, None),
    ("query A { hello }", None, "C"),
    (PUT, {"b": {"key": "k1", "items": TWO_ITEMS}}, None),
    (PUT, {"b": {"key": "k1", "items": {"name": "single"}}, "dry": True}, None),  # list from one
    (PUT, {"b": {"key": "k1", "items": [], "nested": {"name": "n", "note": None}}}, None),
    (PUT, {"b": {"key": "boom", "items": []}}, None),
    (PUT, {"b": {"key": "k1", "items": [{"name": "x", "mood": "SAD"}]}}, None),
    (PUT, {"b": {"key": "k1", "items": [{"nom": "x"}]}}, None),
    (PUT, {"b": {"key": "k1"}}, None),
    (PUT, {"b": None}, None),
    (PUT, {"b": "text"}, None),
    ("mutation { a: plain(value: 2) b: plain(value: 3, factor: 1.5) }", None, None),
    ("mutation M($v: Int!) { plain(value: $v, factor: 2) }", {"v": 21}, None),
    ("mutation M($v: Int!) { plain(value: $v) }", {"v": 2.5}, None),
    ("mutation M($v: Int!) { plain(value: $v) }", {"v": 2**40}, None),
]


def _outcome(schema: strawberry.Schema, query: str, variables: Any, name: str | None) -> Any:
    CALLS.clear()
    try:
        result = asyncio.run(schema.execute(query, variable_values=variables, operation_name=name))
    except Exception as error:  # Strawberry raises for an operation it cannot find
        return type(error), str(error)
    errors = [error.formatted for error in result.errors or ()]
    return result.data, errors, list(CALLS)


@pytest.mark.parametrize(("query", "variables", "name"), CASES)
def test_prepared_answers_as_graphql_core_and_strawberry(
    query: str, variables: Any, name: str | None
) -> None:
    expected = _outcome(REFERENCE, query, variables, name)
    assert _outcome(PREPARED, query, variables, name) == expected


def test_the_lean_execute_function_is_used_only_without_incremental_delivery() -> None:
    assert PREPARED._get_execute_function() is execute_without_increments
    incremental = LeanExecute(
        query=Query, config=StrawberryConfig(enable_experimental_incremental_execution=True)
    )
    assert incremental._get_execute_function() is experimental_execute_incrementally


def test_an_operation_is_prepared_once_per_document() -> None:
    built = build_schema()
    prepared: PreparedOperations = built.execution_context_class.prepared  # type: ignore[attr-defined]
    before = len(prepared)
    query = "query Ctx($id: ID!) { session(id: $id) { id } }"
    for _ in range(3):
        asyncio.run(built.execute(query, variable_values={"id": "s"}))
    assert len(prepared) == before + 1


def test_what_is_not_prepared() -> None:
    schema = PREPARED._schema
    operations = PreparedOperations()
    for query, expected in [
        ("{ hello }", True),
        ("query Q($s: Boolean!) { hello @skip(if: $s) }", False),
        ("query A { hello } query B { hello }", False),  # ambiguous without a name
        ("subscription { x }", False),
        ("{ a: hello b: hello }", True),  # prepared, but two root fields: no root field
    ]:
        found = operations.get(schema, parse(query), None)
        assert (found is not None) is expected, query
    two_fields = operations.get(schema, parse("{ a: hello b: hello }"), None)
    assert two_fields is not None
    assert two_fields.root_field is None


class _EveryField(SchemaExtension):
    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        return _next(root, info, *args, **kwargs)


def test_resolve_middleware_keeps_strawberrys_own_path() -> None:
    executor = type(
        "Prepared",
        (PreparedExecution, StrawberryGraphQLCoreExecutionContext),
        {"prepared": PreparedOperations()},
    )
    schema = strawberry.Schema(
        query=Query, mutation=Mutation, execution_context_class=executor, extensions=[_EveryField]
    )
    build_resolvers_quickly(schema)
    result = asyncio.run(schema.execute('{ hello(name: "m") }'))
    assert result.data == {"hello": "hello m"}


# An executor's attributes that are a request's own: the copy of a template holds the request's.
REQUEST_VALUES = {
    "root_value",
    "context_value",
    "variable_values",
    "middleware_manager",
    "is_awaitable",
    "operation_extensions",
}
# Read-only parts of the prepared operation, which every request's executor shares (as
# graphql-core's sub-executors do).
SHARED_ON_PURPOSE = {"fragment_definitions", "fragments"}


def test_a_prepared_executor_is_built_as_init_builds_it_with_nothing_mutable_shared() -> None:
    built = build_schema()
    executor_class: Any = built.execution_context_class
    document = parse("query Q($id: ID!) { session(id: $id) { id } }")
    middleware = MiddlewareManager()

    def build(base: Any, context: object, variables: dict[str, Any]) -> Any:
        return base.build(
            built._schema,
            document,
            None,
            context,
            variables,
            None,
            middleware=middleware,
            is_awaitable=optimized_is_awaitable,
            operation_extensions={"trace": variables["id"]},
        )

    first, second = object(), object()
    one = build(executor_class, first, {"id": "a"})
    two = build(executor_class, second, {"id": "b"})
    # The same request built by every __init__ (graphql-core's build, no template).
    reference = build(super(PreparedExecution, executor_class), first, {"id": "a"})
    template = executor_class.prepared.get(built._schema, document, None).templates[executor_class]
    assert type(one) is type(reference) is executor_class
    assert vars(one).keys() == vars(reference).keys() | {"_operation"}
    for name, value in vars(reference).items():
        mine = vars(one)[name]
        if name == "async_helpers":
            continue
        if name == "variable_values":  # coerced by the prepared operation's own coercion
            assert mine.coerced == value.coerced
        elif name in REQUEST_VALUES:
            assert mine == value, name
        elif isinstance(value, (set, list, dict, RefMap, CollectedErrors)):
            assert type(mine) is type(value), name
            if name not in SHARED_ON_PURPOSE:
                # Fresh: empty, as __init__ leaves it.
                assert _empty(mine), name
                assert _empty(value), name
        else:
            assert mine == value, name
    assert one.context_value is first
    assert two.context_value is second
    assert template.context_value is None
    assert template.root_value is None
    for name, value in vars(one).items():
        if name in SHARED_ON_PURPOSE or name == "_operation":
            continue
        others = (vars(two)[name], vars(template)[name])
        if isinstance(value, (set, list, dict, RefMap, CollectedErrors, tuple)) or name in (
            "async_helpers",
        ):
            # Anything a request can change is its own.
            assert all(other is not value for other in others), name


def _empty(value: Any) -> bool:
    return not (value.errors if isinstance(value, CollectedErrors) else value)


def test_a_prepared_executors_helpers_reach_it_alone_and_free_the_request() -> None:
    built = build_schema()
    executor_class: Any = built.execution_context_class
    document = parse("query Q($id: ID!) { session(id: $id) { id } }")

    class Context:
        pass

    context = Context()
    alive = weakref.ref(context)
    executor = executor_class.build(
        built._schema, document, None, context, {"id": "a"}, None, middleware=MiddlewareManager()
    )
    helpers = executor.async_helpers
    gc.disable()
    try:
        del executor, context
        assert alive() is None  # no cycle through the helpers: freed without a collection
    finally:
        gc.enable()
    with pytest.raises(RuntimeError, match="has ended"):
        helpers.track([])
