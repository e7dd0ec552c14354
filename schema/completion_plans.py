"""Completion plans: the result of a selection of plain fields, built without graphql-core's
per-field machinery.

graphql-core completes every field of a result the same general way: a path, a resolve-info
object, the resolver, an awaitable check, the type dispatch. Most of what this service answers
is plain data: a message's id, role, content and token count are attributes of an object, and
a 50-message context window is 200 of them. That general way cost a 50-message context read
about 20 µs a message, three times the service call itself.

A plan is compiled once per selection (the same nodes of the same cached document, on the same
object type) when every field below it is a plain Strawberry attribute (no resolver, no
arguments, no directives anywhere in the selection, no interfaces) or `__typename`; it reads
the attributes and coerces the leaves with the very functions graphql-core would call. When a
value is anything a plan does not expect (a null where the schema says non-null, a leaf that
does not coerce, an object of another class, an awaitable), the plan gives up and graphql-core
completes that object itself, from the start: reading attributes has no side effects, so its
errors, their paths and messages are exactly graphql-core's. With resolve middleware (an
extension that hooks every field) there are no plans.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from graphql.type.scalars import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    serialize_id,
    serialize_int,
    serialize_string,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter

from schema.node_cache import NodeCache, selection_has_directives

if TYPE_CHECKING:
    from graphql import GraphQLOutputType
    from graphql.execution.collect_fields import FieldDetailsList, FragmentDetails

Plan = Callable[[Any], Any]
# How a field's value is read from its object: the attribute's name, or a function.
Reader = str | Callable[[Any], Any]
_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF
# Values no resolver result could be awaitable among: a leaf of another type is checked.
_PLAIN = frozenset({str, int, float, bool, datetime, date, time, Decimal, dict, list})


# Strawberry type -> the other classes whose objects the resolvers return for it (see
# answered_by).
_ANSWERING: dict[type, tuple[type, ...]] = {}


def answered_by(strawberry_type: type, *classes: type) -> None:
    """Declares that resolvers return objects of these classes for this Strawberry type, whose
    plans then complete them too: plain data classes with every field of the type as an
    attribute (reading them has no side effects). Objects of any other class go the general
    way."""
    _ANSWERING[strawberry_type] = classes


class GiveUp(Exception):
    """A value the plan does not expect: graphql-core completes the object instead."""


class CompletionPlans(NodeCache["Plan | None"]):
    """The plans of one schema, by selection; bounded, and holding no document alive."""


class PlannedCompletion(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, completing objects of plain fields by their plans."""

    plans: CompletionPlans

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list)
        if plan is not None:
            try:
                return plan(result)
            except Exception:  # noqa: S110 - graphql-core completes it and reports why
                pass
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList) -> Any:
        middleware = self.middleware_manager
        if middleware is not None and middleware.middlewares:
            return None
        nodes = [details.node for details in field_details_list]
        key = (return_type, *map(id, nodes))
        return self.plans.get(
            key, nodes, lambda: _PlanCompiler(self).object_plan(return_type, field_details_list)
        )


