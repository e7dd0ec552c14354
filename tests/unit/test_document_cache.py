"""The parsed-document caches hold small documents only, and a bounded number of them."""

from __future__ import annotations

from types import SimpleNamespace

from starlette.requests import Request

from schema import QueryLimits, build_schema


def caches(schema):
    [cache] = {
        id(ext.cache): ext.cache
        for ext in (factory() for factory in schema.extensions if callable(factory))
        if hasattr(ext, "cache")
    }.values()
    return cache


async def test_only_small_documents_are_cached_and_never_more_than_the_limit():
    schema = build_schema(QueryLimits(cache_size=4, cached_document_chars=200))
    cache = caches(schema)
    for n in range(10):
        result = await schema.execute(f"query Q{n} {{ __typename }}")
        assert result.errors is None
    assert len(cache.documents.entries) == 4
    assert len(cache.validations.entries) == 4
    padded = "query Big { __typename }" + " " * 500
    assert (await schema.execute(padded)).errors is None
    assert padded not in cache.documents.entries


async def test_a_document_that_does_not_parse_is_reported_and_not_cached():
    schema = build_schema(QueryLimits(cache_size=4))
    result = await schema.execute("{ sessions { ")
    assert result.errors
    assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert not caches(schema).documents.entries


async def test_the_limits_hold_for_cached_and_uncached_documents_alike():
    # The token limit and the depth rule, on a document short enough to cache and on the same
    # document padded past what is cached.
    schema = build_schema(QueryLimits(max_tokens=40, max_depth=2, cached_document_chars=200))
    cache = caches(schema)
    many_tokens = "{ " + " ".join(["__typename"] * 40) + " }"
    too_deep = "{ sessions { edges { node { messages { pageInfo { hasNextPage } } } } } }"
    for document, message in (
        (many_tokens, "Document contains more than 40 tokens"),
        (too_deep, "exceeds maximum operation depth of 2"),
    ):
        for padding in ("", " " * 300):
            result = await schema.execute(document + padding)
            [error] = result.errors
            assert message in error.message
            assert error.extensions["code"] == "LIMIT_EXCEEDED"
    assert too_deep in cache.validations.entries
    assert too_deep + " " * 300 not in cache.validations.entries
    # Within the limits, both run.
    for padding in ("", " " * 300):
        assert (await schema.execute("{ a: __typename }" + padding)).errors is None


async def test_the_operation_is_chosen_before_validation_cached_or_not():
    schema = build_schema(QueryLimits(cached_document_chars=200))
    http = SimpleNamespace(request=Request({"type": "http", "method": "POST", "headers": []}))
    two = "query A { __typename } query B { __typename }"
    subscription = "subscription { sessionEvents { type } }"
    for padding in ("", " " * 300):  # cached, then too large to cache
        [error] = (await schema.execute(two + padding)).errors
        assert error.message == "The document has several operations: give operationName."
        assert error.extensions["code"] == "BAD_USER_INPUT"
        named = await schema.execute(two + padding, operation_name="B")
        assert named.errors is None
        assert named.data == {"__typename": "Query"}
        [error] = (await schema.execute(subscription + padding, context_value=http)).errors
        assert (
            error.message == "Subscriptions need a WebSocket (graphql-transport-ws or graphql-ws)."
        )
