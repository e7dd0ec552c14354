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

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


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


def unavailable_on(
    errors: tuple[type[BaseException], ...], what: str
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorates a coroutine function: `errors` (a dependency being down) become Unavailable."""

    def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(func)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await func(*args, **kwargs)
            except errors as exc:
                log.warning("%s is unavailable: %s", what, type(exc).__name__)
                raise Unavailable(f"{what} is unavailable; try again shortly.") from exc

        return guarded

    return decorate
