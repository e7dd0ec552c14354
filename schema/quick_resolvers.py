"""Field resolvers that convert their arguments with what Strawberry works out for every call
done once per field.

Strawberry wraps each resolver in a function that, on every call, converts each argument by
`convert_argument` (an import statement, a chain of isinstance tests, the argument's name
converted to camelCase again), then runs the field's extensions through a reduce of partials
even when there are none. For one `addMessages` that was about a fifth of the schema's own
work. Here a field whose resolver Strawberry would call that way (a resolver of its own, no
field extensions, no exception handlers, not a subscription) gets a resolver that does the
same in the same order: the same Info, the arguments converted by schema.input_conversion's
converters (Strawberry's conversion, decided once per type), `self`, root, parent and info
passed as Strawberry passes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import InputContext

from schema.input_conversion import Converter, converter_of

if TYPE_CHECKING:
    from collections.abc import Callable

    import strawberry
    from graphql import GraphQLResolveInfo
    from strawberry.types.field import StrawberryField

_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF
# Strawberry's resolver wrappers (schema_converter.from_resolver), by name.
_STRAWBERRY_RESOLVERS = frozenset({"_async_resolver", "_resolver"})


def build_resolvers_quickly(schema: strawberry.Schema) -> None:
    """Give every field of the schema that Strawberry resolves through its general wrapper,
    without anything the wrapper would add, a quick resolver."""
    if schema.exception_handlers:
        return
    for graphql_type in schema._schema.type_map.values():
        fields = getattr(graphql_type, "fields", None)
        if graphql_type.name.startswith("__") or not isinstance(fields, dict):  # introspection
            continue
        for graphql_field in fields.values():
            field = (graphql_field.extensions or {}).get(_BACKREF)
            resolve = getattr(graphql_field, "resolve", None)
            if (
                field is None
                or getattr(resolve, "__name__", None) not in _STRAWBERRY_RESOLVERS
                or getattr(resolve, "_is_default", True)
                or field.base_resolver is None
                or field.extensions
                or field.is_subscription
            ):
                continue
            graphql_field.resolve = _quick_resolver(schema, field)


def _quick_resolver(schema: strawberry.Schema, field: StrawberryField) -> Callable[..., Any]:
    resolver = field.base_resolver
    assert resolver is not None
    info_class = schema.config.info_class
    arguments = _arguments_converter(schema, field)
    self_parameter = resolver.self_parameter is not None
    # Keyword parameters that receive the source, and the one that receives the Info.
    source_names = [
        parameter.name
        for parameter in (resolver.parent_parameter, resolver.root_parameter)
        if parameter is not None
    ]
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None

    def call(source: Any, info: GraphQLResolveInfo, kwargs: dict[str, Any]) -> Any:
        strawberry_info = info_class(_raw_info=info, _field=field)
        converted = arguments(kwargs, strawberry_info)
        for name in source_names:
            converted[name] = source
        if info_name is not None:
            converted[info_name] = strawberry_info
        if self_parameter:
            return resolver(source, **converted)
        return resolver(**converted)

    # An async resolver's awaitable goes to graphql-core as it is: graphql-core awaits it (as
    # it awaited Strawberry's wrapper coroutine), without a coroutine around it to resume.
    def _resolver(source: Any, info: GraphQLResolveInfo, **kwargs: Any) -> Any:
        return call(source, info, kwargs)

    _resolver._is_default = False  # type: ignore[attr-defined]
    return _resolver


def _arguments_converter(
    schema: strawberry.Schema, field: StrawberryField
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """strawberry.types.arguments.convert_arguments for this field's arguments."""
    config = schema.config
    registry = schema.schema_converter.scalar_registry
    # The converters need a context only to make one: the Info is the call's.
    build_context = InputContext(info=None, config=config, scalar_registry=registry, path=())
    converters: list[tuple[str, str, Converter]] = []
    for argument in field.arguments:
        assert argument.python_name
        converters.append(
            (
                config.name_converter.from_argument(argument),
                argument.python_name,
                converter_of(argument.type, build_context),
            )
        )
    if not converters:
        return lambda _value, _info: {}

    def convert(value: dict[str, Any], info: Any) -> dict[str, Any]:
        context = InputContext(info=info, config=config, scalar_registry=registry, path=())
        return {
            python_name: convert(value[name], context, name)
            for name, python_name, convert in converters
            if name in value
        }

    return convert
