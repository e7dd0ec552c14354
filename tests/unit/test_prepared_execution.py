"""Prepared operations, quick resolvers and the lean execute function answer exactly what
graphql-core and Strawberry answer on their own: the same data, the same errors (message, path,
locations, extensions), the same resolver calls. Each operation runs on a schema with them and
on one without."""

from __future__ import annotations

import asyncio
import enum
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, experimental_execute_incrementally, parse
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
