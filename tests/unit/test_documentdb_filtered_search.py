"""A filtered search on DocumentDB returns the best matches of the whole filter, however many
memories of the same user are closer to the query, on the evaluating stand-in
(tests/support/mongo_documents.py), which behaves as the engine does where it matters: k at most
1,000, a pre-filter only on paths with their own single-path index, `$match` after `$search`
applied to the k hits only."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import pytest
from pymongo.errors import OperationFailure

from stores.documentdb_vectors import AzureDocumentDBVectorStore
from tests.support.mongo_documents import DocumentClient, DocumentCollection

DIMS = 8
NOW = 1_900_000_000.0
CROWD = 2000  # more than the engine's largest k (1,000): no single search can reach past them


def _unit(*weights: float) -> list[float]:
    vector = [*weights, *[0.0] * (DIMS - len(weights))]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def _payload(user: str, expires_at: float = 253402300799.0, **metadata: Any) -> dict[str, Any]:
    return {
        "tenant": "t1",
        "user_id": user,
        "category": "fact",
        "created_at": "2025-01-01T00:00:00+00:00",
        "expires_at": expires_at,
        "metadata": metadata,
    }


def _filters(**metadata: Any) -> dict[str, Any]:
    """What the LTM service hands mem0 for a search scoped to a user and metadata."""
    filters: dict[str, Any] = {"user_id": "u1", "tenant": "t1", "expires_at": {"gt": NOW}}
    filters.update({f"metadata.{key}": value for key, value in metadata.items()})
    return filters


@pytest.fixture
def client() -> DocumentClient:
    return DocumentClient()


@pytest.fixture
def make_store(client: DocumentClient) -> Callable[..., AzureDocumentDBVectorStore]:
    def make(**overrides: Any) -> AzureDocumentDBVectorStore:
        options: dict[str, Any] = {
            "client": client,
            "embedding_model_dims": DIMS,
            "index_type": "hnsw",
            "index_wait_seconds": 0,
            "retry_delay_seconds": 0,
        }
        options.update(overrides)
        return AzureDocumentDBVectorStore(**options)

    return make


def _collection(client: DocumentClient) -> DocumentCollection:
    return client["maas"]["memories"]


def _crowd_and_one_match(store: AzureDocumentDBVectorStore) -> None:
    """2,000 memories of u1 closer to the query than u1's one memory about "rare"."""
    crowd = [_unit(1.0, 0.001 * (i + 1)) for i in range(CROWD)]
    store.insert(
        crowd,
        [_payload("u1", topic="common", project="p1") for _ in crowd],
        [f"near-{i}" for i in range(CROWD)],
    )
    store.insert([_unit(1.0, 1.0)], [_payload("u1", topic="rare", project="p9")], ["the-match"])


# ---- the stand-in behaves as the engine does ----------------------------------------------------


def test_stand_in_refuses_a_prefilter_path_without_its_own_index(
    make_store: Callable[..., AzureDocumentDBVectorStore], client: DocumentClient
) -> None:
    make_store()
    search = {"vector": _unit(1.0), "path": "embedding", "k": 5, "exact": True}
    with pytest.raises(OperationFailure, match=r"index for filter path 'payload\.metadata\.topic'"):
        _collection(client).aggregate(
            [{"$search": {"cosmosSearch": {**search, "filter": {"payload.metadata.topic": "x"}}}}]
        )
    with pytest.raises(OperationFailure, match="index for filter path '_id'"):
        _collection(client).aggregate(
            [{"$search": {"cosmosSearch": {**search, "filter": {"_id": {"$in": ["a"]}}}}}]
        )
    with pytest.raises(OperationFailure, match="k must be between 1 and 1000"):
        _collection(client).aggregate([{"$search": {"cosmosSearch": {**search, "k": 1001}}}])


def test_stand_in_applies_a_match_after_search_to_the_k_hits_only(
    make_store: Callable[..., AzureDocumentDBVectorStore], client: DocumentClient
) -> None:
    store = make_store()
    _crowd_and_one_match(store)
    pipeline = [
        {
            "$search": {
                "cosmosSearch": {
                    "vector": _unit(1.0),
                    "path": "embedding",
                    "k": 1000,
                    "filter": {"payload.user_id": {"$eq": "u1"}},
                    "exact": True,
                }
            }
        },
        {"$project": {"score": {"$meta": "searchScore"}, "payload": 1}},
    ]
    hits = _collection(client).aggregate(pipeline)
    assert len(hits) == 1000
    assert hits[0]["_id"] == "near-0"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-6)
    matched = {"$match": {"payload.metadata.topic": {"$eq": "rare"}}}
    assert _collection(client).aggregate([*pipeline, matched]) == []


# ---- the reported failure ----------------------------------------------------------------------


