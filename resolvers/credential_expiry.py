"""Subscriptions end when the credential they were opened with expires.

Each subscriber's own event stream is cut at its own deadline: the per-event executions that
subscribers share (schema.shared_execution) never see it, so one subscriber's expiry never ends
or delays another's. The stream ends by raising Unauthenticated, which Strawberry delivers as an
error result (extensions.code UNAUTHENTICATED) followed by `complete`, on both WebSocket
protocols.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from resolvers.context import EXPIRED, RequestContext
from services.errors import Unauthenticated

if TYPE_CHECKING:
    from strawberry import Info

T = TypeVar("T")


def until_credential_expires(
    info: Info[RequestContext, Any], events: AsyncIterator[T]
) -> AsyncIterator[T]:
    """events, ending with Unauthenticated when the caller's credential expires (events as they
    are, no extra hop, for credentials that never expire)."""
    expires_at = info.context.expires_at
    return events if expires_at is None else _until(expires_at, events)


async def _until(expires_at: float, events: AsyncIterator[T]) -> AsyncIterator[T]:
    loop = asyncio.get_running_loop()
    # One timer per subscription, on the event loop's clock, not one per event: a timeout
    # around each wait cost ~15 µs per event and subscriber, this under 1 µs.
    deadline = loop.time() + (expires_at - time.time())
    waiting: asyncio.Task[Any] | None = None  # the task while it waits for the next event
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        if waiting is not None:
            # Interrupt only the wait for an event, never the delivery of one.
            waiting.cancel()

    timer = loop.call_at(deadline, expire)
    try:
        async with aclosing(events):  # type: ignore[type-var]
            # The clock as well as the flag: a timer due may not have run yet.
            while not expired and loop.time() < deadline:
                task = waiting = asyncio.current_task()
                assert task is not None
                cancelling = task.cancelling()
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    # Ours alone (as asyncio.timeout tells): the expiry; anyone else's wins.
                    if expired and task.uncancel() <= cancelling:
                        raise Unauthenticated(EXPIRED) from None
                    raise
                finally:
                    waiting = None
                yield event
            raise Unauthenticated(EXPIRED)
    finally:
        timer.cancel()
