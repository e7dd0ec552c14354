"""AzureDocumentDBVectorStore against a recording double: what it sends, in which order, and how
it reads DocumentDB's answers (fallbacks, retries, outages)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import pytest
from mem0.vector_stores.base import VectorStoreBase
from pymongo import ReturnDocument
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from stores.documentdb_index import VectorIndexConflict
from stores.documentdb_vectors import AzureDocumentDBConfig, AzureDocumentDBVectorStore
from stores.memory_changes import Edit, HistoryNotRecorded, Live, MemoryChange, Sweep
from stores.vector_hits import StoreUnavailable, VectorHit
from tests.support.fake_mongo import FakeClient, FakeDatabase

COLL = "memories"
NOT_READY = "Similarity index was not found for a vector similarity search query."


def _failure(message: str, code: int = 2) -> OperationFailure:
    return OperationFailure(message, code, {"ok": 0.0, "errmsg": message, "code": code})


def _vector_index(kind: str = "vector-diskann", dimensions: int = 3, **options: Any) -> dict:
    return {
        "v": 2,
        "name": "embedding_vector",
        "key": {"embedding": "cosmosSearch"},
        "cosmosSearchOptions": {
            "kind": kind,
            "similarity": "COS",
            "dimensions": dimensions,
            **options,
        },
    }


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def db(client: FakeClient) -> FakeDatabase:
    return client["maas"]


@pytest.fixture
def make_store(client: FakeClient) -> Callable[..., AzureDocumentDBVectorStore]:
    """Builds the store on the double; no waits between retries."""

    def make(**overrides: Any) -> AzureDocumentDBVectorStore:
        options: dict[str, Any] = {
            "client": client,
            "embedding_model_dims": 3,
            "index_wait_seconds": 0,
            "retry_delay_seconds": 0,
        }
        options.update(overrides)
        return AzureDocumentDBVectorStore(**options)

    return make


@pytest.fixture
def store(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> AzureDocumentDBVectorStore:
    """A started store, with the start-up calls forgotten."""
    built = make_store()
    db.calls.clear()
    return built


# ---- start-up ----------------------------------------------------------------------------------


def test_first_start_creates_collection_indexes_vector_index_then_probes(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    make_store()
    assert [(c.target, c.method) for c in db.calls] == [
        ("db", "list_collection_names"),
        ("db", "command:create"),
        ("db", "command:createIndexes"),
        (COLL, "list_indexes"),
        ("db", "command:createIndexes"),
        (COLL, "list_indexes"),
        (COLL, "aggregate"),
    ]
    assert db.calls[0].kwargs == {"filter": {"name": COLL}}
    create, filters, vector = db.commands()
    assert create == {"create": COLL}
    assert filters["createIndexes"] == COLL
    assert [index["key"] for index in filters["indexes"]][:2] == [
        {"payload.tenant": 1},
        {"payload.user_id": 1},
    ]
    assert vector == {
        "createIndexes": COLL,
        "indexes": [
            {
                "name": "embedding_vector",
                "key": {"embedding": "cosmosSearch"},
                "cosmosSearchOptions": {
                    "kind": "vector-diskann",
                    "similarity": "COS",
                    "dimensions": 3,
                    "maxDegree": 32,
                    "lBuild": 50,
                },
            }
        ],
    }
    assert db.calls_to(COLL, "aggregate")[0].args[0] == [
        {
            "$search": {
                "cosmosSearch": {
                    "vector": [1.0, 0.0, 0.0],
                    "path": "embedding",
                    "k": 1,
                    "exact": True,
                    "lSearch": 40,
                }
            }
        },
        {"$project": {"score": {"$meta": "searchScore"}, "payload": 1}},
    ]


def test_restart_with_everything_in_place_sends_no_create(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer("db", "list_collection_names", [COLL])
    db.answer(COLL, "list_indexes", [_vector_index(maxDegree=32, lBuild=50)])
    make_store()
    assert [c["createIndexes"] for c in db.commands()] == [COLL]  # the ordinary ones only
    assert db.commands("create") == []


def test_any_collection_name_works(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    make_store(collection_name="memories_entities")
    assert {c.get("createIndexes", c.get("create")) for c in db.commands()} == {"memories_entities"}


def test_concurrent_creator_of_the_collection_is_not_an_error(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer("db", "command:create", _failure("Collection already exists.", code=48))
    make_store()
    assert len(db.commands("createIndexes")) == 2


def test_a_refused_text_index_leaves_the_other_indexes_and_keyword_search_off(
    make_store: Callable[..., AzureDocumentDBVectorStore],
    db: FakeDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusal = _failure("Expected exactly one text index. Requested index: ...", code=17194)
    db.answer("db", "command:createIndexes", refusal)
    with caplog.at_level(logging.WARNING, logger="stores.documentdb_index"):
        store = make_store()
    with_text, without, _vector = db.commands("createIndexes")
    assert with_text["indexes"][-1]["key"] == {"payload.data": "text"}
    assert without["indexes"] == with_text["indexes"][:-1]
    assert "keyword search is off" in caplog.text
    assert store.keyword_search("tea", 5, {"tenant": "t1"}) is None


def test_keyword_search_sends_one_text_query_per_word_the_engine_keeps(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    assert store.keyword_search("the and of very", 5, {"tenant": "t1"}) == []
    assert db.calls_to(COLL, "aggregate") == []  # the engine's stop words only: nothing to ask
    store.keyword_search("just Zbigniew and tea", 5, {"tenant": "t1"})
    searched = [c.args[0][0]["$match"]["$and"][0] for c in db.calls_to(COLL, "aggregate")]
    assert searched == [{"$text": {"$search": "zbigniew"}}, {"$text": {"$search": "tea"}}]


def test_other_failures_of_the_ordinary_indexes_surface(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    refusal = _failure("not authorized on maas", code=13)
    db.answer("db", "command:createIndexes", refusal, refusal)
    with pytest.raises(OperationFailure, match="not authorized"):
        make_store()
    assert len(db.commands("createIndexes")) == 2  # with the text index, then without


def test_diskann_refused_falls_back_to_hnsw_with_a_warning(
    make_store: Callable[..., AzureDocumentDBVectorStore],
    db: FakeDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusal = _failure(
        'Error in specification { "name" : "embedding_vector" }:Invalid search index kind '
        "vector-diskann",
        code=67,
    )
    db.answer("db", "command:createIndexes", {"ok": 1.0}, refusal, {"ok": 1.0})
    with caplog.at_level(logging.WARNING, logger="stores.documentdb_index"):
        store = make_store()
    vector_commands = db.commands("createIndexes")[1:]
    assert [c["indexes"][0]["cosmosSearchOptions"] for c in vector_commands] == [
        {
            "kind": "vector-diskann",
            "similarity": "COS",
            "dimensions": 3,
            "maxDegree": 32,
            "lBuild": 50,
        },
        {
            "kind": "vector-hnsw",
            "similarity": "COS",
            "dimensions": 3,
            "m": 16,
            "efConstruction": 64,
        },
    ]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "DiskANN is unavailable" in warning.getMessage()
    assert "HNSW" in warning.getMessage()
    assert store.index_spec.kind == "hnsw"
    probe = db.calls_to(COLL, "aggregate")[0].args[0][0]["$search"]["cosmosSearch"]
    assert probe["efSearch"] == 40
    assert "lSearch" not in probe


def test_diskann_refused_for_the_cluster_tier_also_falls_back(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    refusal = _failure("diskann index is not supported for this cluster tier", code=67)
    db.answer("db", "command:createIndexes", {"ok": 1.0}, refusal, {"ok": 1.0})
    assert make_store().index_spec.kind == "hnsw"


def test_hnsw_left_by_an_earlier_fallback_is_kept(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer("db", "list_collection_names", [COLL])
    db.answer(COLL, "list_indexes", [_vector_index("vector-hnsw", m=16, efConstruction=64)])
    db.answer(
        "db",
        "command:createIndexes",
        {"ok": 1.0},
        _failure("Invalid search index kind vector-diskann", code=67),
    )
    store = make_store()
    assert store.index_spec.kind == "hnsw"
    assert len(db.commands("createIndexes")) == 2  # ordinary + the DiskANN attempt, no HNSW


def test_existing_index_with_another_definition_is_a_clear_error(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer(COLL, "list_indexes", [_vector_index("vector-hnsw", dimensions=384)])
    with pytest.raises(VectorIndexConflict) as raised:
        make_store(index_type="hnsw")
    message = str(raised.value)
    assert "dimensions: 384 (existing) vs 3 (configured)" in message
    assert "dropIndex('embedding_vector')" in message
    assert len(db.commands("createIndexes")) == 1  # nothing sent for the vector index


def test_hnsw_where_the_server_has_diskann_is_a_conflict(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer(COLL, "list_indexes", [_vector_index("vector-hnsw", m=16, efConstruction=64)])
    db.answer(
        "db",
        "command:createIndexes",
        {"ok": 1.0},
        _failure("only one vector index is allowed per path", code=67),
    )
    with pytest.raises(VectorIndexConflict, match="kind: 'vector-hnsw' \\(existing\\)"):
        make_store()


def test_conflict_reported_by_the_server_names_the_differences(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    conflict = _failure("Index with name: embedding_vector already exists", code=85)
    db.answer("db", "command:createIndexes", {"ok": 1.0}, conflict)
    db.answer(COLL, "list_indexes", [], [_vector_index("vector-hnsw", m=8, efConstruction=64)])
    with pytest.raises(VectorIndexConflict, match=r"m: 8 \(existing\) vs 16 \(configured\)"):
        make_store(index_type="hnsw")


def test_server_accepting_a_different_index_silently_is_caught(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer(COLL, "list_indexes", [], [_vector_index("vector-ivf", numLists=100)])
    with pytest.raises(VectorIndexConflict, match="kind: 'vector-ivf'"):
        make_store()


def test_other_create_errors_surface_unchanged(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer("db", "command:createIndexes", {"ok": 1.0}, _failure("bad spec", code=67))
    with pytest.raises(OperationFailure, match="bad spec"):
        make_store()


def test_start_waits_until_the_vector_index_answers(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer(COLL, "aggregate", _failure(NOT_READY), _failure(NOT_READY), [])
    make_store(index_wait_seconds=30)
    assert len(db.calls_to(COLL, "aggregate")) == 3


def test_start_stops_waiting_after_the_bound_with_a_warning(
    make_store: Callable[..., AzureDocumentDBVectorStore],
    db: FakeDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db.answer(COLL, "aggregate", _failure(NOT_READY), _failure(NOT_READY))
    with caplog.at_level(logging.WARNING):
        make_store(index_wait_seconds=0)
    assert len(db.calls_to(COLL, "aggregate")) == 1
    assert "not usable" in caplog.text


def test_unreachable_server_at_start_is_store_unavailable(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    db.answer("db", "list_collection_names", ServerSelectionTimeoutError("no servers"))
    with pytest.raises(StoreUnavailable) as raised:
        make_store()
    assert isinstance(raised.value.__cause__, ServerSelectionTimeoutError)


def test_uri_password_is_never_logged_and_an_owned_client_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri = "mongodb://maas:s3cr3t-pw@127.0.0.1:9/"  # nothing listens on port 9
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreUnavailable):
        AzureDocumentDBVectorStore(
            mongo_uri=uri, embedding_model_dims=3, server_selection_timeout_ms=100
        )
    assert "s3cr3t-pw" not in caplog.text
    assert "maas:***@127.0.0.1:9" in caplog.text


# ---- search ------------------------------------------------------------------------------------


def test_scoped_search_sends_prefilter_and_returns_hits_best_first(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(
        COLL,
        "aggregate",
        [
            {"_id": "b", "score": 0.7, "payload": {"data": "B"}},
            {"_id": "a", "score": 0.9, "payload": {"data": "A"}},
        ],
    )
    hits = store.search("q", [0.5, 0.5, 0.0], top_k=2, filters={"user_id": "u1"})
    assert hits == [
        VectorHit(id="a", payload={"data": "A"}, score=0.9),
        VectorHit(id="b", payload={"data": "B"}, score=0.7),
    ]
    [call] = db.calls_to(COLL, "aggregate")
    assert call.args[0] == [
        {
            "$search": {
                "cosmosSearch": {
                    "vector": [0.5, 0.5, 0.0],
                    "path": "embedding",
                    "k": 2,
                    "filter": {"payload.user_id": {"$eq": "u1"}},
                    "exact": True,
                    "lSearch": 40,
                }
            }
        },
        {"$project": {"score": {"$meta": "searchScore"}, "payload": 1}},
    ]


def test_search_with_unindexed_filter_overfetches_and_trims(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    answer = [{"_id": f"m{i}", "score": 1 - i / 100, "payload": {}} for i in range(10)]
    db.answer(COLL, "aggregate", answer)
    hits = store.search("q", [1, 0, 0], top_k=3, filters={"user_id": "u1", "mood": "calm"})
    assert [hit.id for hit in hits] == ["m0", "m1", "m2"]
    pipeline = db.calls_to(COLL, "aggregate")[0].args[0]
    assert pipeline[0]["$search"]["cosmosSearch"]["k"] == 100
    assert pipeline[0]["$search"]["cosmosSearch"]["filter"] == {"payload.user_id": {"$eq": "u1"}}
    assert pipeline[2] == {"$match": {"payload.mood": {"$eq": "calm"}}}


FILTERED = {"tenant": "t1", "user_id": "u1", "metadata.topic": "rare"}
WHOLE = {
    "$and": [
        {"payload.tenant": {"$eq": "t1"}},
        {"payload.user_id": {"$eq": "u1"}},
        {"payload.metadata.topic": {"$eq": "rare"}},
    ]
}


def test_too_few_hits_after_the_match_rank_the_whole_filters_matches_here(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "aggregate", [{"_id": "m3", "score": 0.2, "payload": {"d": 3}}])
    db.answer(
        COLL,
        "find",
        [{"_id": "m1"}, {"_id": "m2"}, {"_id": "m3"}],
        [
            {"_id": "m1", "embedding": [0.0, 1.0, 0.0], "payload": {"d": 1}},
            {"_id": "m2", "embedding": [2.0, 2.0, 0.0], "payload": {"d": 2}},
            {"_id": "m3", "embedding": [-1.0, 0.0, 0.0], "payload": {"d": 3}},
        ],
    )
    hits = store.search("q", [1, 0, 0], top_k=2, filters=FILTERED)
    assert [(h.id, h.payload) for h in hits] == [("m2", {"d": 2}), ("m1", {"d": 1})]
    assert [h.score for h in hits] == [pytest.approx(2**-0.5), pytest.approx(0.0)]
    assert [(c.target, c.method) for c in db.calls] == [
        (COLL, "aggregate"),
        (COLL, "find"),
        (COLL, "find"),
    ]
    search, ids, vectors = db.calls
    assert search.args[0][0]["$search"]["cosmosSearch"]["filter"] == {
        "$and": [{"payload.tenant": {"$eq": "t1"}}, {"payload.user_id": {"$eq": "u1"}}]
    }
    assert search.args[0][2] == {"$match": {"payload.metadata.topic": {"$eq": "rare"}}}
    assert ids.args == (WHOLE, {"_id": 1})
    assert ids.kwargs == {"limit": 1001}
    assert vectors.args == (
        {"$and": [WHOLE, {"_id": {"$in": ["m1", "m2", "m3"]}}]},
        {"embedding": 1, "payload": 1},
    )
    assert vectors.kwargs == {"limit": 0}


def test_when_every_match_is_among_the_hits_no_vectors_are_read(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "aggregate", [{"_id": "m1", "score": 0.5, "payload": {}}])
    db.answer(COLL, "find", [{"_id": "m1"}])
    assert [h.id for h in store.search("q", [1, 0, 0], top_k=5, filters=FILTERED)] == ["m1"]
    assert len(db.calls_to(COLL, "find")) == 1


def test_more_matches_than_the_bound_widen_k_until_top_k_are_found(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    store = make_store(exact_rank_max=3)
    db.calls.clear()
    hit = {"_id": "m", "score": 0.5, "payload": {}}
    db.answer(COLL, "aggregate", [], [hit], [hit, {**hit, "_id": "n"}])
    db.answer(COLL, "find", [{"_id": f"m{i}"} for i in range(4)])
    hits = store.search("q", [1, 0, 0], top_k=2, filters=FILTERED)
    assert [h.id for h in hits] == ["m", "n"]
    ks = [c.args[0][0]["$search"]["cosmosSearch"]["k"] for c in db.calls_to(COLL, "aggregate")]
    assert ks == [100, 200, 400]
    [find] = db.calls_to(COLL, "find")
    assert find.kwargs == {"limit": 4}


def test_declared_metadata_keys_are_indexed_at_start_and_prefiltered(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    store = make_store(indexed_metadata_keys=["topic"])
    ordinary = db.commands("createIndexes")[0]["indexes"]
    assert {"name": "payload.metadata.topic_1", "key": {"payload.metadata.topic": 1}} in ordinary
    db.calls.clear()
    store.search("q", [1, 0, 0], top_k=4, filters=FILTERED)
    [call] = db.calls  # one search, nothing after it
    cosmos = call.args[0][0]["$search"]["cosmosSearch"]
    assert cosmos["filter"] == WHOLE
    assert cosmos["k"] == 4
    assert len(call.args[0]) == 2


@pytest.mark.parametrize("key", ["", "a.b", "$where", "x" * 65, "sp ace"])
def test_declared_metadata_keys_must_be_metadata_keys(key: str) -> None:
    with pytest.raises(ValueError, match="metadata key"):
        AzureDocumentDBConfig(
            embedding_model_dims=3, mongo_uri="mongodb://h", indexed_metadata_keys=[key]
        )


def test_approximate_search_when_exact_is_off(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    make_store(exact_search=False, index_type="hnsw").search("q", [1, 0, 0], top_k=4)
    cosmos = db.calls_to(COLL, "aggregate")[-1].args[0][0]["$search"]["cosmosSearch"]
    assert cosmos["exact"] is False
    assert cosmos["efSearch"] == 40


def test_search_retries_index_not_found_then_answers(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(
        COLL,
        "aggregate",
        _failure(NOT_READY),
        _failure(NOT_READY),
        [{"_id": "a", "score": 0.5, "payload": {}}],
    )
    assert [hit.id for hit in store.search("q", [1, 0, 0])] == ["a"]
    assert len(db.calls_to(COLL, "aggregate")) == 3


def test_search_gives_up_on_a_missing_index_as_unavailable(
    make_store: Callable[..., AzureDocumentDBVectorStore], db: FakeDatabase
) -> None:
    store = make_store(search_retry_attempts=3)
    db.calls.clear()
    db.answer(COLL, "aggregate", *[_failure(NOT_READY)] * 3)
    with pytest.raises(StoreUnavailable, match="not ready") as raised:
        store.search("q", [1, 0, 0])
    assert isinstance(raised.value.__cause__, OperationFailure)
    assert len(db.calls_to(COLL, "aggregate")) == 3


def test_other_search_errors_surface_without_retry(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "aggregate", _failure("The index for filter path 'x' was not found"))
    with pytest.raises(OperationFailure, match="filter path"):
        store.search("q", [1, 0, 0])
    assert len(db.calls_to(COLL, "aggregate")) == 1


def test_bad_filter_is_a_value_error_and_sends_nothing(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    with pytest.raises(ValueError, match="unsupported filter operator"):
        store.search("q", [1, 0, 0], filters={"user_id": {"regex": ".*"}})
    assert db.calls == []


def test_vector_of_the_wrong_length_is_refused(store: AzureDocumentDBVectorStore) -> None:
    with pytest.raises(ValueError, match="2 dimensions"):
        store.search("q", [1, 0])
    with pytest.raises(ValueError, match="4 dimensions"):
        store.insert([[1, 0, 0, 0]], ids=["m1"])


# ---- writes and reads --------------------------------------------------------------------------


def test_insert_sends_one_document_per_memory(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    store.insert([[1, 0, 0], [0, 1, 0]], payloads=[{"data": "x"}, None], ids=["m1", "m2"])
    [call] = db.calls_to(COLL, "insert_many")
    assert call.args[0] == [
        {"_id": "m1", "embedding": [1.0, 0.0, 0.0], "payload": {"data": "x"}},
        {"_id": "m2", "embedding": [0.0, 1.0, 0.0], "payload": {}},
    ]
    assert call.kwargs == {"ordered": False}


def test_insert_failures_are_reported_with_their_ids(
    store: AzureDocumentDBVectorStore, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    error = BulkWriteError(
        {"writeErrors": [{"index": 1, "code": 11000, "errmsg": "E11000 duplicate key"}]}
    )
    db.answer(COLL, "insert_many", error)
    with pytest.raises(BulkWriteError):
        store.insert([[1, 0, 0], [0, 1, 0]], ids=["m1", "m2"])
    assert "'m2'" in caplog.text
    assert "duplicate key" in caplog.text


def test_update_replaces_the_whole_payload(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    store.update("m1", vector=[0, 0, 1], payload={"data": "new"})
    store.update("m2", payload={"data": "only payload"})
    store.update("m3")  # nothing to change: nothing sent
    assert [c.args for c in db.calls_to(COLL, "update_one")] == [
        ({"_id": "m1"}, {"$set": {"embedding": [0.0, 0.0, 1.0], "payload": {"data": "new"}}}),
        ({"_id": "m2"}, {"$set": {"payload": {"data": "only payload"}}}),
    ]


def test_get_delete_and_delete_many(store: AzureDocumentDBVectorStore, db: FakeDatabase) -> None:
    db.answer(COLL, "find_one", {"_id": "m1", "payload": {"data": "x"}}, None)
    db.answer(COLL, "delete_many", type("R", (), {"deleted_count": 2})())
    assert store.get("m1") == VectorHit(id="m1", payload={"data": "x"}, score=None)
    assert store.get("nope") is None
    store.delete("m1")
    assert store.delete_many(["m1", "m2", "m3"]) == 2
    assert store.delete_many([]) == 0
    assert db.calls_to(COLL, "find_one")[0].args == ({"_id": "m1"}, {"payload": 1})
    assert db.calls_to(COLL, "delete_one")[0].args == ({"_id": "m1"},)
    assert db.calls_to(COLL, "delete_many")[0].args == ({"_id": {"$in": ["m1", "m2", "m3"]}},)


def test_list_wraps_one_list_newest_first(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "find", [{"_id": "m2", "payload": {"a": 1}}, {"_id": "m1", "payload": {}}])
    assert store.list(filters={"user_id": "u1"}, top_k=50) == [
        [VectorHit(id="m2", payload={"a": 1}), VectorHit(id="m1", payload={})]
    ]
    [call] = db.calls_to(COLL, "find")
    assert call.args == ({"payload.user_id": {"$eq": "u1"}}, {"payload": 1})
    assert call.kwargs == {"sort": [("payload.created_at", -1), ("_id", -1)], "limit": 50}


def test_page_after_a_cursor(store: AzureDocumentDBVectorStore, db: FakeDatabase) -> None:
    store.page({"tenant": "t1"}, limit=20, after=("2025-05-01T10:00:00+00:00", "m7"))
    store.page(None, limit=20)
    first, second = db.calls_to(COLL, "find")
    assert first.args[0] == {
        "$and": [
            {"payload.tenant": {"$eq": "t1"}},
            {
                "$or": [
                    {"payload.created_at": {"$lt": "2025-05-01T10:00:00+00:00"}},
                    {"payload.created_at": "2025-05-01T10:00:00+00:00", "_id": {"$lt": "m7"}},
                ]
            },
        ]
    }
    assert first.kwargs == {"sort": [("payload.created_at", -1), ("_id", -1)], "limit": 20}
    assert second.args[0] == {}


def test_collection_housekeeping(store: AzureDocumentDBVectorStore, db: FakeDatabase) -> None:
    db.answer("db", "command:collStats", {"count": 4, "size": 1024, "ok": 1.0})
    db.answer("db", "list_collection_names", [COLL, "memories_history"])
    assert store.col_info() == {"name": COLL, "count": 4, "size": 1024}
    assert store.list_cols() == [COLL, "memories_history"]
    store.reset()
    assert db.commands("collStats") == [{"collStats": COLL}]
    assert (COLL, "drop") in [(c.target, c.method) for c in db.calls]
    assert db.commands("create") == [{"create": COLL}]  # created again after the drop


# ---- conditional writes (the service's updates, deletes and expiry sweep) ---------------------

LIVE = Live("m1", "t1", 1000.0)
LIVE_FILTER = {"_id": "m1", "payload.tenant": "t1", "payload.expires_at": {"$gt": 1000.0}}
STORED = {
    "_id": "m1",
    "payload": {"data": "old", "tenant": "t1", "created_at": "2025-01-01T00:00:00+00:00"},
}


class History:
    """Records the history rows written; raises `error` instead when set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self.error = error

    def batch_add_history(self, records: list[dict[str, Any]]) -> None:
        if self.error is not None:
            raise self.error
        self.rows.extend(records)


