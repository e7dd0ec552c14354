"""The service's conditional writes on a MongoDB-compatible collection of {_id, embedding,
payload} documents (Azure DocumentDB, DocumentDB Local, MongoDB Atlas).

Each change is one findAndModify whose filter carries the condition ({_id, tenant, expiry}):
single-document writes are atomic on these servers, so of two concurrent deletes exactly one
gets the document back, and an update after a delete matches nothing. The returned document is
the memory as it was, from which the history row is written after (see stores/memory_changes.py
for why not in one transaction). Commands are built by pure functions, asserted key by key in
tests/unit/test_documentdb_vectors.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ReturnDocument

from stores.history_base import HistoryStore
from stores.memory_changes import Edit, Live, MemoryChange, Sweep, now_iso, record_after
from stores.mongo_errors import unavailable_on_outage
from stores.vector_hits import StoreUnavailable

logger = logging.getLogger(__name__)

PAYLOAD_ONLY = {"payload": 1}
ID_ONLY = {"_id": 1}


def live_filter(target: Live) -> dict[str, Any]:
    """This memory, of this tenant, not expired at target.now."""
    return {
        "_id": target.memory_id,
        "payload.tenant": target.tenant,
        "payload.expires_at": {"$gt": target.now},
    }


def expired_filter(tenant: str, now: float) -> dict[str, Any]:
    """The tenant's memories expired at `now`."""
    return {"payload.tenant": tenant, "payload.expires_at": {"$lte": now}}


def edit_update(fields: Mapping[str, Any], vector: list[float] | None) -> dict[str, Any]:
    """The $set of an update: each payload field replaced whole, the vector when given."""
    changes: dict[str, Any] = {f"payload.{key}": value for key, value in fields.items()}
    if vector is not None:
        changes["embedding"] = vector
    return {"$set": changes}


class MongoConditionalWrites:
    """Mixed into a vector store that has `collection` (a pymongo Collection) and `_vector`."""

    collection: Any

    def _vector(self, vector: Sequence[float]) -> list[float]:
        return [float(x) for x in vector]

    def update_live(self, target: Live, edit: Edit, history: HistoryStore) -> MemoryChange | None:
        """Apply `edit` if the target is live; the change, or None when it was not."""
        # Taken before the write, so an update that wins against a delete is older than it.
        fields = {**edit.fields, "updated_at": now_iso()}
        vector = self._vector(edit.vector) if edit.vector is not None else None
        with unavailable_on_outage(f"updating {target.memory_id!r}"):
            document = self.collection.find_one_and_update(
                live_filter(target),
                edit_update(fields, vector),
                projection=PAYLOAD_ONLY,
                return_document=ReturnDocument.BEFORE,
            )
        if document is None:
            return None
        before = dict(document.get("payload") or {})
        change = MemoryChange(target.memory_id, before, {**before, **fields}, fields["updated_at"])
        return record_after(history, change, [change])

    def delete_live(self, target: Live, history: HistoryStore) -> MemoryChange | None:
        """Delete the target if it is live; the change, or None when it was not."""
        with unavailable_on_outage(f"deleting {target.memory_id!r}"):
            document = self.collection.find_one_and_delete(
                live_filter(target), projection=PAYLOAD_ONLY
            )
        if document is None:
            return None
        # Taken after the write: later than any update that this delete followed.
        change = MemoryChange(
            target.memory_id, dict(document.get("payload") or {}), None, now_iso()
        )
        return record_after(history, change, [change])

    def delete_expired(self, tenant: str, now: float, limit: int, history: HistoryStore) -> Sweep:
        """Delete up to `limit` of the tenant's memories expired at `now`, each with a
        conditional delete: of concurrent sweeps (several server processes), or a sweep and a
        TTL-extending update, only the one whose delete returns the document records it."""
        expired = expired_filter(tenant, now)
        with unavailable_on_outage("finding expired memories"):
            candidates = list(self.collection.find(expired, ID_ONLY, limit=limit))
        changes: list[MemoryChange] = []
        more = len(candidates) >= limit
        for candidate in candidates:
            try:
                with unavailable_on_outage("deleting expired memories"):
                    document = self.collection.find_one_and_delete(
                        {"_id": candidate["_id"], **expired}, projection=PAYLOAD_ONLY
                    )
            except StoreUnavailable:
                if not changes:
                    raise
                # Report what was deleted; the caller's next step meets the outage.
                logger.warning("expiry sweep interrupted after %d deletes", len(changes))
                more = True
                break
            if document is not None:
                payload = dict(document.get("payload") or {})
                changes.append(MemoryChange(str(document["_id"]), payload, None, now_iso()))
        return record_after(history, Sweep(changes, more), changes)
