"""Input limits of long-term memory and the checks that enforce them; each has a clear error.

Every check runs before the embedder, the LLM or a store is called: input that none of them can
take (text that is not valid Unicode, metadata that is not plain JSON) is the client's problem,
BAD_USER_INPUT, and must not surface as a dependency failure or leave half a write behind.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from services.errors import InvalidInput, LimitExceeded
from services.json_values import check_json_value
from services.json_values import check_text as check_encodable
from services.ltm_model import MemorySearch, NewMemory, Scope

SCOPE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
MEMORY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
METADATA_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
MESSAGE_ROLES = ("user", "assistant", "system", "tool")
MAX_NAME_CHARS = 128
# Integers every store keeps exactly (BSON has no wider integer; JSON readers lose precision
# past 2**53, but that is the client's own choice of number).


@dataclass(frozen=True)
class LtmLimits:
    max_text_chars: int = 20_000
    max_messages: int = 100
    max_metadata_bytes: int = 8_192
    max_metadata_depth: int = 8  # objects and arrays nested in metadata, the outer object 1
    max_batch_size: int = 50
    max_search_limit: int = 100
    max_page_size: int = 100
    max_ttl_seconds: int = 10 * 365 * 86_400


def check_scope(scope: Scope, *, required: bool) -> None:
    for field, value in (
        ("userId", scope.user_id),
        ("agentId", scope.agent_id),
        ("sessionId", scope.session_id),
    ):
        if value is not None and not SCOPE_ID.fullmatch(value):
            raise InvalidInput(
                f"{field}: 1-128 characters, letters, digits and _ . : @ - "
                "(starting with a letter or digit).",
                field=field,
            )
    if required and scope.empty:
        raise InvalidInput("Give at least one of userId, agentId or sessionId.", field="userId")


def check_memory_id(memory_id: str) -> None:
    if not MEMORY_ID.fullmatch(memory_id):
        raise InvalidInput("Not a memory id.", field="id")


def check_new_memory(new: NewMemory, limits: LtmLimits) -> None:
    check_scope(new.scope, required=True)
    if (new.text is None) == (new.messages is None):
        raise InvalidInput("Give either text or messages.", field="text")
    if new.text is not None:
        check_text(new.text, limits, "text")
    else:
        assert new.messages is not None
        if not new.messages:
            raise InvalidInput("Give at least one message.", field="messages")
        if len(new.messages) > limits.max_messages:
            raise LimitExceeded(
                f"At most {limits.max_messages} messages per memory.",
                field="messages",
                limit=limits.max_messages,
            )
        for index, (role, content, name) in enumerate(new.messages):
            if role not in MESSAGE_ROLES:
                raise InvalidInput(f"messages[{index}].role: one of {MESSAGE_ROLES}.")
            check_text(content, limits, f"messages[{index}].content")
            if name is not None:
                check_name(name, f"messages[{index}].name")
    check_metadata(new.metadata, limits)
    check_ttl(new.ttl_seconds, limits)


def check_text(text: str, limits: LtmLimits, field: str) -> None:
    if not text.strip():
        raise InvalidInput(f"{field} is empty.", field=field)
    if len(text) > limits.max_text_chars:
        raise LimitExceeded(
            f"{field}: at most {limits.max_text_chars} characters.",
            field=field,
            limit=limits.max_text_chars,
        )
    check_encodable(text, field)


def check_name(name: str, field: str) -> None:
    """A message author's name (mem0 keeps it as the memory's actor_id)."""
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"{field}: 1-{MAX_NAME_CHARS} characters.", field=field)
    check_encodable(name, field)


def check_metadata(metadata: Any, limits: LtmLimits, field: str = "metadata") -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise InvalidInput(f"{field} must be a JSON object.", field=field)
    for key in metadata:
        if not METADATA_KEY.fullmatch(key):
            raise InvalidInput(f"{field} key {key!r}: 1-64 letters, digits, _ or -.", field=field)
    check_json_value(metadata, field, limits.max_metadata_depth)
    size = len(json.dumps(metadata, separators=(",", ":"), allow_nan=False).encode())
    if size > limits.max_metadata_bytes:
        raise LimitExceeded(
            f"{field}: at most {limits.max_metadata_bytes} bytes as JSON (got {size}).",
            field=field,
            limit=limits.max_metadata_bytes,
        )


def check_metadata_filter(metadata: Any, limits: LtmLimits) -> None:
    """Filters match metadata values exactly: scalars only."""
    check_metadata(metadata, limits, "metadata")
    for key, value in (metadata or {}).items():
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise InvalidInput(
                f"metadata filter {key!r}: a string, number or boolean to match.",
                field="metadata",
            )


def check_ttl(ttl_seconds: int | None, limits: LtmLimits) -> None:
    if ttl_seconds is None:
        return
    if ttl_seconds < 0:
        raise InvalidInput("ttlSeconds must be 0 (never expires) or more.", field="ttlSeconds")
    if ttl_seconds > limits.max_ttl_seconds:
        raise LimitExceeded(
            f"ttlSeconds: at most {limits.max_ttl_seconds}.",
            field="ttlSeconds",
            limit=limits.max_ttl_seconds,
        )


def check_search(search: MemorySearch, limits: LtmLimits) -> None:
    check_scope(search.scope, required=True)
    check_text(search.query, limits, "query")
    if not 1 <= search.limit <= limits.max_search_limit:
        raise LimitExceeded(
            f"limit: 1 to {limits.max_search_limit}.",
            field="limit",
            limit=limits.max_search_limit,
        )
    if search.threshold is not None and not 0 <= search.threshold <= 1:
        raise InvalidInput("threshold: between 0 and 1.", field="threshold")
    half_life = search.recency_half_life_seconds
    if half_life is not None and not (math.isfinite(half_life) and half_life > 0):
        raise InvalidInput(
            "recencyHalfLife: a positive number of seconds.", field="recencyHalfLife"
        )
    check_metadata_filter(search.metadata, limits)


def check_page_size(first: int, limits: LtmLimits) -> None:
    if not 1 <= first <= limits.max_page_size:
        raise LimitExceeded(
            f"first: 1 to {limits.max_page_size}.", field="first", limit=limits.max_page_size
        )


def check_batch(items: list[Any], limits: LtmLimits) -> None:
    if not items:
        raise InvalidInput("Give at least one item.", field="items")
    if len(items) > limits.max_batch_size:
        raise LimitExceeded(
            f"At most {limits.max_batch_size} items per batch (LTM_MAX_BATCH_SIZE); "
            f"got {len(items)}.",
            field="items",
            limit=limits.max_batch_size,
        )
