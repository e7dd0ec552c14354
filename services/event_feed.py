"""Following an event stream as a subscriber: the store's failures become product errors, the
same for session and memory events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from services.errors import InvalidInput, LimitExceeded, ResyncRequired, Unavailable
from services.metrics import ServiceMetrics
from stores.event_bus import (
    EventsLost,
    EventsUnavailable,
    RedisEventBus,
    StoredEvent,
    SubscriberTooSlow,
    parse_event_id,
)
from stores.redis_client import is_redis_down

T = TypeVar("T")


def check_event_id(after: str | None) -> None:
    if after is not None:
        try:
            parse_event_id(after)
        except ValueError:
            raise InvalidInput("Not an event id.", field="after") from None


async def follow(
    bus: RedisEventBus,
    stream: str,
    after: str | None,
    decode: Callable[[StoredEvent], T | None],
    metrics: ServiceMetrics,
    what: str,
) -> AsyncIterator[T]:
    """The stream's events after `after` (or from now when None), then live ones, as `decode`
    makes them (None leaves one out)."""
    check_event_id(after)
    try:
        async with bus.subscribe(stream, after) as events:
            async for stored in events:
                event = decode(stored)
                if event is not None:
                    yield event
    except SubscriberTooSlow as exc:
        raise LimitExceeded(
            f"Too many undelivered {what}: subscribe again with after: the last eventId you got."
        ) from exc
    except EventsLost as exc:
        raise ResyncRequired(
            f"The {what} after that point are no longer kept: read the current state again and "
            "subscribe with after: its lastEventId."
        ) from exc
    except Exception as exc:
        if not (isinstance(exc, EventsUnavailable) or is_redis_down(exc)):
            raise
        metrics.dependency_error("redis")
        raise Unavailable(
            f"{what.capitalize()} are unavailable: subscribe again with after: the last eventId "
            "you got."
        ) from exc
