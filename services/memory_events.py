"""Memory events: their JSON in the tenant's memory-event stream, which every server process
follows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from services.compact_json import compact_json
from services.ltm_model import (
    MemoryEvent,
    MemoryEventType,
    MemoryRecord,
    Scope,
    record_from_payload,
)


def encode_memory_event(
    type_: MemoryEventType,
    memory_id: str,
    scope: Scope,
    payload: dict[str, Any] | None = None,
    at: str | None = None,
) -> str:
    """The event's JSON; `at` is when the change was made (ISO 8601), default now."""
    body: dict[str, Any] = {
        "type": type_.value,
        "memoryId": memory_id,
        # The change's own time, taken by the store as it made it: events of concurrent
        # writers may reach the stream in another order than their changes; `at` keeps it.
        "at": at or datetime.now(UTC).isoformat(),
        "scope": [scope.user_id, scope.agent_id, scope.session_id],
    }
    if payload is not None:
        body["payload"] = payload
    return compact_json(body)


def decode_memory_event(event_id: str, text: str) -> MemoryEvent:
    data = json.loads(text)
    user_id, agent_id, session_id = data["scope"]
    payload = data.get("payload")
    memory: MemoryRecord | None = (
        record_from_payload(data["memoryId"], payload) if payload is not None else None
    )
    return MemoryEvent(
        event_id=event_id,
        type=MemoryEventType(data["type"]),
        memory_id=data["memoryId"],
        at=datetime.fromisoformat(data["at"]),
        scope=Scope(user_id, agent_id, session_id),
        memory=memory,
    )
