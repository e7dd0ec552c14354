"""JSON without spaces, as the services store and send it."""

from __future__ import annotations

import json
from typing import Any

# One encoder per kind for every call: json.dumps with options builds a new one each time,
# three times per message written.
_ASCII = json.JSONEncoder(separators=(",", ":"))
_UNICODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact_json(value: Any, *, ensure_ascii: bool = True) -> str:
    """What json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii) gives."""
    return (_ASCII if ensure_ascii else _UNICODE).encode(value)
