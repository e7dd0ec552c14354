"""The embedded vector store and history store, on a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stores.embedded_vectors import EmbeddedVectorStore
from stores.memory_changes import Edit, Live
from stores.sqlite_history import SQLiteHistoryStore

DIMS = 8


def unit(*values: float) -> list[float]:
    vector = np.zeros(DIMS, dtype=np.float32)
    vector[: len(values)] = values
    return (vector / np.linalg.norm(vector)).tolist()


def payload(user: str, created_at: str, **extra: object) -> dict[str, object]:
    return {
        "tenant": "t1",
        "user_id": f"t1/{user}",
        "created_at": created_at,
        "expires_at": 1e12,
        "category": "fact",
        "data": f"memory of {user}",
        **extra,
    }


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedVectorStore:
    built = EmbeddedVectorStore("memories", DIMS, str(tmp_path / "ltm.sqlite3"))
    yield built
    built.close()


def test_a_users_search_ranks_all_their_memories_however_many_closer_ones_others_hold(
    store: EmbeddedVectorStore,
) -> None:
    query = unit(1, 0)
    crowd = 3000
    store.insert(
        [unit(1, 0.001 * i) for i in range(crowd)],
        [payload("bob", f"2026-01-01T00:00:{i % 60:02d}") for i in range(crowd)],
        [f"bob-{i}" for i in range(crowd)],
    )
    store.insert([unit(0.2, 1)], [payload("alice", "2026-01-01T00:00:00")], ["alice-1"])

    hits = store.search("q", query, top_k=5, filters={"user_id": "t1/alice", "tenant": "t1"})

    assert [h.id for h in hits] == ["alice-1"]
    assert hits[0].payload["user_id"] == "t1/alice"
    assert 0 < hits[0].score < 0.5


def test_search_orders_by_cosine_similarity_and_applies_every_filter(
    store: EmbeddedVectorStore,
) -> None:
    store.insert(
        [unit(1, 0), unit(1, 1), unit(0, 1), unit(1, 0.1)],
        [
            payload("a", "1", metadata={"topic": "travel"}),
            payload("a", "2", metadata={"topic": "travel"}),
            payload("a", "3", metadata={"topic": "food"}),
            payload("a", "4", metadata={"topic": "travel"}, expires_at=10.0),
        ],
        ["m1", "m2", "m3", "m4"],
    )
    scope = {"user_id": "t1/a", "tenant": "t1"}

    ranked = store.search("q", unit(1, 0), top_k=10, filters=scope)
    assert [h.id for h in ranked] == ["m1", "m4", "m2", "m3"]
    assert ranked[0].score == pytest.approx(1.0, abs=1e-6)

    filtered = store.search(
        "q",
        unit(1, 0),
        top_k=10,
        filters={**scope, "metadata.topic": "travel", "expires_at": {"gt": 100.0}},
    )
    assert [h.id for h in filtered] == ["m1", "m2"]
    assert store.search("q", unit(1, 0), top_k=10, filters={**scope, "tenant": "t2"}) == []


def test_pages_are_exact_when_many_memories_share_a_timestamp(
    store: EmbeddedVectorStore,
) -> None:
    ids = [f"m{i:03d}" for i in range(25)]
    store.insert(
        [unit(1, i) for i in range(25)],
        [
            payload("a", "2026-01-01T00:00:00" if i < 20 else f"2026-01-02T00:00:{i}")
            for i in range(25)
        ],
        ids,
    )
    seen: list[str] = []
    after = None
    while True:
        page = store.page({"tenant": "t1"}, 7, after)
        seen.extend(h.id for h in page)
        if len(page) < 7:
            break
        after = (page[-1].payload["created_at"], page[-1].id)

    expected = sorted(ids[20:], reverse=True) + sorted(ids[:20], reverse=True)
    assert seen == expected


def test_update_delete_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "ltm.sqlite3")
    store = EmbeddedVectorStore("memories", DIMS, path)
    store.insert([unit(1, 0), unit(0, 1)], [payload("a", "1"), payload("a", "2")], ["m1", "m2"])
    store.update("m1", vector=unit(0, 1), payload={**payload("a", "1"), "data": "changed"})
    assert store.delete_many(["m2", "missing"]) == 1
    store.close()

    reopened = EmbeddedVectorStore("memories", DIMS, path)
    try:
        assert reopened.get("m2") is None
        memory = reopened.get("m1")
        assert memory is not None
        assert memory.payload["data"] == "changed"
        (hit,) = reopened.search("q", unit(0, 1), top_k=1, filters={"tenant": "t1"})
        assert hit.id == "m1"
        assert hit.score == pytest.approx(1.0, abs=1e-6)
    finally:
        reopened.close()


def test_a_store_refuses_vectors_of_another_size(tmp_path: Path) -> None:
    path = str(tmp_path / "ltm.sqlite3")
    EmbeddedVectorStore("memories", DIMS, path).close()
    with pytest.raises(ValueError, match="holds 8-dimensional vectors but the embedder gives 16"):
        EmbeddedVectorStore("memories", 16, path)


def test_concurrent_writers_never_fail_on_the_database_lock(tmp_path: Path) -> None:
    path = tmp_path / "ltm.sqlite3"
    vectors = EmbeddedVectorStore("memories", DIMS, str(path))
    history = SQLiteHistoryStore(path)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                memory_id = f"w{n}-{i}"
                vectors.insert([unit(1, i)], [payload("a", str(i))], [memory_id])
                history.add_history(memory_id, None, "text", "ADD")
                history.save_messages([{"role": "user", "content": "hi"}], f"scope-{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert vectors.col_info()["count"] == 16 * 20
    assert len(history.get_histories([f"w{n}-0" for n in range(16)])) == 16
    vectors.close()
    history.close()


def test_history_keeps_order_and_reads_many_memories_at_once(tmp_path: Path) -> None:
    history = SQLiteHistoryStore(tmp_path / "ltm.sqlite3")
    try:
        same_time = "2026-01-01T00:00:00+00:00"
        history.add_history("m1", None, "a", "ADD", created_at=same_time)
        history.add_history("m2", None, "x", "ADD", created_at=same_time)
        history.add_history("m1", "a", "b", "UPDATE", created_at=same_time, updated_at=same_time)
        history.add_history("m1", "b", None, "DELETE", created_at=same_time, is_deleted=1)

        both = history.get_histories(["m1", "m2", "unknown"])
        assert [(r["event"], r["old_memory"], r["new_memory"]) for r in both["m1"]] == [
            ("ADD", None, "a"),
            ("UPDATE", "a", "b"),
            ("DELETE", "b", None),
        ]
        assert both["m1"][2]["is_deleted"] is True
        assert [r["new_memory"] for r in both["m2"]] == ["x"]
        assert "unknown" not in both
        assert history.get_history("m1") == both["m1"]

        for i in range(15):
            history.save_messages([{"role": "user", "content": f"msg {i}"}], "scope")
        last = history.get_last_messages("scope", limit=10)
        assert [m["content"] for m in last] == [f"msg {i}" for i in range(5, 15)]
    finally:
        history.close()


# ---- conditional writes: the store decides, in one transaction with the history row ---------


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[EmbeddedVectorStore, SQLiteHistoryStore]]:
    """The vector store and history store on one file, as the app wires them."""
    path = tmp_path / "ltm.sqlite3"
    vectors, history = EmbeddedVectorStore("memories", DIMS, str(path)), SQLiteHistoryStore(path)
    yield vectors, history
    vectors.close()
    history.close()


def test_updates_and_deletes_apply_only_to_a_live_memory_of_the_tenant(
    shared: tuple[EmbeddedVectorStore, SQLiteHistoryStore],
) -> None:
    vectors, history = shared
    vectors.insert([unit(1, 0)], [payload("a", "1", expires_at=2000.0)], ["m1"])

    assert vectors.update_live(Live("m1", "t2", 1000.0), Edit({"data": "x"}), history) is None
    assert vectors.update_live(Live("m1", "t1", 2000.0), Edit({"data": "x"}), history) is None
    assert vectors.delete_live(Live("m1", "t2", 1000.0), history) is None
    assert vectors.delete_live(Live("nope", "t1", 1000.0), history) is None

    change = vectors.update_live(
        Live("m1", "t1", 1000.0), Edit({"data": "new", "expires_at": 3000.0}, unit(0, 1)), history
    )
    assert change is not None
    assert (change.before["data"], change.after) == (
        "memory of a",
        {**change.before, "data": "new", "expires_at": 3000.0, "updated_at": change.at},
    )
    stored = vectors.get("m1")
    assert stored is not None
    assert stored.payload == change.after
    (hit,) = vectors.search("q", unit(0, 1), top_k=1, filters={"expires_at": {"gt": 2500.0}})
    assert hit.score == pytest.approx(1.0, abs=1e-6)  # the vector changed with the text

    deleted = vectors.delete_live(Live("m1", "t1", 2500.0), history)
    assert deleted is not None
    assert (deleted.before, deleted.after) == (change.after, None)
    assert vectors.get("m1") is None
    assert [(r["event"], r["old_memory"], r["new_memory"]) for r in history.get_history("m1")] == [
        ("UPDATE", "memory of a", "new"),
        ("DELETE", "new", None),
    ]


def test_a_change_and_its_history_row_commit_together_or_not_at_all(
    shared: tuple[EmbeddedVectorStore, SQLiteHistoryStore],
) -> None:
    vectors, history = shared
    vectors.insert([unit(1, 0)], [payload("a", "1")], ["m1"])
    with history.file.write() as db:
        db.execute("ALTER TABLE history RENAME TO history_away")

    with pytest.raises(sqlite3.OperationalError, match="no such table: history"):
        vectors.update_live(Live("m1", "t1", 0.0), Edit({"data": "lost"}), history)
    with pytest.raises(sqlite3.OperationalError, match="no such table: history"):
        vectors.delete_live(Live("m1", "t1", 0.0), history)

    stored = vectors.get("m1")
    assert stored is not None
    assert stored.payload["data"] == "memory of a"


def test_the_expiry_sweep_takes_expired_memories_a_page_at_a_time(
    shared: tuple[EmbeddedVectorStore, SQLiteHistoryStore],
) -> None:
    vectors, history = shared
    expiries = [100.0, 200.0, 300.0, 5000.0]
    vectors.insert(
        [unit(1, i) for i in range(4)],
        [payload("a", str(i), expires_at=e) for i, e in enumerate(expiries)],
        [f"m{i}" for i in range(4)],
    )

    first = vectors.delete_expired("t1", 300.0, 2, history)
    second = vectors.delete_expired("t1", 300.0, 2, history)

    assert (len(first.changes), first.more) == (2, True)
    assert (len(second.changes), second.more) == (1, False)
    gone = {c.id for c in first.changes + second.changes}
    assert gone == {"m0", "m1", "m2"}
    assert vectors.delete_expired("t2", 300.0, 2, history).changes == []
    assert [h.id for h in vectors.page({"tenant": "t1"}, 10)] == ["m3"]
    assert all(
        [r["event"] for r in history.get_history(memory_id)] == ["DELETE"] for memory_id in gone
    )


def test_of_concurrent_deletes_from_two_stores_on_one_file_exactly_one_succeeds(
    tmp_path: Path,
) -> None:
    """Two store instances (as in two server processes) and 8 threads race for each memory."""
    path = tmp_path / "ltm.sqlite3"
    stores = [EmbeddedVectorStore("memories", DIMS, str(path)) for _ in range(2)]
    history = SQLiteHistoryStore(path)
    ids = [f"m{i}" for i in range(25)]
    stores[0].insert([unit(1, i) for i in range(25)], [payload("a", "1")] * 25, ids)
    wins: list[str] = []
    start = threading.Barrier(8)

    def racer(n: int) -> None:
        start.wait()
        for memory_id in ids:
            if stores[n % 2].delete_live(Live(memory_id, "t1", 0.0), history) is not None:
                wins.append(memory_id)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(wins) == sorted(ids)
    histories = history.get_histories(ids)
    assert all([r["event"] for r in histories[memory_id]] == ["DELETE"] for memory_id in ids)
    for store in stores:
        store.close()
    history.close()
