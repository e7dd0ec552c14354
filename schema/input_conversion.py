"""Input objects built from their GraphQL values with what Strawberry works out for every
request done once per type.

Strawberry converts an input value field by field, and for each field of each request resolves
its annotation, converts its name to camelCase and asks whether its type is a leaf: for one
`addMessages` of one message that was about a tenth of the request's server CPU. Here each
input type gets, through Strawberry's own `from_input` hook, a builder that does the same
conversion (same defaults, same copies, same values) from a per-type list of fields made on
first use. Types with `Maybe` fields keep Strawberry's conversion: Strawberry validates their
nulls only for types without the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import TYPE_CHECKING, Any

from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

if TYPE_CHECKING:
    import strawberry

# (value, the context of the input holding it, the value's key there) -> converted value
Converter = Callable[[Any, InputContext, "str | int"], Any]


def build_inputs_quickly(schema: strawberry.Schema) -> None:
    """Give every input type of the schema that has no builder of its own this module's."""
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if (
            isinstance(definition, StrawberryObjectDefinition)
            and definition.is_input
            and definition.from_input is None
            and not _has_maybe_fields(definition)
        ):
            definition.from_input = InputBuilder(definition)


def _has_maybe_fields(definition: StrawberryObjectDefinition) -> bool:
    return any(
        isinstance(field.resolve_type(type_definition=definition), StrawberryMaybe)
        for field in definition.fields
    )


class InputBuilder:
    """`from_input` of one input type: Strawberry's conversion, field list made once."""

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self.definition = definition
        # By (name converter, scalar registry): what decides names and leaves. One schema
        # has one of each; tests build several schemas of the same types.
        self._fields: dict[tuple[int, int], tuple[dict[str, None], list[_Field]]] = {}

    def __call__(self, type_: type, value: Mapping[str, Any], context: InputContext) -> Any:
        key = (id(context.config.name_converter), id(context.scalar_registry))
        compiled = self._fields.get(key)
        if compiled is None:
            compiled = self._fields[key] = self._compile(context)
        defaults, fields = compiled
        kwargs: dict[str, Any] = dict(defaults)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                given = value[graphql_name]
                # A leaf is taken as it is: no call for it.
                kwargs[python_name] = (
                    given if convert is _as_is else convert(given, context, graphql_name)
                )
        return type_(**kwargs)

    def _compile(self, context: InputContext) -> tuple[dict[str, None], list[_Field]]:
        definition = self.definition
        # An input field without a default is None unless given (Strawberry does the same:
        # graphql-core has checked that the required ones are there).
        defaults = {
            field.python_name: None
            for field in definition.fields
            if field.default_value is MISSING and field.default_factory is MISSING
        }
        fields = [
            (
                context.config.name_converter.from_field(field),
                field.python_name,
                converter_of(field.resolve_type(type_definition=definition), context),
            )
            for field in definition.fields
        ]
        return defaults, fields


_Field = tuple[str, str, Converter]


def converter_of(type_: StrawberryType | type, context: InputContext) -> Converter:
    """strawberry.types.arguments.convert_argument for values of `type_`, decided once."""
    if isinstance(type_, StrawberryMaybe):
        return _generic(type_)
    if isinstance(type_, StrawberryOptional):
        # Optional adds nothing: the inner conversion passes None and UNSET on.
        return converter_of(type_.of_type, context)
    if isinstance(type_, LazyType):
        return converter_of(type_.resolve_type(), context)
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if isinstance(item, StrawberryOptional):
            item = item.of_type
        if _is_leaf(item, context) and item is not GlobalID:
            # Copied: graphql-core gives every request that omits it the same default list.
            return _copied_list
        if isinstance(type_.of_type, StrawberryOptional | StrawberryMaybe | LazyType):
            return _generic(type_)
        if has_object_definition(type_.of_type):
            return _input_list(type_)
        return _generic(type_)
    if type_ is GlobalID:
        return _generic(type_)
    if _is_leaf(type_, context):
        return _as_is
    if has_object_definition(type_) and type_.__strawberry_definition__.is_input:
        return _input(type_)
    return _generic(type_)


def _is_leaf(type_: Any, context: InputContext) -> bool:
    return (
        is_scalar(type_, context.scalar_registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    )


def _as_is(value: Any, context: InputContext, key: str | int) -> Any:
    return value


def _copied_list(value: Any, context: InputContext, key: str | int) -> Any:
    if value is None or value is UNSET:
        return value
    return list(value)


def _nested(context: InputContext, *keys: str | int) -> InputContext:
    return InputContext(
        info=context.info,
        config=context.config,
        scalar_registry=context.scalar_registry,
        path=(*context.path, *keys),
    )


def _input(type_: Any) -> Converter:
    definition: StrawberryObjectDefinition = type_.__strawberry_definition__

    def convert(value: Any, context: InputContext, key: str | int) -> Any:
        if value is None or value is UNSET:
            return value
        if definition.from_input is None:
            return context.convert(value, type_, key)
        return definition.from_input(type_, value, _nested(context, key))

    return convert


def _input_list(list_type: StrawberryList) -> Converter:
    type_: Any = list_type.of_type
    definition: StrawberryObjectDefinition = type_.__strawberry_definition__

    def convert(value: Any, context: InputContext, key: str | int) -> Any:
        if value is None or value is UNSET:
            return value
        build = definition.from_input
        if build is None:
            return context.convert(value, list_type, key)
        return [
            item
            if item is None or item is UNSET
            else build(type_, item, _nested(context, key, index))
            for index, item in enumerate(value)
        ]

    return convert


def _generic(type_: Any) -> Converter:
    def convert(value: Any, context: InputContext, key: str | int) -> Any:
        return context.convert(value, type_, key)

    return convert
