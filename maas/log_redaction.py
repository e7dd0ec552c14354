"""Keeps API keys out of the logs, whatever level they run at.

At DEBUG, uvicorn hands its logger to the websockets library, which logs upgrade headers
(Authorization among them) and every frame (the connection_init payload carries the key).
"""

from __future__ import annotations

import logging
import re

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',}]+")
# websockets logs each frame with these formats; frames hold keys and message contents.
_FRAME_FORMATS = {"< %s", "> %s"}
_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


class RedactSecrets(logging.Filter):
    """Drops WebSocket frame records and masks keys and Authorization values in the rest."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self._keys = [k for k in keys if k]

    def filter(self, record: logging.LogRecord) -> bool:
        # A message may be any object (a dict is not hashable): only a string is a format.
        if isinstance(record.msg, str) and record.msg in _FRAME_FORMATS:
            return False
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) >= 2 and str(args[0]).lower() in _SECRET_HEADERS:
            record.args = (args[0], "[redacted]", *args[2:])
            return True
        redacted = record.getMessage()
        if "bearer" in redacted.lower():  # what the pattern needs first: most lines lack it
            redacted = _BEARER.sub(r"\1[redacted]", redacted)
        for key in self._keys:
            redacted = redacted.replace(key, "[redacted]")
        # The message as it will be shown, formatted once here rather than again by the
        # formatter.
        record.msg, record.args = redacted, ()
        return True


def install(keys: list[str]) -> None:
    """Attach the filter where records are created: logger filters apply to every handler."""
    redactor = RedactSecrets(keys)
    for name in (
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "websockets",
        "websockets.server",
        "maas",
        "strawberry",
    ):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RedactSecrets)]:
            logger.removeFilter(old)
        logger.addFilter(redactor)
