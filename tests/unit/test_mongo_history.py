"""MongoHistoryStore against a recording double: the documents and queries it sends, and that it
answers in mem0's SQLiteManager shapes."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from bson import ObjectId
from mem0.memory.storage import SQLiteManager
from pymongo.errors import AutoReconnect

from stores.mongo_history import MongoHistoryStore
from stores.vector_hits import StoreUnavailable
from tests.support.fake_mongo import FakeClient, FakeDatabase

HISTORY = "memories_history"
MESSAGES = "memories_messages"


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def db(client: FakeClient) -> FakeDatabase:
    return client["maas"]


@pytest.fixture
def history(client: FakeClient, db: FakeDatabase) -> MongoHistoryStore:
    store = MongoHistoryStore(client, "maas", "memories")  # type: ignore[arg-type]
    db.calls.clear()
    return store


def _stored(**fields: Any) -> dict[str, Any]:
    """A history document as the store writes it."""
    document = {
        "_id": ObjectId(),
        "id": str(uuid.uuid4()),
        "memory_id": "m1",
        "old_memory": None,
        "new_memory": "likes tea",
        "event": "ADD",
        "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": None,
        "is_deleted": 0,
        "actor_id": None,
        "role": None,
    }
    document.update(fields)
    return document


def test_start_creates_the_indexes_it_reads_with(client: FakeClient, db: FakeDatabase) -> None:
    MongoHistoryStore(client, "maas", "memories")  # type: ignore[arg-type]
    assert db.commands() == [
        {
            "createIndexes": HISTORY,
            "indexes": [
                {
                    "name": "memory_id_1_created_at_1_updated_at_1__id_1",
                    "key": {"memory_id": 1, "created_at": 1, "updated_at": 1, "_id": 1},
                }
            ],
        },
        {
            "createIndexes": MESSAGES,
            "indexes": [
                {
                    "name": "session_scope_1_created_at_-1__id_-1",
                    "key": {"session_scope": 1, "created_at": -1, "_id": -1},
                }
            ],
        },
    ]


def test_add_history_writes_one_document(history: MongoHistoryStore, db: FakeDatabase) -> None:
    history.add_history(
        "m1",
        "old",
        "new",
        "UPDATE",
        created_at="2025-01-01T00:00:00+00:00",
        updated_at="2025-01-02T00:00:00+00:00",
        actor_id="a1",
        role="user",
    )
    [call] = db.calls_to(HISTORY, "insert_many")
    [document] = call.args[0]
    assert isinstance(document.pop("_id"), ObjectId)
    uuid.UUID(document.pop("id"))
    assert document == {
        "memory_id": "m1",
        "old_memory": "old",
        "new_memory": "new",
        "event": "UPDATE",
        "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": "2025-01-02T00:00:00+00:00",
        "is_deleted": 0,
        "actor_id": "a1",
        "role": "user",
    }


def test_batch_keeps_insertion_order_in_ids(history: MongoHistoryStore, db: FakeDatabase) -> None:
    records = [{"memory_id": f"m{i}", "new_memory": "x", "event": "ADD"} for i in range(5)]
    history.batch_add_history(records)
    history.batch_add_history([])  # nothing to send
    [call] = db.calls_to(HISTORY, "insert_many")
    ids = [document["_id"] for document in call.args[0]]
    assert ids == sorted(ids)  # equal timestamps read back in this order
    assert [document["memory_id"] for document in call.args[0]] == [f"m{i}" for i in range(5)]
    assert call.kwargs == {"ordered": True}


def test_get_history_asks_oldest_first_with_insertion_tie_break(
    history: MongoHistoryStore, db: FakeDatabase
) -> None:
    db.answer(HISTORY, "find", [_stored(), _stored(event="DELETE", is_deleted=1)])
    rows = history.get_history("m1")
    [call] = db.calls_to(HISTORY, "find")
    assert call.args == ({"memory_id": "m1"},)
    assert call.kwargs == {"sort": [("created_at", 1), ("updated_at", 1), ("_id", 1)]}
    assert [row["event"] for row in rows] == ["ADD", "DELETE"]
    assert [row["is_deleted"] for row in rows] == [False, True]


def test_rows_have_sqlite_managers_keys_in_its_order(
    history: MongoHistoryStore, db: FakeDatabase
) -> None:
    sqlite = SQLiteManager(":memory:")
    try:
        sqlite.add_history("m1", None, "likes tea", "ADD", created_at="2025-01-01")
        expected = sqlite.get_history("m1")
    finally:
        sqlite.close()
    db.answer(HISTORY, "find", [_stored(created_at="2025-01-01")])
    [row] = history.get_history("m1")
    assert list(row) == list(expected[0])
    assert {k: v for k, v in row.items() if k != "id"} == {
        k: v for k, v in expected[0].items() if k != "id"
    }


def test_get_histories_reads_many_memories_in_one_query(
    history: MongoHistoryStore, db: FakeDatabase
) -> None:
    db.answer(
        HISTORY,
        "find",
        [_stored(memory_id="m1"), _stored(memory_id="m1", event="UPDATE"), _stored(memory_id="m3")],
    )
    histories = history.get_histories(["m1", "m2", "m3", "m1"])
    [call] = db.calls_to(HISTORY, "find")
    assert call.args == ({"memory_id": {"$in": ["m1", "m2", "m3"]}},)
    assert call.kwargs == {
        "sort": [("memory_id", 1), ("created_at", 1), ("updated_at", 1), ("_id", 1)]
    }
    assert list(histories) == ["m1", "m2", "m3"]
    assert [row["event"] for row in histories["m1"]] == ["ADD", "UPDATE"]
    assert histories["m2"] == []
    assert history.get_histories([]) == {}


def test_save_messages_trims_what_is_older_than_the_tenth_newest(
    history: MongoHistoryStore, db: FakeDatabase
) -> None:
    boundary = {"_id": ObjectId(), "created_at": "2025-01-01T00:00:00+00:00"}
    db.answer(MESSAGES, "find", [boundary])
    history.save_messages(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "s1"
    )
    [insert] = db.calls_to(MESSAGES, "insert_many")
    documents = insert.args[0]
    assert [(d["session_scope"], d["role"], d["content"], d["name"]) for d in documents] == [
        ("s1", "user", "hi", None),
        ("s1", "assistant", "yo", None),
    ]
    assert documents[0]["created_at"] == documents[1]["created_at"]
    assert documents[0]["_id"] < documents[1]["_id"]
    [find] = db.calls_to(MESSAGES, "find")
    assert find.args == ({"session_scope": "s1"}, {"created_at": 1})
    assert find.kwargs == {"sort": [("created_at", -1), ("_id", -1)], "skip": 9, "limit": 1}
    [delete] = db.calls_to(MESSAGES, "delete_many")
    assert delete.args == (
        {
            "session_scope": "s1",
            "$or": [
                {"created_at": {"$lt": "2025-01-01T00:00:00+00:00"}},
                {"created_at": "2025-01-01T00:00:00+00:00", "_id": {"$lt": boundary["_id"]}},
            ],
        },
    )


def test_fewer_than_ten_messages_delete_nothing(
    history: MongoHistoryStore, db: FakeDatabase
) -> None:
    history.save_messages([{"role": "user", "content": "hi"}], "s1")
    history.save_messages([], "s1")
    assert db.calls_to(MESSAGES, "delete_many") == []
    assert len(db.calls_to(MESSAGES, "insert_many")) == 1


def test_last_messages_come_back_oldest_first(history: MongoHistoryStore, db: FakeDatabase) -> None:
    newest_first = [
        {"_id": ObjectId(), "role": "assistant", "content": "2", "name": None, "created_at": "t2"},
        {"_id": ObjectId(), "role": "user", "content": "1", "name": "ann", "created_at": "t1"},
    ]
    db.answer(MESSAGES, "find", newest_first)
    assert history.get_last_messages("s1", limit=5) == [
        {"role": "user", "content": "1", "name": "ann", "created_at": "t1"},
        {"role": "assistant", "content": "2", "name": None, "created_at": "t2"},
    ]
    [call] = db.calls_to(MESSAGES, "find")
    assert call.args == (
        {"session_scope": "s1"},
        {"role": 1, "content": 1, "name": 1, "created_at": 1},
    )
    assert call.kwargs == {"sort": [("created_at", -1), ("_id", -1)], "limit": 5}


def test_reset_drops_both_and_stays_usable(
    history: MongoHistoryStore, client: FakeClient, db: FakeDatabase
) -> None:
    history.reset()
    history.close()
    assert not client.closed  # a shared client stays open
    assert [(c.target, c.method) for c in db.calls] == [
        (HISTORY, "drop"),
        (MESSAGES, "drop"),
        ("db", "command:createIndexes"),
        ("db", "command:createIndexes"),
    ]


def test_outage_is_store_unavailable(history: MongoHistoryStore, db: FakeDatabase) -> None:
    error = AutoReconnect("connection reset")
    db.answer(HISTORY, "find", error)
    with pytest.raises(StoreUnavailable) as raised:
        history.get_history("m1")
    assert raised.value.__cause__ is error


def test_from_a_uri_it_owns_its_client_and_never_logs_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri = "mongodb://maas:s3cr3t-pw@127.0.0.1:9/"  # nothing listens on port 9
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreUnavailable):
        MongoHistoryStore(uri, "maas", "memories", server_selection_timeout_ms=100)
    assert "s3cr3t-pw" not in caplog.text
    assert "maas:***@127.0.0.1:9" in caplog.text