def test_an_update_is_one_conditional_find_one_and_update_and_history_follows(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "find_one_and_update", copy.deepcopy(STORED))
    history = History()

    change = store.update_live(
        LIVE, Edit({"data": "new", "metadata": {"v": 2}}, vector=[0, 0, 1]), history
    )

    [call] = db.calls_to(COLL, "find_one_and_update")
    query, update = call.args
    assert query == LIVE_FILTER
    at = update["$set"]["payload.updated_at"]
    assert update == {
        "$set": {
            "payload.data": "new",
            "payload.metadata": {"v": 2},
            "payload.updated_at": at,
            "embedding": [0.0, 0.0, 1.0],
        }
    }
    assert call.kwargs == {"projection": {"payload": 1}, "return_document": ReturnDocument.BEFORE}
    assert change == MemoryChange(
        "m1",
        STORED["payload"],
        {**STORED["payload"], "data": "new", "metadata": {"v": 2}, "updated_at": at},
        at,
    )
    assert [
        (r["event"], r["old_memory"], r["new_memory"], r["updated_at"]) for r in history.rows
    ] == [("UPDATE", "old", "new", at)]


def test_an_update_that_matches_nothing_changes_nothing_and_records_nothing(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    history = History()
    assert store.update_live(LIVE, Edit({"metadata": {}}), history) is None
    assert [(c.target, c.method) for c in db.calls] == [(COLL, "find_one_and_update")]
    assert "embedding" not in db.calls[0].args[1]["$set"]
    assert history.rows == []


def test_a_delete_is_one_conditional_find_one_and_delete_and_history_follows(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "find_one_and_delete", copy.deepcopy(STORED), None)
    history = History()

    change = store.delete_live(LIVE, history)
    again = store.delete_live(LIVE, history)

    assert [c.args for c in db.calls_to(COLL, "find_one_and_delete")] == [(LIVE_FILTER,)] * 2
    assert db.calls[0].kwargs == {"projection": {"payload": 1}}
    assert change is not None
    assert (change.before, change.after) == (STORED["payload"], None)
    assert again is None
    assert [(r["event"], r["old_memory"], r["is_deleted"]) for r in history.rows] == [
        ("DELETE", "old", 1)
    ]


def test_the_expiry_sweep_deletes_each_expired_memory_conditionally(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    expired = {"payload.tenant": "t1", "payload.expires_at": {"$lte": 1000.0}}
    db.answer(COLL, "find", [{"_id": "m1"}, {"_id": "m2"}])
    # m2 went meanwhile (another sweep, a delete, or an update that extended its TTL).
    db.answer(COLL, "find_one_and_delete", copy.deepcopy(STORED), None)
    history = History()

    sweep = store.delete_expired("t1", 1000.0, 2, history)

    [find] = db.calls_to(COLL, "find")
    assert find.args == (expired, {"_id": 1})
    assert find.kwargs == {"limit": 2}
    assert [c.args for c in db.calls_to(COLL, "find_one_and_delete")] == [
        ({"_id": "m1", **expired},),
        ({"_id": "m2", **expired},),
    ]
    assert [c.id for c in sweep.changes] == ["m1"]
    assert sweep.more  # the page was full
    assert [(r["memory_id"], r["event"]) for r in history.rows] == [("m1", "DELETE")]
    assert store.delete_expired("t1", 1000.0, 2, history) == Sweep([], more=False)


def test_a_sweep_cut_short_by_an_outage_reports_what_it_deleted(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "find", [{"_id": "m1"}, {"_id": "m2"}, {"_id": "m3"}])
    db.answer(COLL, "find_one_and_delete", copy.deepcopy(STORED), AutoReconnect("reset"))
    history = History()

    sweep = store.delete_expired("t1", 1000.0, 10, history)

    assert ([c.id for c in sweep.changes], sweep.more) == (["m1"], True)
    assert [r["memory_id"] for r in history.rows] == ["m1"]
    db.answer(COLL, "find", AutoReconnect("still down"))
    with pytest.raises(StoreUnavailable):
        store.delete_expired("t1", 1000.0, 10, history)


def test_a_change_whose_history_cannot_be_written_still_stands(
    store: AzureDocumentDBVectorStore, db: FakeDatabase
) -> None:
    db.answer(COLL, "find_one_and_delete", copy.deepcopy(STORED))
    outage = StoreUnavailable("history down")
    with pytest.raises(HistoryNotRecorded) as raised:
        store.delete_live(LIVE, History(outage))
    assert raised.value.__cause__ is outage
    assert isinstance(raised.value.result, MemoryChange)
    assert raised.value.changes == [raised.value.result]


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("no servers"),
        AutoReconnect("connection reset"),
        NetworkTimeout("timed out"),
        ExecutionTimeout("operation exceeded time limit", 50),
        WriteConcernError("waiting for replication timed out", 64),
        OperationFailure("interrupted at shutdown", 11600),
    ],
)
@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("aggregate", lambda s: s.search("q", [1, 0, 0])),
        ("find", lambda s: s.search("q", [1, 0, 0], filters={"metadata.topic": "x"})),
        ("find", lambda s: s.list()),
        ("find", lambda s: s.page(None, 10)),
        ("find_one", lambda s: s.get("m1")),
        ("insert_many", lambda s: s.insert([[1, 0, 0]], ids=["m1"])),
        ("update_one", lambda s: s.update("m1", payload={})),
        ("delete_one", lambda s: s.delete("m1")),
        ("delete_many", lambda s: s.delete_many(["m1"])),
        ("find_one_and_update", lambda s: s.update_live(LIVE, Edit({}), History())),
        ("find_one_and_delete", lambda s: s.delete_live(LIVE, History())),
        ("find", lambda s: s.delete_expired("t1", 1000.0, 10, History())),
    ],
)
def test_outages_are_store_unavailable(
    store: AzureDocumentDBVectorStore,
    db: FakeDatabase,
    error: Exception,
    method: str,
    call: Callable[[AzureDocumentDBVectorStore], Any],
) -> None:
    db.answer(COLL, method, error)
    with pytest.raises(StoreUnavailable) as raised:
        call(store)
    assert raised.value.__cause__ is error