class _PlanCompiler:
    """Builds the plan of one selection with the executor's own field collection."""

    def __init__(self, executor: StrawberryGraphQLCoreExecutionContext) -> None:
        self.executor = executor
        self.fragments: dict[str, FragmentDetails] = executor.fragments

    def object_plan(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> Plan | None:
        if object_type.is_type_of is not None or any(
            d.fragment_variable_values is not None or d.defer_usage is not None for d in details
        ):
            return None
        if any(d.node.selection_set is None for d in details):
            return None
        if any(selection_has_directives(d.node.selection_set, self.fragments) for d in details):
            return None
        definition = (object_type.extensions or {}).get(_BACKREF)
        origin = getattr(definition, "origin", None)
        if origin is None:
            return None
        grouped, defer_usages, forbidden = self.executor.collect_subfields(object_type, details)
        if defer_usages or forbidden:
            return None
        fields: list[tuple[str, Reader, Plan]] = []
        for response_name, field_details in grouped.items():
            field = self._field(object_type, field_details)
            if field is None:
                return None
            fields.append((response_name, *field))
        return _object(origin, tuple(fields))

    def _field(
        self, parent: GraphQLObjectType, details: FieldDetailsList
    ) -> tuple[Reader, Plan] | None:
        if any(d.fragment_variable_values is not None for d in details):
            return None
        node = details[0].node
        if node.arguments:
            return None
        name = node.name.value
        if name == "__typename":
            type_name = parent.name
            return (lambda _source: type_name), _identity
        field_def = self.executor.schema.get_field(parent, name)
        if field_def is None or not getattr(field_def.resolve, "_is_default", False):
            return None
        strawberry_field = (field_def.extensions or {}).get(_BACKREF)
        python_name = getattr(strawberry_field, "python_name", None)
        resolver = getattr(strawberry_field, "default_resolver", None)
        if python_name is None or resolver is None:
            return None
        read: Reader = python_name if resolver is getattr else _reader(resolver, python_name)
        complete = self._value(field_def.type, details)
        return None if complete is None else (read, complete)

    def _value(
        self, type_: GraphQLOutputType, details: FieldDetailsList, required: bool = False
    ) -> Plan | None:
        """The plan of a value of this type; `required`: non-null, where a null gives up."""
        if isinstance(type_, GraphQLNonNull):
            return self._value(type_.of_type, details, required=True)
        if isinstance(type_, GraphQLList):
            inner = self._value(type_.of_type, details)
            return None if inner is None else _list(inner, required)
        if isinstance(type_, CustomGraphQLEnumType):
            return _enum(type_, required)
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            return _leaf(type_.coerce_output_value, required)
        if isinstance(type_, GraphQLObjectType):
            plan = self.object_plan(type_, details)
            # An object's plan gives up on anything but its object, None included.
            return plan if plan is None or required else _nullable(plan)
        return None  # interfaces and unions: graphql-core resolves the type


def _identity(value: Any) -> Any:
    return value


def _reader(resolver: Callable[[Any, str], Any], python_name: str) -> Callable[[Any], Any]:
    return lambda source: resolver(source, python_name)


# What a leaf's plan does for its usual value, done inline by the object holding it (a call
# per leaf was most of a 50-message context's completion): text as it is, a 32-bit int as it
# is, an enum member's name.
_TEXT, _INT, _ENUM = "text", "int", "enum"


def _object(origin: type, fields: tuple[tuple[str, Reader, Plan], ...]) -> Plan:
    """The plan of an object: a function made for its fields, as dataclasses makes __init__.

    Written out field by field (each read, its leaf shortcut, the result built as one dict
    display), it runs a fraction of the bytecode a loop over the fields would: it runs once
    for every message of a context."""
    origins = frozenset((origin, *_ANSWERING.get(origin, ())))
    namespace: dict[str, Any] = {
        "origins": origins,
        "GiveUp": GiveUp,
        "MIN_INT": GRAPHQL_MIN_INT,
        "MAX_INT": GRAPHQL_MAX_INT,
    }
    # Strawberry's objects (or the classes declared to answer for them) are what the
    # resolvers return; anything else (a subclass, an awaitable) goes the general way.
    lines = ["def complete(source):", "    if type(source) not in origins:", "        raise GiveUp"]
    members = []
    for index, (name, read, plan) in enumerate(fields):
        value, plan_name = f"value{index}", f"plan{index}"
        namespace[plan_name] = plan
        if isinstance(read, str) and read.isidentifier() and not keyword.iskeyword(read):
            lines.append(f"    {value} = source.{read}")
        else:
            namespace[f"read{index}"] = read if callable(read) else attrgetter(read)
            lines.append(f"    {value} = read{index}(source)")
        shortcut, payload = getattr(plan, "shortcut", None) or (None, None)
        if shortcut is _TEXT:
            lines.append(f"    if type({value}) is not str:")
            lines.append(f"        {value} = {plan_name}({value})")
        elif shortcut is _INT:
            lines.append(f"    if type({value}) is not int or not MIN_INT <= {value} <= MAX_INT:")
            lines.append(f"        {value} = {plan_name}({value})")
        elif shortcut is _ENUM:
            namespace[f"enum{index}"], namespace[f"names{index}"] = payload
            lines.append(f"    if type({value}) is enum{index}:")
            lines.append(f"        {value} = names{index}[{value}]")
            lines.append("    else:")
            lines.append(f"        {value} = {plan_name}({value})")
        else:
            lines.append(f"    {value} = {plan_name}({value})")
        members.append(f"{name!r}: {value}")
    lines.append("    return {" + ", ".join(members) + "}")
    exec("\n".join(lines), namespace)  # noqa: S102 - source made above from names and indexes
    made: Plan = namespace["complete"]
    return made


def _nullable(plan: Plan) -> Plan:
    def complete(value: Any) -> Any:
        return None if value is None or value is Undefined else plan(value)

    return complete


def _list(item: Plan, required: bool) -> Plan:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            if required:
                raise GiveUp
            return None
        if type(value) is not list and type(value) is not tuple:
            raise GiveUp
        return [item(each) for each in value]

    return complete


def _leaf(coerce: Callable[[Any], Any], required: bool) -> Plan:
    """A leaf coerced as graphql-core would coerce it."""
    # graphql-core's String and ID give text back as it is, and Int a 32-bit int: no call.
    keeps_text = coerce is serialize_string or coerce is serialize_id
    keeps_int = coerce is serialize_int

    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            if required:
                raise GiveUp
            return None
        kind = type(value)
        if kind is str and keeps_text:
            return value
        if kind is int and keeps_int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
            return value
        if kind not in _PLAIN:
            raise GiveUp
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise GiveUp
        return coerced

    shortcut = (_TEXT, None) if keeps_text else (_INT, None) if keeps_int else None
    complete.shortcut = shortcut  # type: ignore[attr-defined]
    return complete


def _enum(type_: CustomGraphQLEnumType, required: bool) -> Plan:
    """Strawberry's enum coercion (the first name whose value equals the member's), as a
    lookup by member."""
    wrapped = type_.wrapped_cls
    names: dict[Any, str] = {}
    for member in wrapped:
        for name, value in type_.values.items():
            if member.value == value.value:
                names[member] = name
                break

    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            if required:
                raise GiveUp
            return None
        if type(value) is not wrapped:
            raise GiveUp
        return names[value]

    complete.shortcut = (_ENUM, (wrapped, names))  # type: ignore[attr-defined]
    return complete
