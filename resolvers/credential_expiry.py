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
    # The event loop's clock, which the timeout below uses, from the wall-clock expiry.
    deadline = loop.time() + (expires_at - time.time())
    async with aclosing(events):  # type: ignore[type-var]
        while True:
            if loop.time() >= deadline:
                raise Unauthenticated(EXPIRED)
            timeout = asyncio.timeout_at(deadline)
            try:
                async with timeout:
                    event = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if timeout.expired():
                    raise Unauthenticated(EXPIRED) from None
                raise  # a timeout of the stream's own
            yield event
