"""Long-term memory as the product sees it, and how it is kept in a mem0 payload.

A payload holds mem0's own fields (data, hash, created_at, updated_at, user_id, agent_id,
run_id, role, ...) and ours: `tenant`, `category`, `expires_at` (epoch seconds; NEVER when the
memory does not expire, so "not expired" is one indexed range condition) and the caller's
`metadata`, kept nested so it can never overwrite a field we rely on. mem0's scope ids are
tenant-qualified ("acme/alice"): mem0 keys its own side data (recent messages, entity links) by
them, so two tenants' "alice" never meet there either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NEVER = 253402300799.0  # 9999-12-31T23:59:59Z
SCOPE_SEPARATOR = "/"  # never part of a tenant id


class Category(enum.StrEnum):
    SEMANTIC = "semantic"
    EPISODIC = "episodic"
    FACT = "fact"
    PREFERENCE = "preference"


class ChangeKind(enum.StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class SearchMode(enum.StrEnum):
    SEMANTIC = "semantic"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


class MemoryEventType(enum.StrEnum):
    ADDED = "ADDED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Scope:
    """Whose memory it is: a user, an agent, a session (mem0's run), in any combination."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.user_id or self.agent_id or self.session_id)

    def mem0_ids(self, tenant: str) -> dict[str, str]:
        """mem0's user_id / agent_id / run_id, tenant-qualified."""
        pairs = (
            ("user_id", self.user_id),
            ("agent_id", self.agent_id),
            ("run_id", self.session_id),
        )
        return {key: qualify(tenant, value) for key, value in pairs if value}

    def covers(self, other: Scope) -> bool:
        """True when every id this scope names is also the other's."""
        return all(
            wanted is None or wanted == actual
            for wanted, actual in (
                (self.user_id, other.user_id),
                (self.agent_id, other.agent_id),
                (self.session_id, other.session_id),
            )
        )


@dataclass(frozen=True)
class MemoryRecord:
    id: str
    text: str
    category: Category
    scope: Scope
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None

    @property
    def user_id(self) -> str | None:
        return self.scope.user_id

    @property
    def agent_id(self) -> str | None:
        return self.scope.agent_id

    @property
    def session_id(self) -> str | None:
        return self.scope.session_id


@dataclass(frozen=True)
class HitScores:
    """What went into a hit's score (services/search_fusion.py); None: not part of this mode."""

    semantic: float | None = None
    keyword: float | None = None
    recency: float | None = None


@dataclass(frozen=True)
class MemoryHit:
    memory: MemoryRecord
    score: float
    scores: HitScores | None = None


@dataclass(frozen=True)
class HistoryEntry:
    event: ChangeKind
    previous_text: str | None
    new_text: str | None
    at: datetime


@dataclass(frozen=True)
class NewMemory:
    """What to remember: a text, or messages for mem0 to extract facts from."""

    scope: Scope
    text: str | None = None
    messages: list[tuple[str, str, str | None]] | None = None  # (role, content, name)
    category: Category = Category.SEMANTIC
    metadata: dict[str, Any] | None = None
    ttl_seconds: int | None = None
    infer: bool | None = None


@dataclass(frozen=True)
class MemorySearch:
    query: str
    scope: Scope
    categories: list[Category] | None = None
    metadata: dict[str, Any] | None = None
    limit: int = 10
    threshold: float | None = None
    mode: SearchMode = SearchMode.HYBRID
    recency_half_life_seconds: float | None = None


@dataclass(frozen=True)
class AddResult:
    added: list[MemoryRecord] = field(default_factory=list)
    updated: list[MemoryRecord] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryEvent:
    event_id: str  # orders the tenant's memory events; resume after it
    type: MemoryEventType
    memory_id: str
    at: datetime
    scope: Scope
    memory: MemoryRecord | None = None


def qualify(tenant: str, value: str) -> str:
    return f"{tenant}{SCOPE_SEPARATOR}{value}"


def unqualify(value: str | None) -> str | None:
    return value.partition(SCOPE_SEPARATOR)[2] if value else None


def record_from_payload(memory_id: str, payload: dict[str, Any]) -> MemoryRecord:
    """The product's view of a stored payload."""
    created = _parse_time(payload.get("created_at"))
    expires = payload.get("expires_at")
    return MemoryRecord(
        id=memory_id,
        text=payload.get("data") or "",
        category=Category(payload.get("category") or Category.SEMANTIC),
        scope=Scope(
            user_id=unqualify(payload.get("user_id")),
            agent_id=unqualify(payload.get("agent_id")),
            session_id=unqualify(payload.get("run_id")),
        ),
        metadata=payload.get("metadata") or {},
        created_at=created,
        updated_at=_parse_time(payload.get("updated_at")) if payload.get("updated_at") else created,
        expires_at=None
        if expires is None or expires >= NEVER
        else datetime.fromtimestamp(expires, UTC),
    )


def payload_from_mem0_item(item: dict[str, Any]) -> dict[str, Any]:
    """mem0's search and get results flatten the payload; put it back together."""
    payload = dict(item.get("metadata") or {})
    for key in ("user_id", "agent_id", "run_id", "created_at", "updated_at", "expiration_date"):
        if item.get(key) is not None:
            payload[key] = item[key]
    payload["data"] = item.get("memory", "")
    return payload


def _parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.fromtimestamp(0, UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
