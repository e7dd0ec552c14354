"""Many verbatim adds written together: what mem0's `add(infer=False)` writes for each text, in
one vector-store insert and one history write for the whole batch.

mem0 adds a verbatim text in its own steps: embed, insert the memory, append its history row —
two write transactions and several thread hops per memory, which cost a verbatim batch about as
much CPU again as its (batched) encode. Here the batch's rows are built as mem0 2.2 builds them
(`_add_to_vector_store` and `_create_memory`, mem0ai is pinned below 2.3) and written in one
call each. When a batched write fails, each row is written alone, so a failure stays with the
memory it belongs to, as it did when each was its own add (a row the failed batch did store,
as an unordered DocumentDB insert may, is kept, not written twice).
"""

from __future__ import annotations

import uuid
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mem0.memory.main import _build_filters_and_metadata

from services.mem0_engine import text_fields


@dataclass
class VerbatimRow:
    """One memory to write: its id, text, vector and payload; `error` once a write failed."""

    memory_id: str
    text: str
    vector: list[float]
    payload: dict[str, Any]
    error: Exception | None = None

    @property
    def history(self) -> dict[str, Any]:
        """The history row mem0 appends for an added memory."""
        return {
            "memory_id": self.memory_id,
            "old_memory": None,
            "new_memory": self.text,
            "event": "ADD",
            "created_at": self.payload.get("created_at"),
            "updated_at": self.payload.get("updated_at"),
            "is_deleted": 0,
            "actor_id": self.payload.get("actor_id"),
            "role": self.payload.get("role"),
        }


def verbatim_payload(
    message: dict[str, str], ids: dict[str, str], metadata: dict[str, Any]
) -> dict[str, Any]:
    """The payload mem0 stores for one message added verbatim with these scope ids."""
    template, _ = _build_filters_and_metadata(**ids, input_metadata=metadata)
    payload = deepcopy(template)
    payload["role"] = message["role"]
    if message.get("name"):
        payload["actor_id"] = message["name"]
    fields = text_fields(message["content"])
    payload["data"], payload["hash"] = fields["data"], fields["hash"]
    payload.setdefault("created_at", datetime.now(UTC).isoformat())
    payload["updated_at"] = payload["created_at"]
    payload["text_lemmatized"] = fields["text_lemmatized"]
    return payload


def new_row(
    message: dict[str, str], ids: dict[str, str], metadata: dict[str, Any], vector: list[float]
) -> VerbatimRow:
    return VerbatimRow(
        str(uuid.uuid4()), message["content"], vector, verbatim_payload(message, ids, metadata)
    )


def write_rows(store: Any, history: Any, rows: list[VerbatimRow]) -> None:
    """Insert the rows and append their history (blocking): batched, or row by row when the
    batch fails. A row that cannot be written gets its `error`; its history is not written."""
    try:
        store.insert(
            vectors=[r.vector for r in rows],
            ids=[r.memory_id for r in rows],
            payloads=[r.payload for r in rows],
        )
    except Exception:
        for row in rows:
            try:
                # DocumentDB inserts unordered: a failed batch may have stored some rows.
                if store.get(row.memory_id) is None:
                    store.insert(vectors=[row.vector], ids=[row.memory_id], payloads=[row.payload])
            except Exception as exc:
                row.error = exc
    stored = [r for r in rows if r.error is None]
    if not stored:
        return
    try:
        history.batch_add_history([r.history for r in stored])
    except Exception:
        for row in stored:
            try:
                history.batch_add_history([row.history])
            except Exception as exc:
                row.error = exc  # stored without its history: mem0's add failed the same way
