"""Session events: their shape in the streams (JSON) and in the product."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime

from services.compact_json import compact_json
from services.stm_config import effective_config
from services.stm_model import Message, SessionConfig, ms_to_datetime


class SessionEventType(enum.StrEnum):
    MESSAGES_ADDED = "MESSAGES_ADDED"
    SESSION_SUMMARIZED = "SESSION_SUMMARIZED"
    CONFIG_CHANGED = "CONFIG_CHANGED"
    SESSION_DELETED = "SESSION_DELETED"


@dataclass(frozen=True)
class SessionEvent:
    """Something that happened to a session, as every server process sees it. event_id orders
    the events of the stream it was read from (one session's, or the tenant's)."""

    event_id: str
    type: SessionEventType
    session_id: str
    at: datetime
    messages: list[Message]
    summary: Message | None = None
    config: SessionConfig | None = None


def _head(type_: SessionEventType, session_id: str, at_ms: int) -> str:
    """The event's JSON without its closing brace."""
    body = {"type": type_.value, "sessionId": session_id, "at": at_ms}
    return compact_json(body)[:-1]


def messages_added_prefix(session_id: str, at_ms: int) -> str:
    """The JSON event up to its message list; the store appends the records and closes it."""
    return _head(SessionEventType.MESSAGES_ADDED, session_id, at_ms) + ',"messages":['


def config_changed_prefix(session_id: str, at_ms: int) -> str:
    """The JSON event up to the session's meta hash, which the store adds as it is after the
    change (the config is read from it like from a session read) and closes the event."""
    return _head(SessionEventType.CONFIG_CHANGED, session_id, at_ms) + ',"meta":'


def encode_event(
    type_: SessionEventType, session_id: str, at_ms: int, *, summary_record: str | None = None
) -> str:
    text = _head(type_, session_id, at_ms)
    if summary_record is not None:
        # The record is already JSON; splice it in rather than decode and re-encode it.
        text += ',"summary":' + summary_record
    return text + "}"


def decode_event(event_id: str, payload: str, defaults: SessionConfig) -> SessionEvent:
    data = json.loads(payload)
    meta = data.get("meta")
    return SessionEvent(
        event_id=event_id,
        type=SessionEventType(data["type"]),
        session_id=data["sessionId"],
        at=ms_to_datetime(data["at"]),
        messages=[Message.from_record(m) for m in data.get("messages", ())],
        summary=Message.from_record(data["summary"]) if data.get("summary") else None,
        config=effective_config(defaults, meta) if meta is not None else None,
    )
