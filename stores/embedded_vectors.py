"""The embedded vector store: memories in a local SQLite file, exact cosine search in numpy.

Scope filters run in SQL on indexed columns first, and only the matching vectors are ranked, so
a user's search ranks all of that user's memories however many closer ones other users hold.
Several server processes may share the file (WAL; writers wait for each other).

Keyword search: an FTS5 index (`vector_words`, porter-stemmed) of every memory's text, keyed by
the vectors row's rowid and kept by triggers, so every write — insert, update, delete, the
conditional writes and the expiry sweep — changes it in the same transaction as the row. A
keyword query joins it to the vectors rows and applies the same scope filters in SQL before
ranking by BM25, so other users' matches never take this user's places in the top k.

The service's updates and deletes are conditional (stores/memory_changes.py): one write
transaction checks the memory is live, changes it and appends its history row, so concurrent
writers — threads or processes — see each change happen once, with its history, or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np
from mem0.vector_stores.base import VectorStoreBase
from pydantic import BaseModel

from stores import memory_filters
from stores.history_base import HistoryStore
from stores.keyword_terms import fts5_query
from stores.memory_changes import Edit, Live, MemoryChange, Sweep, now_iso, record_after
from stores.sqlite_files import SQLiteFile
from stores.sqlite_history import SQLiteHistoryStore, insert_history
from stores.traced import VECTOR_STORE_CALLS, traced
from stores.vector_hits import VectorHit

# Payload fields copied into indexed columns: the scope of every query and the page order.
# The scope indexes lead with the (tenant-qualified) id and cover tenant and expiry too, so
# SQLite, which has no statistics to go by, prefers them to the tenant-wide expiry index: a
# user's search reads that user's rows, not the tenant's.
COLUMNS = ("tenant", "user_id", "agent_id", "run_id", "category", "expires_at", "created_at")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS vector_collections (name TEXT PRIMARY KEY, dims INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    collection TEXT NOT NULL, id TEXT NOT NULL, vector BLOB NOT NULL, payload TEXT NOT NULL,
    {", ".join(f"{c} {'REAL' if c == 'expires_at' else 'TEXT'}" for c in COLUMNS)},
    PRIMARY KEY (collection, id)
);
DROP INDEX IF EXISTS vectors_user;
DROP INDEX IF EXISTS vectors_agent;
DROP INDEX IF EXISTS vectors_run;
CREATE INDEX IF NOT EXISTS vectors_by_user ON vectors (collection, user_id, tenant, expires_at);
CREATE INDEX IF NOT EXISTS vectors_by_agent ON vectors (collection, agent_id, tenant, expires_at);
CREATE INDEX IF NOT EXISTS vectors_by_run ON vectors (collection, run_id, tenant, expires_at);
CREATE INDEX IF NOT EXISTS vectors_page ON vectors (collection, tenant, created_at, id);
CREATE INDEX IF NOT EXISTS vectors_expiry ON vectors (collection, tenant, expires_at);
"""

# The keyword index. Statements with inner semicolons, so run one by one. A VACUUM may renumber
# the rowids of `vectors` (it has no INTEGER PRIMARY KEY): none is ever run on this file.
_KEYWORD_SCHEMA = (
    "CREATE VIRTUAL TABLE vector_words USING fts5(body, "
    "tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS vector_words_insert AFTER INSERT ON vectors BEGIN "
    "INSERT INTO vector_words (rowid, body) "
    "VALUES (new.rowid, COALESCE(json_extract(new.payload, '$.data'), '')); END",
    "CREATE TRIGGER IF NOT EXISTS vector_words_delete AFTER DELETE ON vectors BEGIN "
    "DELETE FROM vector_words WHERE rowid = old.rowid; END",
    "CREATE TRIGGER IF NOT EXISTS vector_words_update AFTER UPDATE OF payload ON vectors "
    "WHEN json_extract(old.payload, '$.data') IS NOT json_extract(new.payload, '$.data') BEGIN "
    "UPDATE vector_words SET body = COALESCE(json_extract(new.payload, '$.data'), '') "
    "WHERE rowid = new.rowid; END",
    # A file written before the index existed: index what it holds, once.
    "INSERT INTO vector_words (rowid, body) "
    "SELECT rowid, COALESCE(json_extract(payload, '$.data'), '') FROM vectors",
)


