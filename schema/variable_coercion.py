"""Variable coercion compiled once per operation, for the prepared-operation path.

graphql-core's `get_variable_values` walks the GraphQL input types generically on every request
(type checks at every level, a separate nesting-depth walk): a few per cent of a write's CPU.
`compile_variable_coercion` does that type analysis once per cached document and returns a tree
of small closures, so a request pays a few dict operations per value.

The fall-back rule: the compiled path only ever produces graphql-core's exact success result
(same `sources`, same `coerced` values, types and key order). Whenever graphql-core would report
an error, or the input is anything this path does not handle, it returns None and the caller
runs graphql-core's own `get_variable_values`, which builds the exact errors. Coercion is pure,
so falling back costs only time. Operations it cannot compile (one-of inputs, recursive or too
deep input types, invalid defaults) get None from `compile_variable_coercion`: graphql-core's
path serves them always.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    VariableDefinitionNode,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.type import GraphQLDefaultInput, is_required_input_field
from graphql.utilities.coerce_input_value import coerce_default_value, coerce_input_literal

# A coercer returns the coerced value, or FAILED (graphql-core's "invalid" marker) to fall back.
FAILED: Any = Undefined
Coercer = Callable[[Any], Any]

_TOO_DEEP = MAX_NESTING_DEPTH + 1


class Unsupported(Exception):
    """A type or default this module leaves to graphql-core."""


class _Variable:
    """One compiled variable definition."""

    __slots__ = ("coerce", "default_literal", "name", "non_null", "signature")

    def __init__(self, signature: GraphQLVariableSignature, node: VariableDefinitionNode) -> None:
        self.signature = signature
        self.name = signature.name
        self.non_null = isinstance(signature.type, GraphQLNonNull)
        self.coerce = _coercer(signature.type)
        self.default_literal = node.default_value


class VariableCoercion:
    """The compiled coercion of one operation's variables; call it with the request's inputs."""

    __slots__ = ("_variables",)

    def __init__(self, variables: list[_Variable]) -> None:
        self._variables = variables

    def __call__(self, inputs: dict[str, Any]) -> VariableValues | None:
        """graphql-core's `get_variable_values` result, or None: then run graphql-core's."""
        if type(inputs) is not dict:
            return None
        sources: dict[str, VariableValueSource] = {}
        coerced: dict[str, Any] = {}
        for variable in self._variables:
            name = variable.name
            value = inputs.get(name, Undefined)
            if value is Undefined:
                if variable.default_literal is not None:
                    signature, default = _default_value(variable)
                    if default is FAILED:
                        return None
                    sources[name] = VariableValueSource(signature)
                    coerced[name] = default
                    continue
                if not variable.non_null:
                    # An absent nullable variable is omitted from `coerced`.
                    sources[name] = VariableValueSource(variable.signature)
                    continue
                return None
            sources[name] = VariableValueSource(variable.signature, value)
            result = variable.coerce(value)
            if result is FAILED:
                return None
            coerced[name] = result
        return VariableValues(sources, coerced)


def _default_value(variable: _Variable) -> tuple[GraphQLVariableSignature, Any]:
    """The signature and coerced default of an absent variable, as graphql-core makes them.

    Like graphql-core, a fresh signature per request whose default memoizes its coerced value,
    so no request shares a (mutable) default with another. Absent variables are the rare case."""
    default = GraphQLDefaultInput(literal=variable.default_literal)
    signature = variable.signature._replace(default=default)
    try:
        value = coerce_input_literal(default.literal, signature.type)
    except Exception:  # e.g. an invalid nested field default: graphql-core reports it
        return signature, FAILED
    if value is not Undefined:
        default._memoized_coerced_value = value  # what coerce_default_value would leave
    return signature, value


def compile_variable_coercion(
    schema: GraphQLSchema, definitions: Sequence[VariableDefinitionNode]
) -> VariableCoercion | None:
    """Compile the operation's variable definitions, or None to always use graphql-core's path."""
    variables = []
    for node in definitions:
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError):
            return None
        try:
            if _depth(signature.type, frozenset()) >= _TOO_DEEP:
                return None
            variables.append(_Variable(signature, node))
        except Unsupported:
            return None
    return VariableCoercion(variables)


def _depth(type_: GraphQLInputType, seen: frozenset[str]) -> int:
    """The deepest level `input_is_nested_too_deeply` can reach in a value of this type.

    Bounded by the type alone (a value's own nesting beyond it is a scalar's business), so
    a type that stays within MAX_NESTING_DEPTH never trips graphql-core's check."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        return 1 + _depth(type_.of_type, seen)
    if isinstance(type_, GraphQLInputObjectType):
        if type_.name in seen:
            raise Unsupported("recursive input type")
        inner = seen | {type_.name}
        return 1 + max((_depth(f.type, inner) for f in type_.fields.values()), default=0)
    return 0


