"""The short-term-memory model: messages, session configuration, windows and pages."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.compact_json import compact_json


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Strategy(enum.StrEnum):
    SLIDING_WINDOW = "sliding_window"
    TOKEN_THRESHOLD = "token_threshold"  # noqa: S105 - not a secret


class ConfigField(enum.StrEnum):
    """A per-session setting that can be reset to its default."""

    STRATEGY = "strategy"
    MAX_MESSAGES = "max_messages"
    MAX_TOKENS = "max_tokens"
    TTL_SECONDS = "ttl_seconds"
    USER_ID = "user_id"
    AGENT_ID = "agent_id"
    LONG_TERM_EXTRACTION = "long_term_extraction"


@dataclass(frozen=True)
class NewMessage:
    """A message as a client sends it; id is the client's idempotency key when given."""

    role: Role
    content: str
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @classmethod
    def of(cls, sent: Any) -> NewMessage:
        """From a transport's input object (GraphQL's MessageInput, MCP's): the same fields,
        metadata left out meaning none."""
        metadata = sent.metadata if sent.metadata is not None else {}
        return cls(sent.role, sent.content, sent.name, metadata, sent.id)


@dataclass(frozen=True)
class Message:
    """A stored message: seq orders a session, tokens were counted once when it was written."""

    id: str
    seq: int
    role: Role
    content: str
    tokens: int
    created_at: datetime
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    is_summary: bool = False

    def to_record(self) -> str:
        """JSON for the store: seq then tokens come first (the store's scripts read them)."""
        return compact_json(
            {
                "seq": self.seq,
                "tokens": self.tokens,
                "id": self.id,
                "role": self.role.value,
                "content": self.content,
                "name": self.name,
                "metadata": self.metadata,
                "at": int(self.created_at.timestamp() * 1000),
                "summary": self.is_summary,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_record(cls, record: str | dict[str, Any]) -> Message:
        data = json.loads(record) if isinstance(record, str) else record
        return cls(
            id=data["id"],
            seq=data["seq"],
            role=Role(data["role"]),
            content=data["content"],
            tokens=data["tokens"],
            created_at=datetime.fromtimestamp(data["at"] / 1000, UTC),
            name=data["name"],
            metadata=data["metadata"],
            is_summary=data["summary"],
        )


@dataclass(frozen=True)
class SessionConfig:
    """How a session's context window is built, whose it is (the long-term-memory scope its
    messages teach, and the default scope of what reads memories for it), and whether its
    messages reach long-term memory by themselves."""

    strategy: Strategy
    max_messages: int
    max_tokens: int
    ttl_seconds: int
    user_id: str | None = None
    agent_id: str | None = None
    long_term_extraction: bool = False


@dataclass(frozen=True)
class ConfigChange:
    """A partial config update: fields left None are unchanged, names in `reset` return to
    their defaults."""

    strategy: Strategy | None = None
    max_messages: int | None = None
    max_tokens: int | None = None
    ttl_seconds: int | None = None
    user_id: str | None = None
    agent_id: str | None = None
    long_term_extraction: bool | None = None
    reset: frozenset[ConfigField] = frozenset()


@dataclass(frozen=True)
class SessionInfo:
    """A session's counters and effective configuration."""

    id: str
    message_count: int
    token_count: int
    summary_count: int
    created_at: datetime
    last_activity_at: datetime
    config: SessionConfig
    last_event_id: str | None = None  # subscribe with after= this to miss nothing from here


@dataclass(frozen=True)
class SessionPage:
    """One page of the tenant's sessions, newest activity first, each with its cursor."""

    sessions: list[tuple[SessionInfo, str]]
    has_more: bool
    last_event_id: str | None  # the tenant's newest session event when the page was read


@dataclass(frozen=True)
class ContextWindow:
    """What a model should see now: the window the strategy allows, oldest first. The newest
    message is always in it, whole; with a token budget the summary comes next if it fits
    beside it, then older messages while they fit (never with a gap between them)."""

    messages: list[Message]
    token_count: int
    strategy: Strategy
    truncated: bool  # older messages (or the summary) were left out
    summary: Message | None
    over_budget: bool  # the newest message alone exceeds the token budget


@dataclass(frozen=True)
class MessagePage:
    """One page of a session's messages, oldest first."""

    messages: list[Message]
    has_older: bool
    has_newer: bool


@dataclass(frozen=True)
class AddResult:
    """The stored version of each input message (in input order) and which were retries."""

    messages: list[Message]
    duplicate_ids: list[str]


def ms_to_datetime(ms: str | int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)
