"""The DocumentDB stores against a real server: DocumentDB Local in a container (testcontainers),
or the server named by MAAS_TEST_DOCUMENTDB_URI (e.g. an Azure DocumentDB cluster).

Without either, the module is skipped with the reason shown: no MongoDB-compatible engine can run
on machines without a Docker engine.
"""

from __future__ import annotations

import gc
import math
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from stores.documentdb_vectors import AzureDocumentDBVectorStore
from stores.memory_changes import Edit, Live
from stores.mongo_history import MongoHistoryStore
from tests.support.patience import patience

URI_ENV = "MAAS_TEST_DOCUMENTDB_URI"
IMAGE = "ghcr.io/documentdb/documentdb/documentdb-local:latest"
PORT = 10260
USER, PASSWORD = "maas", "maas-test-password"
DIMS = 8


def _docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers docker.from_env().ping(); otherwise why not."""
    reason = (
        "no Docker engine is available ({}); DocumentDB Local cannot run here. "
        f"Set {URI_ENV} to run these tests against an existing DocumentDB server."
    )
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return reason.format(f"no socket at {host}")
    # docker-py leaves the socket of a failed connection unclosed: keep that out of the run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env()
            try:
                client.ping()
            finally:
                client.close()
        except Exception as exc:  # any failure means: no engine to run DocumentDB Local
            return reason.format(type(exc).__name__)
        finally:
            gc.collect()
    return None


if not os.environ.get(URI_ENV) and (_reason := _docker_unavailable_reason()):
    pytest.skip(_reason, allow_module_level=True)


def _wait_until_answering(uri: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
                client.admin.command("ping")
            return
        except PyMongoError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="module")
def documentdb_uri() -> Iterator[str]:
    if uri := os.environ.get(URI_ENV):
        yield uri
        return
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(IMAGE)
        .with_exposed_ports(PORT)
        .with_command(["--username", USER, "--password", PASSWORD])
    )
    with container:
        host, port = container.get_container_host_ip(), container.get_exposed_port(PORT)
        uri = (
            f"mongodb://{USER}:{PASSWORD}@{host}:{port}/?tls=true"
            "&tlsAllowInvalidCertificates=true&authMechanism=SCRAM-SHA-256"
        )
        _wait_until_answering(uri, timeout=patience(3))
        yield uri


@pytest.fixture(scope="module")
def mongo(documentdb_uri: str) -> Iterator[MongoClient[Any]]:
    client: MongoClient[Any] = MongoClient(documentdb_uri, serverSelectionTimeoutMS=10000)
    yield client
    client.close()


@pytest.fixture(scope="module")
def db_name(mongo: MongoClient[Any]) -> Iterator[str]:
    name = f"maas_test_{uuid.uuid4().hex[:8]}"
    yield name
    mongo.drop_database(name)


@pytest.fixture
def make_store(
    mongo: MongoClient[Any], db_name: str
) -> Iterator[Callable[..., AzureDocumentDBVectorStore]]:
    """Stores on a fresh collection of this test (same name on every call unless given)."""
    collection = f"memories_{uuid.uuid4().hex[:8]}"
    used: set[str] = set()

    def make(**overrides: Any) -> AzureDocumentDBVectorStore:
        options: dict[str, Any] = {
            "client": mongo,
            "db_name": db_name,
            "collection_name": collection,
            "embedding_model_dims": DIMS,
        }
        options.update(overrides)
        used.add(options["collection_name"])
        return AzureDocumentDBVectorStore(**options)

    yield make
    for name in used:
        mongo[db_name].drop_collection(name)


def _unit(*weights: float) -> list[float]:
    vector = [*weights, *[0.0] * (DIMS - len(weights))]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def _payload(user: str, created_at: str = "2025-01-01T00:00:00+00:00", **extra: Any) -> dict:
    return {
        "tenant": "t1",
        "user_id": user,
        "created_at": created_at,
        "expires_at": 253402300799.0,
        **extra,
    }


def test_start_is_repeatable_and_builds_every_index(
    make_store: Callable[..., AzureDocumentDBVectorStore], mongo: MongoClient[Any], db_name: str
) -> None:
    first = make_store()
    second = make_store()  # a restart: nothing to create, nothing fails
    assert second.index_spec == first.index_spec
    # DocumentDB Local has no DiskANN: the store fell back to HNSW there.
    assert first.index_spec.kind in ("diskann", "hnsw")
    indexes = {ix["name"]: ix for ix in mongo[db_name][first.collection_name].list_indexes()}
    assert {"payload.tenant_1", "payload.user_id_1", "payload.expires_at_1"} <= set(indexes)
    assert any(ix["key"] == {"embedding": "cosmosSearch"} for ix in indexes.values())


def test_users_best_memory_is_found_when_others_have_many_closer_vectors(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store()
    query = _unit(1.0)
    crowd = [_unit(1.0, 0.01 * (i + 1), 0.001 * i) for i in range(300)]
    store.insert(crowd, [_payload("u2") for _ in crowd], [f"u2-{i}" for i in range(300)])
    store.insert(
        [_unit(1.0, 1.0), _unit(0.0, 0.0, 1.0)],
        [_payload("u1", data="best"), _payload("u1", data="far")],
        ["u1-best", "u1-far"],
    )
    hits = store.search("q", query, top_k=2, filters={"tenant": "t1", "user_id": "u1"})
    assert [hit.id for hit in hits] == ["u1-best", "u1-far"]
    scores = [hit.score or 0.0 for hit in hits]
    assert 0.6 < scores[0] <= 1.0
    assert scores[0] > scores[1]


def test_unindexed_filter_is_applied_after_the_search(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store()
    vectors = [_unit(1.0, 0.1 * i) for i in range(6)]
    payloads = [_payload("u1", mood="calm" if i % 2 else "busy") for i in range(6)]
    store.insert(vectors, payloads, [f"m{i}" for i in range(6)])
    hits = store.search("q", _unit(1.0), top_k=2, filters={"user_id": "u1", "mood": "calm"})
    assert [hit.id for hit in hits] == ["m1", "m3"]


def test_keyword_search_is_exact_within_the_scope_and_ranks_rare_words_first(
    make_store: Callable[..., AzureDocumentDBVectorStore], mongo: MongoClient[Any], db_name: str
) -> None:
    store = make_store()
    indexes = list(mongo[db_name][store.collection_name].list_indexes())
    assert any("text" in dict(ix["key"]).values() or "_fts" in ix["key"] for ix in indexes)
    others = [_payload("u2", data=f"Zbigniew Zbigniew recommended {i}") for i in range(300)]
    store.insert([_unit(1.0)] * 300, others, [f"u2-{i}" for i in range(300)])
    mine = [
        _payload("u1", data="Zbigniew brought up the Caldera ridge path", category="travel"),
        _payload("u1", data="Zbigniew likes tea", metadata={"topic": "drinks"}),
        _payload("u1", data="Zbigniew recommends rain", expires_at=1.0),  # expired
        *(_payload("u1", data=f"My friend {i} recommended a mystery novel") for i in range(5)),
    ]
    ids = ["path", "tea", "gone", *(f"novel-{i}" for i in range(5))]
    store.insert([_unit(1.0)] * len(mine), mine, ids)
    live = {"tenant": "t1", "user_id": "u1", "expires_at": {"gt": 1000.0}}

    hits = store.keyword_search("What did Zbigniew recommend?", 10, live)
    assert {hit.id for hit in hits} == set(ids) - {"gone"}  # stems: recommend(s/ed)
    assert {hits[0].id, hits[1].id} == {"path", "tea"}  # the rarer word outranks the other
    assert all((hit.score or 0.0) > 0 for hit in hits)
    only_travel = store.keyword_search("Zbigniew", 5, {**live, "category": "travel"})
    assert [hit.id for hit in only_travel] == ["path"]
    drinks = store.keyword_search("Zbigniew", 5, {**live, "metadata.topic": "drinks"})
    assert [hit.id for hit in drinks] == ["tea"]
    assert store.keyword_search("the and of", 5, live) == []  # stop words only: no words left


def _crowd_and_one_match(store: AzureDocumentDBVectorStore) -> None:
    """2,000 memories of u1 closer to the query than u1's one memory about "rare": more than the
    engine's largest k (1,000)."""
    crowd = [_unit(1.0, 0.001 * (i + 1)) for i in range(2000)]
    payloads = [_payload("u1", metadata={"topic": "common"}) for _ in crowd]
    store.insert(crowd, payloads, [f"near-{i}" for i in range(len(crowd))])
    store.insert([_unit(1.0, 1.0)], [_payload("u1", metadata={"topic": "rare"})], ["the-match"])