def _coercer(type_: GraphQLInputType) -> Coercer:
    """graphql-core's `coerce_input_value` for this type, as closures."""
    if isinstance(type_, GraphQLNonNull):
        inner = _nullable_coercer(type_.of_type)

        def coerce_non_null(value: Any) -> Any:
            if value is None or value is Undefined:
                return FAILED
            return inner(value)

        return coerce_non_null
    inner = _nullable_coercer(type_)

    def coerce_nullable(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        return inner(value)

    return coerce_nullable


def _nullable_coercer(type_: GraphQLInputType) -> Coercer:
    """The coercer of a non-null value of a nullable type."""
    if isinstance(type_, GraphQLList):
        return _list_coercer(_coercer(type_.of_type))
    if isinstance(type_, GraphQLInputObjectType):
        return _input_object_coercer(type_)
    if isinstance(type_, GraphQLEnumType):
        return _enum_coercer(type_)
    if isinstance(type_, GraphQLScalarType):
        return _scalar_coercer(type_)
    raise Unsupported(f"input type {type_}")


# The types a JSON decoder produces for a single (non-list) value; anything else falls back.
_SINGLE_VALUE_TYPES = frozenset({str, int, float, bool, dict})


def _list_coercer(item: Coercer) -> Coercer:
    def coerce_list(value: Any) -> Any:
        if type(value) is list:
            result = []
            append = result.append
            for one in value:
                coerced = item(one)
                if coerced is FAILED:
                    return FAILED
                append(coerced)
            return result
        if type(value) in _SINGLE_VALUE_TYPES:
            # Lists accept a non-list value as a list of one.
            one = item(value)
            return FAILED if one is FAILED else [one]
        return FAILED

    return coerce_list


def _input_object_coercer(type_: GraphQLInputObjectType) -> Coercer:
    if type_.is_one_of:
        raise Unsupported("one-of input object")
    names = frozenset(type_.fields)
    # (input name, output key, coercer, required, default or FAILED when it has none)
    fields = []
    for name, field in type_.fields.items():
        try:
            default = FAILED if is_required_input_field(field) else coerce_default_value(field)
        except Exception as error:  # an invalid default: graphql-core's path reports it
            raise Unsupported(f"default of {type_.name}.{name}") from error
        fields.append(
            (
                name,
                field.out_name or name,
                _coercer(field.type),
                is_required_input_field(field),
                default,
            )
        )
    out_type = type_.out_type
    identity = out_type is GraphQLInputObjectType.out_type

    def coerce_input_object(value: Any) -> Any:
        if type(value) is not dict or not names.issuperset(value):
            return FAILED
        result = {}
        for name, key, coerce, required, default in fields:
            field_value = value.get(name, Undefined)
            if field_value is Undefined:
                if required:
                    return FAILED
                if default is not Undefined:
                    result[key] = default
                continue
            coerced = coerce(field_value)
            if coerced is FAILED:
                return FAILED
            result[key] = coerced
        return result if identity else out_type(result)

    return coerce_input_object


def _enum_coercer(type_: GraphQLEnumType) -> Coercer:
    coerce = type_.coerce_input_value
    # Each name's value, where coercing returns the very same object every time (plain
    # graphql-core values, Strawberry's Python enum members).
    table = {}
    for name in type_.values:
        first, second = coerce(name), coerce(name)
        if first is not second:
            return _guarded(coerce)
        table[name] = first

    guarded = _guarded(coerce)

    def coerce_enum(value: Any) -> Any:
        if type(value) is str:
            return table.get(value, FAILED)
        return guarded(value)

    return coerce_enum


def _scalar_coercer(type_: GraphQLScalarType) -> Coercer:
    coerce = type_.coerce_input_value
    if type_ is GraphQLString and coerce is GraphQLString.coerce_input_value:
        guarded = _guarded(coerce)

        def coerce_string(value: Any) -> Any:
            return value if type(value) is str else guarded(value)

        return coerce_string
    return _guarded(coerce)


def _guarded(coerce: Callable[[Any], Any]) -> Coercer:
    """A leaf type's own coercion; any exception (or an Undefined result) is a failure."""

    def coerce_leaf(value: Any) -> Any:
        try:
            return coerce(value)
        except Exception:  # graphql-core treats any exception as invalid
            return FAILED

    return coerce_leaf
