"""mem0's change history and recent-messages store, in MongoDB / DocumentDB.

Duck-types mem0's `SQLiteManager` (mem0.memory.storage) so several server processes share one
history: collections `<collection>_history` and `<collection>_messages` next to the memories.
Rows with equal timestamps come back in insertion order: `_id` is an ObjectId, which grows
monotonically within a process (timestamp, then a per-process counter).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import MongoClient
from pymongo.database import Database

from stores.history_base import HistoryStore
from stores.mongo_errors import connect, redact_uri, unavailable_on_outage
from stores.traced import HISTORY_STORE_CALLS, traced

logger = logging.getLogger(__name__)

HistoryRow = dict[str, Any]
KEEP_MESSAGES = 10  # mem0 keeps the latest 10 messages per session scope

# get_history's order in SQLiteManager: created_at, then updated_at; then insertion order.
_HISTORY_SORT: list[tuple[str, int]] = [("created_at", 1), ("updated_at", 1), ("_id", 1)]
_MESSAGES_NEWEST_FIRST: list[tuple[str, int]] = [("created_at", -1), ("_id", -1)]
_HISTORY_FIELDS = (
    "id",
    "memory_id",
    "old_memory",
    "new_memory",
    "event",
    "created_at",
    "updated_at",
    "is_deleted",
    "actor_id",
    "role",
)


@traced("history_store", "mongodb", HISTORY_STORE_CALLS)
class MongoHistoryStore(HistoryStore):
    """History and recent messages of one memory collection, shared by every server process.

    `client` is a pymongo MongoClient to share (the vector store's), or a connection URI: the
    store then opens its own client, and close() closes it.
    """

    def __init__(
        self,
        client: MongoClient[Any] | str,
        db_name: str = "maas",
        collection: str = "memories",
        *,
        server_selection_timeout_ms: int = 5000,
    ) -> None:
        self._owns_client = isinstance(client, str)
        if isinstance(client, str):
            logger.info("connecting the history store to %s", redact_uri(client))
            client = connect(client, server_selection_timeout_ms)
        self.client = client
        self.db: Database[Any] = client[db_name]
        self.history_name = f"{collection}_history"
        self.messages_name = f"{collection}_messages"
        self.history = self.db[self.history_name]
        self.messages = self.db[self.messages_name]
        try:
            self.create_indexes()
        except BaseException:
            self.close()  # a client we opened must not outlive a failed start
            raise

    def create_indexes(self) -> None:
        """Indexes for reading one memory's history in order and a scope's latest messages."""
        with unavailable_on_outage("creating history indexes"):
            self.db.command(
                {
                    "createIndexes": self.history_name,
                    "indexes": [
                        {
                            "name": "memory_id_1_created_at_1_updated_at_1__id_1",
                            "key": {"memory_id": 1, "created_at": 1, "updated_at": 1, "_id": 1},
                        }
                    ],
                }
            )
            self.db.command(
                {
                    "createIndexes": self.messages_name,
                    "indexes": [
                        {
                            "name": "session_scope_1_created_at_-1__id_-1",
                            "key": {"session_scope": 1, "created_at": -1, "_id": -1},
                        }
                    ],
                }
            )

    # ---- history -------------------------------------------------------------------------------

    def batch_add_history(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Record several changes at once, in the given order."""
        if not records:
            return
        documents = [_history_document(record) for record in records]
        with unavailable_on_outage("writing memory history"):
            self.history.insert_many(documents, ordered=True)

    def get_history(self, memory_id: str) -> list[HistoryRow]:
        """The changes of one memory, oldest first, as SQLiteManager returns them."""
        with unavailable_on_outage("reading memory history"):
            documents = list(self.history.find({"memory_id": memory_id}, sort=_HISTORY_SORT))
        return [_history_row(document) for document in documents]

    def get_histories(self, memory_ids: Iterable[str]) -> dict[str, list[HistoryRow]]:
        """The histories of many memories in one query (a DataLoader's batch); every id asked
        for is a key, with [] when it has no history."""
        wanted = list(dict.fromkeys(memory_ids))
        histories: dict[str, list[HistoryRow]] = {memory_id: [] for memory_id in wanted}
        if not wanted:
            return histories
        with unavailable_on_outage("reading memory history"):
            documents = list(
                self.history.find(
                    {"memory_id": {"$in": wanted}},
                    sort=[("memory_id", 1), *_HISTORY_SORT],
                )
            )
        for document in documents:
            histories[document["memory_id"]].append(_history_row(document))
        return histories

    # ---- recent messages -----------------------------------------------------------------------

    def save_messages(self, messages: Sequence[Mapping[str, Any]], session_scope: str) -> None:
        """Append messages to a session scope and keep only its latest KEEP_MESSAGES."""
        if not messages:
            return
        now = datetime.now(UTC).isoformat()
        documents = [
            {
                "_id": ObjectId(),
                "id": str(uuid.uuid4()),
                "session_scope": session_scope,
                "role": message.get("role"),
                "content": message.get("content"),
                "name": message.get("name"),
                "created_at": now,
            }
            for message in messages
        ]
        with unavailable_on_outage("saving recent messages"):
            self.messages.insert_many(documents, ordered=True)
            # Delete what is older than the KEEP_MESSAGES-th newest message rather than "all but
            # these ids": a message another process writes meanwhile is newer, so it survives.
            boundary = list(
                self.messages.find(
                    {"session_scope": session_scope},
                    {"created_at": 1},
                    sort=_MESSAGES_NEWEST_FIRST,
                    skip=KEEP_MESSAGES - 1,
                    limit=1,
                )
            )
            if boundary:
                self.messages.delete_many(_older_than(session_scope, boundary[0]))

    def get_last_messages(self, session_scope: str, limit: int = 10) -> list[dict[str, Any]]:
        """The latest `limit` messages of a session scope, oldest first."""
        if limit < 1:
            return []
        with unavailable_on_outage("reading recent messages"):
            documents = list(
                self.messages.find(
                    {"session_scope": session_scope},
                    {"role": 1, "content": 1, "name": 1, "created_at": 1},
                    sort=_MESSAGES_NEWEST_FIRST,
                    limit=limit,
                )
            )
        return [
            {key: document.get(key) for key in ("role", "content", "name", "created_at")}
            for document in reversed(documents)
        ]

    # ---- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop both collections (and recreate their indexes, so this instance stays usable)."""
        with unavailable_on_outage("resetting memory history"):
            self.history.drop()
            self.messages.drop()
        self.create_indexes()

    def close(self) -> None:
        """Close the client if this store opened it; a shared client stays open."""
        if self._owns_client:
            self.client.close()


def _history_document(record: Mapping[str, Any]) -> dict[str, Any]:
    # _id orders equal timestamps by insertion; "id" is the string id mem0 shows.
    return {
        "_id": ObjectId(),
        "id": str(uuid.uuid4()),
        "memory_id": record.get("memory_id"),
        "old_memory": record.get("old_memory"),
        "new_memory": record.get("new_memory"),
        "event": record.get("event"),
        "created_at": record.get("created_at"),
        "updated_at": record.get("updated_at"),
        "is_deleted": int(record.get("is_deleted") or 0),
        "actor_id": record.get("actor_id"),
        "role": record.get("role"),
    }


def _history_row(document: Mapping[str, Any]) -> HistoryRow:
    row = {key: document.get(key) for key in _HISTORY_FIELDS}
    row["is_deleted"] = bool(row["is_deleted"])
    return row


def _older_than(session_scope: str, boundary: Mapping[str, Any]) -> dict[str, Any]:
    created_at, oid = boundary.get("created_at"), boundary["_id"]
    return {
        "session_scope": session_scope,
        "$or": [
            {"created_at": {"$lt": created_at}},
            {"created_at": created_at, "_id": {"$lt": oid}},
        ],
    }
