"""The event bus: streams written by scripts, followed live by every process, resumable after
an event id, and delivery that survives Redis going away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from stores.event_bus import (
    EventRetention,
    EventsLost,
    EventsUnavailable,
    RedisEventBus,
    StoredEvent,
    SubscriberTooSlow,
)
from stores.redis_client import REDIS_DOWN, connect
from stores.redis_server import RedisServerProcess
from tests.support.patience import patience

STREAM = "maas:test:{t}:events"


async def _next(events: AsyncIterator[StoredEvent]) -> StoredEvent:
    return await asyncio.wait_for(anext(events), patience())


async def _take(events: AsyncIterator[StoredEvent], count: int) -> list[str]:
    return [(await _next(events)).payload for _ in range(count)]


@pytest.fixture
async def bus(redis: Redis) -> AsyncIterator[RedisEventBus]:
    bus = RedisEventBus(redis)
    yield bus
    await bus.close()


async def test_events_reach_subscribers_of_another_process_in_order(
    redis_url: str, redis: Redis, bus: RedisEventBus
):
    # Two clients and two buses stand for two server processes.
    other = connect(redis_url, cluster=False)
    there = RedisEventBus(other)
    try:
        async with bus.subscribe(STREAM) as first, bus.subscribe(STREAM) as second:
            ids = [await there.append(STREAM, f"event {n}", kind="M", at_ms=n) for n in range(3)]
            expected = ["event 0", "event 1", "event 2"]
            assert await _take(first, 3) == expected
            assert await _take(second, 3) == expected
    finally:
        await there.close()
        await other.aclose()
    entries = await redis.xrange(STREAM)
    assert [e[0].decode() for e in entries] == ids
    # Each entry names the one before it, so a reader can prove it missed none.
    assert [e[1][b"p"].decode() for e in entries] == ["0-0", *ids[:2]]


async def test_a_subscriber_resuming_after_an_event_misses_none_and_sees_none_twice(
    bus: RedisEventBus,
):
    ids = [await bus.append(STREAM, f"old {n}", kind="M", at_ms=n) for n in range(5)]

    async def keep_writing() -> None:
        for n in range(50):
            await bus.append(STREAM, f"new {n}", kind="M", at_ms=n)
            await asyncio.sleep(0)

    # Events keep arriving while the subscriber replays: the seam between what it reads from
    # the stream and what arrives live must be exact.
    writer = asyncio.create_task(keep_writing())
    async with bus.subscribe(STREAM, after=ids[1]) as events:
        seen = await _take(events, 53)
    await writer
    assert seen == [f"old {n}" for n in range(2, 5)] + [f"new {n}" for n in range(50)]


async def test_resuming_after_the_newest_event_gives_only_live_ones(bus: RedisEventBus):
    newest = await bus.append(STREAM, "seen already", kind="M", at_ms=1)
    async with bus.subscribe(STREAM, after=newest) as events:
        await bus.append(STREAM, "live", kind="M", at_ms=2)
        assert await _take(events, 1) == ["live"]


async def test_resuming_after_an_event_no_longer_kept_is_events_lost(redis: Redis):
    bus = RedisEventBus(redis, retention=EventRetention(max_len=3))
    try:
        ids = [await bus.append(STREAM, f"e{n}", kind="M", at_ms=n) for n in range(6)]
        with pytest.raises(EventsLost):
            async with bus.subscribe(STREAM, after=ids[0]) as events:
                await _next(events)
        # The oldest kept one's predecessor is still a valid position.
        async with bus.subscribe(STREAM, after=ids[2]) as events:
            assert await _take(events, 3) == ["e3", "e4", "e5"]
        # An id the stream never had proves nothing either.
        with pytest.raises(EventsLost):
            async with bus.subscribe(STREAM, after="99999999999999-0") as events:
                await _next(events)
    finally:
        await bus.close()


async def test_events_older_than_the_max_age_are_dropped(redis: Redis):
    bus = RedisEventBus(redis, retention=EventRetention(max_age_ms=60_000))
    try:
        # An entry stamped two minutes ago (explicit id) is past the age limit.
        await redis.xadd(STREAM, {"p": "0-0", "k": "M", "a": 0, "e": "ancient"}, id="1000-0")
        await bus.append(STREAM, "fresh", kind="M", at_ms=1)
        assert [e[1][b"e"] for e in await redis.xrange(STREAM)] == [b"fresh"]
    finally:
        await bus.close()


async def test_a_subscriber_that_falls_behind_is_told_so(redis: Redis):
    bus = RedisEventBus(redis, queue_size=3)
    try:
        async with bus.subscribe(STREAM) as events:
            for n in range(10):
                await bus.append(STREAM, f"event {n}", kind="M", at_ms=n)
            # Ten events into a queue of three: the reader learns it missed events rather
            # than silently reading a gap.
            with pytest.raises(SubscriberTooSlow):
                await _take(events, 10)
    finally:
        await bus.close()


async def test_an_event_whose_publish_was_lost_is_still_delivered(redis: Redis):
    bus = RedisEventBus(redis, audit_interval_s=0.2)
    try:
        async with bus.subscribe(STREAM) as events:
            first = await bus.append(STREAM, "published", kind="M", at_ms=1)
            assert await _take(events, 1) == ["published"]
            # In the stream, but its publish never reached this process (a node gone without
            # closing the connection, a dropped cluster-bus message): the audit finds it.
            await redis.xadd(STREAM, {"p": first, "k": "M", "a": 2, "e": "never published"})
            assert await _take(events, 1) == ["never published"]
    finally:
        await bus.close()


# ---- Redis going away ----------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServerProcess]:
    """A persistent redis-server of the test's own, to stop and start again on its port."""
    server = RedisServerProcess(tmp_path / "redis", start_timeout=patience(), persistent=True)
    server.start()
    yield server
    server.stop()


