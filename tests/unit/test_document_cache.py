"""The parsed-document caches hold small documents only, and a bounded number of them."""

from __future__ import annotations

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