# ---- mem0 integration --------------------------------------------------------------------------


def test_is_a_complete_mem0_vector_store(store: AzureDocumentDBVectorStore) -> None:
    assert isinstance(store, VectorStoreBase)
    assert not getattr(AzureDocumentDBVectorStore, "__abstractmethods__", None)


def test_builds_from_its_config_the_way_mem0_does(client: FakeClient, db: FakeDatabase) -> None:
    config = AzureDocumentDBConfig(
        client=client, embedding_model_dims=3, index_wait_seconds=0, retry_delay_seconds=0
    )
    store = AzureDocumentDBVectorStore(**config.model_dump())
    assert store.client is client
    entity_config = copy.deepcopy(config)  # what mem0 does for its entity store
    entity_config.collection_name = "memories_entities"
    assert entity_config.client is client
    assert config.collection_name == COLL
    AzureDocumentDBVectorStore(**entity_config.model_dump())
    assert db.commands("create") == [{"create": COLL}, {"create": "memories_entities"}]
    store.close()
    assert not client.closed  # a shared client stays open


def test_config_needs_a_uri_or_a_client_and_hides_the_uri() -> None:
    with pytest.raises(ValueError, match="mongo_uri is required"):
        AzureDocumentDBConfig(embedding_model_dims=3)
    with pytest.raises(ValueError, match="between"):
        AzureDocumentDBConfig(embedding_model_dims=3, mongo_uri="mongodb://h", hnsw_m=1)
    config = AzureDocumentDBConfig(embedding_model_dims=3, mongo_uri="mongodb://u:pw@h/")
    assert "pw" not in repr(config)
    with pytest.raises(ValueError, match="Extra inputs"):
        AzureDocumentDBConfig(embedding_model_dims=3, mongo_uri="mongodb://h", colection="x")
