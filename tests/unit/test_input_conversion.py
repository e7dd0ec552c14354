"""Every input type of the schema is built from its GraphQL value exactly as Strawberry's own
conversion builds it."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from schema import schema
from schema.input_conversion import InputBuilder
from services.ltm_model import Category
from services.stm_model import ConfigField, Role, Strategy

METADATA = {"k": [1, 2.5, None, {"deep": "x"}]}
VALUES: dict[str, list[dict[str, Any]]] = {
    "AddMessagesInput": [
        {"sessionId": "s", "messages": []},
        {
            "sessionId": "s",
            "messages": [
                {"role": Role.USER, "content": "hi", "name": None, "metadata": None, "id": None},
                {
                    "role": Role.ASSISTANT,
                    "content": "x",
                    "name": "n",
                    "metadata": METADATA,
                    "id": "m1",
                },
            ],
        },
    ],
    "SetSessionConfigInput": [
        {"sessionId": "s", "reset": []},
        {
            "sessionId": "s",
            "strategy": Strategy.TOKEN_THRESHOLD,
            "maxMessages": None,
            "maxTokens": 40,
            "reset": [ConfigField.TTL_SECONDS],
        },
    ],
    "AddMemoryInput": [
        {"text": "t", "userId": "u", "category": Category.FACT, "metadata": METADATA},
        {"messages": [{"role": Role.USER, "content": "c"}], "sessionId": "s", "infer": False},
    ],
}


def input_types() -> dict[str, Any]:
    return {
        name: concrete.definition
        for name, concrete in schema.schema_converter.type_map.items()
        if isinstance(concrete.definition, StrawberryObjectDefinition)
        and concrete.definition.is_input
    }


def converted(definition: StrawberryObjectDefinition, value: dict[str, Any]) -> Any:
    return convert_argument(
        value, definition.origin, schema.schema_converter.scalar_registry, schema.config
    )


def strawberrys_own(definition: StrawberryObjectDefinition, value: dict[str, Any]) -> Any:
    """What Strawberry builds without the hook (on every nested input type too)."""
    builders = {d.name: d.from_input for d in input_types().values()}
    try:
        for d in input_types().values():
            d.from_input = None
        return converted(definition, value)
    finally:
        for d in input_types().values():
            d.from_input = builders[d.name]


def test_every_input_type_builds_its_own() -> None:
    assert all(isinstance(d.from_input, InputBuilder) for d in input_types().values())


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in VALUES.items() for value in values]
)
def test_inputs_are_what_strawberry_builds(name: str, value: dict[str, Any]) -> None:
    definition = input_types()[name]
    built = converted(definition, value)
    assert built == strawberrys_own(definition, value)
    assert type(built) is definition.origin


def test_lists_are_copies_of_the_given_value() -> None:
    value = {"sessionId": "s", "reset": [ConfigField.STRATEGY]}
    built = converted(input_types()["SetSessionConfigInput"], value)
    assert built.reset == value["reset"]
    assert built.reset is not value["reset"]
