"""The JSON scalar, as Strawberry defines it, with the checks of services.json_values on every
value it takes in: a variable (already checked by the request edge) or a literal written in
the document, which no JSON decoder sees (`metadata: {x: 1e400}` would otherwise reach the
stores as infinity)."""

from __future__ import annotations

import dataclasses
from typing import Any

from graphql import GraphQLError
from strawberry.scalars import JSON
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.scalar import ScalarDefinition

from services.json_values import JsonLimits, json_value_problem


def checked_json_scalar(limits: JsonLimits) -> dict[object, ScalarDefinition]:
    """The scalar override to give the schema."""

    def parse_value(value: Any) -> Any:
        problem = json_value_problem(value, limits)
        if problem is not None:
            # A GraphQLError: graphql-core reports it as the request's error, as it is.
            code = "LIMIT_EXCEEDED" if problem.over_limit else "BAD_USER_INPUT"
            raise GraphQLError(
                f"JSON value with {problem.what} (at {problem.where or 'the top'}).",
                extensions={"code": code},
            )
        return value

    return {JSON: dataclasses.replace(DEFAULT_SCALAR_REGISTRY[JSON], parse_value=parse_value)}