class EmbeddedVectorConfig(BaseModel):
    """What mem0 passes to the store's constructor."""

    collection_name: str = "memories"
    embedding_model_dims: int = 384
    path: str


@traced("vector_store", "sqlite", (*VECTOR_STORE_CALLS, "keyword_search", "similarities"))
class EmbeddedVectorStore(VectorStoreBase):
    """mem0 vector store over one SQLite file; vectors stored unit-length as float32."""

    def __init__(self, collection_name: str, embedding_model_dims: int, path: str) -> None:
        self.collection_name = collection_name
        self.dims = embedding_model_dims
        self.file = SQLiteFile(path)
        self.create_col(collection_name, embedding_model_dims, "cosine")

    # ---- collections ------------------------------------------------------------------------

    def create_col(self, name: str, vector_size: int, distance: str = "cosine") -> None:
        with self.file.write() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'vector_words'").fetchone():
                for statement in _KEYWORD_SCHEMA:
                    db.execute(statement)
            row = db.execute(
                "SELECT dims FROM vector_collections WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                db.execute("INSERT INTO vector_collections VALUES (?, ?)", (name, vector_size))
            elif row[0] != vector_size:
                raise ValueError(
                    f"collection {name!r} in {self.file.path} holds {row[0]}-dimensional vectors "
                    f"but the embedder gives {vector_size}: use the embedder it was built with, "
                    "or another DATA_DIR"
                )

    def list_cols(self) -> list[str]:
        rows = self.file.connection().execute("SELECT name FROM vector_collections").fetchall()
        return [name for (name,) in rows]

    def delete_col(self) -> None:
        with self.file.write() as db:
            db.execute("DELETE FROM vectors WHERE collection = ?", (self.collection_name,))
            db.execute("DELETE FROM vector_collections WHERE name = ?", (self.collection_name,))

    def col_info(self) -> dict[str, Any]:
        (count,) = (
            self.file.connection()
            .execute("SELECT COUNT(*) FROM vectors WHERE collection = ?", (self.collection_name,))
            .fetchone()
        )
        return {"name": self.collection_name, "dims": self.dims, "count": count}

    def reset(self) -> None:
        self.delete_col()
        self.create_col(self.collection_name, self.dims)

    def close(self) -> None:
        self.file.close()

    # ---- writes -----------------------------------------------------------------------------

    def insert(
        self,
        vectors: list[list[float]],
        payloads: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
    ) -> None:
        if ids is None or len(ids) != len(vectors):
            raise ValueError("insert needs one id per vector")
        payloads = payloads or [{} for _ in vectors]
        rows = [
            (self.collection_name, id_, self._blob(vector), *self._payload_columns(payload))
            for id_, vector, payload in zip(ids, vectors, payloads, strict=True)
        ]
        marks = ",".join("?" * (4 + len(COLUMNS)))
        with self.file.write() as db:
            db.executemany(f"INSERT INTO vectors VALUES ({marks})", rows)  # noqa: S608

    def update(
        self, vector_id: str, vector: list[float] | None = None, payload: dict | None = None
    ) -> None:
        sets: list[str] = []
        params: list[Any] = []
        if vector is not None:
            sets.append("vector = ?")
            params.append(self._blob(vector))
        if payload is not None:
            sets.append("payload = ?")
            sets.extend(f"{c} = ?" for c in COLUMNS)
            params.extend(self._payload_columns(payload))
        if not sets:
            return
        with self.file.write() as db:
            db.execute(
                f"UPDATE vectors SET {', '.join(sets)} WHERE collection = ? AND id = ?",  # noqa: S608
                (*params, self.collection_name, vector_id),
            )

    def delete(self, vector_id: str) -> None:
        self.delete_many([vector_id])

    def delete_many(self, ids: list[str]) -> int:
        """Deletes by id; returns how many existed."""
        if not ids:
            return 0
        with self.file.write() as db:
            cursor = db.executemany(
                "DELETE FROM vectors WHERE collection = ? AND id = ?",
                [(self.collection_name, id_) for id_ in ids],
            )
            return cursor.rowcount

    # ---- conditional writes (the service's; see stores/memory_changes.py) -------------------

    def update_live(self, target: Live, edit: Edit, history: HistoryStore) -> MemoryChange | None:
        """Apply `edit` to the target if it is live; the change, or None when it was not."""
        with self.file.write() as db:
            row = db.execute(
                "SELECT payload FROM vectors WHERE collection = ? AND id = ? AND tenant = ? "
                "AND expires_at > ?",
                (self.collection_name, target.memory_id, target.tenant, target.now),
            ).fetchone()
            if row is None:
                return None
            before = json.loads(row[0])
            # Taken under the write lock: history rows of one memory are in the order of its
            # changes, and updated_at grows with them.
            at = now_iso()
            after = {**before, **edit.fields, "updated_at": at}
            sets = ["payload = ?", *(f"{c} = ?" for c in COLUMNS)]
            params: list[Any] = list(self._payload_columns(after))
            if edit.vector is not None:
                sets.append("vector = ?")
                params.append(self._blob(list(edit.vector)))
            db.execute(
                f"UPDATE vectors SET {', '.join(sets)} WHERE collection = ? AND id = ?",  # noqa: S608
                (*params, self.collection_name, target.memory_id),
            )
            change = MemoryChange(target.memory_id, before, after, at)
            pending = self._record(db, history, [change])
        return record_after(history, change, pending)

    def delete_live(self, target: Live, history: HistoryStore) -> MemoryChange | None:
        """Delete the target if it is live; the change, or None when it was not."""
        with self.file.write() as db:
            rows = db.execute(
                "DELETE FROM vectors WHERE collection = ? AND id = ? AND tenant = ? "
                "AND expires_at > ? RETURNING payload",
                (self.collection_name, target.memory_id, target.tenant, target.now),
            ).fetchall()
            if not rows:
                return None
            change = MemoryChange(target.memory_id, json.loads(rows[0][0]), None, now_iso())
            pending = self._record(db, history, [change])
        return record_after(history, change, pending)

    def delete_expired(self, tenant: str, now: float, limit: int, history: HistoryStore) -> Sweep:
        """Delete up to `limit` of the tenant's memories expired at `now`, with their history."""
        with self.file.write() as db:
            rows = db.execute(
                "DELETE FROM vectors WHERE rowid IN (SELECT rowid FROM vectors "
                "WHERE collection = ? AND tenant = ? AND expires_at <= ? LIMIT ?) "
                "RETURNING id, payload",
                (self.collection_name, tenant, now, limit),
            ).fetchall()
            at = now_iso()
            changes = [MemoryChange(id_, json.loads(payload), None, at) for id_, payload in rows]
            pending = self._record(db, history, changes)
        return record_after(history, Sweep(changes, more=len(rows) >= limit), pending)

    def _record(
        self, db: sqlite3.Connection, history: HistoryStore, changes: list[MemoryChange]
    ) -> list[MemoryChange]:
        """Append the changes' history in this transaction when the history lives in this file
        (as the app wires it); otherwise they are left for the caller to write after commit."""
        if isinstance(history, SQLiteHistoryStore) and history.shares_file(self.file.path):
            insert_history(db, [change.history_record() for change in changes])
            return []
        return changes

    # ---- reads ------------------------------------------------------------------------------

    def get(self, vector_id: str) -> VectorHit | None:
        row = (
            self.file.connection()
            .execute(
                "SELECT id, payload FROM vectors WHERE collection = ? AND id = ?",
                (self.collection_name, vector_id),
            )
            .fetchone()
        )
        return VectorHit(row[0], json.loads(row[1])) if row else None

    def search(
        self, query: str, vectors: list[float], top_k: int = 5, filters: dict | None = None
    ) -> list[VectorHit]:
        where, params = self._where(filters)
        rows = (
            self.file.connection()
            .execute(f"SELECT id, vector FROM vectors WHERE {where}", params)  # noqa: S608
            .fetchall()
        )
        if not rows or top_k <= 0:
            return []
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32)
        scores = matrix.reshape(len(rows), self.dims) @ _unit(vectors)
        best = np.argsort(-scores)[:top_k] if len(rows) <= top_k else _top(scores, top_k)
        ids = [rows[i][0] for i in best]
        payloads = self._payloads(ids)
        # Cosine similarity; mem0 expects higher-is-better in [0, 1].
        return [
            VectorHit(id_, payloads[id_], max(0.0, float(scores[i])))
            for id_, i in zip(ids, best, strict=True)
            if id_ in payloads  # deleted since the ranking read
        ]

    def keyword_search(
        self, query: str, top_k: int = 5, filters: dict | None = None
    ) -> list[VectorHit]:
        """The memories within `filters` that contain any word of the query, best BM25 first;
        score = -bm25() (higher: better; unbounded). Scope is applied in the query itself."""
        match = fts5_query(query)
        if match is None or top_k <= 0:
            return []
        where, params = self._where(filters, row="v.")
        rows = (
            self.file.connection()
            .execute(
                "SELECT v.id, v.payload, -bm25(vector_words) FROM vector_words "  # noqa: S608
                f"JOIN vectors AS v ON v.rowid = vector_words.rowid "
                f"WHERE vector_words MATCH ? AND {where} ORDER BY bm25(vector_words) LIMIT ?",
                (match, *params, top_k),
            )
            .fetchall()
        )
        return [VectorHit(id_, json.loads(payload), float(score)) for id_, payload, score in rows]

    def similarities(self, vectors: list[float], ids: list[str]) -> dict[str, float]:
        """Cosine similarity (clamped at 0, as search scores it) of the query to these
        memories: the semantic part of keyword hits that semantic search did not rank."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = (
            self.file.connection()
            .execute(
                f"SELECT id, vector FROM vectors WHERE collection = ? AND id IN ({marks})",  # noqa: S608
                (self.collection_name, *ids),
            )
            .fetchall()
        )
        if not rows:
            return {}
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32)
        scores = matrix.reshape(len(rows), self.dims) @ _unit(vectors)
        return {id_: max(0.0, float(s)) for (id_, _), s in zip(rows, scores, strict=True)}

    def list(self, filters: dict | None = None, top_k: int | None = 100) -> list[list[VectorHit]]:
        return [self.page(filters, top_k if top_k is not None else -1)]

    def page(
        self, filters: dict | None, limit: int, after: tuple[str, str] | None = None
    ) -> list[VectorHit]:
        """Newest first by (created_at, id); `after` = the (created_at, id) of the last row seen."""
        where, params = self._where(filters)
        if after is not None:
            where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
            params += [after[0], after[0], after[1]]
        rows = (
            self.file.connection()
            .execute(
                f"SELECT id, payload FROM vectors WHERE {where} "  # noqa: S608
                "ORDER BY created_at DESC, id DESC LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [VectorHit(id_, json.loads(payload)) for id_, payload in rows]

    # ---- helpers ----------------------------------------------------------------------------

    def _where(self, filters: dict | None, row: str = "") -> tuple[str, list[Any]]:
        """The scope as SQL; `row` qualifies the columns ("v.") in a join."""
        clause, params = memory_filters.to_sql(
            memory_filters.parse(filters),
            payload_column=f"{row}payload",
            columns={name: f"{row}{name}" for name in COLUMNS},
        )
        return f"{row}collection = ? AND {clause}", [self.collection_name, *params]

    def _payloads(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        marks = ",".join("?" * len(ids))
        rows = (
            self.file.connection()
            .execute(
                f"SELECT id, payload FROM vectors WHERE collection = ? AND id IN ({marks})",  # noqa: S608
                (self.collection_name, *ids),
            )
            .fetchall()
        )
        return {id_: json.loads(payload) for id_, payload in rows}

    def _blob(self, vector: list[float]) -> bytes:
        array = _unit(vector)
        if array.shape != (self.dims,):
            raise ValueError(f"expected a {self.dims}-dimensional vector, got {array.shape[0]}")
        return array.tobytes()

    @staticmethod
    def _payload_columns(payload: dict[str, Any]) -> tuple[Any, ...]:
        return (json.dumps(payload, separators=(",", ":")), *(payload.get(c) for c in COLUMNS))


def _unit(vector: list[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    candidates = np.argpartition(-scores, k)[:k]
    return candidates[np.argsort(-scores[candidates])]
