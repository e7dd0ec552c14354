"""mem0's change history and recent messages in the embedded store's SQLite file.

Stands in for mem0's own `SQLiteManager` (same methods, same rows) so history lives in the same
database as the memories, and concurrent writers wait for each other instead of failing with
"database is locked" (mem0#7196).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stores.history_base import HistoryStore
from stores.sqlite_files import SQLiteFile
from stores.traced import HISTORY_STORE_CALLS, traced

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, memory_id TEXT NOT NULL,
        old_memory TEXT, new_memory TEXT, event TEXT NOT NULL, created_at TEXT, updated_at TEXT,
        is_deleted INTEGER NOT NULL DEFAULT 0, actor_id TEXT, role TEXT)""",
    "CREATE INDEX IF NOT EXISTS history_memory ON history (memory_id, seq)",
    """CREATE TABLE IF NOT EXISTS history_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, session_scope TEXT NOT NULL, role TEXT,
        content TEXT, name TEXT, created_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS history_messages_scope ON history_messages (session_scope, seq)",
)
_FIELDS = "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, "
_FIELDS += "actor_id, role"
KEPT_MESSAGES = 10


@traced("history_store", "sqlite", HISTORY_STORE_CALLS)
class SQLiteHistoryStore(HistoryStore):
    """History rows in insertion order (a sequence, not timestamps, breaks ties)."""

    def __init__(self, path: str | Path) -> None:
        self.file = SQLiteFile(path)
        with self.file.write() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def batch_add_history(self, records: Sequence[Mapping[str, Any]]) -> None:
        with self.file.write() as db:
            insert_history(db, records)

    def shares_file(self, path: str | Path) -> bool:
        """Whether this history lives in the database file at `path` (then a write transaction
        on that file can record history with its change)."""
        return Path(path).resolve() == self.file.path.resolve()

    def get_history(self, memory_id: str) -> list[dict[str, Any]]:
        return self.get_histories([memory_id]).get(memory_id, [])

    def get_histories(self, memory_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The history of many memories in one read, oldest change first."""
        if not memory_ids:
            return {}
        marks = ",".join("?" * len(memory_ids))
        rows = (
            self.file.connection()
            .execute(
                f"SELECT {_FIELDS} FROM history WHERE memory_id IN ({marks}) "  # noqa: S608
                "ORDER BY memory_id, seq",
                memory_ids,
            )
            .fetchall()
        )
        histories: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            record = dict(zip(_FIELDS.split(", "), row, strict=True))
            record["is_deleted"] = bool(record["is_deleted"])
            histories.setdefault(record["memory_id"], []).append(record)
        return histories

    def save_messages(self, messages: list[dict[str, Any]], session_scope: str) -> None:
        if not messages:
            return
        now = datetime.now(UTC).isoformat()
        with self.file.write() as db:
            db.executemany(
                "INSERT INTO history_messages (session_scope, role, content, name, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (session_scope, m.get("role"), m.get("content"), m.get("name"), now)
                    for m in messages
                ],
            )
            db.execute(
                "DELETE FROM history_messages WHERE session_scope = ? AND seq NOT IN "
                "(SELECT seq FROM history_messages WHERE session_scope = ? "
                "ORDER BY seq DESC LIMIT ?)",
                (session_scope, session_scope, KEPT_MESSAGES),
            )

    def get_last_messages(self, session_scope: str, limit: int = 10) -> list[dict[str, Any]]:
        rows = (
            self.file.connection()
            .execute(
                "SELECT role, content, name, created_at FROM history_messages "
                "WHERE session_scope = ? ORDER BY seq DESC LIMIT ?",
                (session_scope, limit),
            )
            .fetchall()
        )
        keys = ("role", "content", "name", "created_at")
        return [dict(zip(keys, row, strict=True)) for row in reversed(rows)]

    def reset(self) -> None:
        with self.file.write() as db:
            db.execute("DELETE FROM history")
            db.execute("DELETE FROM history_messages")

    def close(self) -> None:
        self.file.close()


def insert_history(db: sqlite3.Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Append history rows within the caller's transaction on `db`."""
    rows = [
        (
            str(uuid.uuid4()),
            r["memory_id"],
            r.get("old_memory"),
            r.get("new_memory"),
            r["event"],
            r.get("created_at"),
            r.get("updated_at"),
            int(r.get("is_deleted") or 0),
            r.get("actor_id"),
            r.get("role"),
        )
        for r in records
    ]
    db.executemany(
        f"INSERT INTO history ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        rows,
    )
