"""The server's log as a test sees it, and what of a secret shows in it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest

# The server's loggers, including "uvicorn.error", which uvicorn also hands to the websockets
# library for its protocol log.
SERVER_LOGGERS = (
    "maas",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "strawberry",
    "services",
    "stores",
    "resolvers",
    "schema",
)


@contextlib.contextmanager
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captures the server's loggers at DEBUG, uvicorn's too (they do not propagate to the
    root logger). Call it in the test body, after the server started: uvicorn sets its
    loggers' levels when it starts. The websockets library decides per connection whether
    to log at DEBUG, so connections opened inside the block are the ones logged."""
    added = []
    for name in SERVER_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
        logger = logging.getLogger(name)
        if caplog.handler not in logger.handlers:
            logger.addHandler(caplog.handler)
            added.append(logger)
    try:
        yield caplog
    finally:
        for logger in added:
            logger.removeHandler(caplog.handler)


def leaked_fragments(secret: str, text: str, size: int = 10) -> set[str]:
    """Pieces of `secret` that appear in `text` (log lines may shorten a value)."""
    pieces = {secret[i : i + size] for i in range(len(secret) - size + 1)}
    return {piece for piece in pieces if piece in text}
