"""GraphQL requests generated from the service's schema for the fuzzer: hypothesis-graphql's
documents (arguments as literals, valid or with one schema violation), documents whose root
arguments are all variables (values from a palette, see fuzz_values), and subscriptions."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import hypothesis_graphql as hg
from hypothesis import strategies as st

from tests.support.fuzz_values import NAME, NotALiteral, Palette, literal

SDL = graphql.build_schema(
    (Path(__file__).resolve().parents[2] / "schema.graphql").read_text(encoding="utf-8")
)
ID_NAMES = frozenset({"id", "ids", "sessionId", "userId", "agentId"})
SURROGATE = re.compile("[\ud800-\udfff]")
RUNS = re.compile(r"(.{1,6}?)\1{31,}", re.DOTALL)
# Requests whose URL stays short enough for any HTTP server may go as GET.
GET_LIMIT = 4000


@dataclass(frozen=True, repr=False)
class FuzzRequest:
    kind: str  # query, mutation or subscription
    query: str
    variables: dict[str, Any] | None
    root_aliases: tuple[str, ...]
    method: str = "POST"
    accept: str = "application/json"
    origin: str = ""  # which generator made it, for the statistics

    @functools.cached_property
    def body(self) -> bytes:
        payload: dict[str, Any] = {"query": self.query}
        if self.variables is not None:
            payload["variables"] = self.variables
        # allow_nan: NaN and Infinity go as the bare tokens an attacker would send.
        return json.dumps(payload, allow_nan=True).encode()

    def params(self) -> dict[str, str]:
        params = {"query": self.query}
        if self.variables is not None:
            params["variables"] = json.dumps(self.variables, allow_nan=True)
        return params

    def show(self, limit: int = 3000) -> str:
        """The request for a report: runs of one character shortened, at most `limit` chars."""
        text = RUNS.sub(
            lambda m: f"{m.group(1) * 4}<{len(m.group()) // len(m.group(1))} times>",
            self.body.decode(),
        )
        if len(text) > limit:
            text = f"{text[:limit]}... ({len(text)} chars)"
        return f"{self.method} /graphql (Accept: {self.accept}) {text}"

    def __repr__(self) -> str:
        return self.show()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.show())


def escape_surrogates(document: str) -> str:
    """Lone surrogates in a document (only ever inside string literals) as GraphQL escapes,
    so they reach the GraphQL lexer instead of stopping at the JSON decoder."""
    return SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def print_document(document: graphql.DocumentNode) -> str:
    return escape_surrogates(graphql.print_ast(document))


def operation_of(document: graphql.DocumentNode) -> graphql.OperationDefinitionNode:
    (operation,) = document.definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    return operation


def root_aliases(operation: graphql.OperationDefinitionNode) -> tuple[str, ...]:
    return tuple(
        (node.alias or node.name).value
        for node in operation.selection_set.selections
        if isinstance(node, graphql.FieldNode)
    )


class VariableValues:
    """Strategies for a variable of each input type, from a palette. `mistyped` lets any
    value stand in for a typed one (wrong types, nulls for non-null, unknown fields, missing
    required ones); `small` keeps out long text and big JSON (for values repeated hundreds
    of times). With `hostile`, lists also come just under and over the batch limits."""

    def __init__(
        self, palette: Palette, junk: st.SearchStrategy[Any], *, hostile: bool, mistyped: bool
    ) -> None:
        self._palette = palette
        self._junk = junk
        self._hostile = hostile
        self._mistyped = mistyped
        self._cache: dict[tuple[str, bool, bool], st.SearchStrategy[Any]] = {}

    def of(
        self, type_: graphql.GraphQLInputType, *, is_id: bool = False, small: bool = False
    ) -> st.SearchStrategy[Any]:
        key = (str(type_), is_id, small)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._build(type_, is_id, small))
        return self._cache[key]

    def _build(self, type_: graphql.GraphQLInputType, is_id: bool, small: bool) -> Any:
        options = [self._values(graphql.get_nullable_type(type_), is_id, small)]
        if not graphql.is_non_null_type(type_):
            options.append(st.none())
        if self._mistyped:
            options.append(self._junk)
        return st.one_of(options)

    def _values(self, type_: Any, is_id: bool, small: bool) -> st.SearchStrategy[Any]:
        palette = self._palette
        if graphql.is_list_type(type_):
            item = self.of(type_.of_type, is_id=is_id, small=small)
            options = [st.lists(item, max_size=3), item]  # one value coerces to a list of one
            if self._hostile and not small:
                # Just under and over the batch limits (50 memory items, 500 messages).
                repeated = self.of(type_.of_type, is_id=is_id, small=True)
                counts = st.sampled_from((50, 51, 500, 501))
                options.append(st.builds(lambda v, n: [v] * n, repeated, counts))
            return st.one_of(options)
        if graphql.is_input_object_type(type_):
            fields = {
                name: self.of(input_field.type, is_id=name in ID_NAMES, small=small)
                for name, input_field in type_.fields.items()
            }
            required = {
                name: strategy
                for name, strategy in fields.items()
                if graphql.is_required_input_field(type_.fields[name])
            }
            optional = {name: s for name, s in fields.items() if name not in required}
            objects = st.fixed_dictionaries(required, optional=optional)
            if not self._mistyped:
                return objects
            unknown = st.builds(lambda o, v: {**o, "unknownField": v}, objects, self._junk)
            missing = objects.map(lambda o: {k: v for k, v in o.items() if k not in required})
            return objects | unknown | missing
        if graphql.is_enum_type(type_):
            names = st.sampled_from(sorted(type_.values))
            return names | names.map(str.lower) | palette.text if self._mistyped else names
        text = palette.short_text if small else palette.text
        small_json = st.dictionaries(
            palette.short_text, palette.ints | palette.short_text, max_size=2
        )
        return {
            "String": palette.ids if is_id else text,
            "ID": palette.ids,
            "Int": palette.ints,
            "Float": palette.floats,
            "Boolean": st.booleans(),
            "JSON": small_json if small else palette.json,
        }[type_.name]


def typed_literal(value: Any, type_: graphql.GraphQLInputType) -> graphql.ValueNode:
    """The literal of a variable's value: enum values as enum names, the rest as they are
    (a value of the wrong type stays wrong)."""
    type_ = graphql.get_nullable_type(type_)
    if graphql.is_list_type(type_) and isinstance(value, list):
        return hg.nodes.List([typed_literal(v, type_.of_type) for v in value])
    if graphql.is_list_type(type_):
        return typed_literal(value, type_.of_type)
    if (
        graphql.is_input_object_type(type_)
        and isinstance(value, dict)
        and all(key in type_.fields for key in value)
    ):
        fields = [
            graphql.ObjectFieldNode(
                name=graphql.NameNode(value=key), value=typed_literal(v, type_.fields[key].type)
            )
            for key, v in value.items()
        ]
        return hg.nodes.Object(fields)
    if (
        graphql.is_enum_type(type_)
        and type(value) is str
        and NAME.fullmatch(value)
        and value not in ("true", "false", "null")
    ):
        return hg.nodes.Enum(value)
    return literal(value)


def literal_requests(
    palette: Palette, mode: hg.Mode, origin: str
) -> st.SearchStrategy[FuzzRequest]:
    """hypothesis-graphql's own documents: literal arguments, maybe several root fields."""

    def request(document: graphql.DocumentNode) -> FuzzRequest:
        operation = operation_of(document)
        return FuzzRequest(
            kind=operation.operation.value,
            query=print_document(document),
            variables=None,
            root_aliases=root_aliases(operation),
            origin=origin,
        )

    documents = hg.from_schema(
        SDL, custom_scalars=palette.literal_scalars(), mode=mode, print_ast=lambda d: d
    )
    return documents.map(request)


