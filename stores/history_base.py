"""What every history store shares: mem0's one-row write, expressed as a batch of one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class HistoryStore:
    """mem0's `SQLiteManager` interface; subclasses write batches and read many at once."""

    def batch_add_history(self, records: Sequence[Mapping[str, Any]]) -> None:
        raise NotImplementedError

    def add_history(
        self,
        memory_id: str,
        old_memory: str | None,
        new_memory: str | None,
        event: str,
        *,
        created_at: str | None = None,
        updated_at: str | None = None,
        is_deleted: int = 0,
        actor_id: str | None = None,
        role: str | None = None,
    ) -> None:
        """Record one change of a memory."""
        self.batch_add_history(
            [
                {
                    "memory_id": memory_id,
                    "old_memory": old_memory,
                    "new_memory": new_memory,
                    "event": event,
                    "created_at": created_at,
                    "updated_at": updated_at,
                    "is_deleted": is_deleted,
                    "actor_id": actor_id,
                    "role": role,
                }
            ]
        )
