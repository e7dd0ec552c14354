"""Changes to one memory that the store decides: conditional writes that report what they changed.

Why: reading a memory and then changing it (check-then-act) lets a concurrent writer slip in
between. A delete that lands after the read makes an update write nothing, yet report success
(or fail on its read-back), and makes two deletes of one memory both succeed and both record
history and events. So every change states its condition — the memory exists, is the caller's
tenant's and has not expired (or, for the expiry sweep, has expired) — and the store applies
condition and change in one step, and returns the change only when it made it. The caller
publishes events for the changes it gets back, and nothing else: each change is recorded once.

How each store makes the step atomic:
- embedded SQLite: one write transaction holds the write lock while it reads the row, writes
  it and appends the history row, so the change and its history commit together or not at all.
- DocumentDB / MongoDB: one conditional findAndModify (`find_one_and_update`,
  `find_one_and_delete`) on {_id, tenant, expiry}; single-document writes are atomic there, and
  the document it returns (None: the condition failed) decides. History lives in another
  collection and is written after, from that document: a multi-document transaction would
  make it atomic too, but Azure DocumentDB limits them and the open-source gateway does not
  promise them. If that write fails, the change stands and HistoryNotRecorded says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from stores.history_base import HistoryStore

T = TypeVar("T")


@dataclass(frozen=True)
class Live:
    """The condition of an update or delete: this memory, of this tenant, unexpired at `now`
    (epoch seconds; expires_at > now)."""

    memory_id: str
    tenant: str
    now: float


@dataclass(frozen=True)
class Edit:
    """What an update sets: payload fields (each replaced whole) and, when the text changes,
    the new vector. The store sets updated_at itself, when it makes the change."""

    fields: dict[str, Any]
    vector: Sequence[float] | None = None


@dataclass(frozen=True)
class MemoryChange:
    """A change the store made: the payload before, after (None: deleted), and when."""

    id: str
    before: dict[str, Any]
    after: dict[str, Any] | None
    at: str  # ISO 8601, UTC

    def history_record(self) -> dict[str, Any]:
        """The change as a row of mem0's history (as mem0's own update and delete write it)."""
        current = self.after if self.after is not None else self.before
        return {
            "memory_id": self.id,
            "old_memory": self.before.get("data"),
            "new_memory": self.after.get("data") if self.after is not None else None,
            "event": "UPDATE" if self.after is not None else "DELETE",
            "created_at": current.get("created_at"),
            "updated_at": self.at,
            "is_deleted": int(self.after is None),
            "actor_id": current.get("actor_id"),
            "role": current.get("role"),
        }


@dataclass(frozen=True)
class Sweep:
    """What one expiry-sweep step deleted, and whether more expired memories may remain."""

    changes: list[MemoryChange] = field(default_factory=list)
    more: bool = False


class HistoryNotRecorded(Exception, Generic[T]):
    """The store made its change(s), but writing their history afterwards failed.

    `result` is what the call would have returned: the changes stand and are to be reported."""

    def __init__(self, result: T, changes: Sequence[MemoryChange]) -> None:
        super().__init__(f"{len(changes)} change(s) made but not recorded in history")
        self.result = result
        self.changes = list(changes)


class ConditionalWrites(Protocol):
    """The writes of the LTM service, each decided by the store (see the module docstring)."""

    def update_live(self, target: Live, edit: Edit, history: HistoryStore) -> MemoryChange | None:
        """Apply `edit` if the target is live; the change, or None when it was not."""
        ...

    def delete_live(self, target: Live, history: HistoryStore) -> MemoryChange | None:
        """Delete the target if it is live; the change, or None when it was not."""
        ...

    def delete_expired(self, tenant: str, now: float, limit: int, history: HistoryStore) -> Sweep:
        """Delete up to `limit` of the tenant's memories expired at `now` (expires_at <= now)."""
        ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def record_after(history: HistoryStore, result: T, changes: Sequence[MemoryChange]) -> T:
    """Write the history of changes already made; `result` back, or HistoryNotRecorded."""
    if changes:
        try:
            history.batch_add_history([change.history_record() for change in changes])
        except Exception as exc:
            raise HistoryNotRecorded(result, changes) from exc
    return result