def test_a_metadata_match_behind_2000_closer_memories_of_the_user_is_found(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store()
    _crowd_and_one_match(store)
    # mem0 asks for k = max(limit * 4, 60)
    hits = store.search("q", _unit(1.0), top_k=60, filters=_filters(topic="rare"))
    assert [hit.id for hit in hits] == ["the-match"]
    assert hits[0].score == pytest.approx(math.cos(math.pi / 4), abs=1e-6)


def test_a_declared_metadata_key_is_indexed_and_prefiltered_in_one_search(
    make_store: Callable[..., AzureDocumentDBVectorStore], client: DocumentClient
) -> None:
    store = make_store(indexed_metadata_keys=("topic",))
    _crowd_and_one_match(store)
    assert "payload.metadata.topic" in _collection(client).prefilter_paths()
    _collection(client).searches.clear()
    hits = store.search("q", _unit(1.0), top_k=60, filters=_filters(topic="rare"))
    assert [hit.id for hit in hits] == ["the-match"]
    [search] = _collection(client).searches
    assert search["exact"] is True
    assert search["k"] == 60  # nothing left for a $match: no over-fetching
    assert {"payload.metadata.topic": {"$eq": "rare"}} in search["filter"]["$and"]


def test_undeclared_and_declared_keys_together_are_exact(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store(indexed_metadata_keys=("project",))
    _crowd_and_one_match(store)
    hits = store.search("q", _unit(1.0), top_k=5, filters=_filters(topic="rare", project="p9"))
    assert [hit.id for hit in hits] == ["the-match"]
    assert (
        store.search("q", _unit(1.0), top_k=5, filters=_filters(topic="rare", project="p1")) == []
    )


def test_the_best_matches_come_best_first_and_only_top_k(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store()
    _crowd_and_one_match(store)
    far = [_unit(1.0, 2.0), _unit(1.0, 3.0), _unit(0.0, 1.0)]
    store.insert(far, [_payload("u1", topic="rare") for _ in far], ["second", "third", "fourth"])
    hits = store.search("q", _unit(1.0), top_k=3, filters=_filters(topic="rare"))
    assert [hit.id for hit in hits] == ["the-match", "second", "third"]
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_expired_other_users_and_other_tenants_matches_stay_out(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store()
    _crowd_and_one_match(store)
    closer = [_unit(1.0, 0.5)] * 3
    store.insert(
        closer,
        [
            _payload("u1", expires_at=NOW - 1, topic="rare"),  # expired
            _payload("u2", topic="rare"),  # another user
            {**_payload("u1", topic="rare"), "tenant": "t2"},  # another tenant
        ],
        ["expired", "other-user", "other-tenant"],
    )
    hits = store.search("q", _unit(1.0), top_k=60, filters=_filters(topic="rare"))
    assert [hit.id for hit in hits] == ["the-match"]


@pytest.mark.parametrize(
    "condition",
    [
        {"metadata.topic": {"icontains": "RAR"}},
        {"metadata.topic": {"contains": "ar"}},
        {"NOT": [{"metadata.topic": "common"}]},
        {"OR": [{"metadata.topic": "rare"}, {"metadata.project": "nope"}]},
    ],
)
def test_conditions_the_engine_cannot_prefilter_are_exact_too(
    make_store: Callable[..., AzureDocumentDBVectorStore], condition: dict[str, Any]
) -> None:
    store = make_store(indexed_metadata_keys=("topic",))
    _crowd_and_one_match(store)
    hits = store.search("q", _unit(1.0), top_k=10, filters={**_filters(), **condition})
    assert [hit.id for hit in hits] == ["the-match"]


def test_more_matches_than_can_be_ranked_widen_the_search_up_to_the_engine_cap(
    make_store: Callable[..., AzureDocumentDBVectorStore], client: DocumentClient
) -> None:
    store = make_store(exact_rank_max=2)
    crowd = [_unit(1.0, 0.001 * (i + 1)) for i in range(700)]
    store.insert(
        crowd, [_payload("u1", topic="common") for _ in crowd], [f"n{i}" for i in range(700)]
    )
    matches = [_unit(1.0, 1.0 + i) for i in range(5)]
    store.insert(
        matches, [_payload("u1", topic="rare") for _ in matches], [f"m{i}" for i in range(5)]
    )
    _collection(client).searches.clear()
    hits = store.search("q", _unit(1.0), top_k=5, filters=_filters(topic="rare"))
    assert [hit.id for hit in hits] == [f"m{i}" for i in range(5)]
    assert [s["k"] for s in _collection(client).searches] == [100, 200, 400, 800]


def test_past_the_engine_cap_the_answer_may_be_incomplete_and_a_warning_says_so(
    make_store: Callable[..., AzureDocumentDBVectorStore],
    client: DocumentClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_store(exact_rank_max=2)
    _crowd_and_one_match(store)
    more = [_unit(1.0, 2.0 + i) for i in range(3)]
    store.insert(more, [_payload("u1", topic="rare") for _ in more], ["r1", "r2", "r3"])
    _collection(client).searches.clear()
    with caplog.at_level(logging.WARNING, logger="stores.documentdb_search"):
        hits = store.search("q", _unit(1.0), top_k=60, filters=_filters(topic="rare"))
    assert hits == []  # 4 matches behind 2,000 closer memories, more than the 2 ranked here
    assert [s["k"] for s in _collection(client).searches] == [600, 1000]
    assert "may be missing" in caplog.text
    assert "DOCUMENTDB_INDEXED_METADATA_KEYS" in caplog.text
