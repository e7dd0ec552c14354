"""The GraphQL schema. `schema` is the SDL's source; `build_schema` adds the request limits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from schema.errors import ErrorCodes, is_request_error, request_error_code
from schema.root import Mutation, Query, Subscription

ExtensionFactory = Callable[[], SchemaExtension] | type[SchemaExtension]


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2_000
    introspection: bool = True
    cache_size: int = 256


class _QuietSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        # Strawberry would log every bad request as an error; ErrorCodes logs what needs it
        # (internal errors, with their id). Parse errors never reach the extensions, so
        # request errors get their code here.
        for error in errors:
            if is_request_error(error) and not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": request_error_code(error)}


def build_schema(
    limits: QueryLimits | None = None, observers: Sequence[ExtensionFactory] = ()
) -> strawberry.Schema:
    """The schema with its limits; each extension is a factory so no state is shared between
    concurrent requests. `observers` come first, so they see every operation whole, errors
    already coded."""
    limits = limits or QueryLimits()
    # The limiters' rule classes hold only their limits, so they are built once: the
    # validation cache keys on the rules, and new classes per request would never hit it.
    rules = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    extensions: list[ExtensionFactory] = [
        *observers,
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=limits.cache_size),
        lambda: ValidationCache(maxsize=limits.cache_size),
        ErrorCodes,
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return _QuietSchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )


schema = build_schema()
