"""Errors the product raises on purpose; each carries the code a client can act on.

    MaasError                 base: a message safe to show, a code and optional details
     ├── InvalidInput         BAD_USER_INPUT   the request itself is wrong
     ├── Unauthenticated      UNAUTHENTICATED  no or unknown API key
     ├── NotFound             NOT_FOUND        nothing with that id for this tenant
     ├── LimitExceeded        LIMIT_EXCEEDED   a configured limit was passed
     ├── Unavailable          UNAVAILABLE      a dependency (Redis, the LLM) is down
     └── ResyncRequired       RESYNC_REQUIRED  events a subscriber asked for are gone: re-read
                                               the state, then resume from its event id

Anything else that escapes is an internal error: masked for clients, logged with an id.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from services.metrics import ServiceMetrics

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


class ResyncRequired(MaasError):
    code = "RESYNC_REQUIRED"


class CountsDependencyErrors(Protocol):
    metrics: ServiceMetrics


S = TypeVar("S", bound=CountsDependencyErrors)
Method = Callable[Concatenate[S, P], Awaitable[T]]


def unavailable_on(
    is_down: Callable[[BaseException], bool], what: str, dependency: str
) -> Callable[[Method[S, P, T]], Method[S, P, T]]:
    """Decorates a service's coroutine method: errors that `is_down` says mean the dependency
    is down become Unavailable, counted in the service's metrics under `dependency`."""

    def decorate(func: Method[S, P, T]) -> Method[S, P, T]:
        @functools.wraps(func)
        async def guarded(service: S, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await func(service, *args, **kwargs)
            except Exception as exc:
                if not is_down(exc):
                    raise
                log.warning("%s is unavailable: %s", what, type(exc).__name__)
                service.metrics.dependency_error(dependency)
                raise Unavailable(f"{what} is unavailable; try again shortly.") from exc

        return guarded

    return decorate
