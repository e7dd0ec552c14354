"""Verbatim rows written together: when the batched insert fails, only the rows it did not
store are written again, so a row the store kept is neither lost nor written twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import BulkWriteError

from services.verbatim_batch import new_row, write_rows
from stores.documentdb_vectors import AzureDocumentDBVectorStore
from stores.history_base import HistoryStore
from tests.support.fake_mongo import FakeClient

COLL = "memories"


class RecordingHistory(HistoryStore):
    def __init__(self) -> None:
        self.batches: list[list[Mapping[str, Any]]] = []

    def batch_add_history(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.batches.append(list(records))


def test_a_batch_partly_inserted_by_documentdb_writes_only_the_missing_rows() -> None:
    client = FakeClient()
    db = client["maas"]
    store = AzureDocumentDBVectorStore(
        client=client, embedding_model_dims=3, index_wait_seconds=0, retry_delay_seconds=0
    )
    db.calls.clear()
    scope = {"user_id": "t1:alice"}
    rows = [
        new_row({"role": "user", "content": text}, scope, {"tenant": "t1"}, [1.0, 0, 0])
        for text in ("a", "b", "c")
    ]
    # insert_many is unordered: the second document failed, the others were stored.
    failed = BulkWriteError({"writeErrors": [{"index": 1, "code": 6, "errmsg": "host down"}]})
    db.answer(COLL, "insert_many", failed)
    stored = {"_id": "x", "payload": {"data": "stored"}}
    db.answer(COLL, "find_one", stored, None, stored)
    history = RecordingHistory()
    write_rows(store, history, rows)
    assert [row.error for row in rows] == [None, None, None]
    inserts = db.calls_to(COLL, "insert_many")
    assert [[d["_id"] for d in call.args[0]] for call in inserts] == [
        [row.memory_id for row in rows],
        [rows[1].memory_id],
    ]
    assert [[r["memory_id"] for r in batch] for batch in history.batches] == [
        [row.memory_id for row in rows]
    ]
