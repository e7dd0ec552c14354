"""Redis pub/sub shared by every server process: one Redis subscription per channel and process,
fanned out to local subscribers, so 1,000 WebSockets cost one Redis connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class SubscriberTooSlow(Exception):
    """A subscriber's queue overflowed; it missed events and is dropped."""


_OVERFLOW = object()


class RedisEventBus:
    """Publishes and subscribes to Redis channels; local fan-out with bounded queues."""

    def __init__(self, redis: Redis, *, queue_size: int = 1000) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[object]]] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, channel: str, payload: str) -> None:
        await self._redis.publish(channel, payload)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        """Yields an iterator of the payloads published on channel from now on."""
        queue: asyncio.Queue[object] = asyncio.Queue(self._queue_size)
        await self._add(channel, queue)
        try:
            yield self._drain(queue)
        finally:
            await self._remove(channel, queue)

    async def _drain(self, queue: asyncio.Queue[object]) -> AsyncIterator[str]:
        while True:
            item = await queue.get()
            if item is _OVERFLOW:
                raise SubscriberTooSlow("Too many undelivered events; subscribe again.")
            yield item  # type: ignore[misc]

    async def _add(self, channel: str, queue: asyncio.Queue[object]) -> None:
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            queues = self._subscribers.setdefault(channel, set())
            if not queues:
                await self._pubsub.subscribe(channel)
            queues.add(queue)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="event-bus-reader")

    async def _remove(self, channel: str, queue: asyncio.Queue[object]) -> None:
        async with self._lock:
            queues = self._subscribers.get(channel)
            if queues is None:
                return
            queues.discard(queue)
            if not queues:
                del self._subscribers[channel]
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, ConnectionError):
                        await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        assert self._pubsub is not None
        while self._subscribers:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, ConnectionError, OSError):
                log.warning("event bus lost its Redis connection; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)
                await self._resubscribe()
                continue
            if message is None or message["type"] != "message":
                continue
            payload = message["data"].decode()
            for queue in tuple(self._subscribers.get(message["channel"].decode(), ())):
                try:
                    queue.put_nowait(payload)
                except asyncio.QueueFull:
                    # Drop the oldest event, then tell the subscriber it fell behind.
                    queue.get_nowait()
                    queue.put_nowait(_OVERFLOW)

    async def _resubscribe(self) -> None:
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            with contextlib.suppress(RedisError, ConnectionError, OSError):
                if self._subscribers:
                    await self._pubsub.subscribe(*self._subscribers)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()