def _restart(server: RedisServerProcess) -> None:
    port = server.port
    server.stop()  # SHUTDOWN SAVE: what was acknowledged is on disk
    server.__init__(server.data_dir, persistent=True, port=port)  # type: ignore[misc]
    server.start()


async def test_subscribers_keep_receiving_after_redis_restarts(own_redis: RedisServerProcess):
    client = connect(own_redis.url, cluster=False)
    writer = connect(own_redis.url, cluster=False)
    bus = RedisEventBus(client, reconnect_grace_s=600)
    try:
        async with bus.subscribe(STREAM) as events:
            await RedisEventBus(writer).append(STREAM, "before", kind="M", at_ms=1)
            assert await _take(events, 1) == ["before"]
            await asyncio.to_thread(_restart, own_redis)
            # Written while this bus may still be reconnecting: delivered from the stream.
            await _append_when_up(writer, "after 1")
            await _append_when_up(writer, "after 2")
            assert await _take(events, 2) == ["after 1", "after 2"]
        assert bus.healthy
    finally:
        await bus.close()
        await client.aclose()
        await writer.aclose()


async def test_an_outage_longer_than_the_grace_ends_subscribers_with_unavailable(
    own_redis: RedisServerProcess,
):
    client = connect(own_redis.url, cluster=False)
    bus = RedisEventBus(client, reconnect_grace_s=0.5)
    port = own_redis.port
    try:
        async with bus.subscribe(STREAM) as events:
            await asyncio.to_thread(own_redis.stop)
            with pytest.raises(EventsUnavailable):
                await _next(events)
            assert not bus.healthy
        # Redis back: a new subscriber is served again.
        own_redis.__init__(own_redis.data_dir, persistent=True, port=port)  # type: ignore[misc]
        await asyncio.to_thread(own_redis.start)
        async with bus.subscribe(STREAM) as events:
            await bus.append(STREAM, "back", kind="M", at_ms=1)
            assert await _take(events, 1) == ["back"]
    finally:
        await bus.close()
        await client.aclose()


async def test_a_redis_that_comes_back_empty_makes_subscribers_resync(tmp_path: Path):
    server = RedisServerProcess(tmp_path / "redis", start_timeout=patience(), persistent=False)
    server.start()
    client = connect(server.url, cluster=False)
    bus = RedisEventBus(client, reconnect_grace_s=600)
    try:
        async with bus.subscribe(STREAM) as events:
            await bus.append(STREAM, "before", kind="M", at_ms=1)
            assert await _take(events, 1) == ["before"]
            port = server.port
            await asyncio.to_thread(server.stop)  # no persistence: the stream is gone
            server.__init__(server.data_dir, persistent=False, port=port)  # type: ignore[misc]
            await asyncio.to_thread(server.start)
            await _append_when_up(client, "after")
            # The new stream does not continue the old one: the subscriber cannot know what
            # it missed, so it is told to read the state again.
            with pytest.raises(EventsLost):
                await _next(events)
    finally:
        await bus.close()
        await client.aclose()
        server.stop()


async def _append_when_up(client: Redis, payload: str) -> None:
    """Append once Redis answers again (the client reconnects on its next command)."""
    writer = RedisEventBus(client)
    deadline = asyncio.get_running_loop().time() + patience()
    while True:
        try:
            await writer.append(STREAM, payload, kind="M", at_ms=1)
            return
        except REDIS_DOWN:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_resuming_from_the_start_of_a_stream_whose_first_event_lands_meanwhile(
    redis: Redis,
):
    # The replay finds the stream empty, then the first event lands before it asks for the
    # newest id: that event follows "0-0", so nothing is lost (it ended RESYNC_REQUIRED).
    class LateFirstEvent:
        """The test's Redis, on which an event lands right after the first empty range."""

        def __init__(self) -> None:
            self.landed = False

        def __getattr__(self, name: str):
            return getattr(redis, name)

        async def xrange(self, *args, **kwargs):
            entries = await redis.xrange(*args, **kwargs)
            if not entries and not self.landed:
                self.landed = True
                await writer.append(STREAM, "first", kind="M", at_ms=1)
            return entries

    writer = RedisEventBus(redis)
    bus = RedisEventBus(LateFirstEvent())  # type: ignore[arg-type]
    try:
        async with bus.subscribe(STREAM, after="0-0") as events:
            assert (await _next(events)).payload == "first"
    finally:
        await bus.close()
        await writer.close()
