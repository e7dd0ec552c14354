"""Input limits of short-term memory and the checks that enforce them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.compact_json import compact_json
from services.errors import InvalidInput, LimitExceeded
from services.json_values import check_json_value, check_text
from services.ltm_limits import check_scope
from services.ltm_model import Scope
from services.stm_model import ConfigChange, NewMessage

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class StmLimits:
    """Size limits of one request; every one has its own clear error."""

    max_messages_per_call: int = 500
    max_content_chars: int = 100_000
    max_metadata_bytes: int = 8_192
    max_name_chars: int = 128
    max_page_size: int = 500
    max_window_messages: int = 2_000
    max_config_messages: int = 10_000
    max_config_tokens: int = 2_000_000
    max_ttl_seconds: int = 365 * 86_400


def check_session_id(session_id: str) -> None:
    if not SESSION_ID.fullmatch(session_id):
        raise InvalidInput(
            "Session ids are 1-128 characters: letters, digits and _ . : @ - "
            "(starting with a letter or digit).",
            field="sessionId",
        )


def check_messages(messages: list[NewMessage], limits: StmLimits) -> None:
    if not messages:
        raise InvalidInput("Give at least one message.", field="messages")
    if len(messages) > limits.max_messages_per_call:
        raise LimitExceeded(
            f"At most {limits.max_messages_per_call} messages per call.",
            field="messages",
            limit=limits.max_messages_per_call,
        )
    for index, message in enumerate(messages):
        _check_message(message, index, limits)


def _check_message(message: NewMessage, index: int, limits: StmLimits) -> None:
    where = f"messages[{index}]"
    if message.id is not None and not MESSAGE_ID.fullmatch(message.id):
        raise InvalidInput(
            f"{where}.id: 1-128 characters, letters, digits and _ . : @ -.", field=f"{where}.id"
        )
    check_text(message.content, f"{where}.content")
    if len(message.content) > limits.max_content_chars:
        raise LimitExceeded(
            f"{where}.content is longer than {limits.max_content_chars} characters.",
            field=f"{where}.content",
            limit=limits.max_content_chars,
        )
    if message.name is not None and not 0 < len(message.name) <= limits.max_name_chars:
        raise InvalidInput(
            f"{where}.name must be 1-{limits.max_name_chars} characters.", field=f"{where}.name"
        )
    if message.name is not None:
        check_text(message.name, f"{where}.name")
    if not isinstance(message.metadata, dict):
        raise InvalidInput(f"{where}.metadata must be a JSON object.", field=f"{where}.metadata")
    check_json_value(message.metadata, f"{where}.metadata")
    size = len(compact_json(message.metadata).encode())
    if size > limits.max_metadata_bytes:
        raise LimitExceeded(
            f"{where}.metadata is {size} bytes; at most {limits.max_metadata_bytes}.",
            field=f"{where}.metadata",
            limit=limits.max_metadata_bytes,
        )


def check_config(change: ConfigChange, limits: StmLimits) -> None:
    ranges = {
        "maxMessages": (change.max_messages, 1, limits.max_config_messages),
        "maxTokens": (change.max_tokens, 100, limits.max_config_tokens),
        "ttlSeconds": (change.ttl_seconds, 0, limits.max_ttl_seconds),
    }
    for name, (value, low, high) in ranges.items():
        if value is not None and not low <= value <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}.", field=name)
    # The session's memories go to this long-term-memory scope: the same ids as everywhere.
    check_scope(Scope(user_id=change.user_id, agent_id=change.agent_id), required=False)


def check_page_size(value: int | None, name: str, limits: StmLimits) -> None:
    if value is not None and not 0 <= value <= limits.max_page_size:
        raise InvalidInput(f"{name} must be between 0 and {limits.max_page_size}.", field=name)