SCOPED_TO_RARE = {
    "tenant": "t1",
    "user_id": "u1",
    "expires_at": {"gt": 1_900_000_000.0},
    "metadata.topic": "rare",
}


def test_a_match_on_an_undeclared_metadata_key_behind_2000_closer_memories_is_found(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store()
    _crowd_and_one_match(store)
    hits = store.search("q", _unit(1.0), top_k=60, filters=SCOPED_TO_RARE)  # mem0's k
    assert [hit.id for hit in hits] == ["the-match"]
    assert hits[0].score == pytest.approx(math.cos(math.pi / 4), abs=1e-4)


def test_a_declared_metadata_key_is_indexed_and_prefiltered(
    make_store: Callable[..., AzureDocumentDBVectorStore], mongo: MongoClient[Any], db_name: str
) -> None:
    store = make_store(indexed_metadata_keys=["topic"])
    indexes = {ix["name"] for ix in mongo[db_name][store.collection_name].list_indexes()}
    assert "payload.metadata.topic_1" in indexes
    _crowd_and_one_match(store)
    hits = store.search("q", _unit(1.0), top_k=60, filters=SCOPED_TO_RARE)
    assert [hit.id for hit in hits] == ["the-match"]


def test_the_engine_prefilters_only_on_paths_with_their_own_index(
    make_store: Callable[..., AzureDocumentDBVectorStore], mongo: MongoClient[Any], db_name: str
) -> None:
    """What tests/support/mongo_documents.py assumes of the engine, checked on the engine."""
    store = make_store()
    store.insert([_unit(1.0)], [_payload("u1", metadata={"topic": "rare"})], ["m1"])
    search = {
        "vector": _unit(1.0),
        "path": "embedding",
        "k": 1,
        "exact": True,
        "filter": {"payload.metadata.topic": {"$eq": "rare"}},
    }
    collection = mongo[db_name][store.collection_name]
    with pytest.raises(PyMongoError, match="index for filter path"):
        list(collection.aggregate([{"$search": {"cosmosSearch": search}}]))


def test_get_update_list_and_delete(make_store: Callable[..., AzureDocumentDBVectorStore]) -> None:
    store = make_store()
    store.insert(
        [_unit(1.0), _unit(0.0, 1.0), _unit(0.0, 0.0, 1.0)],
        [_payload("u1", data="a"), _payload("u1", data="b"), _payload("u2", data="c")],
        ["a", "b", "c"],
    )
    store.update("a", payload=_payload("u1", data="a2"))
    got = store.get("a")
    assert got is not None
    assert got.payload["data"] == "a2"
    store.update("b", vector=_unit(1.0))
    assert store.search("q", _unit(1.0), top_k=1, filters={"user_id": "u1"})[0].score == (
        pytest.approx(1.0, abs=1e-6)
    )
    [listed] = store.list(filters={"user_id": "u1"})
    assert sorted(hit.id for hit in listed) == ["a", "b"]
    store.delete("a")
    assert store.get("a") is None
    assert store.delete_many(["b", "c", "missing"]) == 2
    assert store.list() == [[]]


def test_pages_are_exact_with_equal_created_at(
    make_store: Callable[..., AzureDocumentDBVectorStore],
) -> None:
    store = make_store()
    stamps = ["2025-01-01T00:00:00+00:00"] * 4 + ["2025-01-02T00:00:00+00:00"] * 3
    ids = [f"m{i}" for i in range(len(stamps))]
    store.insert([_unit(1.0)] * len(ids), [_payload("u1", s) for s in stamps], ids)
    seen: list[str] = []
    after: tuple[str, str] | None = None
    while page := store.page({"tenant": "t1"}, limit=3, after=after):
        seen.extend(hit.id for hit in page)
        after = (page[-1].payload["created_at"], page[-1].id)
    assert seen == ["m6", "m5", "m4", "m3", "m2", "m1", "m0"]


def test_history_round_trip(mongo: MongoClient[Any], db_name: str) -> None:
    collection = f"memories_{uuid.uuid4().hex[:8]}"
    history = MongoHistoryStore(mongo, db_name, collection)
    try:
        for event in ("ADD", "UPDATE", "DELETE"):  # same timestamps: insertion order decides
            history.add_history("m1", None, event.lower(), event, created_at="2025-01-01")
        history.batch_add_history([{"memory_id": "m2", "new_memory": "x", "event": "ADD"}])
        assert [row["event"] for row in history.get_history("m1")] == ["ADD", "UPDATE", "DELETE"]
        histories = history.get_histories(["m1", "m2", "m3"])
        assert [len(histories[m]) for m in ("m1", "m2", "m3")] == [3, 1, 0]
        history.save_messages([{"role": "user", "content": str(i)} for i in range(7)], "s1")
        history.save_messages([{"role": "user", "content": str(i)} for i in range(7, 12)], "s1")
        last = history.get_last_messages("s1", limit=10)
        assert [m["content"] for m in last] == [str(i) for i in range(2, 12)]
        assert mongo[db_name][f"{collection}_messages"].count_documents({}) == 10
    finally:
        history.reset()
        mongo[db_name].drop_collection(f"{collection}_history")
        mongo[db_name].drop_collection(f"{collection}_messages")


def test_concurrent_writers_on_one_memory_are_decided_by_the_server(
    make_store: Callable[..., AzureDocumentDBVectorStore],
    mongo: MongoClient[Any],
    db_name: str,
    documentdb_uri: str,
) -> None:
    """8 threads on two clients race to update and delete each memory: exactly one delete
    wins, an update lands before it or not at all, and history records each change once."""
    first = make_store()
    second = make_store(client=MongoClient(documentdb_uri, serverSelectionTimeoutMS=10000))
    history = MongoHistoryStore(mongo, db_name, first.collection_name)
    ids = [f"race-{i}" for i in range(20)]
    first.insert([_unit(1.0)] * len(ids), [_payload("u1", data="v0") for _ in ids], ids)
    deletes: list[str] = []
    updates: list[str] = []
    start = threading.Barrier(8)

    def racer(n: int) -> None:
        store = (first, second)[n % 2]
        start.wait()
        for memory_id in ids:
            target = Live(memory_id, "t1", time.time())
            if n % 4 == 0:
                if store.update_live(target, Edit({"metadata": {"n": n}}), history):
                    updates.append(memory_id)
            elif store.delete_live(target, history):
                deletes.append(memory_id)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(deletes) == sorted(ids)
        histories = history.get_histories(ids)
        for memory_id in ids:
            events = [row["event"] for row in histories[memory_id]]
            assert events.count("DELETE") == 1
            assert events.count("UPDATE") == updates.count(memory_id)
    finally:
        second.client.close()
        mongo[db_name].drop_collection(f"{first.collection_name}_history")
        mongo[db_name].drop_collection(f"{first.collection_name}_messages")
