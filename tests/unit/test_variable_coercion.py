"""Compiled variable coercion against graphql-core's get_variable_values, differentially: the
compiled result equals graphql-core's exactly, or it is None and graphql-core's is errors."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    build_schema,
    get_named_type,
    parse,
)
from graphql.execution.values import get_variable_values
from graphql.type import GraphQLEnumType, GraphQLInputType, GraphQLScalarType

from schema import schema as strawberry_schema
from schema.variable_coercion import compile_variable_coercion

SCHEMA = strawberry_schema._schema

WRITE = "mutation Add($input: AddMessagesInput!) { addMessages(input: $input) { sessionId } }"
CONTEXT = "query Ctx($id: ID!) { session(id: $id) { id } }"
# Every input type of the schema, variables with defaults, nullable and list variables.
OPERATIONS = [
    WRITE,
    CONTEXT,
    "mutation M($input: AddMemoryInput!) { __typename }",
    "mutation M($input: AddMemoriesInput!) { __typename }",
    "mutation M($input: UpdateMemoryInput!) { __typename }",
    "mutation M($input: DeleteMemoryInput!) { __typename }",
    "mutation M($input: DeleteMemoriesInput!) { __typename }",
    "mutation M($input: SetSessionConfigInput!) { __typename }",
    "mutation M($input: DeleteSessionInput!) { __typename }",
    "query Q($input: SearchMemoriesInput!) { __typename }",
    "query Q($input: SearchMemoriesBatchInput!) { __typename }",
    "query Q($input: MemoryPromptInput!) { __typename }",
    "query Q($id: ID, $n: Int, $f: Float, $b: Boolean, $s: String, $j: JSON) { __typename }",
    "query Q($ids: [ID!], $roles: [MessageRole], $nested: [[Int!]!]) { __typename }",
    'query Q($id: ID! = "s-1", $limit: Int = 5, $cats: [MemoryCategory!] = [FACT],'
    ' $input: SearchMemoriesInput = {query: "q", userId: "u"}, $j: JSON = {a: [1, 2]}) '
    "{ __typename }",
]


def definitions(source: str) -> Any:
    return parse(source).definitions[0].variable_definitions


def typed(value: Any) -> Any:
    """A value with every type and dict key order made part of what == compares."""
    if isinstance(value, dict):
        return (type(value), [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [typed(v) for v in value])
    return (type(value), value)


def check(source: str, inputs: Any, schema: GraphQLSchema = SCHEMA) -> bool:
    """Assert the compiled path agrees with graphql-core; True when it took the fast path."""
    defs = definitions(source)
    compiled = compile_variable_coercion(schema, defs)
    assert compiled is not None
    expected = get_variable_values(schema, defs, copy.deepcopy(inputs))
    got = compiled(inputs)
    if got is None:
        return False
    assert not isinstance(expected, list), (
        f"fast path accepted what graphql-core rejects: {expected}"
    )
    assert list(got.sources) == list(expected.sources)
    for name, source in got.sources.items():
        want = expected.sources[name]
        assert signature_content(source.signature) == signature_content(want.signature)
        assert typed(source.value) == typed(want.value)
        if source.value is not Undefined:
            assert source.value is inputs[name]  # graphql-core keeps the input itself
    assert typed(got.coerced) == typed(expected.coerced)
    return True


def signature_content(signature: Any) -> Any:
    # Wrapping types are built afresh per call and compare by identity: compare their content.
    return (
        signature.name,
        str(signature.type),
        get_named_type(signature.type),
        signature.default,
        signature.default_value,
    )


def message(**fields: Any) -> dict[str, Any]:
    return {"role": "USER", "content": "Remember: the window moves to Thursday."} | fields


def write(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"input": {"sessionId": "s-1", "messages": list(messages)} | extra}


VALID_WRITES = [
    write(message()),
    write(message(), message(role="ASSISTANT", content="Noted.")),
    write(message(name="alice")),
    write(message(name=None, metadata=None, id=None)),
    write(message(metadata={"topic": "ops", "n": [1, 2.5, None, True, {"x": "y"}]})),
    write(message(id="m-1", name="bob", metadata={"deep": {"er": [1]}})),
    write(*[message(id=f"m-{i}", content="x" * i) for i in range(20)]),
    write(*[message() for _ in range(2000)]),
    {"input": {"sessionId": "s-1", "messages": message()}},  # a single value as a list of one
    write(message(role="TOOL", metadata="a string is JSON too")),
    write(message(metadata=3)),
]

INVALID_WRITES = [
    {},
    {"input": None},
    {"input": "s-1"},
    {"input": []},
    {"input": {"sessionId": "s-1"}},  # messages missing
    {"input": {"messages": [message()]}},  # sessionId missing
    {"input": {"sessionId": None, "messages": [message()]}},
    {"input": {"sessionId": 1, "messages": [message()]}},
    {"input": {"sessionId": "s-1", "messages": None}},
    {"input": {"sessionId": "s-1", "messages": [None]}},
    {"input": {"sessionId": "s-1", "messages": "text"}},
    {"input": {"sessionId": "s-1", "messages": [message()], "extra": 1}},  # unknown field
    write(message(role="user")),  # enum names only
    write(message(role="NOBODY")),
    write(message(role=1)),
    write(message(role=None)),
    write(message(content=None)),
    write(message(content=5)),
    write(message(content=["a"])),
    write({"role": "USER"}),
    write(message(colour="red")),
    write(message(name=7)),
    write(message(metadata={"x": float("nan")})),
    write(message(metadata={"x": float("inf")})),
    write(message(), "not a message"),
    write(*[message() for _ in range(1999)], message(role="BAD")),
]


def deep_json(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": [value]}
    return value


@pytest.mark.parametrize("inputs", VALID_WRITES)
def test_valid_writes_take_the_fast_path_and_equal_graphql_core(inputs: Any) -> None:
    assert check(WRITE, inputs)


@pytest.mark.parametrize("inputs", INVALID_WRITES)
def test_invalid_writes_fall_back(inputs: Any) -> None:
    check(WRITE, inputs)


def test_json_too_deep_for_its_limits_falls_back() -> None:
    # The JSON scalar's own depth limit raises in parse_value; graphql-core reports it.
    defs = definitions(WRITE)
    inputs = write(message(metadata=deep_json(500)))
    assert isinstance(get_variable_values(SCHEMA, defs, inputs), list)
    assert compile_variable_coercion(SCHEMA, defs)(inputs) is None


@pytest.mark.parametrize(
    "inputs",
    [{"id": "s-1"}, {"id": 7}, {"id": 7.0}, {"id": 7.5}, {"id": True}, {"id": None}, {}],
)
def test_context_query_ids(inputs: Any) -> None:
    check(CONTEXT, inputs)


def test_context_query_takes_the_fast_path() -> None:
    assert check(CONTEXT, {"id": "s-1"})
    assert check(CONTEXT, {"id": 7})  # ID from an int, as graphql-core does


SCALARS = "query Q($id: ID, $n: Int, $f: Float, $b: Boolean, $s: String, $j: JSON) { __typename }"


@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"id": None, "n": None, "f": None, "b": None, "s": None, "j": None},
        {"n": 3, "f": 3, "b": False, "s": "x", "j": [1]},
        {"n": 3.0},
        {"n": 3.5},
        {"n": "3"},
        {"n": 2**31},
        {"n": True},
        {"f": "1.5"},
        {"f": float("inf")},
        {"b": 1},
        {"s": 1},
        {"s": True},
        {"j": {"a": {"b": None}}},
        {"unrelated": 1},
    ],
)
def test_scalars_nullable_absent_null(inputs: Any) -> None:
    check(SCALARS, inputs)


def test_absent_nullable_variables_are_sourced_but_not_coerced() -> None:
    assert check(SCALARS, {})
    assert check(SCALARS, {"n": None})


LISTS = "query Q($ids: [ID!], $roles: [MessageRole], $nested: [[Int!]!]) { __typename }"


@pytest.mark.parametrize(
    "inputs",
    [
        {"ids": ["a", 1], "roles": ["USER", None], "nested": [[1, 2], [3]]},
        {"ids": "a", "roles": "USER", "nested": 1},
        {"nested": [1, 2]},
        {"nested": [[1], None]},
        {"nested": [[None]]},
        {"ids": [None]},
        {"ids": []},
        {"roles": ["user"]},
        {"roles": [7]},
        {"ids": ("a",)},  # not JSON: falls back
        {"ids": {"a": 1}},
    ],
)
def test_lists(inputs: Any) -> None:
    check(LISTS, inputs)


DEFAULTS = OPERATIONS[-1]


@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"id": "x", "limit": None, "cats": None, "input": None, "j": None},
        {"cats": "SEMANTIC", "limit": 1},
        {"input": {"query": "q"}},
    ],
)
def test_variable_defaults(inputs: Any) -> None:
    assert check(DEFAULTS, inputs)


def test_variable_defaults_are_fresh_per_request() -> None:
    compiled = compile_variable_coercion(SCHEMA, definitions(DEFAULTS))
    first, second = compiled({}), compiled({})
    assert first.coerced["input"] == second.coerced["input"]
    assert first.coerced["input"] is not second.coerced["input"]


@pytest.mark.parametrize(
    "inputs",
    [
        {"input": {"query": "q"}},  # limit and mode from field defaults
        {"input": {"query": "q", "limit": None}},
        {"input": {"query": "q", "mode": "KEYWORD", "categories": "FACT", "threshold": 1}},
        {"input": {"query": "q", "mode": "keyword"}},
        {"input": {"query": "q", "recencyHalfLife": "1"}},
    ],
)
def test_search_field_defaults(inputs: Any) -> None:
    check("query Q($input: SearchMemoriesInput!) { __typename }", inputs)


def test_set_session_config_reset_default() -> None:
    source = "mutation M($input: SetSessionConfigInput!) { __typename }"
    assert check(source, {"input": {"sessionId": "s"}})
    assert check(source, {"input": {"sessionId": "s", "reset": ["STRATEGY", "USER_ID"]}})
    assert check(source, {"input": {"sessionId": "s", "strategy": "TOKEN_THRESHOLD"}})
    check(source, {"input": {"sessionId": "s", "reset": None}})


def test_dict_subclass_falls_back() -> None:
    class Odd(dict):
        pass

    assert not check(WRITE, {"input": Odd(sessionId="s", messages=[message()])})


# Randomized: values that follow the types, then perturbed at random.


def random_value(rng: random.Random, type_: GraphQLInputType, depth: int = 0) -> Any:
    if rng.random() < 0.04:
        return rng.choice([None, 1, 1.5, "x", True, [], {}, {"zz": 1}, ["x"], float("nan")])
    if isinstance(type_, GraphQLNonNull):
        return random_value(rng, type_.of_type, depth)
    if isinstance(type_, GraphQLList):
        if rng.random() < 0.1:
            return random_value(rng, type_.of_type, depth + 1)
        return [random_value(rng, type_.of_type, depth + 1) for _ in range(rng.randrange(4))]
    if isinstance(type_, GraphQLInputObjectType):
        value = {}
        for name, field in type_.fields.items():
            wanted = rng.random() < 0.8 or isinstance(field.type, GraphQLNonNull)
            if wanted and rng.random() < 0.97:  # a required field is sometimes left out
                value[name] = random_value(rng, field.type, depth + 1)
        if rng.random() < 0.03:
            value["unknownField"] = 1
        return value
    if isinstance(type_, GraphQLEnumType):
        return rng.choice([*type_.values, "nope"])
    assert isinstance(type_, GraphQLScalarType)
    return {
        "String": lambda: rng.choice(["", "a", "héllo"]),
        "ID": lambda: rng.choice(["id", 3, 3.0]),
        "Int": lambda: rng.choice([0, -5, 2**40, 2.0]),
        "Float": lambda: rng.choice([0.5, 2, -1e300]),
        "Boolean": lambda: rng.choice([True, False]),
        "JSON": lambda: rng.choice([{"a": [1, None]}, "s", 1, [], {"x": {"y": 2}}]),
    }[type_.name]()


@pytest.mark.parametrize("source", OPERATIONS)
def test_randomized_against_graphql_core(source: str) -> None:
    rng = random.Random(source)
    defs = definitions(source)
    fast = 0
    for _ in range(400):
        inputs = {}
        for node in defs:
            name = node.variable.name.value
            type_ = SCHEMA.get_type(get_named_type_name(node))
            if rng.random() < 0.9:
                inputs[name] = random_value(rng, wrap(node.type, type_))
        fast += check(source, inputs)
    assert fast > 40  # the generator mostly makes valid values: the fast path is exercised


def get_named_type_name(node: Any) -> str:
    type_node = node.type
    while not hasattr(type_node, "name"):
        type_node = type_node.type
    return type_node.name.value


def wrap(type_node: Any, named: Any) -> Any:
    kind = type(type_node).__name__
    if kind == "NonNullTypeNode":
        return GraphQLNonNull(wrap(type_node.type, named))
    if kind == "ListTypeNode":
        return GraphQLList(wrap(type_node.type, named))
    return named


# Other schemas: what this one does not have.


def test_recursive_and_one_of_inputs_are_left_to_graphql_core() -> None:
    other = build_schema(
        """
        input R { next: R, v: Int }
        input O @oneOf { a: Int, b: String }
        type Query { r(r: R, o: O): Int }
        """
    )
    assert compile_variable_coercion(other, definitions("query Q($r: R) { r }")) is None
    assert compile_variable_coercion(other, definitions("query Q($o: O) { r }")) is None


def test_out_names_and_out_type() -> None:
    class Point(dict):
        pass

    point = GraphQLInputObjectType(
        "Point",
        {
            "xCoord": GraphQLInputField(GraphQLNonNull(GraphQLInt), out_name="x_coord"),
            "label": GraphQLInputField(GraphQLString, default_value="p", out_name="the_label"),
        },
        out_type=Point,
    )
    other = GraphQLSchema(
        GraphQLObjectType("Query", {"f": GraphQLField(GraphQLInt, {"p": GraphQLArgument(point)})})
    )
    source = "query Q($p: [Point]) { f }"
    assert check(source, {"p": [{"xCoord": 1}, {"xCoord": 2, "label": None}, None]}, other)
    got = compile_variable_coercion(other, definitions(source))({"p": {"xCoord": 1}})
    assert type(got.coerced["p"][0]) is Point
    assert got.coerced["p"][0] == {"x_coord": 1, "the_label": "p"}
    check(source, {"p": [{"x_coord": 1}]}, other)


def chain_schema(levels: int) -> GraphQLSchema:
    """Input types I0 { n: I1, v: Int } ... nested `levels` deep."""
    types = [f"input I{i} {{ n: I{i + 1}, v: Int }}" for i in range(levels - 1)]
    types.append(f"input I{levels - 1} {{ v: Int }}")
    return build_schema("\n".join([*types, "type Query { f(i: I0): Int }"]))


def chain_value(levels: int) -> Any:
    value: Any = {"v": 1}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


def test_types_deeper_than_graphql_core_allows_are_left_to_it() -> None:
    source = "query Q($i: I0) { f }"
    too_deep = chain_schema(201)
    assert compile_variable_coercion(too_deep, definitions(source)) is None
    assert isinstance(
        get_variable_values(too_deep, definitions(source), {"i": chain_value(201)}), list
    )
    # At graphql-core's limit: compiled, and the deepest value coerces the same.
    assert check(source, {"i": chain_value(200)}, chain_schema(200))


def test_null_empty_and_object_defaults_and_an_invalid_default() -> None:
    source = (
        "query Q($z: Int = null, $l: [Int] = [], "
        '$o: MessageInput = {role: USER, content: "c"}, $bad: Int = "x") { __typename }'
    )
    assert check(source, {"bad": 1})
    assert not check(source, {})  # the invalid default: graphql-core reports it
