"""Errors the product raises on purpose; each carries the code a client can act on.

    MaasError                 base: a message safe to show, a code and optional details
     ├── InvalidInput         BAD_USER_INPUT   the request itself is wrong
     ├── Unauthenticated      UNAUTHENTICATED  no or unknown API key
     ├── NotFound             NOT_FOUND        nothing with that id for this tenant
     ├── LimitExceeded        LIMIT_EXCEEDED   a configured limit was passed
     └── Unavailable          UNAVAILABLE      a dependency (Redis, the LLM) is down

Anything else that escapes is an internal error: masked for clients, logged with an id.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MaasError(Exception):
    """An expected failure whose message is safe to show to the client."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(MaasError):
    code = "BAD_USER_INPUT"


class Unauthenticated(MaasError):
    code = "UNAUTHENTICATED"


class NotFound(MaasError):
    code = "NOT_FOUND"


class LimitExceeded(MaasError):
    code = "LIMIT_EXCEEDED"


class Unavailable(MaasError):
    code = "UNAVAILABLE"
