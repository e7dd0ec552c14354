"""The GraphQL schema. `schema` is the SDL's source; `build_schema` adds the request limits."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from schema.errors import ErrorCodes
from schema.root import Mutation, Query, Subscription


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2_000
    introspection: bool = True
    cache_size: int = 256


class _QuietSchema(strawberry.Schema):
    # ErrorCodes logs the errors that need it (internal ones, with their id); Strawberry's
    # default would log every bad query as an error too.
    def process_errors(self, errors, execution_context=None) -> None:
        return None


def build_schema(limits: QueryLimits | None = None) -> strawberry.Schema:
    """The schema with its limits; each extension is a factory so no state is shared between
    concurrent requests."""
    limits = limits or QueryLimits()
    # The limiters' rule classes hold only their limits, so they are built once: the
    # validation cache keys on the rules, and new classes per request would never hit it.
    rules = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    extensions = [
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
