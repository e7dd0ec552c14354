"""Search modes over GraphQL: SEMANTIC, KEYWORD and HYBRID (the default) each find what they
should, and every hit says which scores went into its rank."""

from __future__ import annotations

import pytest
from gql.client import AsyncClientSession

from tests.support.graphql_client import execute, execute_error
from tests.support.memory_queries import SEARCH, SEARCH_BATCH, remember, search


@pytest.fixture
async def api(fresh_api: AsyncClientSession) -> AsyncClientSession:
    return fresh_api


async def test_each_mode_ranks_by_its_scores_and_reports_them(api: AsyncClientSession) -> None:
    code = await remember(api, "The storage unit code is QX7731.")
    pets = await remember(api, "Alice owns two cats and an old dog.")
    await remember(api, "Bob keeps QX7731 on a sticky note.", user_id="bob")

    keyword = await search(api, "QX7731", mode="KEYWORD")
    assert [h["memory"]["id"] for h in keyword] == [code["id"]]  # Bob's note: another user
    assert keyword[0]["scores"] == {
        "semantic": None,
        "keyword": pytest.approx(keyword[0]["score"]),
        "recency": None,
    }

    semantic = await search(api, "Which pets does she have?", mode="SEMANTIC", limit=1)
    assert [h["memory"]["id"] for h in semantic] == [pets["id"]]
    assert semantic[0]["scores"]["keyword"] is None
    assert semantic[0]["scores"]["semantic"] == pytest.approx(semantic[0]["score"])

    # No word in common: KEYWORD finds nothing, HYBRID (the default) finds it by meaning.
    assert await search(api, "Which pets does she have?", mode="KEYWORD") == []
    (best, *_) = await search(api, "Which pets does she have?")
    assert best["memory"]["id"] == pets["id"]
    assert best["scores"]["keyword"] == 0.0
    assert best["score"] == pytest.approx(0.5)  # first by meaning, not among the keyword hits


async def test_batch_search_takes_a_mode_per_item(api: AsyncClientSession) -> None:
    code = await remember(api, "The storage unit code is QX7731.")
    items = [
        {"query": "QX7731", "userId": "alice", "mode": "KEYWORD"},
        {"query": "QX7731", "userId": "alice", "mode": "HYBRID", "recencyHalfLife": 3600},
    ]
    result = await execute(api, SEARCH_BATCH, items=items)
    first, second = result["searchMemoriesBatch"]["results"]
    assert [h["memory"]["id"] for h in first["hits"]] == [code["id"]]
    assert first["hits"][0]["scores"]["semantic"] is None
    assert second["hits"][0]["memory"]["id"] == code["id"]
    assert 0.99 < second["hits"][0]["scores"]["recency"] <= 1.0


@pytest.mark.parametrize("half_life", [0, -5])
async def test_a_half_life_that_is_not_positive_is_bad_input(
    api: AsyncClientSession, half_life: float
) -> None:
    search_input = {"query": "x", "userId": "a", "recencyHalfLife": half_life}
    (error,) = await execute_error(api, SEARCH, input=search_input)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
