"""A subscription's event stream ends with UNAUTHENTICATED when its credential expires, never
before, and closes the stream beneath it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from resolvers.credential_expiry import until_credential_expires
from services.errors import Unauthenticated
from tests.support.patience import PATIENCE_S, short

# Long enough for the first event to be read before it ends (in-process, no I/O).
LIFETIME_S = short(0.3)


def info(expires_at: float | None) -> Any:
    return SimpleNamespace(context=SimpleNamespace(expires_at=expires_at))


class Stream:
    """An event stream the test feeds; records whether it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    async def events(self) -> AsyncIterator[Any]:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed = True


async def test_a_credential_that_never_expires_adds_nothing():
    events = Stream().events()
    assert until_credential_expires(info(None), events) is events
    await events.aclose()


async def test_events_flow_until_expiry_then_the_stream_ends_unauthenticated():
    expires_at = time.time() + LIFETIME_S
    stream = Stream()
    events = until_credential_expires(info(expires_at), stream.events())
    stream.queue.put_nowait("first")
    assert await anext(events) == "first"
    async with asyncio.timeout(LIFETIME_S + PATIENCE_S):
        with pytest.raises(Unauthenticated, match="expired"):
            await anext(events)
    assert time.time() >= expires_at
    assert stream.closed


async def test_an_expired_credential_gets_no_event():
    stream = Stream()
    stream.queue.put_nowait("too late")
    events = until_credential_expires(info(time.time() - 1), stream.events())
    with pytest.raises(Unauthenticated):
        await anext(events)


async def test_a_timeout_of_the_stream_itself_is_not_taken_for_expiry():
    stream = Stream()
    stream.queue.put_nowait(TimeoutError("redis timed out"))
    events = until_credential_expires(info(time.time() + 3600), stream.events())
    with pytest.raises(TimeoutError, match="redis"):
        await anext(events)


async def test_the_end_of_the_stream_ends_it_quietly():
    async def two() -> AsyncIterator[int]:
        yield 1
        yield 2

    events = until_credential_expires(info(time.time() + 3600), two())
    assert [event async for event in events] == [1, 2]


async def test_closing_it_closes_the_stream_beneath():
    stream = Stream()
    stream.queue.put_nowait("one")
    events = until_credential_expires(info(time.time() + 3600), stream.events())
    assert await anext(events) == "one"
    await events.aclose()  # type: ignore[attr-defined]
    assert stream.closed


async def test_expiry_while_an_event_is_delivered_never_interrupts_the_delivery():
    expires_at = time.time() + LIFETIME_S
    stream = Stream()
    events = until_credential_expires(info(expires_at), stream.events())
    stream.queue.put_nowait("first")
    assert await anext(events) == "first"
    # The subscriber is busy past the expiry (sending, say): that work is not cancelled...
    await asyncio.sleep(expires_at - time.time() + 0.05)
    # ...the stream ends at the next event instead.
    stream.queue.put_nowait("second")
    with pytest.raises(Unauthenticated):
        await anext(events)


async def test_someone_elses_cancellation_stays_a_cancellation():
    stream = Stream()
    events = until_credential_expires(info(time.time() + 3600), stream.events())
    reading = asyncio.create_task(anext(events))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert stream.closed
