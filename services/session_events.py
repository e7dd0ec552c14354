"""Live session events: their shape on the wire (JSON on Redis pub/sub) and in the product."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.stm_model import Message, SessionConfig, Strategy, ms_to_datetime


class SessionEventType(enum.StrEnum):
    MESSAGES_ADDED = "MESSAGES_ADDED"
    SESSION_SUMMARIZED = "SESSION_SUMMARIZED"
    CONFIG_CHANGED = "CONFIG_CHANGED"
    SESSION_DELETED = "SESSION_DELETED"


@dataclass(frozen=True)
class SessionEvent:
    """Something that happened to a session, as every server process sees it."""

    type: SessionEventType
    session_id: str
    at: datetime
    messages: list[Message]
    summary: Message | None = None
    config: SessionConfig | None = None


def messages_added_prefix(session_id: str, at_ms: int) -> str:
    """The JSON event up to its message list; the store appends the records and closes it."""
    head = json.dumps(
        {"type": SessionEventType.MESSAGES_ADDED.value, "sessionId": session_id, "at": at_ms},
        separators=(",", ":"),
    )
    return head[:-1] + ',"messages":['


def encode_event(
    type_: SessionEventType,
    session_id: str,
    at_ms: int,
    *,
    summary_record: str | None = None,
    config: SessionConfig | None = None,
) -> str:
    body: dict[str, Any] = {"type": type_.value, "sessionId": session_id, "at": at_ms}
    if config is not None:
        body["config"] = {
            "strategy": config.strategy.value,
            "maxMessages": config.max_messages,
            "maxTokens": config.max_tokens,
            "ttlSeconds": config.ttl_seconds,
        }
    text = json.dumps(body, separators=(",", ":"))
    if summary_record is not None:
        # The record is already JSON; splice it in rather than decode and re-encode it.
        text = text[:-1] + ',"summary":' + summary_record + "}"
    return text


def decode_event(payload: str) -> SessionEvent:
    data = json.loads(payload)
    config = data.get("config")
    return SessionEvent(
        type=SessionEventType(data["type"]),
        session_id=data["sessionId"],
        at=ms_to_datetime(data["at"]),
        messages=[Message.from_record(m) for m in data.get("messages", ())],
        summary=Message.from_record(data["summary"]) if data.get("summary") else None,
        config=SessionConfig(
            strategy=Strategy(config["strategy"]),
            max_messages=config["maxMessages"],
            max_tokens=config["maxTokens"],
            ttl_seconds=config["ttlSeconds"],
        )
        if config
        else None,
    )