def variable_requests(
    values: VariableValues, palette: Palette, origin: str
) -> st.SearchStrategy[FuzzRequest]:
    """One root field with its arguments as variables typed as the schema types them; its
    selection set (and the literal arguments of nested fields) from hypothesis-graphql."""
    roots = [("query", SDL.query_type), ("mutation", SDL.mutation_type)]
    fields = [(kind, root, name) for kind, root in roots if root for name in sorted(root.fields)]
    scalars = palette.literal_scalars()

    @st.composite
    def build(draw: st.DrawFn) -> FuzzRequest:
        kind, root, name = draw(st.sampled_from(fields))
        documents = hg.queries if kind == "query" else hg.mutations
        document = draw(
            documents(SDL, fields=[name], custom_scalars=scalars, print_ast=lambda d: d)
        )
        selected = next(
            node
            for node in operation_of(document).selection_set.selections
            if isinstance(node, graphql.FieldNode) and node.name.value == name
        )
        selection = graphql.print_ast(selected.selection_set) if selected.selection_set else ""
        args = root.fields[name].args
        passed = [n for n, arg in args.items() if graphql.is_required_argument(arg)]
        optional = sorted(n for n in args if n not in passed)
        if optional:
            passed += draw(st.lists(st.sampled_from(optional), unique=True))
        variables: dict[str, Any] = {}
        arguments: dict[str, str] = {}
        for arg_name in passed:
            arg_type = args[arg_name].type
            # Now and then a declared variable is left without a value.
            if draw(st.integers(0, 9)) == 9:
                continue
            value = draw(values.of(arg_type, is_id=arg_name in ID_NAMES))
            # Some values go as literals: those the JSON decoder never sees.
            if draw(st.booleans()):
                with contextlib.suppress(NotALiteral):
                    arguments[arg_name] = graphql.print_ast(typed_literal(value, arg_type))
                    continue
            variables[arg_name] = value
        definitions = ", ".join(f"${n}: {args[n].type}" for n in passed if n not in arguments)
        arguments.update((n, f"${n}") for n in passed if n not in arguments)
        listed = ", ".join(f"{n}: {text}" for n, text in arguments.items())
        query = (
            f"{kind} Fuzz{f'({definitions})' if definitions else ''} "
            f"{{ {name}{f'({listed})' if listed else ''} {selection} }}"
        )
        request = FuzzRequest(kind, escape_surrogates(query), variables, (name,), origin=origin)
        if kind == "query" and len(json.dumps(request.params(), allow_nan=True)) < GET_LIMIT:
            return dataclasses.replace(request, method=draw(st.sampled_from(("POST", "GET"))))
        return request

    return build()


def subscription_requests(palette: Palette) -> st.SearchStrategy[FuzzRequest]:
    """Subscription documents (hypothesis-graphql's queries of a schema whose query root is
    the Subscription type, turned into subscriptions), with Accept headers that ask for a
    stream."""
    assert SDL.subscription_type is not None
    as_root = graphql.GraphQLSchema(query=SDL.subscription_type)

    def request(document: graphql.DocumentNode, accept: str) -> FuzzRequest:
        operation = operation_of(document)
        subscription = graphql.OperationDefinitionNode(
            operation=graphql.OperationType.SUBSCRIPTION,
            variable_definitions=(),
            directives=(),
            selection_set=operation.selection_set,
        )
        return FuzzRequest(
            kind="subscription",
            query=print_document(graphql.DocumentNode(definitions=(subscription,))),
            variables=None,
            root_aliases=root_aliases(operation),
            accept=accept,
            origin="subscription",
        )

    accepts = st.sampled_from(
        (
            "application/json",
            "text/event-stream",
            'multipart/mixed;subscriptionSpec="1.0", application/json',
        )
    )
    documents = hg.queries(as_root, custom_scalars=palette.literal_scalars(), print_ast=lambda d: d)
    return st.builds(request, documents, accepts)
